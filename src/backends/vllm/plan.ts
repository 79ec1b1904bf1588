/** Pure: what to load and unload on one pod, from the members wanted and the pod's model list. */
import type { ModelCard } from './client.ts';
import type { PodAdapterState, WantedAdapter } from './pod-state.ts';

export interface AdapterPlan {
  /** Wanted and listed with the same path. */
  present: string[];
  /** Wanted and absent. */
  load: WantedAdapter[];
  /** Listed with another path than wanted (the member's source changed): reload in place. */
  replace: WantedAdapter[];
  /** Listed but no longer wanted. */
  unload: string[];
}

export function planAdapters(wanted: readonly WantedAdapter[], cards: readonly ModelCard[]): AdapterPlan {
  // Base models have no parent; only adapters are ours to add and remove.
  const listed = new Map(cards.filter((c) => c.parent != null).map((c) => [c.id, c.root ?? '']));
  const wantedNames = new Set(wanted.map((w) => w.name));
  const plan: AdapterPlan = { present: [], load: [], replace: [], unload: [] };
  for (const w of wanted) {
    const root = listed.get(w.name);
    if (root === undefined) plan.load.push(w);
    else if (root !== w.path) plan.replace.push(w);
    else plan.present.push(w.name);
  }
  plan.unload = [...listed.keys()].filter((name) => !wantedNames.has(name));
  return plan;
}

/**
 * Members to load before the pod's model list is back: wanted, never held by this container by its
 * last published state (so neither loaded, refused nor downloading), read from a path vLLM can open
 * (no fetch first), at most `limit`. A member change then costs each pod one round trip, not two;
 * the list still follows and decides everything else. A container with no state of its own (new,
 * or restarted) gets none: its list decides, within the per-pod limit.
 */
export function earlyLoads(
  wanted: readonly WantedAdapter[],
  state: Pick<PodAdapterState, 'loaded' | 'failed' | 'fetching'> | undefined,
  limit: number,
): WantedAdapter[] {
  if (state === undefined) return [];
  const known = new Set([...state.loaded, ...Object.keys(state.failed), ...state.fetching]);
  return wanted.filter((w) => w.fetch === undefined && !known.has(w.name)).slice(0, Math.max(0, limit));
}
