/**
 * Pure: the StackedDeployment's status from the pods' facts and the adapter states each pod
 * publishes. The reconciler writes it only where it changed.
 */
import type { V1Deployment } from '@kubernetes/client-node';
import type { AdapterStatus, DeploymentStatus } from '../../api/v1alpha1/deployment.ts';
import type { Member } from '../../api/v1alpha1/modelgroup.ts';
import { conditionSetter, type Condition } from '../../runtime/conditions.ts';
import { listNames, type Verdict } from '../../runtime/ready.ts';
import { isServing } from './gate.ts';
import type { PodAdapterState } from './pod-state.ts';
import { servingCandidates, type PodView } from './pods.ts';

export interface VllmFacts {
  members: readonly Member[];
  desiredReplicas: number;
  pods: readonly PodView[];
  workload: V1Deployment | undefined;
  generation: number;
  endpoint: string;
}

/** The states of pods whose vLLM is up and that are not going away: what status counts. */
function syncedStates(f: VllmFacts): PodAdapterState[] {
  return servingCandidates(f.pods).flatMap((p) => (p.state ? [p.state] : []));
}

function adapterStatuses(f: VllmFacts, states: readonly PodAdapterState[]): AdapterStatus[] {
  return f.members.map((m) => {
    const key = m.inferenceKey;
    const loadedReplicas = states.filter((s) => s.loaded.includes(key)).length;
    const rejection = states.map((s) => s.failed[key]).find((msg) => msg !== undefined);
    const state: AdapterStatus['state'] =
      rejection !== undefined
        ? 'Failed'
        : states.length === 0
          ? 'Pending'
          : loadedReplicas === states.length
            ? 'Loaded'
            : 'Loading';
    const entry: AdapterStatus = { inferenceKey: key, state, loadedReplicas, readyReplicas: states.length };
    if (m.modelId !== undefined) entry.modelId = m.modelId;
    if (rejection !== undefined) entry.message = rejection;
    else if (loadedReplicas === 0 && states.some((s) => s.fetching.includes(key))) {
      entry.message = 'the fetch agent is downloading its files';
    }
    return entry;
  });
}

/**
 * Members that no replica holds although every synced replica tried and failed for a reason that
 * is not the member's own (a transient error): they close no gate, so they must show here.
 */
function unavailable(
  states: readonly PodAdapterState[],
  adapters: readonly AdapterStatus[],
): [string, string] | undefined {
  if (states.length === 0 || states.some((s) => s.error === undefined)) return undefined;
  const names = adapters
    .filter((a) => a.state === 'Loading' && a.loadedReplicas === 0)
    .map((a) => a.inferenceKey)
    .filter((k) => !states.some((s) => s.fetching.includes(k)));
  if (names.length === 0) return undefined;
  return [
    'AdapterUnavailable',
    `no replica could load ${listNames(names)}: ${states[0]?.error ?? ''}; retrying with backoff`,
  ];
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
  const states = syncedStates(f);
  const adapters = adapterStatuses(f, states);
  const readyPods = f.pods.filter(isServing).length;
  const failed = adapters.filter((a) => a.state === 'Failed');
  const routeMissing = states.some((s) => s.routeMissing === true);
  const nowhere = unavailable(states, adapters);
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

  const adaptersReady = allLoaded && (states.length > 0 || f.members.length === 0 || scaledToZero);
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
      : nowhere !== undefined
        ? nowhere
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
