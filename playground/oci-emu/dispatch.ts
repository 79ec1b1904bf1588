// One request, in the order the service would judge it: signature, route, injected fault, query and
// body shape, retry-token replay, the operation, then an after-commit fault. Every answer carries
// opc-request-id and a JSON content type; every request is recorded.

import type { KeyObject } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { setTimeout as delay } from 'node:timers/promises';
import { ApiError, invalid, missing, notAuthenticated, notFound } from './errors.ts';
import type { FaultHit, Faults } from './faults.ts';
import { buffer } from 'node:stream/consumers';
import { type Call, type Reply, parseJsonObject, parseQuery, sendReply } from './http.ts';
import { newRequestId } from './ids.ts';
import { type RetryTokens, bodyHash } from './retry-tokens.ts';
import { matchRoute } from './routes.ts';
import { userOfKeyId, verifySignedRequest } from './signature.ts';
import type { Store } from './store.ts';
import type { RequestRecord } from './types.ts';

export interface Emulated {
  store: Store;
  keys: Map<string, KeyObject>;
  strict: boolean;
  faults: Faults;
  tokens: RetryTokens;
  log: RequestRecord[];
  /** Told of each request once it is answered (or dropped): crash tests act on a call as it lands. */
  listeners: Set<(r: RequestRecord) => void>;
}

const MAX_RETRY_TOKEN = 64;

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function debug(msg: string): void {
  if (process.env.OCI_EMU_DEBUG) process.stderr.write(`[oci-emu] ${msg}\n`);
}

/** Thrown to end a request by destroying its socket (a fault of status 0). */
class Dropped extends Error {}

function fault(hit: FaultHit): Error {
  return hit.status === 0 ? new Dropped(hit.message) : new ApiError(hit.status, hit.code, hit.message);
}

export async function dispatch(emu: Emulated, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const method = (req.method ?? '').toUpperCase();
  const rawUrl = req.url ?? '/';
  const requestId = header(req, 'opc-request-id') ?? newRequestId();
  const record: RequestRecord = {
    at: Date.now(),
    method,
    path: rawUrl,
    operation: 'UnknownRoute',
    status: 0,
    requestId,
  };
  const retryToken = header(req, 'opc-retry-token');
  const ifMatch = header(req, 'if-match');
  if (retryToken !== undefined) record.retryToken = retryToken;
  if (ifMatch !== undefined) record.ifMatch = ifMatch;
  emu.log.push(record);
  let raw: Buffer;
  try {
    raw = await buffer(req);
  } catch {
    return; // the client went away
  }
  const q = rawUrl.indexOf('?');
  const pathname = q < 0 ? rawUrl : rawUrl.slice(0, q);
  const matched = matchRoute(method, pathname);
  if (matched) record.operation = matched.route.operation;
  let reply: Reply;
  try {
    const auth = verifySignedRequest(req, raw, emu.keys, emu.strict);
    if (!auth.ok) throw notAuthenticated(auth.message);
    if (auth.keyId !== undefined) record.keyId = auth.keyId;
    if (!matched) throw notFound(`There is no operation ${method} ${pathname}`);
    const { route, params } = matched;
    const op = route.operation;
    const latency = emu.faults.latencyFor(op);
    if (latency > 0) await delay(latency);
    const before = emu.faults.before(op);
    if (before) throw fault(before);

    const query = parseQuery(q < 0 ? '' : rawUrl.slice(q + 1));
    if (!route.list && query.size > 0) {
      throw invalid(`${op} takes no query parameters, got ${[...query.keys()].join(', ')}`);
    }
    if (route.body === 'none' && raw.length > 0) throw invalid(`${op} takes no request body`);
    const body = route.body === 'json' ? parseJsonObject(req, raw) : undefined;
    if (route.body === 'json' && body === undefined) throw missing(`${op} requires a request body`);
    if (op === 'Predict' && typeof body?.model === 'string') record.model = body.model;
    if (op === 'UpdateModelDeployment') record.updateType = updateTypeOf(body);
    emu.store.race(op);
    const call: Call = {
      operation: op,
      method,
      params,
      query,
      body,
      ifMatch,
      principal: auth.keyId === undefined ? 'unsigned' : userOfKeyId(auth.keyId),
      headers: req.headers,
    };
    const token = route.idempotent ? retryToken : undefined;
    if (token !== undefined) {
      if (token.length === 0 || token.length > MAX_RETRY_TOKEN) {
        throw invalid(`opc-retry-token must be 1 to ${MAX_RETRY_TOKEN} characters, got ${token.length}`);
      }
      const hash = bodyHash(body);
      const stored = emu.tokens.get(token, Date.now());
      if (stored) {
        if (stored.operation !== op || stored.bodyHash !== hash) {
          throw new ApiError(
            409,
            'InvalidatedRetryToken',
            'The retry token was already used for a different request',
          );
        }
        reply = structuredClone(stored.reply);
      } else {
        reply = route.handler(emu.store, call);
        if (reply.status < 300) emu.tokens.put(token, op, hash, reply, Date.now());
      }
    } else {
      reply = route.handler(emu.store, call);
    }
    const after = emu.faults.after(op);
    if (after) throw fault(after);
  } catch (e) {
    if (e instanceof Dropped) {
      debug(`${method} ${rawUrl}: socket destroyed (${e.message})`);
      res.destroy();
      notify(emu, record);
      return;
    }
    if (e instanceof ApiError) {
      reply = { status: e.status, body: { code: e.code, message: e.message } };
    } else {
      const msg = e instanceof Error ? (e.stack ?? e.message) : String(e);
      process.stderr.write(`[oci-emu] ${method} ${rawUrl} crashed: ${msg}\n`);
      reply = {
        status: 500,
        body: { code: 'InternalServerError', message: 'The emulator crashed; see stderr' },
      };
    }
  }
  record.status = reply.status;
  debug(`${method} ${rawUrl} -> ${reply.status}`);
  sendReply(res, requestId, reply);
  notify(emu, record);
}

function notify(emu: Emulated, record: RequestRecord): void {
  for (const l of emu.listeners) l({ ...record });
}

/** LIVE or ZDT, as the update's body says (undefined when it names none). */
function updateTypeOf(body: Record<string, unknown> | undefined): string | undefined {
  const cfg = body?.modelDeploymentConfigurationDetails;
  if (typeof cfg !== 'object' || cfg === null) return undefined;
  const t = (cfg as { updateType?: unknown }).updateType;
  return typeof t === 'string' ? t : undefined;
}
