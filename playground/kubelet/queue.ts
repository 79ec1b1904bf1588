// A tiny work queue: one run at a time per key, coalescing the calls made while a run is going on.

/** Runs fn per key, never twice at once for one key; a call made while it runs causes one more run. */
export class KeyedSerial {
  readonly #fn: (key: string) => Promise<void>;
  readonly #onError: (key: string, err: unknown) => void;
  readonly #state = new Map<string, { dirty: boolean; waiters: (() => void)[] }>();
  stopped = false;

  constructor(fn: (key: string) => Promise<void>, onError: (key: string, err: unknown) => void) {
    this.#fn = fn;
    this.#onError = onError;
  }

  /** Resolves after a run that started after this call has finished (or at once when stopped). */
  enqueue(key: string): Promise<void> {
    if (this.stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const s = this.#state.get(key);
      if (s) {
        s.dirty = true;
        s.waiters.push(resolve);
        return;
      }
      const fresh = { dirty: true, waiters: [resolve] };
      this.#state.set(key, fresh);
      void this.#run(key, fresh);
    });
  }

  async #run(key: string, s: { dirty: boolean; waiters: (() => void)[] }): Promise<void> {
    while (s.dirty && !this.stopped) {
      s.dirty = false;
      const waiters = s.waiters.splice(0);
      try {
        await this.#fn(key);
      } catch (err) {
        this.#onError(key, err);
      }
      for (const w of waiters) w();
    }
    this.#state.delete(key);
    for (const w of s.waiters.splice(0)) w();
  }
}
