/**
 * The router's request handler (node:http, no framework).
 *
 * Inference routes: POST /v1/completions and /v1/chat/completions, and the seed's POST /predict
 * (a completions body, forwarded as /v1/completions). The body is read (bounded), its `model`
 * resolved (names.ts), an experiment's variant chosen (ab.ts), `model` rewritten to the name vLLM
 * serves, and the request sent to the upstream (upstream.ts). The response, event streams included,
 * is piped back as it comes: back-pressure reaches the upstream socket, nothing is buffered, and a
 * client that goes away aborts the upstream request.
 *
 * A try whose connection failed before any byte of the request went upstream (refused, unreachable,
 * timed out connecting, or a kept-alive socket found reset before the request was written) is
 * retried on another endpoint; once a byte may have reached the engine it never is, since a
 * completion is not free to run twice.
 *
 * Also GET /v1/models, /healthz, /readyz and /metrics.
 */
import { type IncomingMessage, type ServerResponse, request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { VARIANT_HEADER } from '../api/router/v1.ts';
import type { Logger } from '../runtime/logger.ts';
import { chooseVariant } from './ab.ts';
import { BodyTooLargeError, DEFAULT_MAX_BODY_BYTES, readBody } from './body.ts';
import {
  type RouterError,
  badGateway,
  badRequest,
  methodNotAllowed,
  modelNotFound,
  payloadTooLarge,
  routeNotFound,
  serviceUnavailable,
} from './errors.ts';
import { clientResponseHeaders, upstreamRequestHeaders } from './headers.ts';
import { CLIENT_CLOSED, NO_MODEL, type RouterMetrics, UNKNOWN_MODEL } from './metrics.ts';
import { type ServedTarget, resolveModel } from './names.ts';
import { type RoutingSource, type RoutingState, isReady } from './state.ts';
import type { Upstream, UpstreamEndpoint } from './upstream.ts';
import { UsageReader } from './usage.ts';

/** The inference routes and the path each is sent upstream on. */
export const INFERENCE_ROUTES: ReadonlyMap<string, string> = new Map([
  ['/predict', '/v1/completions'],
  ['/v1/completions', '/v1/completions'],
  ['/v1/chat/completions', '/v1/chat/completions'],
]);

/** Connection errors that, before any byte went out, say the request never reached the engine. */
const CONNECT_ERRORS = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EHOSTDOWN',
  'ETIMEDOUT',
  'EADDRNOTAVAIL',
]);

export interface ProxyOptions {
  source: RoutingSource;
  upstream: Upstream;
  metrics: RouterMetrics;
  log: Logger;
  maxBodyBytes?: number;
  /** The most tries of one request (each on another endpoint). Default 3. */
  maxTries?: number;
  /** A connection not established within this is a failed try (retried). Default 3 s. */
  connectTimeoutMs?: number;
  /** Randomness of A/B draws without a sticky value; in [0, 1). */
  random?: () => number;
}

interface Labels {
  model: string;
  variant: string;
}

type TryOutcome = 'retry' | 'done';

function errorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  if (res.headersSent || res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(status, {
    ...headers,
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(text),
  });
  res.end(text);
}

function sendText(
  res: ServerResponse,
  status: number,
  body: string,
  contentType = 'text/plain; charset=utf-8',
): void {
  res.writeHead(status, { 'Content-Type': contentType, 'Cache-Control': 'no-store' });
  res.end(body);
}

/** The sticky header's value; several instances of it count as one comma-joined value. */
function headerValue(req: IncomingMessage, name: string | undefined): string | undefined {
  if (name === undefined) return undefined;
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(',') : v;
}

export class RouterProxy {
  private readonly opts: ProxyOptions;
  private readonly maxBodyBytes: number;
  private inFlight = 0;
  private draining = false;
  private idleWaiters: (() => void)[] = [];

  constructor(opts: ProxyOptions) {
    this.opts = opts;
    this.maxBodyBytes = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  }

  /** Readiness: the configuration is known and the router is not shutting down. */
  ready(): boolean {
    return !this.draining && isReady(this.opts.source.current());
  }

  /** Stops reporting ready and resolves once no inference request is in flight. */
  drain(): Promise<void> {
    this.draining = true;
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** The number of inference requests being answered. */
  requestsInFlight(): number {
    return this.inFlight;
  }

  /** The http.Server request listener. */
  handle(req: IncomingMessage, res: ServerResponse): void {
    // Keep-alive connections are closed after their response while draining, so they end.
    if (this.draining) res.setHeader('Connection', 'close');
    this.route(req, res).catch((err: unknown) => {
      this.opts.log.error('request failed', { error: String(err) });
      if (!res.headersSent)
        sendJson(res, 500, {
          error: { message: 'Internal error.', type: 'InternalServerError', param: null, code: 500 },
        });
      else res.destroy();
    });
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://router').pathname;
    const method = req.method ?? 'GET';
    const upstreamPath = INFERENCE_ROUTES.get(path);
    if (upstreamPath !== undefined) {
      if (method === 'POST') await this.infer(req, res, upstreamPath);
      else this.fail(req, res, methodNotAllowed(method, ['POST']), undefined);
      return;
    }
    const get = this.getRoutes.get(path);
    if (get === undefined) this.fail(req, res, routeNotFound(path), undefined);
    else if (method === 'GET' || method === 'HEAD') await get(res);
    else this.fail(req, res, methodNotAllowed(method, ['GET', 'HEAD']), undefined);
  }

  private readonly getRoutes = new Map<string, (res: ServerResponse) => void | Promise<void>>([
    [
      '/healthz',
      (res) => {
        sendText(res, 200, 'ok');
      },
    ],
    [
      '/readyz',
      (res) => {
        if (this.ready()) sendText(res, 200, 'ok');
        else sendText(res, 503, 'not ready');
      },
    ],
    [
      '/metrics',
      async (res) => {
        const { registry } = this.opts.metrics;
        sendText(res, 200, await registry.metrics(), registry.contentType);
      },
    ],
    [
      '/v1/models',
      (res) => {
        this.models(res);
      },
    ],
  ]);

  /** GET /v1/models: every name the deployment answers to, in OpenAI's list shape. */
  private models(res: ServerResponse): void {
    const state = this.opts.source.current();
    if (!isReady(state)) {
      this.notReady(res);
      return;
    }
    // The deployment's creation: a fixed value, where vLLM's cards carry the time of each answer.
    const createdAt = Date.parse(String(state.deployment?.metadata.creationTimestamp ?? ''));
    const created = Math.floor((Number.isFinite(createdAt) ? createdAt : Date.now()) / 1000);
    const data = state.names.models.map((m) => ({
      id: m.id,
      object: 'model',
      created,
      owned_by: m.servedName === undefined ? 'stacked-router' : 'vllm',
      parent: m.parent ?? null,
    }));
    sendJson(res, 200, { object: 'list', data });
  }

  private notReady(res: ServerResponse): void {
    const e = serviceUnavailable('The router has not loaded its configuration yet.');
    sendJson(res, e.status, e.body, e.headers);
  }

  /** Answers with a router error; counted when the request is an inference request. */
  private fail(req: IncomingMessage, res: ServerResponse, e: RouterError, labels: Labels | undefined): void {
    // Whatever of the body was not read is not worth reading: the connection ends with the answer,
    // and what arrives meanwhile is discarded.
    if (!req.complete) {
      if (!res.headersSent) res.setHeader('Connection', 'close');
      req.resume();
    }
    sendJson(res, e.status, e.body, e.headers);
    if (labels !== undefined) this.opts.metrics.requests.inc({ ...labels, code: String(e.status) });
  }

  private async infer(req: IncomingMessage, res: ServerResponse, upstreamPath: string): Promise<void> {
    const started = performance.now();
    const { metrics } = this.opts;
    let labels: Labels = { model: NO_MODEL, variant: '' };

    let raw: Buffer;
    try {
      raw = await readBody(req, this.maxBodyBytes);
    } catch (err) {
      if (err instanceof BodyTooLargeError) {
        this.fail(req, res, payloadTooLarge(this.maxBodyBytes), labels);
        return;
      }
      // The client went away while sending.
      metrics.requests.inc({ ...labels, code: CLIENT_CLOSED });
      return;
    }
    let body: unknown;
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch {
      this.fail(req, res, badRequest('The request body is not valid JSON.'), labels);
      return;
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      this.fail(req, res, badRequest('The request body must be a JSON object.'), labels);
      return;
    }
    const fields = body as Record<string, unknown>;
    const model = fields['model'];
    if (model !== undefined && model !== null && typeof model !== 'string') {
      this.fail(req, res, badRequest('model must be a string.', 'model'), labels);
      return;
    }

    const state = this.opts.source.current();
    if (!isReady(state)) {
      this.notReady(res);
      metrics.requests.inc({ ...labels, code: '503' });
      return;
    }
    const resolved = resolveModel(state.names, model ?? undefined);
    if (resolved === undefined) {
      labels = { model: UNKNOWN_MODEL, variant: '' };
      // vLLM's message echoes the name; an absent model (no base known) is named as vLLM would.
      this.fail(req, res, modelNotFound(model ?? ''), labels);
      return;
    }
    let target: ServedTarget;
    if (resolved.kind === 'experiment') {
      const variant = chooseVariant(
        resolved.variants,
        headerValue(req, resolved.stickyHeader),
        this.opts.random,
      );
      if (variant === undefined) {
        labels = { model: resolved.name, variant: '' };
        const e = serviceUnavailable(
          `The experiment \`${resolved.name}\` has no variant that is a member of the group.`,
        );
        this.fail(req, res, e, labels);
        return;
      }
      target = variant.target;
      labels = { model: resolved.name, variant: variant.key };
      res.setHeader(VARIANT_HEADER, variant.key);
    } else {
      target = resolved;
      labels = { model: resolved.servedName, variant: '' };
    }

    fields['model'] = target.servedName;
    const out = Buffer.from(JSON.stringify(fields));
    const stream = fields['stream'] === true;
    metrics.inFlight.inc(labels);
    this.inFlight++;
    try {
      await this.send(req, res, { target, upstreamPath, out, stream, labels, state, started });
    } finally {
      metrics.inFlight.dec(labels);
      this.inFlight--;
      if (this.inFlight === 0 && this.draining) {
        for (const w of this.idleWaiters.splice(0)) w();
      }
    }
  }

  private async send(
    req: IncomingMessage,
    res: ServerResponse,
    r: {
      target: ServedTarget;
      upstreamPath: string;
      out: Buffer;
      stream: boolean;
      labels: Labels;
      state: RoutingState;
      started: number;
    },
  ): Promise<void> {
    const headers = upstreamRequestHeaders(req.headers, r.out.length);
    const tried = new Set<string>();
    const maxTries = this.opts.maxTries ?? 3;
    for (let attempt = 0; attempt < maxTries; attempt++) {
      if (res.destroyed) {
        this.opts.metrics.requests.inc({ ...r.labels, code: CLIENT_CLOSED });
        return;
      }
      const ep = await this.opts.upstream.prepare(
        { target: r.target, path: r.upstreamPath, headers, body: r.out, state: r.state },
        tried,
      );
      if (ep === undefined) break;
      let outcome: TryOutcome;
      try {
        outcome = await this.forward(res, ep, r);
      } finally {
        ep.release();
      }
      if (outcome === 'done') return;
      ep.refused();
      tried.add(ep.id);
      this.opts.metrics.retries.inc();
      this.opts.log.info('connection to upstream failed; trying another', { upstream: ep.id });
    }
    // Known to the spec but held by no Ready pod now (a member still loading, every replica down or
    // refusing): 503 with Retry-After, not vLLM's 404, since the name is valid and will answer.
    const name = r.labels.variant !== '' ? r.labels.variant : r.target.servedName;
    const e = serviceUnavailable(
      tried.size === 0
        ? `The model \`${name}\` is not served by any ready replica yet.`
        : `No replica serving the model \`${name}\` accepted the connection.`,
    );
    this.fail(req, res, e, r.labels);
  }

  /** One try: resolves 'retry' when its connection failed before any byte of it went out. */
  private forward(
    res: ServerResponse,
    ep: UpstreamEndpoint,
    r: { stream: boolean; labels: Labels; started: number },
  ): Promise<TryOutcome> {
    const { metrics } = this.opts;
    return new Promise<TryOutcome>((resolve) => {
      const send = ep.url.protocol === 'https:' ? httpsRequest : httpRequest;
      const up = send(ep.url, {
        method: 'POST',
        headers: ep.headers,
        ...(ep.agent ? { agent: ep.agent } : {}),
      });
      let connected = false;
      let written = false;
      let responded = false;
      let settled = false;
      const settle = (outcome: TryOutcome): void => {
        if (settled) return;
        settled = true;
        res.off('close', onClientClose);
        resolve(outcome);
      };
      const finish = (code: string): void => {
        metrics.requests.inc({ ...r.labels, code });
        metrics.duration.observe(r.labels, (performance.now() - r.started) / 1000);
        settle('done');
      };
      // A client gone before the response is complete takes the upstream request with it: vLLM
      // aborts the generation when its connection closes.
      let clientGone = false;
      const onClientClose = (): void => {
        if (res.writableFinished) return;
        clientGone = true;
        up.destroy();
      };
      res.on('close', onClientClose);

      up.on('socket', (socket: Socket) => {
        // A kept-alive socket is connected already; a new one must connect in time.
        if (!socket.connecting) {
          connected = true;
          return;
        }
        const timer = setTimeout(() => {
          up.destroy(Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT' }));
        }, this.opts.connectTimeoutMs ?? 3000);
        socket.once('connect', () => {
          clearTimeout(timer);
          connected = true;
        });
        socket.once('close', () => {
          clearTimeout(timer);
        });
      });
      up.on('finish', () => {
        written = true;
      });
      up.on('error', (err) => {
        if (responded || settled) return;
        const code = errorCode(err);
        // Nothing went out: a new socket never connected, or a kept-alive one (closed by the server
        // while idle) failed before the request was written to it.
        const nothingSent = !connected || (up.reusedSocket && !written);
        if (clientGone || res.destroyed) {
          finish(CLIENT_CLOSED);
          return;
        }
        if (code !== undefined && CONNECT_ERRORS.has(code) && nothingSent) {
          settle('retry');
          return;
        }
        this.opts.log.warn('upstream request failed', { upstream: ep.id, error: code ?? String(err) });
        const e = badGateway('The model server closed the connection before answering.');
        sendJson(res, e.status, e.body, e.headers);
        finish(String(e.status));
      });
      up.on('response', (upRes) => {
        responded = true;
        const status = upRes.statusCode ?? 502;
        ep.answered?.(status);
        res.writeHead(status, clientResponseHeaders(upRes.headers));
        const sse = (upRes.headers['content-type'] ?? '').startsWith('text/event-stream');
        const usage = new UsageReader(sse);
        let first = true;
        upRes.on('data', (chunk: Buffer) => {
          if (first && r.stream)
            metrics.timeToFirstToken.observe(r.labels, (performance.now() - r.started) / 1000);
          first = false;
          // One upstream read holds as many SSE events as vLLM wrote meanwhile, and the parser
          // hands them over one chunk each: corked until the read is done, they leave in one
          // write instead of one syscall per event. (Not until setImmediate: a response ended
          // while corked then waits on the next loop turn, and streams slowed 30-fold here.)
          if (!res.writableCorked) {
            res.cork();
            process.nextTick(() => {
              res.uncork();
            });
          }
          usage.push(chunk);
          // Back-pressure: a slow client pauses the upstream socket, and so vLLM's generation.
          if (!res.write(chunk)) upRes.pause();
        });
        res.on('drain', () => {
          upRes.resume();
        });
        upRes.on('end', () => {
          res.end();
        });
        // By hand rather than stream.pipeline, which makes an AbortController per call and aborts
        // it at the end: a DOMException with a stack trace per request, 6 % of the router's CPU.
        let over = false;
        const broken = (): void => {
          if (over) return;
          over = true;
          // The client went away (the upstream is aborted above), or the upstream broke off
          // mid-response: the client sees a cut connection, as it would from vLLM itself.
          up.destroy();
          res.destroy();
          finish(clientGone ? CLIENT_CLOSED : String(status));
        };
        upRes.on('error', broken);
        res.on('close', () => {
          if (!res.writableFinished) broken();
        });
        res.on('finish', () => {
          if (over) return;
          over = true;
          const u = usage.end();
          if (u !== undefined) {
            metrics.promptTokens.inc(r.labels, u.promptTokens);
            metrics.completionTokens.inc(r.labels, u.completionTokens);
          }
          finish(String(status));
        });
      });
      up.end(ep.body);
    });
  }
}
