// HTTP plumbing: the reply shape handlers return, sending it with the headers every OCI answer carries,
// and reading bodies and query strings as the SDK sends them.

import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { cannotParse, missing } from './errors.ts';

export interface Reply {
  status: number;
  /** JSON-serialised when present; absent means an empty body. */
  body?: unknown;
  headers?: Record<string, string>;
}

/** One API call as a handler sees it, after signature, fault and retry-token handling. */
export interface Call {
  operation: string;
  method: string;
  /** Path parameters, decoded */
  params: Record<string, string>;
  query: Map<string, string>;
  body: Record<string, unknown> | undefined;
  ifMatch: string | undefined;
  /** createdBy: the user OCID of the signing key, or 'unsigned' */
  principal: string;
  headers: IncomingHttpHeaders;
}

export type Handler = (call: Call) => Reply;

/** The JSON body of a route that requires one (the dispatcher has already refused an empty body). */
export function bodyOf(call: Call): Record<string, unknown> {
  if (call.body === undefined) throw missing(`${call.operation} requires a request body`);
  return call.body;
}

export function sendReply(res: ServerResponse, requestId: string, reply: Reply): void {
  const text = reply.body === undefined ? '' : JSON.stringify(reply.body);
  res.writeHead(reply.status, {
    ...reply.headers,
    'opc-request-id': requestId,
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(text)),
  });
  res.end(text);
}

function decode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s; // the SDK does not encode query values: a stray % is literal
  }
}

/**
 * The SDK does not encode query values, so `displayName=a b&c` arrives as `displayName=a%20b&c` (fetch
 * encodes the space only). A segment that is not `name=...` therefore continues the previous value.
 */
export function parseQuery(search: string): Map<string, string> {
  const out = new Map<string, string>();
  let last: string | undefined;
  for (const seg of search.replace(/^\?/, '').split('&')) {
    if (seg === '' && last === undefined) continue;
    const m = /^([A-Za-z][A-Za-z0-9_-]*)=(.*)$/s.exec(seg);
    if (m) {
      last = m[1] ?? '';
      out.set(last, decode(m[2] ?? ''));
    } else if (last !== undefined) {
      out.set(last, `${out.get(last) ?? ''}&${decode(seg)}`);
    } else {
      out.set(decode(seg), '');
    }
  }
  return out;
}

/** A JSON object body; an empty body is undefined. Anything else is 400 CannotParseRequest. */
export function parseJsonObject(req: IncomingMessage, raw: Buffer): Record<string, unknown> | undefined {
  if (raw.length === 0) return undefined;
  const media = (req.headers['content-type'] ?? '').split(';', 1)[0]?.trim().toLowerCase() ?? '';
  if (media !== 'application/json')
    throw cannotParse(`Content-Type must be application/json, got '${media}'`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw.toString('utf8'));
  } catch (e) {
    throw cannotParse(`Request body is not valid JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw cannotParse('Request body must be a JSON object');
  }
  return parsed as Record<string, unknown>;
}
