/**
 * Pure: which pod one request goes to.
 *
 * Only pods that can answer: Ready endpoints (see pods.ts) that hold the adapter (the base needs
 * none), minus those cooling down after refusing a connection and those this request already tried.
 * Among them, the fewest outstanding requests (this router's own count: it sees every request it
 * sends, at once, where a scraped queue length would be up to a scrape old). LoRA affinity: a pod
 * already running the adapter in a GPU slot serves it without swapping another one out, so it wins
 * unless its queue is longer than the best other pod's by more than the margin.
 */
import type { PodEndpoint } from './pods.ts';

export interface PickInput {
  pods: readonly PodEndpoint[];
  /** undefined: the base model. */
  adapter: string | undefined;
  /** Outstanding requests per pod name (absent = 0). */
  outstanding: (pod: string) => number;
  /** Whether the pod runs the adapter in a GPU slot now, from its scraped lora_requests_info. */
  running: (pod: string, adapter: string) => boolean;
  /** Pods to skip: cooling down, or already tried by this request. */
  excluded: (pod: string) => boolean;
  /** See DEFAULT_AFFINITY_MARGIN in src/api/router/v1.ts. */
  affinityMargin: number;
  /** Breaks ties between equally loaded pods, so they share the load; in [0, 1). */
  random?: () => number;
}

/** The pods a request for the adapter may go to, before load is considered. */
export function eligiblePods(input: Pick<PickInput, 'pods' | 'adapter' | 'excluded'>): PodEndpoint[] {
  return input.pods.filter(
    (p) => !input.excluded(p.name) && (input.adapter === undefined || p.adapters.has(input.adapter)),
  );
}

/** The least loaded of pods (ties broken at random), or undefined for none. */
function leastLoaded(
  pods: readonly PodEndpoint[],
  outstanding: (pod: string) => number,
  random: () => number,
): { pod: PodEndpoint; load: number } | undefined {
  let best: PodEndpoint[] = [];
  let bestLoad = Number.POSITIVE_INFINITY;
  for (const p of pods) {
    const load = outstanding(p.name);
    if (load < bestLoad) {
      best = [p];
      bestLoad = load;
    } else if (load === bestLoad) {
      best.push(p);
    }
  }
  const pod = best[Math.min(best.length - 1, Math.floor(random() * best.length))];
  return pod === undefined ? undefined : { pod, load: bestLoad };
}

/** The pod for one request, or undefined when none can take it. */
export function pickPod(input: PickInput): PodEndpoint | undefined {
  const random = input.random ?? Math.random;
  const eligible = eligiblePods(input);
  const adapter = input.adapter;
  if (adapter === undefined) return leastLoaded(eligible, input.outstanding, random)?.pod;
  const affine: PodEndpoint[] = [];
  const others: PodEndpoint[] = [];
  for (const p of eligible) (input.running(p.name, adapter) ? affine : others).push(p);
  const bestAffine = leastLoaded(affine, input.outstanding, random);
  const bestOther = leastLoaded(others, input.outstanding, random);
  if (bestAffine === undefined) return bestOther?.pod;
  if (bestOther === undefined) return bestAffine.pod;
  return bestAffine.load <= bestOther.load + input.affinityMargin ? bestAffine.pod : bestOther.pod;
}
