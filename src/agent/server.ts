/**
 * The fetch agent's HTTP API, served next to vLLM in each pod: the operator asks it to download an
 * adapter (an https archive, an oci:// location or a Model Catalog artifact) into the shared volume,
 * then tells vLLM to load that folder.
 */
import { type IncomingMessage, type ServerResponse, createServer } from 'node:http';
import { Agent } from 'node:https';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { getCACertificates } from 'node:tls';
import { AgentError, badRequest, displayUri, errorMessage } from './errors.ts';
import { Fetcher, type Log } from './fetcher.ts';
import { type OciAccess, ociClients } from './oci-access.ts';
import { checkName, parseFetchRequest, sourceId } from './request.ts';
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

export async function startAgentServer(opts: AgentOptions): Promise<AgentServer> {
  const prepared = await prepare(opts);
  const { fetcher, store, defaultMaxBytes, log } = prepared;

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://agent').pathname;
    const method = req.method ?? 'GET';
    if (path === '/healthz' && method === 'GET') {
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
      res.end('ok');
      return;
    }
    if (path === '/v1/fetch' && method === 'POST') {
      const body = await readJson(req);
      const fetch = parseFetchRequest(body, defaultMaxBytes);
      try {
        sendJson(res, 200, await fetcher.fetch(fetch));
      } catch (err) {
        log('fetch failed', {
          name: fetch.name,
          uri: displayUri(sourceId(fetch.source)),
          status: err instanceof AgentError ? err.status : 500,
          error: errorMessage(err),
        });
        throw err;
      }
      return;
    }
    if (path === '/v1/fetch' && method === 'GET') {
      const adapters = (await store.list()).map(({ name, uri, sha256, bytes }) => ({
        name,
        uri,
        sha256,
        bytes,
      }));
      sendJson(res, 200, { adapters });
      return;
    }
    if (path.startsWith('/v1/fetch/') && method === 'DELETE') {
      let name: string;
      try {
        name = decodeURIComponent(path.slice('/v1/fetch/'.length));
      } catch {
        throw badRequest('name is not valid');
      }
      await fetcher.remove(checkName(name));
      res.writeHead(204);
      res.end();
      return;
    }
    const known = path === '/healthz' || path === '/v1/fetch' || path.startsWith('/v1/fetch/');
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
    close: () =>
      new Promise<void>((resolveClose, reject) => {
        server.close((err) => {
          prepared.close();
          if (err) reject(err);
          else resolveClose();
        });
        // Keep-alive connections would otherwise hold close() open; busy ones finish first.
        server.closeIdleConnections();
      }),
  };
}
