/**
 * Pure: the readiness-gate condition of each pod and the StackedDeployment's status, from the pods'
 * facts and the sync results. The reconciler writes them only where they changed.
 */
import type { V1Deployment } from '@kubernetes/client-node';
import type { AdapterStatus, DeploymentStatus } from '../../api/v1alpha1/deployment.ts';
import type { Member } from '../../api/v1alpha1/modelgroup.ts';
import { conditionSetter, setCondition, type Condition } from '../../runtime/conditions.ts';
import type { Verdict } from '../../runtime/ready.ts';
import { ADAPTERS_LOADED } from './names.ts';
import type { PodView } from './pods.ts';
import type { PodSync } from './sync.ts';

/** The gate condition a pod should carry; undefined keeps whatever it has (no fresh knowledge). */
export function desiredGate(
  sync: PodSync,
  memberCount: number,
): Omit<Condition, 'lastTransitionTime'> | undefined {
  if (sync.error !== undefined && sync.loaded.length === 0 && !sync.routeMissing) {
    // vLLM could not be asked; its own readiness probe decides about traffic meanwhile.
    return sync.pod.gate
      ? { type: ADAPTERS_LOADED, status: 'False', reason: 'Unreachable', message: sync.error }
      : undefined;
  }
  if (sync.routeMissing) {
    return {
      type: ADAPTERS_LOADED,
      status: 'False',
      reason: 'RuntimeLoraUpdatesDisabled',
      message: 'vLLM has no /v1/load_lora_adapter route: VLLM_ALLOW_RUNTIME_LORA_UPDATING is off',
    };
  }
  const settled = sync.loaded.length + sync.rejected.size;
  if (settled === memberCount && sync.error === undefined) {
    // A member the engine refuses is reported as Degraded; it must not keep every pod out of service.
    const refused = sync.rejected.size > 0 ? `; ${sync.rejected.size} refused by the engine` : '';
    return {
      type: ADAPTERS_LOADED,
      status: 'True',
      reason: 'AdaptersLoaded',
      message: `${sync.loaded.length} of ${memberCount} adapters loaded${refused}`,
    };
  }
  return {
    type: ADAPTERS_LOADED,
    status: 'False',
    reason: 'LoadingAdapters',
    message: `${sync.loaded.length} of ${memberCount} adapters loaded`,
  };
}

/** A True gate on a pod whose vLLM is not ready (and not going away) no longer holds: close it. */
export function staleGate(pod: PodView): Omit<Condition, 'lastTransitionTime'> | undefined {
  if (pod.containersReady || pod.terminating || pod.gate?.status !== 'True') return undefined;
  return {
    type: ADAPTERS_LOADED,
    status: 'False',
    reason: 'ContainerNotReady',
    message: 'vLLM is not ready (restarted?): its adapters are reloaded once it is',
  };
}

/** The pod's gate after applying `desired`, or undefined when nothing would change (no write). */
export function gateUpdate(
  pod: PodView,
  desired: Omit<Condition, 'lastTransitionTime'> | undefined,
  now: Date,
): Condition | undefined {
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

export interface VllmFacts {
  members: readonly Member[];
  desiredReplicas: number;
  pods: readonly PodView[];
  syncs: readonly PodSync[];
  workload: V1Deployment | undefined;
  generation: number;
  endpoint: string;
}

function adapterStatuses(f: VllmFacts): AdapterStatus[] {
  const serving = f.syncs.filter((s) => s.error === undefined || s.loaded.length > 0);
  return f.members.map((m) => {
    const loadedReplicas = serving.filter((s) => s.loaded.includes(m.inferenceKey)).length;
    const rejection = serving.map((s) => s.rejected.get(m.inferenceKey)).find((msg) => msg !== undefined);
    const state: AdapterStatus['state'] =
      rejection !== undefined
        ? 'Failed'
        : serving.length === 0
          ? 'Pending'
          : loadedReplicas === serving.length
            ? 'Loaded'
            : 'Loading';
    const entry: AdapterStatus = {
      inferenceKey: m.inferenceKey,
      state,
      loadedReplicas,
      readyReplicas: serving.length,
    };
    if (m.modelId !== undefined) entry.modelId = m.modelId;
    if (rejection !== undefined) entry.message = rejection;
    return entry;
  });
}

function rolloutInProgress(w: V1Deployment | undefined, desired: number): boolean {
  if (w === undefined) return true;
  const s = w.status;
  if ((s?.observedGeneration ?? 0) < (w.metadata?.generation ?? 0)) return true;
  return (
    (s?.updatedReplicas ?? 0) < desired || (s?.replicas ?? 0) > desired || (s?.unavailableReplicas ?? 0) > 0
  );
}

/** Status fields and the Ready verdict of a vllm StackedDeployment. */
export function vllmStatus(
  f: VllmFacts,
  current: readonly Condition[],
  now: Date,
): { status: DeploymentStatus; verdict: Verdict } {
  const adapters = adapterStatuses(f);
  const readyPods = f.syncs.filter((s) => {
    const gate = desiredGate(s, f.members.length);
    return gate?.status === 'True';
  }).length;
  const failed = adapters.filter((a) => a.state === 'Failed');
  const routeMissing = f.syncs.some((s) => s.routeMissing);
  const unschedulable = f.pods.find((p) => p.unschedulable !== undefined)?.unschedulable;
  const baseFetch = f.pods.find((p) => p.baseFetchFailed !== undefined)?.baseFetchFailed;
  const baseFetchMessage =
    baseFetch === undefined ? undefined : `the base model cannot be fetched: ${baseFetch}`;
  const allLoaded = adapters.every((a) => a.state === 'Loaded');
  const set = conditionSetter(f.generation, now);

  let conds = [...current];
  const scaledToZero = f.desiredReplicas === 0;
  conds = scaledToZero
    ? set(conds, 'Available', false, 'ScaledToZero', 'spec.vllm.replicas is 0')
    : readyPods > 0
      ? set(
          conds,
          'Available',
          true,
          'MinimumReplicasAvailable',
          `${readyPods} of ${f.desiredReplicas} replicas serve`,
        )
      : set(
          conds,
          'Available',
          false,
          'NoReplicaReady',
          unschedulable ?? baseFetchMessage ?? 'no replica serves yet',
        );

  const adaptersReady = allLoaded && (f.syncs.length > 0 || f.members.length === 0 || scaledToZero);
  const pending = adapters.filter((a) => a.state !== 'Loaded').map((a) => a.inferenceKey);
  conds = adaptersReady
    ? set(
        conds,
        'AdaptersReady',
        true,
        'AllLoaded',
        `${f.members.length} adapters loaded on every serving replica`,
      )
    : set(
        conds,
        'AdaptersReady',
        false,
        failed.length > 0 ? 'AdapterFailed' : 'Loading',
        `not loaded everywhere: ${pending.join(', ')}`,
      );

  const degraded: [string, string] | undefined = routeMissing
    ? [
        'RuntimeLoraUpdatesDisabled',
        'vLLM answers 404 on /v1/load_lora_adapter: VLLM_ALLOW_RUNTIME_LORA_UPDATING is off in the container',
      ]
    : failed.length > 0
      ? ['AdapterFailed', failed.map((a) => `member ${a.inferenceKey}: ${a.message ?? ''}`).join('; ')]
      : unschedulable !== undefined
        ? ['Unschedulable', unschedulable]
        : baseFetchMessage !== undefined
          ? ['BaseModelFetchFailed', baseFetchMessage]
          : undefined;
  conds = degraded
    ? set(conds, 'Degraded', true, degraded[0], degraded[1])
    : set(conds, 'Degraded', false, 'AsExpected', 'nothing is failing');

  const rolling = rolloutInProgress(f.workload, f.desiredReplicas);
  const loading = !allLoaded && failed.length === 0;
  conds =
    rolling || loading
      ? set(
          conds,
          'Progressing',
          true,
          rolling ? 'RollingOut' : 'LoadingAdapters',
          rolling ? 'the vLLM pods are being rolled out' : `loading: ${pending.join(', ')}`,
        )
      : set(conds, 'Progressing', false, 'Complete', 'the deployment is up to date');

  const verdict: Verdict = degraded
    ? { ready: false, reason: degraded[0], message: degraded[1] }
    : scaledToZero
      ? { ready: true, reason: 'ScaledToZero', message: 'spec.vllm.replicas is 0: nothing to serve' }
      : readyPods === 0
        ? {
            ready: false,
            reason: 'NoReplicaReady',
            message: unschedulable ?? 'waiting for a vLLM replica with every adapter loaded',
          }
        : !adaptersReady
          ? {
              ready: false,
              reason: 'LoadingAdapters',
              message: `not loaded everywhere yet: ${pending.join(', ')}`,
            }
          : {
              ready: true,
              reason: 'Serving',
              message: `${readyPods} of ${f.desiredReplicas} replicas serve the base model and ${f.members.length} adapters`,
            };

  return {
    status: {
      endpoint: f.endpoint,
      replicas: f.desiredReplicas,
      readyReplicas: readyPods,
      adapters,
      conditions: conds,
    },
    verdict,
  };
}
