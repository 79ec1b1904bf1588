/** Pure: which headers cross the proxy. */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';

/** Hop-by-hop headers (RFC 9110 section 7.6.1) belong to one connection and are never forwarded. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/** Headers of the client's request that are not passed upstream, besides the hop-by-hop ones. */
const REQUEST_DROPPED = new Set([
  'host',
  // The body is re-serialised: its length is set anew.
  'content-length',
  // The router reads `usage` from the response as it passes; it must not arrive compressed.
  'accept-encoding',
  // The body is already read: an upstream `100 Continue` would mean nothing.
  'expect',
]);

function connectionTokens(headers: IncomingHttpHeaders): Set<string> {
  const c = headers.connection;
  return new Set(
    (typeof c === 'string' ? c : '')
      .split(',')
      .map((t) => t.trim().toLowerCase())
      .filter((t) => t !== ''),
  );
}

function copy(headers: IncomingHttpHeaders, dropped: ReadonlySet<string>): OutgoingHttpHeaders {
  // Headers the Connection header names are hop-by-hop too.
  const named = connectionTokens(headers);
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || HOP_BY_HOP.has(name) || dropped.has(name) || named.has(name)) continue;
    out[name] = value;
  }
  return out;
}

/** The client's headers as sent upstream (Authorization included: vLLM may check an API key). */
export function upstreamRequestHeaders(
  headers: IncomingHttpHeaders,
  bodyLength: number,
): OutgoingHttpHeaders {
  return {
    ...copy(headers, REQUEST_DROPPED),
    'content-type': 'application/json',
    'content-length': bodyLength,
  };
}

/** The upstream's response headers as sent to the client. */
export function clientResponseHeaders(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  return copy(headers, new Set());
}
