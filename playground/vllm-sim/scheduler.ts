// Which requests run and which wait, the way vLLM's scheduler decides it for LoRA: at most
// --max-loras distinct adapters have running requests at once; a request for another adapter waits
// until one of them has no running request left. Requests for the base model never wait (the
// simulator has no batch or KV-cache limit). Waiting requests are admitted in arrival order, but one
// that cannot run yet does not hold back later ones that can (vLLM skips LoRA-blocked requests and
// keeps scheduling the rest of its queue).

interface Waiter {
  adapter: string;
  admit: () => void;
}

export class Scheduler {
  readonly #maxLoras: number;
  /** Running requests per adapter, in the order the adapters got a slot; base requests are not here. */
  readonly #adapters = new Map<string, number>();
  readonly #waiting: Waiter[] = [];
  #running = 0;

  constructor(maxLoras: number) {
    this.#maxLoras = maxLoras;
  }

  /** Requests in model execution (vllm:num_requests_running). */
  get running(): number {
    return this.#running;
  }

  /** Requests waiting for a LoRA slot (vllm:num_requests_waiting). */
  get waiting(): number {
    return this.#waiting.length;
  }

  /** Adapters with running requests, in the order they got their slot. */
  runningAdapters(): string[] {
    return [...this.#adapters.keys()];
  }

  /** Adapters with waiting requests, each once, in arrival order. */
  waitingAdapters(): string[] {
    return [...new Set(this.#waiting.map((w) => w.adapter))];
  }

  /**
   * Resolves once the request runs (at once when it fits). `adapter` undefined: the base model.
   * Rejects with the signal's reason if it is aborted while waiting; the request is then forgotten.
   */
  admit(adapter: string | undefined, signal: AbortSignal): Promise<void> {
    if (signal.aborted) return Promise.reject(signal.reason as Error);
    if (adapter === undefined || this.#fits(adapter)) {
      this.#start(adapter);
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        adapter,
        admit: () => {
          signal.removeEventListener('abort', onAbort);
          this.#start(adapter);
          resolve();
        },
      };
      const onAbort = (): void => {
        const i = this.#waiting.indexOf(waiter);
        if (i >= 0) this.#waiting.splice(i, 1);
        reject(signal.reason as Error);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.#waiting.push(waiter);
    });
  }

  /** The request admitted for `adapter` is over; waiting requests that now fit start. */
  release(adapter: string | undefined): void {
    this.#running--;
    if (adapter === undefined) return;
    const n = (this.#adapters.get(adapter) ?? 1) - 1;
    if (n > 0) this.#adapters.set(adapter, n);
    else this.#adapters.delete(adapter);
    for (let i = 0; i < this.#waiting.length;) {
      const w = this.#waiting[i];
      if (w !== undefined && this.#fits(w.adapter)) {
        this.#waiting.splice(i, 1);
        w.admit();
      } else {
        i++;
      }
    }
  }

  #fits(adapter: string): boolean {
    return this.#adapters.has(adapter) || this.#adapters.size < this.#maxLoras;
  }

  #start(adapter: string | undefined): void {
    this.#running++;
    if (adapter !== undefined) this.#adapters.set(adapter, (this.#adapters.get(adapter) ?? 0) + 1);
  }
}
