/**
 * Pure: what the adapter sync found on one pod, published as an annotation on the pod itself. The
 * pod is where its adapters live, so its own metadata is the one record that the StackedDeployment's
 * status, the other pods' gates and a router can all watch; it is written only when it changes.
 */
import type { V1Pod } from '@kubernetes/client-node';
import type { FetchRequestBody } from '../../api/agent/v1.ts';

/** On each vLLM pod: the adapter state its last sync found (JSON of {@link PodAdapterState}). */
export const ADAPTER_STATE_ANNOTATION = 'serving.stacked.dev/adapter-state';
/** On the Deployment: the adapters every pod must hold (JSON of {@link WantedAdapter}[]). */
export const WANTED_ADAPTERS_ANNOTATION = 'serving.stacked.dev/wanted-adapters';

/** A member as vLLM sees it: the name clients use and the path vLLM reads the weights from. */
export interface WantedAdapter {
  name: string;
  path: string;
  /** For uri and OCI sources: what the fetch agent must download to `path` first. */
  fetch?: FetchRequestBody;
}

export interface PodAdapterState {
  /**
   * The vLLM container incarnation this describes. A restarted container is a new, empty server:
   * a state of an older incarnation says nothing about what it holds.
   */
  restartCount: number;
  /** Wanted adapters the pod holds, in member order. */
  loaded: string[];
  /** Wanted adapters that the engine or the fetch agent refused, with their message. */
  failed: Record<string, string>;
  /** Wanted adapters whose files the fetch agent is still downloading. */
  fetching: string[];
  /** vLLM has no runtime LoRA routes (VLLM_ALLOW_RUNTIME_LORA_UPDATING is off). */
  routeMissing?: boolean;
  /** The last sync could not finish (pod unreachable, transient load failure): retried with backoff. */
  error?: string;
}

function isStringArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'string');
}

function isStringRecord(v: unknown): v is Record<string, string> {
  return typeof v === 'object' && v !== null && Object.values(v).every((x) => typeof x === 'string');
}

/**
 * The state a pod's annotation records, or undefined when it has none or it does not parse (someone
 * edited it by hand): the next sync writes a good one.
 */
export function readPodState(pod: V1Pod): PodAdapterState | undefined {
  const raw = pod.metadata?.annotations?.[ADAPTER_STATE_ANNOTATION];
  if (raw === undefined) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null) return undefined;
  const o = v as Record<string, unknown>;
  if (typeof o.restartCount !== 'number' || !isStringArray(o.loaded)) return undefined;
  const state: PodAdapterState = {
    restartCount: o.restartCount,
    loaded: o.loaded,
    failed: isStringRecord(o.failed) ? o.failed : {},
    fetching: isStringArray(o.fetching) ? o.fetching : [],
  };
  if (o.routeMissing === true) state.routeMissing = true;
  if (typeof o.error === 'string') state.error = o.error;
  return state;
}

/** The annotation value; keys in a fixed order so an unchanged state is an unchanged string. */
export function writePodState(s: PodAdapterState): string {
  const failed = Object.fromEntries(Object.entries(s.failed).sort(([a], [b]) => a.localeCompare(b)));
  return JSON.stringify({
    restartCount: s.restartCount,
    loaded: s.loaded,
    failed,
    fetching: s.fetching,
    ...(s.routeMissing === true ? { routeMissing: true } : {}),
    ...(s.error !== undefined ? { error: s.error } : {}),
  });
}

/** The wanted adapters a Deployment carries, or undefined when it has none that parse. */
export function readWanted(annotations: Record<string, string> | undefined): WantedAdapter[] | undefined {
  const raw = annotations?.[WANTED_ADAPTERS_ANNOTATION];
  if (raw === undefined) return undefined;
  try {
    const v: unknown = JSON.parse(raw);
    if (!Array.isArray(v)) return undefined;
    const ok = v.every(
      (w: unknown) =>
        typeof w === 'object' &&
        w !== null &&
        typeof (w as WantedAdapter).name === 'string' &&
        typeof (w as WantedAdapter).path === 'string',
    );
    return ok ? (v as WantedAdapter[]) : undefined;
  } catch {
    return undefined;
  }
}
