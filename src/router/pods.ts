/**
 * Pure: what the router needs to know of one vLLM pod, read from the pod object.
 */
import { V1Pod } from '@kubernetes/client-node';
import { model } from '../runtime/model.ts';
import { ADAPTER_STATE_ANNOTATION, readPodState } from '../backends/vllm/pod-state.ts';
import { VLLM_CONTAINER } from '../backends/vllm/names.ts';

/** vLLM's own default port, for a pod whose container declares none. */
const DEFAULT_VLLM_PORT = 8000;

/** A pod that can take requests now. */
export interface PodEndpoint {
  /** The pod's name: the key of its outstanding count, cool-down and scraped metrics. */
  name: string;
  /** Where its vLLM listens: `http://<podIP>:<port>`. */
  origin: string;
  /** The adapters its published state says it holds, for the running vllm container. */
  adapters: ReadonlySet<string>;
}

function vllmPort(pod: V1Pod): number {
  const container = pod.spec?.containers.find((c) => c.name === VLLM_CONTAINER);
  const ports = container?.ports ?? [];
  return (ports.find((p) => p.name === 'http') ?? ports[0])?.containerPort ?? DEFAULT_VLLM_PORT;
}

function isReady(pod: V1Pod): boolean {
  return pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

/**
 * The adapters a pod holds: its published state, but only if that state describes the vllm
 * container running now. A state of an earlier incarnation (the container restarted and lost every
 * runtime-loaded adapter, and the sync has not caught up) says nothing, so the pod holds none.
 */
export function heldAdapters(pod: V1Pod): ReadonlySet<string> {
  const state = readPodState(pod);
  if (state === undefined) return new Set();
  const status = pod.status?.containerStatuses?.find((c) => c.name === VLLM_CONTAINER);
  if (status === undefined || status.restartCount !== state.restartCount) return new Set();
  return new Set(state.loaded);
}

/**
 * The pod as an endpoint, or undefined when it must get no request: not Ready, without an address,
 * or terminating (it may still be Ready for a moment while it drains).
 */
export function podEndpoint(pod: V1Pod): PodEndpoint | undefined {
  const name = pod.metadata?.name;
  const ip = pod.status?.podIP;
  if (name === undefined || ip === undefined || ip === '') return undefined;
  if (pod.metadata?.deletionTimestamp !== undefined || !isReady(pod)) return undefined;
  // An IPv6 address needs brackets in a URL.
  const host = ip.includes(':') ? `[${ip}]` : ip;
  return { name, origin: `http://${host}:${vllmPort(pod)}`, adapters: heldAdapters(pod) };
}

/**
 * What the router keeps of a watched pod (an informer transform): metadata it reads, the vllm
 * container's ports, and the status fields above. The rest of a pod (env, volumes, probes, managed
 * fields) is never cached.
 */
export function slimPod(pod: V1Pod): V1Pod {
  const annotation = pod.metadata?.annotations?.[ADAPTER_STATE_ANNOTATION];
  const vllm = pod.spec?.containers.find((c) => c.name === VLLM_CONTAINER);
  const status = pod.status;
  return model(V1Pod, {
    apiVersion: pod.apiVersion,
    kind: pod.kind,
    metadata: {
      name: pod.metadata?.name,
      namespace: pod.metadata?.namespace,
      uid: pod.metadata?.uid,
      resourceVersion: pod.metadata?.resourceVersion,
      ...(pod.metadata?.deletionTimestamp !== undefined
        ? { deletionTimestamp: pod.metadata.deletionTimestamp }
        : {}),
      ...(annotation !== undefined ? { annotations: { [ADAPTER_STATE_ANNOTATION]: annotation } } : {}),
    },
    spec: {
      containers:
        vllm === undefined ? [] : [{ name: vllm.name, ...(vllm.ports ? { ports: vllm.ports } : {}) }],
    },
    status: {
      ...(status?.podIP !== undefined ? { podIP: status.podIP } : {}),
      ...(status?.conditions !== undefined
        ? { conditions: status.conditions.map((c) => ({ type: c.type, status: c.status })) }
        : {}),
      ...(status?.containerStatuses !== undefined
        ? {
            containerStatuses: status.containerStatuses
              .filter((c) => c.name === VLLM_CONTAINER)
              .map((c) => ({
                name: c.name,
                image: c.image,
                imageID: c.imageID,
                ready: c.ready,
                restartCount: c.restartCount,
              })),
          }
        : {}),
    },
  });
}
