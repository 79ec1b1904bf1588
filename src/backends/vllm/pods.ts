/** Pure: the facts about a vLLM pod that the adapter sync and the status need. */
import type { V1Pod } from '@kubernetes/client-node';
import type { Condition } from '../../runtime/conditions.ts';
import {
  ADAPTERS_LOADED,
  AGENT_PORT,
  DEPLOYMENT_LABEL,
  MODEL_FETCH_CONTAINER,
  VLLM_CONTAINER,
} from './names.ts';
import { readPodState, type PodAdapterState } from './pod-state.ts';

export interface PodView {
  name: string;
  namespace: string;
  uid: string;
  /** The StackedDeployment the pod serves (its label). */
  deployment: string | undefined;
  /** http://podIP:port, when the pod has an IP. */
  url: string | undefined;
  /** The fetch agent beside vLLM, when the pod has an IP. */
  agentUrl: string | undefined;
  /** vLLM answers its readiness probe: the base model serves. */
  containersReady: boolean;
  terminating: boolean;
  /** Our readiness-gate condition as the pod has it now. */
  gate: Condition | undefined;
  restartCount: number;
  /** The scheduler's (or test kubelet's) message when the pod cannot be placed. */
  unschedulable: string | undefined;
  /** Why the init container that fetches the base model keeps failing (its termination message). */
  baseFetchFailed: string | undefined;
  /** What the last adapter sync found on this container incarnation; undefined before the first. */
  state: PodAdapterState | undefined;
}

/** vLLM's port: the container port named http (the builder names it so), 8000 by default. */
function vllmPort(pod: V1Pod): number {
  const c = pod.spec?.containers.find((x) => x.name === VLLM_CONTAINER);
  return c?.ports?.find((p) => p.name === 'http')?.containerPort ?? 8000;
}

/** Termination messages can be long (logs as a fallback); a condition needs the gist. */
const MAX_FETCH_MESSAGE = 1024;

/** The base model's fetch failed and waits to run again: its last termination message. */
function baseFetchFailure(pod: V1Pod): string | undefined {
  const s = pod.status?.initContainerStatuses?.find((c) => c.name === MODEL_FETCH_CONTAINER);
  const last = s?.lastState?.terminated;
  if (s === undefined || s.state?.terminated?.exitCode === 0 || last === undefined || last.exitCode === 0) {
    return undefined;
  }
  const message = (last.message ?? '').trim() || `exit code ${last.exitCode}`;
  return message.length > MAX_FETCH_MESSAGE ? `${message.slice(0, MAX_FETCH_MESSAGE)}…` : message;
}

function podCondition(pod: V1Pod, type: string) {
  return pod.status?.conditions?.find((c) => c.type === type);
}

/**
 * Views of the informer's pods, by object: a cached pod is frozen and replaced whole on every
 * change, so its view never goes stale. A member change has each of N pods look at its N siblings
 * (the gate rule), and parsing N x N state annotations held up the loads of the last pods.
 */
const views = new WeakMap<V1Pod, PodView>();

export function podView(pod: V1Pod): PodView {
  const known = views.get(pod);
  if (known !== undefined) return known;
  const view = Object.freeze(buildView(pod));
  if (Object.isFrozen(pod)) views.set(pod, view);
  return view;
}

function buildView(pod: V1Pod): PodView {
  const port = vllmPort(pod);
  const name = pod.metadata?.name ?? '';
  const ip = pod.status?.podIP;
  const scheduled = podCondition(pod, 'PodScheduled');
  const gate = podCondition(pod, ADAPTERS_LOADED);
  const vllm = pod.status?.containerStatuses?.find((c) => c.name === VLLM_CONTAINER);
  const restartCount = vllm?.restartCount ?? 0;
  const state = readPodState(pod);
  return {
    name,
    namespace: pod.metadata?.namespace ?? '',
    uid: pod.metadata?.uid ?? '',
    deployment: pod.metadata?.labels?.[DEPLOYMENT_LABEL],
    url: ip ? `http://${ip}:${port}` : undefined,
    agentUrl: ip ? `http://${ip}:${AGENT_PORT}` : undefined,
    containersReady: podCondition(pod, 'ContainersReady')?.status === 'True',
    terminating: pod.metadata?.deletionTimestamp !== undefined,
    gate: gate
      ? {
          type: gate.type,
          status: gate.status as Condition['status'],
          reason: gate.reason ?? '',
          message: gate.message ?? '',
          lastTransitionTime: String(gate.lastTransitionTime ?? ''),
        }
      : undefined,
    restartCount,
    unschedulable:
      scheduled?.status === 'False' && scheduled.reason === 'Unschedulable'
        ? (scheduled.message ?? 'Unschedulable')
        : undefined,
    baseFetchFailed: baseFetchFailure(pod),
    state: state?.restartCount === restartCount ? Object.freeze(state) : undefined,
  };
}

/** Pods whose vLLM server is up and that are not going away: the ones to load adapters into. */
export function servingCandidates(pods: readonly PodView[]): PodView[] {
  return pods.filter((p) => p.containersReady && p.url !== undefined && !p.terminating);
}
