/**
 * A minimal time source with timers. Everything in the runtime that waits takes one of these so
 * unit tests can drive time by hand instead of sleeping (sleep-based tests flake on busy CI machines).
 */
export interface Clock {
  /** Milliseconds since the epoch, like Date.now(). */
  now(): number;
  /** Schedules fn once after ms milliseconds; returns a handle for clearTimeout. */
  setTimeout(fn: () => void, ms: number): unknown;
  /** Cancels a timer; unknown or already fired handles are ignored. */
  clearTimeout(handle: unknown): void;
}

/** Node's setTimeout rejects delays above this (it fires at once instead), so clamp to it. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * The real clock. Timers are unref'd: a pending requeue or backoff alone must not keep a
 * process alive after everything else has shut down.
 */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, Math.min(Math.max(0, ms), MAX_TIMER_MS));
    t.unref();
    return t;
  },
  clearTimeout: (handle) => {
    clearTimeout(handle as ReturnType<typeof setTimeout> | undefined);
  },
};

/**
 * The wall-clock time that status conditions and Events are stamped with: one type for every
 * reconciler, backend and recorder that stamps, made from a {@link Clock} by {@link wallClockOf},
 * so a test's fake clock can drive the timestamps and the timers alike.
 */
export type WallClock = () => Date;

/** The wall-clock time of `clock`, which must count from the epoch (not fence.ts's monotonic one). */
export function wallClockOf(clock: Clock): WallClock {
  return () => new Date(clock.now());
}

/** The real wall clock: the default wherever a WallClock is optional. */
export const systemWallClock: WallClock = wallClockOf(systemClock);

/**
 * Resolves after ms on the given clock, or early (with false) when the signal aborts, so loops that
 * sleep between retries can be stopped without waiting out the sleep.
 */
export function sleep(clock: Clock, ms: number, signal?: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal?.aborted) {
      resolve(false);
      return;
    }
    const onAbort = (): void => {
      clock.clearTimeout(handle);
      resolve(false);
    };
    const handle = clock.setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
