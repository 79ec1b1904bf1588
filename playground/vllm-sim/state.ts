// What one simulated vLLM process holds in memory. A new ProcessState is made on every start(), so a
// stop or restart loses all of it, like a killed container.

import { randomBytes } from 'node:crypto';
import type { EngineArgs } from './args.ts';
import { FINISH_REASONS, type FinishReason, type MetricsSnapshot } from './metrics.ts';
import { Scheduler } from './scheduler.ts';

export interface Adapter {
  /** lora_int_id: from an increasing counter; an in-place reload keeps it. */
  id: number;
  name: string;
  /** lora_path as sent */
  path: string;
  /** From --lora-modules JSON, when it is a served name. */
  baseModelName?: string;
}

/** vLLM's per-name asyncio lock: holders of one key run one at a time, in arrival order. */
export class KeyedMutex {
  readonly #tails = new Map<string, Promise<void>>();

  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.#tails.get(key) ?? Promise.resolve();
    let release = (): void => undefined;
    const mine = new Promise<void>((r) => {
      release = r;
    });
    const tail = prev.then(() => mine);
    this.#tails.set(key, tail);
    await prev;
    try {
      return await fn();
    } finally {
      release();
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    }
  }
}

export class ProcessState {
  /** The frontend registry (OpenAIServingModels.lora_requests), in registration order. */
  readonly adapters = new Map<string, Adapter>();
  /** The engine's CPU LRU (--max-cpu-loras), keyed by lora_int_id, most recently used last. */
  readonly cpuCache = new Map<number, Adapter>();
  readonly locks = new KeyedMutex();
  /** Aborted by stop(): pending sleeps and gates of this process reject. */
  readonly abort = new AbortController();
  readonly success = Object.fromEntries(FINISH_REASONS.map((r) => [r, 0])) as Record<FinishReason, number>;
  /** lora_requests_info series: key `running\0waiting` -> Unix seconds of the last update. */
  readonly loraInfo = new Map<string, number>();
  /** Unix seconds */
  readonly createdAt: number;
  /** Running and waiting completion requests. */
  readonly sched: Scheduler;
  nextId = 1;
  engineDead = false;
  /** HTTP completion requests in progress, waiting ones included (GET /load). */
  inflight = 0;
  promptTokens = 0;
  generationTokens = 0;
  #loraKey = '';
  #loraAt = -Infinity;

  constructor(createdAt: number, maxLoras: number) {
    this.createdAt = createdAt;
    this.sched = new Scheduler(maxLoras);
  }

  /** Puts (or refreshes) an adapter in the CPU LRU, evicting the least recently used. */
  cache(adapter: Adapter, capacity: number): void {
    this.cpuCache.delete(adapter.id);
    this.cpuCache.set(adapter.id, adapter);
    while (this.cpuCache.size > capacity) {
      const oldest = this.cpuCache.keys().next().value;
      if (oldest === undefined) break;
      this.cpuCache.delete(oldest);
    }
  }

  /**
   * One engine step's lora_requests_info update (vLLM sets it on every step it logs stats for):
   * the series of the adapters running and waiting now gets the current time.
   */
  noteLora(nowSeconds: number): void {
    const key = `${this.sched.runningAdapters().join(',')}\0${this.sched.waitingAdapters().join(',')}`;
    // Readers take the series with the newest value. vLLM's time.time() makes ties between two
    // series practically impossible; the simulator's millisecond clock does not, so a change of
    // series within one millisecond is moved a millisecond on.
    const at = key === this.#loraKey ? nowSeconds : Math.max(nowSeconds, this.#loraAt + 0.001);
    this.#loraKey = key;
    this.#loraAt = Math.max(at, this.#loraAt);
    this.loraInfo.set(key, this.#loraAt);
  }

  metrics(args: EngineArgs): MetricsSnapshot {
    const snapshot: MetricsSnapshot = {
      modelName: args.servedModelNames[0] ?? args.model,
      running: this.sched.running,
      waiting: this.sched.waiting,
      success: this.success,
      promptTokens: this.promptTokens,
      generationTokens: this.generationTokens,
      createdAt: this.createdAt,
    };
    if (args.enableLora) {
      snapshot.lora = {
        maxLoras: args.maxLoras,
        series: [...this.loraInfo].map(([key, updatedAt]) => {
          const [running = '', waiting = ''] = key.split('\0');
          return { running, waiting, updatedAt };
        }),
      };
    }
    return snapshot;
  }

  /** GET /v1/models (OpenAIServingModels.show_available_models). */
  modelList(args: EngineArgs, defaultMaxModelLen: number, createdSeconds: number): unknown {
    const card = (id: string, root: string, parent: string | null, maxModelLen: number | null): unknown => ({
      id,
      object: 'model',
      created: createdSeconds,
      owned_by: 'vllm',
      root,
      parent,
      max_model_len: maxModelLen,
      permission: [
        {
          id: `modelperm-${randomBytes(16).toString('hex')}`,
          object: 'model_permission',
          created: createdSeconds,
          allow_create_engine: false,
          allow_sampling: true,
          allow_logprobs: true,
          allow_search_indices: false,
          allow_view: true,
          allow_fine_tuning: false,
          organization: '*',
          group: null,
          is_blocking: false,
        },
      ],
    });
    const first = args.servedModelNames[0] ?? args.model;
    const maxLen = args.maxModelLen ?? defaultMaxModelLen;
    return {
      object: 'list',
      data: [
        ...args.servedModelNames.map((n) => card(n, args.model, null, maxLen)),
        ...[...this.adapters.values()].map((a) => card(a.name, a.path, a.baseModelName ?? first, null)),
      ],
    };
  }
}
