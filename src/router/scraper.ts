/**
 * Keeps each pod's `vllm:lora_requests_info` current: every interval, GET /metrics of every pod in
 * the routing snapshot (skipping a pod whose previous scrape is still running), with a timeout.
 * A failed scrape forgets the pod's info: affinity is only a preference, and a stale one would pin
 * traffic to a pod that may have evicted the adapter.
 */
import type { Logger } from '../runtime/logger.ts';
import { type LoraInfo, parseLoraInfo } from './lora-info.ts';
import type { PodEndpoint } from './pods.ts';

export interface LoraScraperOptions {
  /** The pods to scrape now; read at every round. */
  pods: () => readonly PodEndpoint[];
  intervalMs?: number;
  timeoutMs?: number;
  log: Logger;
}

export class LoraScraper {
  private readonly opts: LoraScraperOptions;
  private readonly info = new Map<string, LoraInfo>();
  private readonly busy = new Set<string>();
  private readonly abort = new AbortController();
  private timer: ReturnType<typeof setInterval> | undefined;

  constructor(opts: LoraScraperOptions) {
    this.opts = opts;
  }

  start(): void {
    if (this.timer !== undefined || this.abort.signal.aborted) return;
    // round() never rejects: each scrape catches its own failure.
    this.timer = setInterval(() => {
      void this.round();
    }, this.opts.intervalMs ?? 500);
    this.timer.unref();
    void this.round();
  }

  /** Stops the timer and aborts the scrapes in progress. */
  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    this.abort.abort();
  }

  /** Whether the pod's newest series lists the adapter among those running (in a GPU slot). */
  running(pod: string, adapter: string): boolean {
    return this.info.get(pod)?.running.has(adapter) ?? false;
  }

  /** The last info of a pod (tests, debugging). */
  get(pod: string): LoraInfo | undefined {
    return this.info.get(pod);
  }

  /** One round now; resolves when its scrapes are done (tests call it directly). */
  async round(): Promise<void> {
    const pods = this.opts.pods();
    const names = new Set(pods.map((p) => p.name));
    for (const name of this.info.keys()) if (!names.has(name)) this.info.delete(name);
    await Promise.all(pods.filter((p) => !this.busy.has(p.name)).map((p) => this.scrape(p)));
  }

  private async scrape(pod: PodEndpoint): Promise<void> {
    this.busy.add(pod.name);
    try {
      const signal = AbortSignal.any([this.abort.signal, AbortSignal.timeout(this.opts.timeoutMs ?? 1000)]);
      const res = await fetch(`${pod.origin}/metrics`, { signal });
      if (!res.ok) throw new Error(`GET /metrics answered ${res.status}`);
      const info = parseLoraInfo(await res.text());
      if (info === undefined) this.info.delete(pod.name);
      else this.info.set(pod.name, info);
    } catch (err) {
      if (this.abort.signal.aborted) return;
      if (this.info.delete(pod.name)) {
        this.opts.log.debug('metrics scrape failed', { pod: pod.name, error: String(err) });
      }
    } finally {
      this.busy.delete(pod.name);
    }
  }
}
