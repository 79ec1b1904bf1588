/**
 * Per-pod exponential backoff for pods whose vLLM cannot be reached or fails transiently, so one
 * sick replica is not hammered while the others sync. Keyed by the caller (pod UID and container
 * restart count): a replacement pod or a restarted container starts fresh. The only state the
 * backend keeps between reconciles, and losing it costs one extra try.
 */
export class PodBackoff {
  private readonly entries = new Map<string, { failures: number; notBefore: number }>();
  private readonly baseMs: number;
  private readonly maxMs: number;

  constructor(baseMs = 1000, maxMs = 60_000) {
    this.baseMs = baseMs;
    this.maxMs = maxMs;
  }

  ready(key: string, nowMs: number): boolean {
    const e = this.entries.get(key);
    return e === undefined || nowMs >= e.notBefore;
  }

  /** Records a failure; returns the delay before the next try. */
  fail(key: string, nowMs: number): number {
    const failures = (this.entries.get(key)?.failures ?? 0) + 1;
    const delay = Math.min(this.maxMs, this.baseMs * 2 ** (failures - 1));
    this.entries.set(key, { failures, notBefore: nowMs + delay });
    return delay;
  }

  forget(key: string): void {
    this.entries.delete(key);
  }

  /** Drops entries of pods that are gone. */
  retain(keys: ReadonlySet<string>): void {
    for (const key of this.entries.keys()) if (!keys.has(key)) this.entries.delete(key);
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
