/**
 * Signs the router's calls to an OCI model deployment's predict URL with oci-common's own
 * DefaultRequestSigner, so the signature is byte for byte the one the SDK makes for any POST (reference
 * §5): x-date, (request-target), host, content-type, content-length and x-content-sha256 are signed,
 * plus opc-obo-token for a delegation token.
 *
 * The signer hashes the body as a string: oci-common's getStringFromRequestBody takes a string or a
 * Readable and throws for a Buffer ("Unable to read body content to sign the request"), and jsSHA hashes
 * the string's UTF-8 encoding. So the body goes in as a string, and only when that string encodes back
 * to the very bytes sent; otherwise x-content-sha256 would name other bytes than the request carries.
 * A predict body is JSON, which is UTF-8 (RFC 8259 §8.1), so this refuses only what OCI would not
 * parse either. No upstream issue was found for this in oracle/oci-typescript-sdk.
 */
import * as common from 'oci-common';

/** Thrown for a request the signer will not sign; the message holds no secret. */
export class PredictSignError extends Error {
  override readonly name = 'PredictSignError';
}

/**
 * Headers the signer computes. A caller's value for any of them is dropped: the client's own host (the
 * router's Service) or Authorization must never reach OCI, and a content-length other than the
 * body's would be signed and then refused.
 */
const COMPUTED = new Set([
  'host',
  'x-date',
  'date',
  'content-length',
  'x-content-sha256',
  'authorization',
  'opc-obo-token',
]);

/** One signer per provider: DefaultRequestSigner parses an API key's PEM once, at construction. */
const signers = new WeakMap<common.AuthenticationDetailsProvider, common.DefaultRequestSigner>();

function signerFor(provider: common.AuthenticationDetailsProvider): common.DefaultRequestSigner {
  let signer = signers.get(provider);
  if (signer === undefined) {
    signer = new common.DefaultRequestSigner(provider);
    signers.set(provider, signer);
  }
  return signer;
}

/**
 * The URL as it will be sent, checked like spec.oci.endpoint: https, or plain http to loopback only
 * (tests), since the request carries a signature bound to this host and path.
 */
export function predictTarget(url: string): URL {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new PredictSignError(`predict URL is not a URL: ${url}`);
  }
  const loopback = u.hostname === 'localhost' || u.hostname.startsWith('127.') || u.hostname === '[::1]';
  if (u.protocol !== 'https:' && !(u.protocol === 'http:' && loopback)) {
    throw new PredictSignError(`predict URL must be https:// (plain http only on loopback): ${u.origin}`);
  }
  if (u.username !== '' || u.password !== '' || u.hash !== '') {
    throw new PredictSignError('predict URL must carry no user info and no fragment');
  }
  return u;
}

/**
 * The headers to send with `POST url` and exactly `body`, lower-cased: the caller's end-to-end
 * headers (pass no hop-by-hop ones such as connection or transfer-encoding) minus those the signer
 * computes, content-type (application/json unless given), host, x-date, content-length,
 * x-content-sha256 and authorization. Send the request to `new URL(url).href`, which is what is signed.
 */
export async function signPredict(
  provider: common.AuthenticationDetailsProvider,
  url: string,
  body: Buffer,
  headers: Readonly<Record<string, string>> = {},
): Promise<Record<string, string>> {
  const target = predictTarget(url);
  const text = body.toString('utf8');
  if (!Buffer.from(text, 'utf8').equals(body)) {
    throw new PredictSignError('predict body is not valid UTF-8; it cannot be signed as sent');
  }
  const h = new Headers();
  for (const [name, value] of Object.entries(headers)) {
    if (!COMPUTED.has(name.toLowerCase())) h.set(name, value);
  }
  if (!h.has('content-type')) h.set('content-type', 'application/json');
  // Set here, not left to the signer: it would count the string's UTF-8 bytes, the same number, but
  // keeps a caller's value if one were there, and this one must be the body's.
  h.set('content-length', String(body.length));
  await signerFor(provider).signHttpRequest({ method: 'POST', uri: target.href, headers: h, body: text });
  const out: Record<string, string> = {};
  h.forEach((value, name) => {
    out[name] = value;
  });
  return out;
}
