// The test kubelet's restart back-off. The kubelet waits 10 s before restarting a container that
// failed, doubling to 300 s, and forgets the back-off once 600 s pass without a restart; this one
// keeps the shape at a pace tests can wait for.

/** The first back-off (the kubelet's 10 s). */
export const BACKOFF_INITIAL_MS = 500;
/** The longest back-off (the kubelet's 300 s). */
export const BACKOFF_MAX_MS = 5000;

/** The back-off a killed container's next restart waits, and when its last restart went. */
export interface RestartBackoff {
  delayMs: number;
  at: number;
}

/**
 * How long the restart after a kill waits, and the back-off left for the next one: the first
 * restart goes at once, each one within 2 x BACKOFF_MAX_MS of the one before waits, from
 * BACKOFF_INITIAL_MS doubling up to BACKOFF_MAX_MS.
 */
export function restartDelay(
  previous: RestartBackoff | undefined,
  now: number,
): { delayMs: number; next: RestartBackoff } {
  if (previous === undefined || now - previous.at > 2 * BACKOFF_MAX_MS)
    return { delayMs: 0, next: { delayMs: BACKOFF_INITIAL_MS, at: now } };
  return {
    delayMs: previous.delayMs,
    next: { delayMs: Math.min(previous.delayMs * 2, BACKOFF_MAX_MS), at: now + previous.delayMs },
  };
}

interface PodIdentity {
  name: string;
  namespace: string;
  uid: string;
}

/** How the kubelet names a pod in its messages: name_namespace(uid). */
export function podRef(pod: PodIdentity): string {
  return `${pod.name}_${pod.namespace}(${pod.uid})`;
}

/** The CrashLoopBackOff waiting message, in the kubelet's words. */
export function backoffMessage(delayMs: number, container: string, pod: PodIdentity): string {
  return `back-off ${Math.round(delayMs / 100) / 10}s restarting failed container=${container} pod=${podRef(pod)}`;
}
