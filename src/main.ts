/**
 * The operator's entry point: configuration, clients, the manager with leader election, the
 * controllers, and a graceful stop on SIGTERM/SIGINT.
 */
import { KubeConfig } from '@kubernetes/client-node';
import { ConfigError, parseConfig, usage, type Config } from './config.ts';
import { OciMetrics } from './backends/oci/metrics.ts';
import { setupControllers } from './controllers/setup.ts';
import { captureSdkWarnings } from './oci/client.ts';
import { MANAGER_NAME } from './runtime/apply.ts';
import { EventRecorder } from './runtime/events.ts';
import { errorText } from './runtime/errors.ts';
import { createLogger } from './runtime/logger.ts';
import { Manager } from './runtime/manager.ts';
import { ControllerMetrics, createRegistry } from './runtime/metrics.ts';

export const COMPONENT = MANAGER_NAME;

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
  const kc = loadKubeConfig(config.kubeconfig);
  const registry = createRegistry();
  const manager = new Manager({
    kc,
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
    adapterVerifyIntervalMs: config.adapterVerifyIntervalSeconds * 1000,
    ociPollIntervalMs: config.ociPollIntervalSeconds * 1000,
    ociProgressIntervalMs: config.ociProgressIntervalMs,
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
    logger.error('stopped with an error', { error: errorText(err) });
    return 1;
  }
}

async function main(): Promise<void> {
  if (process.argv.includes('--help')) {
    console.log(`Usage: node src/main.ts [flags]\n${usage()}`);
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
  process.exitCode = await runOperator(config);
}

if (import.meta.main) await main();
