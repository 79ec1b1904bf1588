/**
 * The contract between the operator, which deploys one router per StackedDeployment
 * (src/backends/router/), and the router itself (src/router/), which runs from the operator's image.
 * One source for both sides, so the Deployment the operator builds and the flags the router parses
 * cannot drift.
 */

/** The port the router serves on: requests, /healthz, /readyz and /metrics. */
export const ROUTER_PORT = 8080;

/** The router's container in its pod, and its entry point in the image (bundled from src/router/). */
export const ROUTER_CONTAINER = 'router';
export const ROUTER_COMMAND = ['node', 'dist/router.mjs'] as const;

/** A response header naming the experiment variant (its inferenceKey) that answered. */
export const VARIANT_HEADER = 'x-stacked-variant';

/**
 * How much longer (in outstanding requests) the queue of a pod already running an adapter in a GPU
 * slot may be before a pod that would have to swap it in wins instead. The default of the
 * `--affinity-margin` flag.
 */
export const DEFAULT_AFFINITY_MARGIN = 4;

/** What the router is told on its command line. */
export interface RouterArgs {
  /** The namespace of the StackedDeployment (and of its group and pods). */
  namespace: string;
  /** The StackedDeployment whose traffic it routes. */
  deployment: string;
  port: number;
  affinityMargin: number;
  /**
   * The address to listen on; all interfaces when unset, as in a pod. Test nodes that run many pods
   * on one machine give each its own loopback address.
   */
  host?: string;
}

/** The router's command-line arguments, as the operator writes them into its Deployment. */
export function routerArgs(a: RouterArgs): string[] {
  return [
    `--namespace=${a.namespace}`,
    `--deployment=${a.deployment}`,
    `--port=${a.port}`,
    `--affinity-margin=${a.affinityMargin}`,
    ...(a.host !== undefined ? [`--host=${a.host}`] : []),
  ];
}
