/**
 * Validation of the JSON bodies the agent accepts. Everything that ends up in a file path (the
 * adapter name, the Secret name and key) is checked here to be a single safe path segment.
 */
import { badRequest } from './errors.ts';

/** An adapter folder name: one path segment, no leading dot (those are the agent's own files). */
export const NAME_PATTERN = /^[a-z0-9]([a-z0-9._-]*[a-z0-9])?$/;
/** Leaves room for the marker's ".<name>.json" within the usual 255-byte file name limit. */
export const NAME_MAX_LENGTH = 200;
/** Kubernetes Secret names (DNS-1123 subdomain) and data keys. */
const SECRET_NAME_PATTERN = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;
const SECRET_KEY_PATTERN = /^[-._a-zA-Z0-9]+$/;
const SHA256_PATTERN = /^[0-9a-fA-F]{64}$/;

export type ArchiveKind = 'tgz' | 'zip';

export interface SecretRef {
  name: string;
  key: string;
}

export interface FetchRequest {
  name: string;
  uri: URL;
  kind: ArchiveKind;
  /** Lower-case hex, when the caller pinned the archive. */
  sha256?: string;
  maxBytes: number;
  secret?: SecretRef;
}

const FIELDS = new Set(['name', 'uri', 'sha256', 'maxBytes', 'secret']);

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Throws a 400 unless `name` can be an adapter folder. */
export function checkName(name: unknown): string {
  if (typeof name !== 'string' || name.length > NAME_MAX_LENGTH || !NAME_PATTERN.test(name)) {
    throw badRequest(
      `name must be 1-${NAME_MAX_LENGTH} characters of a-z, 0-9, '.', '_' or '-', starting and ending with a letter or digit`,
    );
  }
  return name;
}

/** The archive type, from the end of the uri's path (a query string, as in pre-signed URLs, is ignored). */
export function archiveKind(uri: URL): ArchiveKind | undefined {
  const path = uri.pathname.toLowerCase();
  if (path.endsWith('.tar.gz') || path.endsWith('.tgz')) return 'tgz';
  if (path.endsWith('.zip')) return 'zip';
  return undefined;
}

function parseUri(v: unknown): { uri: URL; kind: ArchiveKind } {
  if (typeof v !== 'string') throw badRequest('uri is required');
  let uri: URL;
  try {
    uri = new URL(v);
  } catch {
    throw badRequest('uri is not a valid URL');
  }
  if (uri.protocol !== 'https:') throw badRequest('uri must be an https URL');
  // Credentials belong in a Secret, where they are neither logged nor stored in the marker.
  if (uri.username || uri.password) throw badRequest('uri must not carry credentials; use secret');
  const kind = archiveKind(uri);
  if (!kind) throw badRequest('uri must name a .tar.gz, .tgz or .zip archive');
  return { uri, kind };
}

function parseSecret(v: unknown): SecretRef {
  if (!isRecord(v)) throw badRequest('secret must be an object with name and key');
  const { name, key = 'token' } = v;
  if (typeof name !== 'string' || name.length > 253 || !SECRET_NAME_PATTERN.test(name)) {
    throw badRequest('secret.name must be a Secret name');
  }
  if (
    typeof key !== 'string' ||
    key.length > 253 ||
    !SECRET_KEY_PATTERN.test(key) ||
    key === '.' ||
    key === '..'
  ) {
    throw badRequest('secret.key must be a Secret key');
  }
  return { name, key };
}

/** Turns a POST /v1/fetch body into a request, or throws a 400 naming what is wrong. */
export function parseFetchRequest(body: unknown, defaultMaxBytes: number): FetchRequest {
  if (!isRecord(body)) throw badRequest('body must be a JSON object');
  // A misspelt "sha256" would silently skip the verification: refuse what we do not know.
  const unknown = Object.keys(body).filter((k) => !FIELDS.has(k));
  if (unknown.length > 0) throw badRequest(`unknown field(s): ${unknown.join(', ')}`);
  const req: FetchRequest = {
    name: checkName(body['name']),
    ...parseUri(body['uri']),
    maxBytes: defaultMaxBytes,
  };
  const { sha256, maxBytes, secret } = body;
  if (sha256 !== undefined) {
    if (typeof sha256 !== 'string' || !SHA256_PATTERN.test(sha256)) {
      throw badRequest('sha256 must be 64 hex digits');
    }
    req.sha256 = sha256.toLowerCase();
  }
  if (maxBytes !== undefined) {
    if (typeof maxBytes !== 'number' || !Number.isSafeInteger(maxBytes) || maxBytes < 1) {
      throw badRequest('maxBytes must be a positive integer');
    }
    req.maxBytes = maxBytes;
  }
  if (secret !== undefined) req.secret = parseSecret(secret);
  return req;
}
