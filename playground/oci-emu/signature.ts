// OCI request signatures (draft-cavage HTTP signatures as the SDK sends them, reference §5), verified
// from the request exactly as received. Reusable by any emulator of an OCI service.

import { type KeyObject, createHash, createPublicKey, verify } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

export type VerifyResult = { ok: true; keyId?: string } | { ok: false; message: string };

const MAX_SKEW_MS = 5 * 60 * 1000;
const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH']);

/** The OCI API-key fingerprint: MD5 of the DER SubjectPublicKeyInfo, as colon-separated hex. */
export function keyFingerprint(publicKey: KeyObject | string): string {
  const key = typeof publicKey === 'string' ? createPublicKey(publicKey) : publicKey;
  const der = key.export({ type: 'spki', format: 'der' });
  return (createHash('md5').update(der).digest('hex').match(/../g) ?? []).join(':');
}

/** The user OCID of a `<tenancy>/<user>/<fingerprint>` key id. */
export function userOfKeyId(keyId: string): string {
  return keyId.split('/')[1] ?? keyId;
}

function parseParams(s: string): Map<string, string> | undefined {
  const out = new Map<string, string>();
  const re = /\s*([A-Za-z]+)="([^"]*)"\s*(,|$)/y;
  while (re.lastIndex < s.length) {
    const m = re.exec(s);
    if (!m) return undefined;
    out.set(m[1] ?? '', m[2] ?? '');
  }
  return out;
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

/**
 * Checks the Authorization header of `req` against `keys` (keyId -> public key). Unsigned requests pass
 * only when `strict` is false; a signed request is always checked. `now` is for clock-skew tests.
 */
export function verifySignedRequest(
  req: IncomingMessage,
  body: Buffer,
  keys: ReadonlyMap<string, KeyObject | string>,
  strict: boolean,
  now: number = Date.now(),
): VerifyResult {
  const fail = (message: string): VerifyResult => ({ ok: false, message });
  const auth = header(req, 'authorization');
  if (auth === undefined) {
    return strict
      ? fail('The required information to complete authentication was not provided.')
      : { ok: true };
  }
  if (!auth.startsWith('Signature ')) return fail('Authorization header must use the Signature scheme');
  const params = parseParams(auth.slice('Signature '.length));
  if (!params) return fail('Malformed Signature authorization header');
  if (params.get('version') !== '1') return fail('Signature version must be "1"');
  const keyId = params.get('keyId');
  const algorithm = params.get('algorithm');
  const signed = params.get('headers');
  const signature = params.get('signature');
  if (!keyId || !algorithm || signed === undefined || !signature) {
    return fail('Signature must carry keyId, algorithm, headers and signature');
  }
  if (algorithm !== 'rsa-sha256') return fail(`Unsupported signature algorithm '${algorithm}'`);
  if (keyId.split('/').length !== 3 || keyId.split('/').some((p) => p === '')) {
    return fail(`keyId '${keyId}' is not <tenancy>/<user>/<fingerprint>`);
  }
  const names = signed
    .split(' ')
    .filter((n) => n !== '')
    .map((n) => n.toLowerCase());
  const method = (req.method ?? '').toUpperCase();
  // The SDK signs x-date, never date (reference §5): a signature over date alone is not one it makes.
  const required = ['x-date', '(request-target)', 'host'];
  if (BODY_METHODS.has(method)) required.push('content-type', 'content-length', 'x-content-sha256');
  const missing = required.filter((n) => !names.includes(n));
  if (missing.length > 0) return fail(`Required headers not signed: ${missing.join(' ')}`);

  const lines: string[] = [];
  for (const name of names) {
    if (name === '(request-target)') {
      lines.push(`(request-target): ${method.toLowerCase()} ${req.url ?? ''}`);
      continue;
    }
    const value = header(req, name);
    if (value === undefined || value === '')
      return fail(`Signed header '${name}' is missing from the request`);
    lines.push(`${name}: ${value}`);
  }
  const key = keys.get(keyId);
  if (key === undefined) return fail(`Unknown keyId '${keyId}'`);
  let good: boolean;
  try {
    good = verify('sha256', Buffer.from(lines.join('\n')), key, Buffer.from(signature, 'base64'));
  } catch (e) {
    return fail(`Signature could not be verified: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (!good) return fail('The signature does not match the request');

  const when = Date.parse(header(req, 'x-date') ?? '');
  if (Number.isNaN(when)) return fail('Header x-date is not a date');
  if (Math.abs(now - when) > MAX_SKEW_MS) {
    return fail(`Request date is more than 5 minutes away from the server's clock`);
  }
  if (BODY_METHODS.has(method)) {
    if (header(req, 'content-length') !== String(body.length)) {
      return fail(`Content-Length does not match the body (${body.length} bytes)`);
    }
    const sha = createHash('sha256').update(body).digest('base64');
    if (header(req, 'x-content-sha256') !== sha) return fail('x-content-sha256 does not match the body');
  }
  return { ok: true, keyId };
}
