import type { Clock } from '../../../../src/runtime/clock.ts';

interface Timer {
  id: number;
  due: number;
  fn: () => void;
}

/** Lets the event loop run until every settled promise chain has progressed. */
export async function flush(rounds = 3): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

/**
 * A manual clock: time moves only through advance(), and timers fire in due order, so tests of
 * backoffs and timeouts are exact and never depend on how busy the machine is.
 */
export class FakeClock implements Clock {
  private t: number;
  private seq = 0;
  private readonly timers = new Map<number, Timer>();

  constructor(start = Date.UTC(2026, 0, 1)) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.timers.set(id, { id, due: this.t + Math.max(0, ms), fn });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as number);
  }

  /** Number of pending timers. */
  pending(): number {
    return this.timers.size;
  }

  /** Delays of the pending timers from now, sorted. */
  pendingDelays(): number[] {
    return [...this.timers.values()].map((t) => t.due - this.t).sort((a, b) => a - b);
  }

  private next(until: number): Timer | undefined {
    let best: Timer | undefined;
    for (const t of this.timers.values()) {
      if (
        t.due <= until &&
        (best === undefined || t.due < best.due || (t.due === best.due && t.id < best.id))
      ) {
        best = t;
      }
    }
    return best;
  }

  /** Moves time forward by ms, firing due timers synchronously in order. */
  advance(ms: number): void {
    const target = this.t + ms;
    for (let t = this.next(target); t !== undefined; t = this.next(target)) {
      this.timers.delete(t.id);
      this.t = t.due;
      t.fn();
    }
    this.t = target;
  }

  /** Like advance, but lets promise chains run after each timer (for async loops). */
  async advanceAsync(ms: number): Promise<void> {
    const target = this.t + ms;
    await flush();
    for (let t = this.next(target); t !== undefined; t = this.next(target)) {
      this.timers.delete(t.id);
      this.t = t.due;
      t.fn();
      await flush();
    }
    this.t = target;
    await flush();
  }
}
