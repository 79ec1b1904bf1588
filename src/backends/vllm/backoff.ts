/**
 * Per-pod exponential backoff for pods whose vLLM cannot be reached or fails transiently, so one
 * sick replica is not hammered while the others sync. Keyed by pod UID: a replacement pod starts
 * fresh. The only state the backend keeps between reconciles, and losing it costs one extra try.
 */
export class PodBackoff {
  private readonly entries = new Map<string, { failures: number; notBefore: number }>();
  private readonly baseMs: number;
  private readonly maxMs: number;

  constructor(baseMs = 1000, maxMs = 60_000) {
    this.baseMs = baseMs;
    this.maxMs = maxMs;
  }

  ready(uid: string, nowMs: number): boolean {
    const e = this.entries.get(uid);
    return e === undefined || nowMs >= e.notBefore;
  }

  /** Records a failure; returns the delay before the next try. */
  fail(uid: string, nowMs: number): number {
    const failures = (this.entries.get(uid)?.failures ?? 0) + 1;
    const delay = Math.min(this.maxMs, this.baseMs * 2 ** (failures - 1));
    this.entries.set(uid, { failures, notBefore: nowMs + delay });
    return delay;
  }

  forget(uid: string): void {
    this.entries.delete(uid);
  }

  /** Drops entries of pods that are gone. */
  retain(uids: ReadonlySet<string>): void {
    for (const uid of this.entries.keys()) if (!uids.has(uid)) this.entries.delete(uid);
  }

  /** Milliseconds until the earliest backed-off pod may be tried again, if any. */
  nextRetryMs(nowMs: number): number | undefined {
    let next: number | undefined;
    for (const e of this.entries.values()) {
      const wait = Math.max(0, e.notBefore - nowMs);
      next = next === undefined ? wait : Math.min(next, wait);
    }
    return next;
  }
}
