import { type IncomingMessage, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

/** Options for {@link startHealthServer}. */
export interface HealthServerOptions {
  /** Address to bind; default all interfaces (the kubelet probes the pod IP). */
  host?: string;
  /** Port; 0 picks a free one (tests). */
  port: number;
  /** Registry served on /metrics. */
  registry: Registry;
  /** Readiness: false while not synced or shutting down. */
  readyz: () => boolean;
  /** Liveness; default always healthy (an event loop that answers is alive). */
  healthz?: () => boolean;
}

/** A running health server. */
export interface HealthServer {
  /** The bound port (useful with port 0). */
  port: number;
  /** Stops listening and drops open (keep-alive) connections. */
  close(): Promise<void>;
}

function check(fn: () => boolean): boolean {
  try {
    return fn();
  } catch {
    return false;
  }
}

function send(
  res: ServerResponse,
  status: number,
  body: string,
  contentType = 'text/plain; charset=utf-8',
): void {
  res.writeHead(status, { 'Content-Type': contentType, 'Cache-Control': 'no-store' });
  res.end(body);
}

/**
 * One small HTTP server for the kubelet probes and Prometheus: GET /healthz and /readyz answer
 * 200 "ok" or 500, /metrics the registry in text format. Anything else is 404.
 */
export async function startHealthServer(opts: HealthServerOptions): Promise<HealthServer> {
  const healthz = opts.healthz ?? (() => true);
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      send(res, 405, 'method not allowed\n');
      return;
    }
    switch (path) {
      case '/healthz':
        if (check(healthz)) send(res, 200, 'ok');
        else send(res, 500, 'not healthy');
        return;
      case '/readyz':
        if (check(opts.readyz)) send(res, 200, 'ok');
        else send(res, 500, 'not ready');
        return;
      case '/metrics':
        send(res, 200, await opts.registry.metrics(), opts.registry.contentType);
        return;
      default:
        send(res, 404, 'not found\n');
    }
  };
  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) send(res, 500, 'internal error\n');
      else res.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => {
          resolve();
        });
        server.closeAllConnections();
      }),
  };
}
