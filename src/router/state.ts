/**
 * What the proxy routes by: one immutable snapshot of the deployment's names and its pods, and the
 * interface of whatever keeps it current (the Kubernetes watch in config-source.ts, or a test).
 *
 * A new snapshot replaces the old one whole; a request reads the snapshot once, when it arrives, so a
 * change applies to the next request and never to one in flight.
 */
import type { V1Pod } from '@kubernetes/client-node';
import type { StackedDeployment } from '../api/v1alpha1/deployment.ts';
import type { StackedModelGroup } from '../api/v1alpha1/modelgroup.ts';
import { EMPTY_NAMES, type NameTable, buildNameTable } from './names.ts';
import { type PodEndpoint, podEndpoint } from './pods.ts';

export interface RoutingState {
  /** Every watch has listed once: the snapshot says what the cluster holds, not what it held. */
  readonly synced: boolean;
  /** The StackedDeployment, while it exists. */
  readonly deployment: StackedDeployment | undefined;
  readonly names: NameTable;
  /** The pods that can take requests (Ready, with an address, not terminating), by name. */
  readonly pods: readonly PodEndpoint[];
}

export const EMPTY_STATE: RoutingState = {
  synced: false,
  deployment: undefined,
  names: EMPTY_NAMES,
  pods: [],
};

/** The router serves once it knows its deployment. */
export function isReady(state: RoutingState): boolean {
  return state.synced && state.deployment !== undefined;
}

/** Keeps the current {@link RoutingState}. */
export interface RoutingSource {
  /** The snapshot now. Cheap: the proxy calls it once per request. */
  current(): RoutingState;
  /** Calls listener after every new snapshot (the metrics scraper follows the pod set with it). */
  subscribe(listener: (state: RoutingState) => void): () => void;
  /** Starts watching; resolves once the first snapshot is synced. */
  start(): Promise<void>;
  stop(): void;
}

/** Builds a snapshot from the objects themselves; names are passed in when unchanged (see below). */
export function routingState(input: {
  synced: boolean;
  deployment: StackedDeployment | undefined;
  group: StackedModelGroup | undefined;
  pods: readonly V1Pod[];
  /** The name table, if the caller kept one of the same deployment and group. */
  names?: NameTable;
}): RoutingState {
  const names =
    input.names ??
    (input.deployment === undefined ? EMPTY_NAMES : buildNameTable(input.deployment, input.group));
  const pods: PodEndpoint[] = [];
  for (const p of input.pods) {
    const e = podEndpoint(p);
    if (e !== undefined) pods.push(e);
  }
  return { synced: input.synced, deployment: input.deployment, names, pods };
}

/** A source whose snapshot is set by hand: tests, and a router run without Kubernetes. */
export class StaticRoutingSource implements RoutingSource {
  private state: RoutingState;
  private readonly listeners = new Set<(state: RoutingState) => void>();

  constructor(state: RoutingState = EMPTY_STATE) {
    this.state = state;
  }

  current(): RoutingState {
    return this.state;
  }

  set(state: RoutingState): void {
    this.state = state;
    for (const l of this.listeners) l(state);
  }

  subscribe(listener: (state: RoutingState) => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  start(): Promise<void> {
    return Promise.resolve();
  }

  stop(): void {
    this.listeners.clear();
  }
}
