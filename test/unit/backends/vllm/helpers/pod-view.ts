import type { PodView } from '../../../../../src/backends/vllm/pods.ts';

/** A serving vLLM pod as the sync and the status see it; `extra` overrides any field. */
export function fakePodView(name: string, extra: Partial<PodView> = {}): PodView {
  return {
    name,
    namespace: 'ml',
    uid: name,
    deployment: 'sql',
    url: `http://127.0.1.2:8000`,
    agentUrl: `http://127.0.1.2:8089`,
    containersReady: true,
    terminating: false,
    gate: undefined,
    restartCount: 0,
    unschedulable: undefined,
    baseFetchFailed: undefined,
    state: undefined,
    ...extra,
  };
}
