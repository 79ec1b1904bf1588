/**
 * Entry point of the router: `node dist/router.mjs --namespace=ns --deployment=name
 * [--port=8080] [--affinity-margin=4]`, the command the operator writes into the router's Deployment
 * (src/api/router/v1.ts). Cluster access from KubeConfig.loadFromDefault() (the pod's service
 * account in a cluster); logs are JSON lines on stdout. SIGTERM stops accepting, lets requests in
 * flight finish within the grace period and exits 0.
 */
import { parseArgs } from 'node:util';
import { KubeConfig } from '@kubernetes/client-node';
import { DEFAULT_AFFINITY_MARGIN, ROUTER_PORT, type RouterArgs } from '../api/router/v1.ts';
import { createLogger } from '../runtime/logger.ts';
import { startRouter } from './server.ts';

export class RouterArgsError extends Error {}

export const ROUTER_USAGE = `Usage: node dist/router.mjs --namespace=NS --deployment=NAME [flags]
  --namespace        namespace of the StackedDeployment, its group and its pods
  --deployment       the StackedDeployment whose traffic to route
  --port             port to serve on [default ${ROUTER_PORT}]
  --host             address to listen on [default: every interface]
  --affinity-margin  outstanding requests a pod running the adapter may have beyond the best other pod [default ${DEFAULT_AFFINITY_MARGIN}]`;

function integer(flag: string, v: string | undefined, fallback: number, min: number, max: number): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (v.trim() === '' || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new RouterArgsError(`--${flag} must be an integer from ${min} to ${max}, got "${v}"`);
  }
  return n;
}

/** Pure: the flags of src/api/router/v1.ts routerArgs(). */
export function parseRouterArgs(argv: readonly string[]): RouterArgs {
  let values: Record<string, string | undefined>;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      strict: true,
      options: {
        namespace: { type: 'string' },
        deployment: { type: 'string' },
        port: { type: 'string' },
        'affinity-margin': { type: 'string' },
        host: { type: 'string' },
      },
    }));
  } catch (err) {
    throw new RouterArgsError(err instanceof Error ? err.message : String(err));
  }
  const namespace = values['namespace'];
  const deployment = values['deployment'];
  if (namespace === undefined || namespace === '') throw new RouterArgsError('--namespace is required');
  if (deployment === undefined || deployment === '') throw new RouterArgsError('--deployment is required');
  const host = values['host'];
  if (host === '') throw new RouterArgsError('--host must not be empty');
  return {
    ...(host !== undefined ? { host } : {}),
    namespace,
    deployment,
    port: integer('port', values['port'], ROUTER_PORT, 0, 65535),
    affinityMargin: integer(
      'affinity-margin',
      values['affinity-margin'],
      DEFAULT_AFFINITY_MARGIN,
      0,
      1_000_000,
    ),
  };
}

async function main(): Promise<void> {
  if (process.argv.includes('--help')) {
    console.log(ROUTER_USAGE);
    return;
  }
  let args: RouterArgs;
  try {
    args = parseRouterArgs(process.argv.slice(2));
  } catch (err) {
    if (!(err instanceof RouterArgsError)) throw err;
    console.error(`${err.message}\n\n${ROUTER_USAGE}`);
    process.exit(2);
  }
  const log = createLogger().child({ namespace: args.namespace, deployment: args.deployment });
  const kc = new KubeConfig();
  kc.loadFromDefault();
  const router = await startRouter({
    kc,
    namespace: args.namespace,
    deployment: args.deployment,
    ...(args.host !== undefined ? { host: args.host } : {}),
    port: args.port,
    affinityMargin: args.affinityMargin,
    log,
  });
  const stop = (signal: string): void => {
    log.info('shutting down', { signal });
    router.close().then(
      () => {
        process.exit(0);
      },
      (err: unknown) => {
        log.error('close failed', { error: String(err) });
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => {
    stop('SIGTERM');
  });
  process.once('SIGINT', () => {
    stop('SIGINT');
  });
}

if (import.meta.main) await main();
