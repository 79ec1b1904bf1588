/**
 * Pure: the readiness gate of one vLLM pod. The rule it keeps (README, "The readiness gate"):
 * - every Ready pod serves every adapter that any other Ready pod serves, so a request the Service
 *   sends anywhere finds its adapter wherever another replica would have;
 * - an adapter that no Ready pod holds yet (new, or failing on every pod) closes no gate: it is
 *   reported on the StackedDeployment, and requests for it get the engine's 404 everywhere. A gate
 *   that waited for it would empty the Service for an adapter nobody can serve.
 */
import { setCondition, type Condition } from '../../runtime/conditions.ts';
import { ADAPTERS_LOADED } from './names.ts';
import type { PodAdapterState } from './pod-state.ts';
import type { PodView } from './pods.ts';

export type GateSpec = Omit<Condition, 'lastTransitionTime'>;

/** A pod that takes traffic now: base model up, our gate open, not going away. */
export function isServing(p: PodView): boolean {
  return p.containersReady && !p.terminating && p.gate?.status === 'True';
}

/** The wanted adapters that Ready pods other than `self` hold, as their published states say. */
export function servedByOthers(
  pods: readonly PodView[],
  self: PodView,
  wanted: ReadonlySet<string>,
): Set<string> {
  const served = new Set<string>();
  for (const p of pods) {
    if (p.uid === self.uid || !isServing(p) || p.state === undefined) continue;
    for (const name of p.state.loaded) if (wanted.has(name)) served.add(name);
  }
  return served;
}

/**
 * The gate a pod should carry after a sync that reached it; undefined when the pod could not be
 * asked (its own readiness probe decides meanwhile), except that an open gate then closes.
 * A pod enters the Service only after a clean sync (every wanted adapter loaded, but those the
 * engine refuses or the agent still downloads): a fresh pod whose loads fail for a passing reason
 * waits for its retry instead of serving nothing. Once in, it leaves only for an adapter that
 * another Ready pod serves.
 */
export function desiredGate(
  pod: PodView,
  state: PodAdapterState | undefined,
  servedElsewhere: ReadonlySet<string>,
  wantedCount: number,
): GateSpec | undefined {
  if (state === undefined) {
    return pod.gate?.status === 'True'
      ? {
          type: ADAPTERS_LOADED,
          status: 'False',
          reason: 'Unreachable',
          message: 'vLLM did not answer GET /v1/models',
        }
      : undefined;
  }
  if (state.routeMissing === true) {
    return {
      type: ADAPTERS_LOADED,
      status: 'False',
      reason: 'RuntimeLoraUpdatesDisabled',
      message: 'vLLM has no /v1/load_lora_adapter route: VLLM_ALLOW_RUNTIME_LORA_UPDATING is off',
    };
  }
  const held = new Set(state.loaded);
  const missing = [...servedElsewhere].filter((name) => !held.has(name)).sort();
  if (missing.length > 0) {
    return {
      type: ADAPTERS_LOADED,
      status: 'False',
      reason: 'LoadingAdapters',
      message: `lacks ${missing.join(', ')}, which other ready replicas serve`,
    };
  }
  if (pod.gate?.status !== 'True' && state.error !== undefined) {
    return {
      type: ADAPTERS_LOADED,
      status: 'False',
      reason: 'LoadingAdapters',
      message: `${state.loaded.length} of ${wantedCount} adapters loaded; retrying: ${state.error}`,
    };
  }
  // One message for an open gate, whatever the counts: a member added or removed changes the
  // published state (the pod's annotation), not the gate, so a live update writes no pod status.
  const notHere = wantedCount - state.loaded.length;
  return {
    type: ADAPTERS_LOADED,
    status: 'True',
    reason: notHere === 0 ? 'AdaptersLoaded' : 'ServingWhatOthersServe',
    message:
      notHere === 0
        ? 'every adapter of the group is loaded'
        : 'holds every adapter another ready replica serves; the rest are served by no replica yet',
  };
}

/**
 * Before a sync loads anything: an open gate closes when the pod lacks an adapter that another
 * Ready pod serves, so it never takes requests for it during the load time.
 */
export function gateBeforeLoads(
  pod: PodView,
  present: readonly string[],
  servedElsewhere: ReadonlySet<string>,
): GateSpec | undefined {
  if (pod.gate?.status !== 'True') return undefined;
  const held = new Set(present);
  const missing = [...servedElsewhere].filter((name) => !held.has(name)).sort();
  if (missing.length === 0) return undefined;
  return {
    type: ADAPTERS_LOADED,
    status: 'False',
    reason: 'LoadingAdapters',
    message: `lacks ${missing.join(', ')}, which other ready replicas serve`,
  };
}

/** A True gate on a pod whose vLLM is not ready (and not going away) no longer holds: close it. */
export function staleGate(pod: PodView): GateSpec | undefined {
  if (pod.containersReady || pod.terminating || pod.gate?.status !== 'True') return undefined;
  return {
    type: ADAPTERS_LOADED,
    status: 'False',
    reason: 'ContainerNotReady',
    message: 'vLLM is not ready (restarted?): its adapters are reloaded once it is',
  };
}

/** The pod's gate after applying `desired`, or undefined when nothing would change (no write). */
export function gateUpdate(pod: PodView, desired: GateSpec | undefined, now: Date): Condition | undefined {
  if (desired === undefined) return undefined;
  const current = pod.gate;
  if (
    current &&
    current.status === desired.status &&
    current.reason === desired.reason &&
    current.message === desired.message
  ) {
    return undefined;
  }
  return setCondition(current ? [current] : [], desired, now)[0];
}
