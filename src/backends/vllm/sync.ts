/**
 * Adapter sync on each pod (never through the Service: every replica holds its own adapters):
 * read the pod's model list, load what is missing, reload what moved, unload what is no longer a
 * member. Bounded concurrency across pods and within a pod.
 */
import { errorText } from '../../runtime/errors.ts';
import type { AgentClient } from './agent-client.ts';
import type { LoadOutcome, VllmClient } from './client.ts';
import { planAdapters, type WantedAdapter } from './plan.ts';
import type { PodView } from './pods.ts';

export interface PodSync {
  pod: PodView;
  /** Wanted adapters the pod now holds. */
  loaded: string[];
  /** Wanted adapters the engine refused, with its message (bad path, rank, config). */
  rejected: Map<string, string>;
  /** Adapters the pod lacked although its readiness gate said they were all there. */
  lost: string[];
  /** vLLM answers 404 on the load route: runtime LoRA updating is off. */
  routeMissing: boolean;
  /** Could not talk to the pod, or a transient failure: retry soon. */
  error: string | undefined;
}

/**
 * Deletes downloaded folders no member uses any more (removed members, replaced sources). Only after
 * the loads and unloads above, so vLLM never loses files of an adapter it still serves.
 */
async function removeStaleFetches(
  agent: AgentClient,
  pod: PodView,
  wanted: readonly WantedAdapter[],
): Promise<void> {
  if (pod.agentUrl === undefined) return;
  const held = await agent.list(pod.agentUrl);
  if (held === undefined) return;
  const keep = new Set(wanted.flatMap((w) => (w.fetch ? [w.fetch.name] : [])));
  for (const name of held) if (!keep.has(name)) await agent.remove(pod.agentUrl, name);
}

/** Runs fn over items with at most `limit` in flight. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

export interface SyncClients {
  vllm: VllmClient;
  agent: AgentClient;
}

export async function syncPod(
  clients: SyncClients,
  pod: PodView,
  wanted: readonly WantedAdapter[],
  loadsPerPod: number,
): Promise<PodSync> {
  const client = clients.vllm;
  const result: PodSync = {
    pod,
    loaded: [],
    rejected: new Map(),
    lost: [],
    routeMissing: false,
    error: undefined,
  };
  const url = pod.url;
  if (url === undefined) return { ...result, error: 'pod has no IP yet' };
  let plan;
  try {
    plan = planAdapters(wanted, await client.listModels(url));
  } catch (err) {
    return { ...result, error: errorText(err) };
  }
  result.loaded.push(...plan.present);
  if (pod.gate?.status === 'True') result.lost = plan.load.map((w) => w.name);

  const record = (w: WantedAdapter, outcome: LoadOutcome): void => {
    switch (outcome.kind) {
      case 'loaded':
      case 'already-loaded':
        result.loaded.push(w.name);
        break;
      case 'rejected':
        result.rejected.set(w.name, outcome.message);
        break;
      case 'route-missing':
        result.routeMissing = true;
        break;
      case 'error':
        result.error ??= `${w.name}: ${outcome.message}`;
        break;
    }
  };
  /** uri sources: the agent downloads the files first; vLLM never sees a half-written folder. */
  const fetched = async (w: WantedAdapter): Promise<boolean> => {
    if (w.fetch === undefined) return true;
    const outcome = pod.agentUrl === undefined ? undefined : await clients.agent.fetch(pod.agentUrl, w.fetch);
    if (outcome?.kind === 'fetched') return true;
    if (outcome?.kind === 'rejected') result.rejected.set(w.name, outcome.message);
    else result.error ??= `${w.name}: ${outcome?.message ?? 'pod has no IP'}`;
    return false;
  };
  const jobs = [
    ...plan.load.map((w) => async () => {
      if (await fetched(w)) record(w, await client.load(url, w.name, w.path));
    }),
    ...plan.replace.map((w) => async () => {
      if (await fetched(w)) record(w, await client.load(url, w.name, w.path, true));
    }),
    ...plan.unload.map((name) => async () => {
      const outcome = await client.unload(url, name);
      if (outcome.kind === 'route-missing') result.routeMissing = true;
      if (outcome.kind === 'error') result.error ??= `unload ${name}: ${outcome.message}`;
    }),
  ];
  await mapLimit(jobs, loadsPerPod, (job) => job());
  await removeStaleFetches(clients.agent, pod, wanted);
  // Keep the member order of the group, whatever order the loads finished in.
  const loaded = new Set(result.loaded);
  result.loaded = wanted.map((w) => w.name).filter((n) => loaded.has(n));
  return result;
}
