/**
 * Runs the router in-process: the entry point (main.ts), the tests and the test kubelet all start it
 * through {@link startRouter} (watching Kubernetes) or {@link startRouterServer} (any
 * {@link RoutingSource}, e.g. a StaticRoutingSource without a cluster).
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { DEFAULT_AFFINITY_MARGIN } from '../api/router/v1.ts';
import { type Logger, createLogger } from '../runtime/logger.ts';
import { KubeRoutingSource } from './config-source.ts';
import { RouterMetrics } from './metrics.ts';
import { BackendUpstream, OciUpstream } from './oci-upstream.ts';
import { PodUpstream } from './pod-upstream.ts';
import { RouterProxy } from './proxy.ts';
import { LoraScraper } from './scraper.ts';
import type { RoutingSource } from './state.ts';
import type { Upstream } from './upstream.ts';

/** How long close() lets requests in flight finish before cutting them. */
export const DEFAULT_SHUTDOWN_GRACE_MS = 25_000;

export interface RouterServerOptions {
  source: RoutingSource;
  /** Address to bind; default all interfaces. */
  host?: string;
  /** 0 picks a free port. */
  port: number;
  affinityMargin?: number;
  log?: Logger;
  /**
   * Where requests go. Default: the vLLM pods of the source's snapshot, with LoRA affinity from a
   * scraper of their /metrics. An OCI upstream plugs in here.
   */
  upstream?: Upstream;
  /**
   * Where requests for an oci-backed deployment go, beside the default pod upstream (startRouter
   * passes the signed predict upstream); without it such requests get 503.
   */
  oci?: Upstream;
  /** Interval of the /metrics scrape of the pods (default 500 ms); 0 turns the scraper off. */
  scrapeIntervalMs?: number;
  maxBodyBytes?: number;
  shutdownGraceMs?: number;
  metrics?: RouterMetrics;
  /** Randomness of A/B draws without a sticky value and of pod ties; in [0, 1). */
  random?: () => number;
}

export interface StartRouterOptions extends Omit<RouterServerOptions, 'source'> {
  kc: KubeConfig;
  namespace: string;
  deployment: string;
}

export interface RunningRouter {
  /** The bound port. */
  port: number;
  /** The metrics it counts (tests read them). */
  metrics: RouterMetrics;
  /** The proxy (tests read its in-flight count). */
  proxy: RouterProxy;
  /**
   * Stops accepting connections and reports not ready, lets requests in flight finish for up to the
   * grace period, then cuts what is left and stops watching.
   */
  close(): Promise<void>;
}

/** The router on a routing source, serving on one port. Does not start the source. */
export async function startRouterServer(opts: RouterServerOptions): Promise<RunningRouter> {
  const log = opts.log ?? createLogger();
  const metrics = opts.metrics ?? new RouterMetrics();
  const scrapeIntervalMs = opts.scrapeIntervalMs ?? 500;
  const scraper =
    opts.upstream === undefined && scrapeIntervalMs > 0
      ? new LoraScraper({ pods: () => opts.source.current().pods, intervalMs: scrapeIntervalMs, log })
      : undefined;
  const pods = (): Upstream =>
    new PodUpstream({
      affinityMargin: opts.affinityMargin ?? DEFAULT_AFFINITY_MARGIN,
      ...(scraper !== undefined
        ? { running: (pod: string, adapter: string) => scraper.running(pod, adapter) }
        : {}),
      ...(opts.random !== undefined ? { random: opts.random } : {}),
    });
  const upstream = opts.upstream ?? (opts.oci !== undefined ? new BackendUpstream(pods(), opts.oci) : pods());
  const proxy = new RouterProxy({
    source: opts.source,
    upstream,
    metrics,
    log,
    ...(opts.maxBodyBytes !== undefined ? { maxBodyBytes: opts.maxBodyBytes } : {}),
    ...(opts.random !== undefined ? { random: opts.random } : {}),
  });
  const server = createServer((req, res) => {
    proxy.handle(req, res);
  });
  // Longer than the usual idle timeouts of load balancers in front (60 s), so they close first.
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  scraper?.start();
  const port = (server.address() as AddressInfo).port;
  log.info('router serving', { port });

  let closing: Promise<void> | undefined;
  const close = async (): Promise<void> => {
    const closed = new Promise<void>((resolve) => {
      server.close(() => {
        resolve();
      });
    });
    server.closeIdleConnections();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const grace = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, opts.shutdownGraceMs ?? DEFAULT_SHUTDOWN_GRACE_MS);
    });
    await Promise.race([proxy.drain(), grace]);
    clearTimeout(timer);
    server.closeAllConnections();
    await closed;
    scraper?.stop();
    upstream.close();
    opts.source.stop();
    log.info('router stopped', { cutRequests: proxy.requestsInFlight() });
  };
  return {
    port,
    metrics,
    proxy,
    close: () => (closing ??= close()),
  };
}

/**
 * The router of one StackedDeployment: watches it, its group and its pods, and serves once the
 * watches have listed (readiness then follows the deployment's existence).
 */
export async function startRouter(opts: StartRouterOptions): Promise<RunningRouter> {
  const log = opts.log ?? createLogger();
  const source = new KubeRoutingSource({
    kc: opts.kc,
    namespace: opts.namespace,
    deployment: opts.deployment,
    log,
  });
  // Serving starts at once (/healthz answers, /readyz says not ready) while the watches list.
  const oci = new OciUpstream({ core: opts.kc.makeApiClient(CoreV1Api), log });
  const router = await startRouterServer({ ...opts, source, log, oci });
  source.start().catch((err: unknown) => {
    log.error('watch did not start', { error: String(err) });
  });
  return router;
}
