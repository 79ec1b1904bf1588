/**
 * Validation of the JSON bodies the agent accepts. Everything that ends up in a file path (the
 * adapter name, the Secret name and key) is checked here to be a single safe path segment. Sources:
 * an https archive, an oci://bucket@namespace/prefix location, or a Model Catalog modelId.
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

/** Where the files come from. */
export type Source =
  | { type: 'https'; uri: URL; kind: ArchiveKind }
  /** oci://bucket@namespace/prefix, kept as written (object names are not URL-encoded). */
  | { type: 'objectStorage'; uri: string; bucket: string; namespace: string; prefix: string }
  | { type: 'modelCatalog'; modelId: string };

/** What the folder must hold: a LoRA adapter (adapter_config.json) or a base model (config.json). */
export type Content = 'adapter' | 'model';

export const REQUIRED_FILE: Readonly<Record<Content, string>> = {
  adapter: 'adapter_config.json',
  model: 'config.json',
};

export interface FetchRequest {
  name: string;
  source: Source;
  content: Content;
  /** Lower-case hex, when the caller pinned the archive. */
  sha256?: string;
  maxBytes: number;
  /** Bearer token for an https source. */
  secret?: SecretRef;
}

/** The source as one string: the marker's cache key and what logs and messages name. */
export function sourceId(source: Source): string {
  switch (source.type) {
    case 'https':
      return source.uri.href;
    case 'objectStorage':
      return source.uri;
    case 'modelCatalog':
      return source.modelId;
  }
}

const FIELDS = new Set(['name', 'uri', 'modelId', 'content', 'sha256', 'maxBytes', 'secret']);
/** Object Storage bucket and namespace names. */
const OCI_URI_PATTERN = /^oci:\/\/([A-Za-z0-9._-]{1,256})@([A-Za-z0-9._-]{1,128})(?:\/(.*))?$/s;
/** Same form as the API's modelId (src/api/v1alpha1/common.ts Ocid). */
const MODEL_ID_PATTERN = /^ocid1\.datasciencemodel\.[a-z0-9]+\.[a-z0-9-]*(\.[a-z0-9-]*)?\.[a-z0-9]+$/;

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

/** The archive type a file name ends in, if any. */
export function pathArchiveKind(path: string): ArchiveKind | undefined {
  const p = path.toLowerCase();
  if (p.endsWith('.tar.gz') || p.endsWith('.tgz')) return 'tgz';
  if (p.endsWith('.zip')) return 'zip';
  return undefined;
}

/** The archive type, from the end of the uri's path (a query string, as in pre-signed URLs, is ignored). */
export function archiveKind(uri: URL): ArchiveKind | undefined {
  return pathArchiveKind(uri.pathname);
}

function parseHttps(v: string): Source {
  let uri: URL;
  try {
    uri = new URL(v);
  } catch {
    throw badRequest('uri is not a valid URL');
  }
  if (uri.protocol !== 'https:')
    throw badRequest('uri must be an https URL or oci://bucket@namespace/prefix');
  // Credentials belong in a Secret, where they are neither logged nor stored in the marker.
  if (uri.username || uri.password) throw badRequest('uri must not carry credentials; use secret');
  const kind = archiveKind(uri);
  if (!kind) throw badRequest('uri must name a .tar.gz, .tgz or .zip archive');
  return { type: 'https', uri, kind };
}

function parseOci(v: string): Source {
  const m = OCI_URI_PATTERN.exec(v);
  if (m === null) throw badRequest('uri must be oci://bucket@namespace/prefix');
  return { type: 'objectStorage', uri: v, bucket: m[1] ?? '', namespace: m[2] ?? '', prefix: m[3] ?? '' };
}

function parseSource(body: Record<string, unknown>): Source {
  const { uri, modelId } = body;
  if (uri !== undefined && modelId !== undefined) throw badRequest('give uri or modelId, not both');
  if (modelId !== undefined) {
    if (typeof modelId !== 'string' || !MODEL_ID_PATTERN.test(modelId)) {
      throw badRequest('modelId must be an OCI Data Science model OCID');
    }
    return { type: 'modelCatalog', modelId };
  }
  if (typeof uri !== 'string') throw badRequest('uri is required');
  return uri.startsWith('oci://') ? parseOci(uri) : parseHttps(uri);
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
    source: parseSource(body),
    content: 'adapter',
    maxBytes: defaultMaxBytes,
  };
  const { content, sha256, maxBytes, secret } = body;
  if (content !== undefined) {
    if (content !== 'adapter' && content !== 'model')
      throw badRequest("content must be 'adapter' or 'model'");
    req.content = content;
  }
  if (sha256 !== undefined) {
    if (typeof sha256 !== 'string' || !SHA256_PATTERN.test(sha256)) {
      throw badRequest('sha256 must be 64 hex digits');
    }
    // A checksum pins one file: a folder of objects has none to compare with.
    if (req.source.type === 'objectStorage' && pathArchiveKind(req.source.prefix) === undefined) {
      throw badRequest('sha256 applies to an oci:// uri naming one .tar.gz, .tgz or .zip object');
    }
    req.sha256 = sha256.toLowerCase();
  }
  if (maxBytes !== undefined) {
    if (typeof maxBytes !== 'number' || !Number.isSafeInteger(maxBytes) || maxBytes < 1) {
      throw badRequest('maxBytes must be a positive integer');
    }
    req.maxBytes = maxBytes;
  }
  if (secret !== undefined) {
    // OCI sources sign their requests with the agent's own OCI credentials (--oci-* flags).
    if (req.source.type !== 'https') throw badRequest('secret applies to https uris only');
    req.secret = parseSecret(secret);
  }
  return req;
}
