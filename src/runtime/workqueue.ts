import { type Clock, systemClock } from './clock.ts';

/** Tuning of the default controller rate limiter (same defaults as controller-runtime). */
export interface RateLimiterOptions {
  /** First per-key retry delay; doubles on each failure. Default 5 ms. */
  baseDelayMs?: number;
  /** Cap of the per-key delay. Default 1000 s. */
  maxDelayMs?: number;
  /** Refill rate of the global token bucket. Default 10 per second. */
  qps?: number;
  /** Size of the global token bucket. Default 100. */
  burst?: number;
}

/**
 * client-go's DefaultControllerRateLimiter: the larger of a per-key exponential backoff and a global
 * token bucket. The backoff slows one broken object down; the bucket stops many failing objects at
 * once from hammering the API server.
 */
export class RateLimiter {
  private readonly base: number;
  private readonly max: number;
  private readonly qps: number;
  private readonly burst: number;
  private readonly now: () => number;
  private readonly failures = new Map<string, number>();
  private tokens: number;
  private last: number;

  /** Creates a limiter; `now` is the clock used by the token bucket. */
  constructor(opts: RateLimiterOptions = {}, now: () => number = Date.now) {
    this.base = opts.baseDelayMs ?? 5;
    this.max = opts.maxDelayMs ?? 1_000_000;
    this.qps = opts.qps ?? 10;
    this.burst = opts.burst ?? 100;
    this.now = now;
    this.tokens = this.burst;
    this.last = now();
  }

  /** Records one more failure of key and returns how long to wait before retrying it. */
  when(key: string): number {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    // 2^n overflows to Infinity for large n, which Math.min caps just fine.
    const backoff = Math.min(this.base * 2 ** n, this.max);
    return Math.max(backoff, this.reserve());
  }

  /** Clears the failure count of key (after a successful reconcile). */
  forget(key: string): void {
    this.failures.delete(key);
  }

  /** How many times key has failed since it was last forgotten. */
  numRequeues(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  /**
   * Takes a token like golang.org/x/time/rate's Reserve: the bucket may go negative, and the debt
   * is the wait, so a burst of failures is spread out at qps instead of all retrying together.
   */
  private reserve(): number {
    if (this.qps <= 0) return 0;
    const now = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) * this.qps) / 1000);
    this.last = now;
    this.tokens -= 1;
    return this.tokens >= 0 ? 0 : (-this.tokens / this.qps) * 1000;
  }
}

/** Options for {@link WorkQueue}. */
export interface WorkQueueOptions {
  /** Tuning of the rate limiter behind addRateLimited. */
  rateLimiter?: RateLimiterOptions;
  /** Time source for delays; tests pass a fake one. */
  clock?: Clock;
  /** Called whenever the number of keys waiting to be handed out changes (for a depth gauge). */
  onDepthChange?: (depth: number) => void;
}

/**
 * A work queue with client-go semantics, keyed by "namespace/name":
 * - a key waiting in the queue is stored once, however often it is added;
 * - a key being processed is never handed to a second worker; if it is added meanwhile it is marked
 *   dirty and queued again when done() is called, so the latest state is always reconciled;
 * - delayed and rate-limited adds.
 * Reconciliation is level-based, so collapsing adds loses nothing.
 */
export class WorkQueue {
  private readonly clock: Clock;
  private readonly limiter: RateLimiter;
  private readonly onDepthChange: ((depth: number) => void) | undefined;
  private readonly queue: string[] = [];
  private head = 0;
  private readonly dirty = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly delayed = new Map<string, { deadline: number; handle: unknown }>();
  private readonly waiters: ((key: string | undefined) => void)[] = [];
  private readonly drainWaiters: (() => void)[] = [];
  private shuttingDown = false;

  /** Creates an empty queue. */
  constructor(opts: WorkQueueOptions = {}) {
    this.clock = opts.clock ?? systemClock;
    this.limiter = new RateLimiter(opts.rateLimiter, () => this.clock.now());
    this.onDepthChange = opts.onDepthChange;
  }

  /** Queues key unless it is already waiting; if it is being processed, queues it again after done(). */
  add(key: string): void {
    if (this.shuttingDown || this.dirty.has(key)) return;
    this.dirty.add(key);
    if (this.processing.has(key)) return;
    this.push(key);
  }

  /**
   * Adds key after delayMs. If key already has a pending delayed add, the earlier deadline wins, so
   * a long requeueAfter never postpones a short retry that is already scheduled.
   */
  addAfter(key: string, delayMs: number): void {
    if (this.shuttingDown) return;
    if (!(delayMs > 0)) {
      this.add(key);
      return;
    }
    const deadline = this.clock.now() + delayMs;
    const pending = this.delayed.get(key);
    if (pending) {
      if (pending.deadline <= deadline) return;
      this.clock.clearTimeout(pending.handle);
    }
    const handle = this.clock.setTimeout(() => {
      this.delayed.delete(key);
      this.add(key);
    }, delayMs);
    this.delayed.set(key, { deadline, handle });
  }

  /** Adds key after its rate-limited backoff and counts one more failure for it. */
  addRateLimited(key: string): void {
    if (this.shuttingDown) return;
    this.addAfter(key, this.limiter.when(key));
  }

  /** Resets the failure count of key, so its next failure backs off from the base delay again. */
  forget(key: string): void {
    this.limiter.forget(key);
  }

  /** Failures of key since the last forget(). */
  numRequeues(key: string): number {
    return this.limiter.numRequeues(key);
  }

  /**
   * Waits for the next key and marks it as being processed; the caller must call done(key).
   * Keys still queued are handed out after shutDown(); resolves undefined once shut down and empty.
   */
  get(): Promise<string | undefined> {
    const key = this.take();
    if (key !== undefined) return Promise.resolve(key);
    if (this.shuttingDown) return Promise.resolve(undefined);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Marks key as processed; re-queues it if it was added while being processed. */
  done(key: string): void {
    if (!this.processing.delete(key)) return;
    if (this.dirty.has(key)) this.push(key);
    if (this.processing.size === 0) {
      for (const resolve of this.drainWaiters.splice(0)) resolve();
    }
  }

  /** Number of keys waiting to be handed out (not counting keys being processed or delayed). */
  len(): number {
    return this.queue.length - this.head;
  }

  /** True once shutDown() or shutDownWithDrain() was called. */
  isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  /** Stops accepting keys, drops pending delayed adds and wakes all waiting get() calls. */
  shutDown(): void {
    if (this.shuttingDown) return;
    this.shuttingDown = true;
    for (const { handle } of this.delayed.values()) this.clock.clearTimeout(handle);
    this.delayed.clear();
    // Waiters only exist while the queue is empty, so nothing queued is lost here.
    for (const resolve of this.waiters.splice(0)) resolve(undefined);
  }

  /** shutDown(), then waits until every key being processed has been marked done. */
  shutDownWithDrain(): Promise<void> {
    this.shutDown();
    if (this.processing.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  private push(key: string): void {
    const waiter = this.waiters.shift();
    if (waiter) {
      // Hand the key straight to a waiting worker; the dirty mark is cleared as in take().
      this.dirty.delete(key);
      this.processing.add(key);
      waiter(key);
      return;
    }
    this.queue.push(key);
    this.onDepthChange?.(this.len());
  }

  private take(): string | undefined {
    if (this.head >= this.queue.length) return undefined;
    const key = this.queue[this.head] as string;
    this.head++;
    // Compact now and then instead of Array.shift() on every get (which is O(n)).
    if (this.head === this.queue.length) {
      this.queue.length = 0;
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
    this.dirty.delete(key);
    this.processing.add(key);
    this.onDepthChange?.(this.len());
    return key;
  }
}
