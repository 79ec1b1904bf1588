/**
 * The fetch agent's HTTP API, served next to vLLM in each pod: the operator asks it to download an
 * adapter (an https archive, an oci:// location or a Model Catalog artifact) into the shared volume,
 * reads the job back until the folder is there (jobs.ts), then tells vLLM to load that folder. The
 * routes and bodies are the contract in src/api/agent/v1.ts.
 */
import { type IncomingMessage, type ServerResponse, createServer } from 'node:http';
import { Agent } from 'node:https';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { getCACertificates } from 'node:tls';
import { FETCH_PATH, type FetchListBody, type FetchRequestBody, fetchRequestKey } from '../api/agent/v1.ts';
import type { Clock } from '../runtime/clock.ts';
import { AgentError, badRequest, errorMessage } from './errors.ts';
import { Fetcher, type Log } from './fetcher.ts';
import { Jobs, type RetryBackoff } from './jobs.ts';
import { type OciAccess, ociClients } from './oci-access.ts';
import { checkName, parseFetchRequest } from './request.ts';
import { Store } from './store.ts';

export const DEFAULT_MAX_BYTES = 10 * 1024 ** 3;
/** Requests are a few hundred bytes of JSON. */
const MAX_BODY_BYTES = 64 * 1024;

export interface AgentOptions {
  /** e.g. '0.0.0.0' in a pod, '127.0.1.5' in tests. */
  host: string;
  /** 0 = any (tests). */
  port: number;
  /** The shared volume; adapter <name> lives in <root>/<name>. */
  root: string;
  /** Extra CA certificates (PEM) to trust for https downloads, e.g. a private registry's CA. */
  ca?: string;
  /** Folder of mounted Secrets: <secretsDir>/<secretName>/<key> files. */
  secretsDir?: string;
  /** Hard cap for any download when the request gives none. Default 10 GiB. */
  defaultMaxBytes?: number;
  /** Access to OCI for oci:// and Model Catalog sources; without it those requests get a 400. */
  oci?: OciAccess;
  log?: (msg: string, meta?: Record<string, unknown>) => void;
  /** The retry advice given with a failed job (tests shorten it). */
  retryBackoff?: RetryBackoff;
  /** Time for job start times and retry advice (tests). */
  clock?: Clock;
}

/** A store and a fetcher on it, as both the server and the one-shot mode (main.ts --fetch) use them. */
export interface Prepared {
  fetcher: Fetcher;
  store: Store;
  defaultMaxBytes: number;
  log: Log;
  /** Releases the https connection pool. */
  close(): void;
}

export async function prepare(opts: Omit<AgentOptions, 'host' | 'port'>): Promise<Prepared> {
  const log: Log = opts.log ?? (() => undefined);
  const store = new Store(resolve(opts.root));
  await store.init();
  // `ca` replaces Node's trust store, so the extra CA is added to the default one, not instead.
  const agent = new Agent({
    ...(opts.ca !== undefined ? { ca: [...getCACertificates('default'), opts.ca] } : {}),
  });
  const fetcher = new Fetcher({
    store,
    agent,
    secretsDir: opts.secretsDir,
    oci: ociClients(opts.oci, opts.secretsDir),
    log,
  });
  return {
    fetcher,
    store,
    defaultMaxBytes: opts.defaultMaxBytes ?? DEFAULT_MAX_BYTES,
    log,
    close: () => {
      agent.destroy();
    },
  };
}

export interface AgentServer {
  /** Base URL, e.g. http://127.0.0.1:8089. */
  readonly url: string;
  /** Stops accepting connections and waits for requests in progress. */
  close(): Promise<void>;
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function sendError(res: ServerResponse, status: number, message: string): void {
  sendJson(res, status, { error: { message } });
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new AgentError(413, `body exceeds ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw badRequest('body is not valid JSON');
  }
}

/** The name in /v1/fetch/<name>, or a 400. */
function jobName(path: string): string {
  let name: string;
  try {
    name = decodeURIComponent(path.slice(`${FETCH_PATH}/`.length));
  } catch {
    throw badRequest('name is not valid');
  }
  return checkName(name);
}

export async function startAgentServer(opts: AgentOptions): Promise<AgentServer> {
  const prepared = await prepare(opts);
  const { fetcher, store, defaultMaxBytes, log } = prepared;
  const jobs = new Jobs({
    fetcher,
    store,
    log,
    ...(opts.clock !== undefined ? { clock: opts.clock } : {}),
    ...(opts.retryBackoff !== undefined ? { backoff: opts.retryBackoff } : {}),
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://agent').pathname;
    const method = req.method ?? 'GET';
    if (path === '/healthz' && method === 'GET') {
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
      res.end('ok');
      return;
    }
    if (path === FETCH_PATH && method === 'POST') {
      const body = await readJson(req);
      const fetch = parseFetchRequest(body, defaultMaxBytes);
      // parseFetchRequest accepted it: a FetchRequestBody, as the operator sent it, so both sides
      // compute the same key from the same fields.
      const status = await jobs.submit(fetch, fetchRequestKey(body as FetchRequestBody));
      sendJson(res, status.state === 'Fetching' ? 202 : 200, status);
      return;
    }
    if (path === FETCH_PATH && method === 'GET') {
      const adapters = (await store.list()).map(({ name, uri, sha256, bytes }) => ({
        name,
        uri,
        sha256,
        bytes,
      }));
      const list: FetchListBody = { adapters, jobs: jobs.list() };
      sendJson(res, 200, list);
      return;
    }
    if (path.startsWith(`${FETCH_PATH}/`) && method === 'GET') {
      const name = jobName(path);
      const status = await jobs.get(name);
      if (status === undefined) sendError(res, 404, `no fetch job or folder named ${name}`);
      else sendJson(res, 200, status);
      return;
    }
    if (path.startsWith(`${FETCH_PATH}/`) && method === 'DELETE') {
      await jobs.remove(jobName(path));
      res.writeHead(204);
      res.end();
      return;
    }
    const known = path === '/healthz' || path === FETCH_PATH || path.startsWith(`${FETCH_PATH}/`);
    sendError(res, known ? 405 : 404, known ? `${method} is not allowed on ${path}` : `no route for ${path}`);
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (err instanceof AgentError) {
        sendError(res, err.status, err.message);
        return;
      }
      log('request failed', { method: req.method, path: req.url, error: errorMessage(err) });
      if (!res.headersSent) sendError(res, 500, errorMessage(err));
      else res.destroy();
    });
  });
  await new Promise<void>((resolveListen, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolveListen();
    });
  });
  const { port } = server.address() as AddressInfo;
  const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  log('listening', { host: opts.host, port, root: store.root });

  return {
    url: `http://${host}:${port}`,
    close: async () => {
      const closed = new Promise<void>((resolveClose, reject) => {
        server.close((err) => {
          if (err) reject(err);
          else resolveClose();
        });
      });
      // Keep-alive connections would otherwise hold close() open; busy ones finish first.
      server.closeIdleConnections();
      try {
        // Downloads run in the background: stopped here, or they would keep the process alive.
        await jobs.close();
        await closed;
      } finally {
        prepared.close();
      }
    },
  };
}
