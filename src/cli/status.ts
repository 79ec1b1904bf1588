/**
 * `kubectl stacked status`: each member's state on each replica. The deployment's status.adapters
 * says where each member stands overall; each vLLM pod's own annotation
 * (serving.stacked.dev/adapter-state) says what that replica holds, for the container incarnation it
 * names (a restarted vLLM is empty until its next sync, so an older record reads `Unknown`).
 */
import { CoreV1Api, type KubeConfig, type V1Pod } from '@kubernetes/client-node';
import type { StackedDeployment } from '../api/v1alpha1/deployment.ts';
import { selectorLabels, VLLM_CONTAINER } from '../backends/vllm/names.ts';
import { readPodState } from '../backends/vllm/pod-state.ts';
import type { Output } from './args.ts';
import { render, table } from './output.ts';
import { isReady } from './transport.ts';

export type ReplicaState = 'Loaded' | 'Failed' | 'Fetching' | 'Error' | 'Pending' | 'Unknown';

export interface MemberStatus {
  inferenceKey: string;
  modelId?: string;
  state: string;
  loadedReplicas?: number;
  readyReplicas?: number;
  message?: string;
  /** By pod name. */
  replicas: Record<string, ReplicaState>;
}

export interface StatusReport {
  deployment: string;
  namespace: string;
  backend: string;
  endpoint?: string;
  ready?: string;
  pods: { name: string; ready: boolean; restartCount: number }[];
  members: MemberStatus[];
}

function restartCount(pod: V1Pod): number {
  return pod.status?.containerStatuses?.find((c) => c.name === VLLM_CONTAINER)?.restartCount ?? 0;
}

/** Pure: what one pod's annotation says of one member. */
export function replicaState(pod: V1Pod, member: string): ReplicaState {
  const s = readPodState(pod);
  if (s === undefined || s.restartCount !== restartCount(pod)) return 'Unknown';
  if (s.loaded.includes(member)) return 'Loaded';
  if (member in s.failed) return 'Failed';
  if (s.fetching.includes(member)) return 'Fetching';
  return s.error !== undefined ? 'Error' : 'Pending';
}

/** Pure: the report of a deployment and its pods. */
export function statusReport(sdep: StackedDeployment, pods: readonly V1Pod[]): StatusReport {
  const sorted = [...pods].sort((a, b) => (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? ''));
  const ready = sdep.status?.conditions?.find((c) => c.type === 'Ready');
  return {
    deployment: sdep.metadata.name ?? '',
    namespace: sdep.metadata.namespace ?? '',
    backend: sdep.spec.backend,
    ...(sdep.status?.endpoint !== undefined ? { endpoint: sdep.status.endpoint } : {}),
    ...(ready !== undefined ? { ready: `${ready.status} (${ready.reason})` } : {}),
    pods: sorted.map((p) => ({
      name: p.metadata?.name ?? '',
      ready: isReady(p),
      restartCount: restartCount(p),
    })),
    members: (sdep.status?.adapters ?? []).map((a) => ({
      inferenceKey: a.inferenceKey,
      ...(a.modelId !== undefined ? { modelId: a.modelId } : {}),
      state: a.state,
      ...(a.loadedReplicas !== undefined ? { loadedReplicas: a.loadedReplicas } : {}),
      ...(a.readyReplicas !== undefined ? { readyReplicas: a.readyReplicas } : {}),
      ...(a.message !== undefined ? { message: a.message } : {}),
      replicas: Object.fromEntries(
        sorted.map((p) => [p.metadata?.name ?? '', replicaState(p, a.inferenceKey)]),
      ),
    })),
  };
}

export function statusTable(r: StatusReport): string {
  const head = `${r.namespace}/${r.deployment} (${r.backend})  Ready: ${r.ready ?? 'Unknown'}  endpoint: ${r.endpoint ?? '-'}\n`;
  const headers = [
    'MEMBER',
    'STATE',
    'LOADED',
    ...r.pods.map((p) => p.name.toUpperCase() + (p.ready ? '' : ' (NOT READY)')),
  ];
  const rows = r.members.map((m) => [
    m.inferenceKey,
    m.state,
    m.loadedReplicas !== undefined ? `${m.loadedReplicas}/${m.readyReplicas ?? 0}` : '-',
    ...r.pods.map((p) => m.replicas[p.name] ?? 'Unknown'),
  ]);
  return head + table(headers, rows);
}

export async function status(
  kc: KubeConfig,
  sdep: StackedDeployment,
  output: Output,
  write: (s: string) => void,
): Promise<void> {
  const name = sdep.metadata.name ?? '';
  const namespace = sdep.metadata.namespace ?? '';
  // The oci backend has no pods here: its replicas are OCI's, reported in status.adapters only.
  const pods =
    sdep.spec.backend === 'vllm'
      ? (
          await kc.makeApiClient(CoreV1Api).listNamespacedPod({
            namespace,
            labelSelector: Object.entries(selectorLabels(name))
              .map(([k, v]) => `${k}=${v}`)
              .join(','),
          })
        ).items
      : [];
  const report = statusReport(sdep, pods);
  write(render(output, report, () => statusTable(report)));
}
