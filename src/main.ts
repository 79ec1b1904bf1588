/**
 * The operator's entry point: configuration, clients, the manager with leader election, the
 * controllers, a graceful stop on SIGTERM/SIGINT, and a prompt non-zero exit when the lease is lost.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { KubeConfig } from '@kubernetes/client-node';
import { ConfigError, parseConfig, usage, type Config } from './config.ts';
import { OciMetrics } from './backends/oci/metrics.ts';
import { setupControllers } from './controllers/setup.ts';
import { captureSdkWarnings } from './oci/client.ts';
import { MANAGER_NAME } from './runtime/apply.ts';
import { EventRecorder } from './runtime/events.ts';
import { errorText } from './runtime/errors.ts';
import { FencedKubeConfig } from './runtime/fence.ts';
import { createLogger } from './runtime/logger.ts';
import { Manager } from './runtime/manager.ts';
import { ControllerMetrics, createRegistry } from './runtime/metrics.ts';

export const COMPONENT = MANAGER_NAME;

/**
 * After the lease is lost, how long the shutdown may take before the process exits anyway. Like
 * controller-runtime (which skips its graceful shutdown then), we do not wait for in-flight work:
 * their signal is aborted and their writes are refused, and the grace only lets them log it.
 */
const LEASE_LOST_EXIT_GRACE_MS = 1000;

/**
 * The User-Agent of every API request: the audit log's only way to tell replicas apart, since they
 * share one ServiceAccount. Header values must be printable ASCII.
 */
export function userAgent(identity: string): string {
  return `${COMPONENT} (${identity.replace(/[^\x20-\x7e]/g, '_')})`;
}

export function loadKubeConfig(path: string | undefined): KubeConfig {
  const kc = new KubeConfig();
  if (path) kc.loadFromFile(path);
  else kc.loadFromDefault();
  return kc;
}

/** Runs the operator until a signal or a lost lease; resolves with the process exit code. */
export async function runOperator(config: Config): Promise<number> {
  const logger = createLogger({ level: config.logLevel });
  // Each failed OCI call is also reported by the reconcile that made it; the SDK's line is detail.
  captureSdkWarnings((message) => logger.debug(message, { source: 'oci-sdk' }));
  const loaded = loadKubeConfig(config.kubeconfig);
  const agent = userAgent(config.identity);
  const registry = createRegistry();
  const manager = new Manager({
    // The elector writes the Lease that opens the fence, so its client is not fenced. Both configs
    // send over one connection pool per cluster and credentials (FencedKubeConfig.sharedDispatcher),
    // not a new TLS connection per request as client-node 2.0.1 alone would.
    kc: new FencedKubeConfig(loaded, { userAgent: agent }),
    logger,
    registry,
    healthPort: config.healthPort,
    healthHost: config.healthHost,
    ...(config.leaderElect
      ? {
          leaderElection: {
            namespace: config.leaderElectionNamespace,
            name: config.leaderElectionId,
            identity: config.identity,
            leaseDurationSeconds: config.leaseDurationSeconds,
            renewDeadlineSeconds: config.renewDeadlineSeconds,
            retryPeriodSeconds: config.retryPeriodSeconds,
          },
        }
      : {}),
  });
  // Every other client writes through the lease fence: no write once the lease may be lost.
  const kc = new FencedKubeConfig(loaded, {
    userAgent: agent,
    ...(manager.fence !== undefined ? { fence: manager.fence } : {}),
  });
  setupControllers({
    kc,
    manager,
    logger,
    events: new EventRecorder({ kc, component: COMPONENT, logger }),
    metrics: new ControllerMetrics(registry),
    ociMetrics: new OciMetrics(registry),
    namespace: config.namespace,
    workers: config.workers,
    defaultVllmImage: config.defaultVllmImage,
    agentImage: config.agentImage,
    routerImage: config.routerImage,
    adapterVerifyIntervalMs: config.adapterVerifyIntervalSeconds * 1000,
    ociPollIntervalMs: config.ociPollIntervalSeconds * 1000,
    ociProgressIntervalMs: config.ociProgressIntervalMs,
    principalAuthAllow: config.principalAuthAllow,
  });

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info('shutting down', { signal });
    void manager.stop();
  };
  process.once('SIGTERM', () => {
    stop('SIGTERM');
  });
  process.once('SIGINT', () => {
    stop('SIGINT');
  });

  logger.info('starting', {
    identity: config.identity,
    namespace: config.namespace ?? '(all)',
    server: kc.getCurrentCluster()?.server,
  });
  await manager.start();
  try {
    await manager.done;
    return 0;
  } catch (err) {
    // The lease is lost: the manager is already stopping. Give it a moment, not the time it asks.
    logger.error('stopped with an error; exiting', { error: errorText(err) });
    await Promise.race([manager.stop(), delay(LEASE_LOST_EXIT_GRACE_MS)]);
    return 1;
  }
}

async function main(): Promise<void> {
  if (process.argv.includes('--help')) {
    console.log(`Usage: node dist/operator.mjs [flags]\n${usage()}`);
    return;
  }
  let config: Config;
  try {
    config = parseConfig(process.argv.slice(2), process.env);
  } catch (err) {
    if (err instanceof ConfigError || (err instanceof TypeError && 'code' in err)) {
      console.error(`${err.message}\n\nFlags:\n${usage()}`);
      process.exit(2);
    }
    throw err;
  }
  // Exit explicitly: the manager has stopped (or, after a lost lease, had its grace), and whatever
  // may still hold the event loop open (a request that ignores its signal, a socket) must not keep
  // a process alive that another replica has replaced.
  process.exit(await runOperator(config));
}

if (import.meta.main) await main();
