/**
 * Adapter sync on one pod (never through the Service: every replica holds its own adapters): read
 * the pod's model list, load what is missing, reload what moved, unload what is no longer a member.
 * Bounded concurrency within the pod; pods are synced independently, each by its own work-queue key.
 */
import { errorText } from '../../runtime/errors.ts';
import type { AgentClient } from './agent-client.ts';
import type { LoadOutcome, VllmClient } from './client.ts';
import { earlyLoads, planAdapters } from './plan.ts';
import type { PodAdapterState, WantedAdapter } from './pod-state.ts';
import type { PodView } from './pods.ts';

export interface PodSync {
  /** What the pod holds after the sync (restartCount is the caller's to set). */
  state: Omit<PodAdapterState, 'restartCount'>;
  /** Wanted adapters the pod listed before this sync touched it. */
  listed: string[];
}

export interface SyncClients {
  vllm: VllmClient;
  agent: AgentClient;
  /** Called before each write to the pod (load, unload, fetch, remove); throws to refuse it. */
  beforeWrite?: () => void;
  /**
   * Called with the wanted adapters the pod lists, before anything is loaded: a pod that lacks what
   * other replicas serve must leave the Service before it spends a load time without them.
   */
  onListed?: (present: readonly string[]) => Promise<void>;
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

/**
 * Deletes downloaded folders no member uses any more (removed members, replaced sources). Only after
 * the loads and unloads, so vLLM never loses files of an adapter it still serves.
 */
async function removeStaleFetches(
  clients: SyncClients,
  agentUrl: string,
  wanted: readonly WantedAdapter[],
  signal: AbortSignal,
): Promise<void> {
  const held = await clients.agent.list(agentUrl, signal);
  if (held === undefined) return;
  const keep = new Set(wanted.flatMap((w) => (w.fetch ? [w.fetch.name] : [])));
  for (const name of held) {
    if (keep.has(name)) continue;
    clients.beforeWrite?.();
    await clients.agent.remove(agentUrl, name, signal);
  }
}

/**
 * Syncs one pod. Undefined when vLLM could not be asked for its models: nothing is known then, and
 * the caller keeps the last state it published.
 */
export async function syncPod(
  clients: SyncClients,
  pod: PodView,
  wanted: readonly WantedAdapter[],
  loadsPerPod: number,
  signal: AbortSignal,
): Promise<PodSync | undefined> {
  const url = pod.url;
  if (url === undefined) return undefined;
  // New members go out at once, beside the list: a refused write (lease lost) is an outcome too.
  const early = new Map<string, Promise<LoadOutcome>>();
  for (const w of earlyLoads(wanted, pod.state, loadsPerPod)) {
    let outcome: Promise<LoadOutcome>;
    try {
      clients.beforeWrite?.();
      outcome = clients.vllm.load(url, w.name, w.path, false, signal);
    } catch (err) {
      outcome = Promise.resolve({ kind: 'error', message: errorText(err) });
    }
    early.set(w.name, outcome);
  }
  let plan;
  try {
    plan = planAdapters(wanted, await clients.vllm.listModels(url, signal));
  } catch {
    // Nothing is known; the loads already sent still finish before the pod's next sync starts.
    await Promise.all(early.values());
    return undefined;
  }
  await clients.onListed?.([...plan.present, ...plan.replace.map((w) => w.name)]);
  const loaded = new Set(plan.present);
  const failed: Record<string, string> = {};
  const fetching: string[] = [];
  // Set inside the jobs below; the annotations keep the checker from narrowing them to their initial values.
  let routeMissing = false as boolean;
  let error = undefined as string | undefined;

  const record = (w: WantedAdapter, outcome: LoadOutcome): void => {
    switch (outcome.kind) {
      case 'loaded':
      case 'already-loaded':
        loaded.add(w.name);
        break;
      case 'rejected':
        failed[w.name] = outcome.message;
        break;
      case 'route-missing':
        routeMissing = true;
        break;
      case 'error':
        error ??= `${w.name}: ${outcome.message}`;
        break;
    }
  };
  /** uri and OCI sources: the agent downloads the files first; vLLM never sees a half-written folder. */
  const fetched = async (w: WantedAdapter): Promise<boolean> => {
    if (w.fetch === undefined) return true;
    if (pod.agentUrl === undefined) return false;
    clients.beforeWrite?.();
    const outcome = await clients.agent.fetch(pod.agentUrl, w.fetch, signal);
    switch (outcome.kind) {
      case 'fetched':
        return true;
      case 'pending':
        fetching.push(w.name);
        return false;
      case 'rejected':
        failed[w.name] = outcome.message;
        return false;
      case 'error':
        error ??= `${w.name}: ${outcome.message}`;
        return false;
    }
  };
  const load = (w: WantedAdapter, inPlace: boolean) => async () => {
    const sent = early.get(w.name);
    if (sent !== undefined) {
      const outcome = await sent;
      const failed = outcome.kind !== 'loaded' && outcome.kind !== 'already-loaded';
      if (!inPlace || failed) {
        record(w, outcome);
        return;
      }
      // Listed with another path (loaded by hand meanwhile): its "already loaded" is not ours, the
      // in-place reload below is.
    }
    if (!(await fetched(w))) return;
    clients.beforeWrite?.();
    record(w, await clients.vllm.load(url, w.name, w.path, inPlace, signal));
  };
  // Early loads the list shows done already still count once they answer.
  const settleEarly = [...early.keys()]
    .filter((name) => plan.present.includes(name))
    .map((name) => async () => {
      await early.get(name);
    });
  const jobs = [
    // First, so that each holds one of the pod's load slots while it is in flight.
    ...settleEarly,
    ...plan.load.filter((w) => early.has(w.name)).map((w) => load(w, false)),
    ...plan.replace.filter((w) => early.has(w.name)).map((w) => load(w, true)),
    ...plan.load.filter((w) => !early.has(w.name)).map((w) => load(w, false)),
    ...plan.replace.filter((w) => !early.has(w.name)).map((w) => load(w, true)),
    ...plan.unload.map((name) => async () => {
      clients.beforeWrite?.();
      const outcome = await clients.vllm.unload(url, name, signal);
      if (outcome.kind === 'route-missing') routeMissing = true;
      if (outcome.kind === 'error') error ??= `unload ${name}: ${outcome.message}`;
    }),
  ];
  try {
    await mapLimit(jobs, loadsPerPod, (job) => job());
    if (pod.agentUrl !== undefined) await removeStaleFetches(clients, pod.agentUrl, wanted, signal);
  } catch (err) {
    // A refused write (lease lost) or an abort: what is known so far is still true.
    error ??= errorText(err);
  }
  const state: PodSync['state'] = {
    // Member order, whatever order the loads finished in.
    loaded: wanted.map((w) => w.name).filter((n) => loaded.has(n)),
    failed,
    fetching: wanted.map((w) => w.name).filter((n) => fetching.includes(n)),
  };
  if (routeMissing) state.routeMissing = true;
  if (error !== undefined) state.error = error;
  return { state, listed: [...plan.present, ...plan.replace.map((w) => w.name)] };
}
