// A vLLM OpenAI-server simulator for integration tests: one instance per simulated pod, on its own
// loopback address. It answers like vLLM does per /work/shared/reference/vllm-lora-api.md (runtime
// LoRA load/unload, /v1/models, completions, health, metrics), and is stricter where that is silent.
// Pieces: vllm-sim/args.ts (flags), adapter-config.ts (adapter validation), http.ts (FastAPI-shaped
// replies and validation), completions.ts, stream.ts (server-sent events as vLLM frames them, see
// test/fixtures/vllm-streaming.md), generation.ts (time per token), scheduler.ts (running and
// waiting requests, LoRA slots), metrics.ts.
//
// Choices the reference does not make (see also the modules):
//   - Completions take `firstTokenLatencyMs` + `tokenLatencyMs` per token (both default 0), streamed
//     or not. Requests for more than --max-loras distinct adapters at once wait for a slot, as in
//     vLLM's scheduler; /metrics shows them as running or waiting (vllm:num_requests_*, and
//     vllm:lora_requests_info updated on every engine step). A client that goes away stops its
//     generation (vLLM aborts it); aborted requests are not counted in request_success.
//   - Every completion request is logged (`requests()`), however it ended.
//   - No resolver plugins: an unknown model is always the 404 of section 7.
//   - An absolute `--model` must resolve (like lora paths) to a folder with config.json, or start-up
//     fails; a relative one is a Hugging Face id and is not checked.
//   - Engine death (`faults.unhealthy`, or an evicted adapter whose files vanished): /health and /ping
//     answer 503, completions 500 with an empty body (vLLM's EngineDeadError handler), loads 500
//     InternalServerError with EngineDeadError's message; /v1/models and unload keep working (frontend).
//   - Unload (as in 0.11) only drops the frontend entry; the CPU LRU of --max-cpu-loras keeps the
//     weights. An adapter evicted from that LRU is re-read from its path on next use.
//   - `loadLatencyMs` and `pauseLoads()` act in the engine step (inside the per-name lock, after the
//     400 pre-checks); the 400s for an empty or duplicate name are immediate, as in vLLM.
//   - `adapterLoadMs` is the time the engine takes to read an adapter's weights: it runs after the
//     adapter's config passed the checks (a missing path or too high a rank fails at once, as the
//     worker reads adapter_config.json first), and the adapter is listed in /v1/models and served
//     only once it has passed. It is a property of the machine, not a fault: setFaults keeps it.
//   - `crashEngine()` kills this process's engine (like EngineDeadError): the same answers as
//     `faults.unhealthy`, but a restart brings a healthy engine, whereas faults outlive restarts.
//   - With a `timeline`, the simulator logs under `timelineKey` when it starts serving (with the
//     adapters it holds then), when an adapter is registered or lost, and when it stops
//     (see ../support/timeline.ts).

import { performance } from 'node:perf_hooks';
import { buffer } from 'node:stream/consumers';
import { existsSync } from 'node:fs';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import {
  adapterReadable,
  inspectAdapter,
  internal,
  isLoadFailure,
  notFound,
} from './vllm-sim/adapter-config.ts';
import { type EngineArgs, parseEngineArgs, runtimeLoraUpdating } from './vllm-sim/args.ts';
import {
  CHAT_SPEC,
  COMPLETION_SPEC,
  type CompletionKind,
  type PlannedChoice,
  checkRequest,
  completionBody,
  plan,
  promptTokens,
  requestId,
  streamOptionsError,
  usageOptions,
} from './vllm-sim/completions.ts';
import { type TokenOut, engineSteps } from './vllm-sim/generation.ts';
import {
  type ErrorBody,
  type FieldSpec,
  errorBody,
  isBool,
  isInt,
  isStr,
  nullable,
  parseJsonBody,
  sendEmpty,
  sendError,
  sendJson,
  sendText,
  validateObject,
  validationError,
} from './vllm-sim/http.ts';
import { renderMetrics } from './vllm-sim/metrics.ts';
import { type Adapter, ProcessState } from './vllm-sim/state.ts';
import {
  DONE,
  type StreamContext,
  chatContentChunk,
  chatRoleChunk,
  completionChunk,
  sendEvent,
  startStream,
  streamingError,
  usageChunk,
} from './vllm-sim/stream.ts';
import type { LossCause, Timeline } from './timeline.ts';

export type { EngineArgs, LoraModule } from './vllm-sim/args.ts';

export interface SimulatorFaults {
  /** Added to every load that reaches the engine step, successful or failed (per request). */
  loadLatencyMs?: number;
  /** Force a load of that name (or any, without `name`) to fail like vLLM would. */
  failLoads?: { name?: string; status: 404 | 500; message?: string }[];
  /** /health (and /ping) answer after this delay. */
  slowHealthMs?: number;
  /** The engine is dead: /health answers 503 (see the header comment for the other routes). */
  unhealthy?: boolean;
  /**
   * Every request but /health and /ping has its connection reset before an answer: the server is
   * healthy to the kubelet's probes but cannot be reached by the operator (a NetworkPolicy, a wedged
   * frontend). Counted in `resetCount`.
   */
  resetRequests?: boolean;
}

export interface SimulatorOptions {
  /** The container's args exactly as in the Pod spec. Parsed like vLLM; unknown flags are ignored. */
  args: string[];
  /** The container's environment; VLLM_ALLOW_RUNTIME_LORA_UPDATING gates the load/unload routes. */
  env: Record<string, string>;
  /** Maps a lora_path as sent to a host directory holding adapter_config.json (+ weights), or undefined. */
  resolvePath: (loraPath: string) => string | undefined;
  host: string;
  /** Default: the --port arg, else 8000; 0 = any free port (kept across restarts once bound). */
  port?: number;
  faults?: SimulatorFaults;
  /**
   * How long the engine takes to load an adapter whose config is valid (runtime loads and
   * --lora-modules alike), before it is registered; default 0. Loads of different names overlap.
   */
  adapterLoadMs?: number;
  /**
   * Time of each generated token (one engine step), streamed or not; default 0. A request takes
   * firstTokenLatencyMs + tokens x tokenLatencyMs.
   */
  tokenLatencyMs?: number;
  /** Extra time before the first token (prefill); default 0. */
  firstTokenLatencyMs?: number;
  /** Milliseconds since the epoch, like Date.now (the default). */
  clock?: () => number;
  /** Where to log serving, stops, adapter loads and losses; default: nowhere. */
  timeline?: Timeline;
  /** The name this simulator logs under (the pod key when the test kubelet runs it); default: its url. */
  timelineKey?: string;
}

export interface SimulatorStats {
  /** Successful HTTP loads (static --lora-modules not counted), cumulative across restarts. */
  loads: number;
  /** Successful HTTP unloads, cumulative across restarts. */
  unloads: number;
  /** Successful completions per model name as addressed (default: the first served name). */
  completions: Record<string, number>;
}

/** A record of the load/unload machinery, for ordering assertions. */
export interface SimEvent {
  seq: number;
  /** clock() at the event */
  at: number;
  /** *-queued: request validated, about to take the per-name lock; load-begin/end: the engine step. */
  kind: 'load-queued' | 'load-begin' | 'load-end' | 'unload-queued' | 'unload';
  name: string;
  /** HTTP status, on load-end and unload */
  status?: number;
}

/** One POST /v1/completions or /v1/chat/completions, as this simulator saw it. */
export interface SimRequest {
  /** clock() when the request arrived */
  at: number;
  kind: CompletionKind;
  /** The `model` field as sent ('' when absent or not a string). */
  model: string;
  /** `stream: true` was asked for. */
  stream: boolean;
  /** The model was found and the request reached the engine (whatever happened next). */
  served: boolean;
  /** HTTP status sent; 0 when the connection ended before any answer. */
  status: number;
  /** The client went away (or the process was killed) before the answer was complete. */
  aborted: boolean;
  /** Tokens generated for it (all choices). */
  tokens: number;
  /** Wall time from arrival to the end of the answer (so far, while `done` is false). */
  durationMs: number;
  done: boolean;
}

export const DEFAULT_MAX_MODEL_LEN = 4096;
export const SIMULATED_VLLM_VERSION = '0.11.0';
export const ENGINE_DEAD_MESSAGE =
  'EngineCore encountered an issue. See stack trace (above) for the root cause.';

type Outcome = { status: 200 } | { status: number; body: ErrorBody };
type Handler = (req: IncomingMessage, res: ServerResponse, proc: ProcessState) => Promise<void> | void;

const LOAD_SPEC: Record<string, FieldSpec> = {
  lora_name: { required: true, check: isStr },
  lora_path: { required: true, check: isStr },
  load_inplace: { required: false, check: isBool },
};
const UNLOAD_SPEC: Record<string, FieldSpec> = {
  lora_name: { required: true, check: isStr },
  lora_int_id: { required: false, check: nullable(isInt) },
};

function debug(msg: string): void {
  if (process.env.VLLM_SIM_DEBUG) process.stderr.write(`[vllm-sim] ${msg}\n`);
}

export class VllmSimulator {
  readonly stats: SimulatorStats = { loads: 0, unloads: 0, completions: {} };
  readonly events: SimEvent[] = [];
  /** Requests whose connection `faults.resetRequests` reset. */
  resetCount = 0;
  readonly #opts: SimulatorOptions;
  readonly #args: EngineArgs | undefined;
  readonly #argsError: Error | undefined;
  readonly #clock: () => number;
  readonly #routes = new Map<string, Map<string, Handler>>();
  #faults: SimulatorFaults;
  #port: number;
  #server: Server | undefined;
  #proc: ProcessState | undefined;
  #starting = false;
  #gate: { promise: Promise<void>; release: () => void } | undefined;
  #seq = 0;
  /** See SimulatorOptions.adapterLoadMs; may be changed at any time (applies to loads that start later). */
  adapterLoadMs: number;
  /** See SimulatorOptions.tokenLatencyMs; may be changed at any time (applies to requests that start later). */
  tokenLatencyMs: number;
  /** See SimulatorOptions.firstTokenLatencyMs; may be changed at any time, like tokenLatencyMs. */
  firstTokenLatencyMs: number;
  readonly #requests: { entry: SimRequest; startedPerf: number }[] = [];

  constructor(opts: SimulatorOptions) {
    this.#opts = opts;
    this.#clock = opts.clock ?? Date.now;
    this.#faults = { ...opts.faults };
    this.adapterLoadMs = opts.adapterLoadMs ?? 0;
    this.tokenLatencyMs = opts.tokenLatencyMs ?? 0;
    this.firstTokenLatencyMs = opts.firstTokenLatencyMs ?? 0;
    try {
      this.#args = parseEngineArgs(opts.args);
    } catch (e) {
      this.#argsError = e instanceof Error ? e : new Error(String(e));
    }
    this.#port = opts.port ?? this.#args?.port ?? 8000;
    this.#buildRoutes();
  }

  /** http://host:port (the bound port once started with port 0). */
  get url(): string {
    const host = this.#opts.host.includes(':') ? `[${this.#opts.host}]` : this.#opts.host;
    return `http://${host}:${this.#port}`;
  }

  /** The parsed flags; throws what start() would reject with when they are invalid. */
  get engineArgs(): EngineArgs {
    if (!this.#args) throw this.#argsError ?? new Error('no engine args');
    return this.#args;
  }

  get running(): boolean {
    return this.#server !== undefined;
  }

  /** Replaces every fault (not a merge). */
  setFaults(f: SimulatorFaults): void {
    this.#faults = { ...f };
  }

  /** Holds every load at the start of its engine step until the returned function is called. */
  pauseLoads(): () => void {
    if (!this.#gate) {
      let release = (): void => undefined;
      const promise = new Promise<void>((r) => {
        release = r;
      });
      this.#gate = { promise, release };
    }
    const gate = this.#gate;
    return () => {
      gate.release();
      if (this.#gate === gate) this.#gate = undefined;
    };
  }

  /** Every completion request since construction (or clearRequests), across restarts, in arrival order. */
  requests(): readonly SimRequest[] {
    const now = performance.now();
    return this.#requests.map(({ entry, startedPerf }) =>
      entry.done ? { ...entry } : { ...entry, durationMs: now - startedPerf },
    );
  }

  clearRequests(): void {
    this.#requests.length = 0;
  }

  loadedAdapters(): string[] {
    return [...(this.#proc?.adapters.keys() ?? [])];
  }

  /** Removes an adapter from the registry behind the API's back (an unload by hand). */
  unloadDirect(name: string): boolean {
    const gone = this.#proc?.adapters.delete(name) ?? false;
    if (gone) this.#lost(name, 'unload-direct');
    return gone;
  }

  /**
   * The engine of the running process dies: /health 503, completions 500, loads 500 until the process
   * restarts (unlike `faults.unhealthy`, which the next process keeps). False when not running.
   */
  crashEngine(): boolean {
    if (!this.#proc) return false;
    this.#proc.engineDead = true;
    debug(`engine of ${this.url} crashed`);
    return true;
  }

  async start(): Promise<void> {
    if (this.#server || this.#starting) throw new Error('VllmSimulator: already running');
    const args = this.#args;
    if (!args) throw this.#argsError ?? new Error('no engine args');
    this.#starting = true;
    try {
      // A local model folder must be there with its config.json, or vLLM's config loading fails.
      if (args.model.startsWith('/')) {
        const dir = this.#opts.resolvePath(args.model);
        if (dir === undefined || !existsSync(join(dir, 'config.json'))) {
          throw new Error(
            `vLLM start-up failed: Invalid repository ID or local directory specified: '${args.model}'`,
          );
        }
      }
      const proc = new ProcessState(this.#clock() / 1000, args.maxLoras);
      if (args.enableLora) proc.noteLora(proc.createdAt);
      // Static adapters load before serving starts; a failure aborts start-up.
      for (const m of args.loraModules) {
        const r = await this.#loadAdapter(proc, m.name, m.path, false, m.baseModelName);
        if ('body' in r) {
          proc.abort.abort();
          throw new Error(`vLLM start-up failed: --lora-modules ${m.name}: ${r.body.error.message}`);
        }
      }
      const server = createServer((req, res) => void this.#handle(req, res, proc));
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(this.#port, this.#opts.host, () => {
          server.off('error', reject);
          resolve();
        });
      });
      this.#port = (server.address() as AddressInfo).port;
      this.#server = server;
      this.#proc = proc;
      this.#log({ kind: 'sim-serving', adapters: [...proc.adapters.keys()] });
      debug(`serving ${args.servedModelNames.join(',')} on ${this.url}`);
    } finally {
      this.#starting = false;
    }
  }

  /** Closes the listener and destroys every open connection at once, like a killed process. */
  async stop(): Promise<void> {
    const server = this.#server;
    const proc = this.#proc;
    if (!server || !proc) return;
    this.#server = undefined;
    this.#proc = undefined;
    proc.abort.abort();
    // One instant for the whole death: a replay must not see a running process losing them one by one.
    const at = this.#opts.timeline?.now();
    for (const name of proc.adapters.keys()) this.#lost(name, 'stopped', at);
    this.#log({ kind: 'sim-stopped' }, at);
    const closed = new Promise<void>((resolve) => {
      server.close(() => {
        resolve();
      });
    });
    server.closeAllConnections();
    await closed;
    debug(`stopped ${this.url}`);
  }

  /**
   * SIGTERM as vLLM's server (uvicorn) takes it: no new connections, idle keep-alive ones closed,
   * requests in flight finish (for up to graceMs, the kubelet's SIGKILL), then the process ends as
   * stop() ends it.
   */
  async shutdown(graceMs: number): Promise<void> {
    const server = this.#server;
    if (!server) return;
    server.close();
    server.closeIdleConnections();
    const deadline = performance.now() + graceMs;
    while (this.#requests.some((r) => !r.entry.done) && performance.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    await this.stop();
  }

  /**
   * Closes the listener and the open connections while the engine keeps its adapters: connections
   * are refused (ECONNREFUSED) until the returned function listens again on the same address. The
   * kubelet's probes fail too, but only its failure threshold later: a router meets the refusal first.
   */
  async refuseConnections(): Promise<() => Promise<void>> {
    const server = this.#server;
    const proc = this.#proc;
    if (!server || !proc) throw new Error('VllmSimulator: not running');
    const closed = new Promise<void>((resolve) => {
      server.close(() => {
        resolve();
      });
    });
    server.closeAllConnections();
    await closed;
    return async () => {
      if (this.#server !== server || this.#proc !== proc) return; // stopped or restarted meanwhile
      const again = createServer((req, res) => void this.#handle(req, res, proc));
      await new Promise<void>((resolve, reject) => {
        again.once('error', reject);
        again.listen(this.#port, this.#opts.host, () => {
          again.off('error', reject);
          resolve();
        });
      });
      this.#server = again;
    };
  }

  /** stop + start on the same address: every runtime-loaded adapter is lost. */
  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  // ---- routing ----------------------------------------------------------------------------------

  #buildRoutes(): void {
    const add = (path: string, methods: string[], h: Handler): void => {
      const m = new Map<string, Handler>();
      for (const method of methods) m.set(method, h);
      this.#routes.set(path, m);
    };
    const health: Handler = async (_req, res, proc) => {
      const slow = this.#faults.slowHealthMs ?? 0;
      if (slow > 0) await delay(slow, undefined, { signal: proc.abort.signal });
      sendEmpty(res, this.#faults.unhealthy || proc.engineDead ? 503 : 200);
    };
    add('/health', ['GET'], health);
    add('/ping', ['GET', 'POST'], health);
    add('/version', ['GET'], (_req, res) => {
      sendJson(res, 200, { version: SIMULATED_VLLM_VERSION });
    });
    add('/load', ['GET'], (_req, res, proc) => {
      sendJson(res, 200, { server_load: proc.inflight });
    });
    add('/metrics', ['GET'], (_req, res, proc) => {
      sendText(
        res,
        200,
        renderMetrics(proc.metrics(this.engineArgs)),
        'text/plain; version=0.0.4; charset=utf-8',
      );
    });
    add('/v1/models', ['GET'], (_req, res, proc) => {
      sendJson(
        res,
        200,
        proc.modelList(this.engineArgs, DEFAULT_MAX_MODEL_LEN, Math.floor(this.#clock() / 1000)),
      );
    });
    add('/v1/completions', ['POST'], (req, res, proc) => this.#complete('completion', req, res, proc));
    add('/v1/chat/completions', ['POST'], (req, res, proc) => this.#complete('chat', req, res, proc));
    // api_router.attach_router returns early without the switch: the routes do not exist at all.
    if (runtimeLoraUpdating(this.#opts.env)) {
      add('/v1/load_lora_adapter', ['POST'], (req, res, proc) => this.#loadRoute(req, res, proc));
      add('/v1/unload_lora_adapter', ['POST'], (req, res, proc) => this.#unloadRoute(req, res, proc));
    }
  }

  async #handle(req: IncomingMessage, res: ServerResponse, proc: ProcessState): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://sim');
    const path = url.pathname;
    if (this.#faults.resetRequests === true && path !== '/health' && path !== '/ping') {
      this.resetCount++;
      req.socket.destroy();
      return;
    }
    const methods = this.#routes.get(path);
    try {
      if (!methods) {
        // Starlette's redirect_slashes: the other spelling of an existing route redirects.
        const alt = path.endsWith('/') ? path.slice(0, -1) : `${path}/`;
        if (path !== '/' && this.#routes.has(alt)) {
          res.writeHead(307, { location: `${this.url}${alt}${url.search}`, 'content-length': '0' });
          res.end();
        } else {
          sendJson(res, 404, { detail: 'Not Found' });
        }
        return;
      }
      const handler = methods.get(req.method === 'HEAD' ? 'GET' : (req.method ?? ''));
      if (!handler) {
        sendJson(res, 405, { detail: 'Method Not Allowed' }, { allow: [...methods.keys()].join(', ') });
        return;
      }
      await handler(req, res, proc);
    } catch (e) {
      if (proc.abort.signal.aborted) return; // the process was killed mid-request
      debug(`${req.method ?? ''} ${path} failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
      if (!res.headersSent) sendText(res, 500, 'Internal Server Error', 'text/plain; charset=utf-8');
      else res.destroy();
    }
  }

  /** Reads and validates a JSON body; undefined when an error answer was sent. */
  async #jsonBody(
    req: IncomingMessage,
    res: ServerResponse,
    spec: Record<string, FieldSpec>,
  ): Promise<Record<string, unknown> | undefined> {
    const parsed = parseJsonBody(req, await buffer(req));
    if (!parsed.ok) {
      sendError(res, 400, parsed.error);
      return undefined;
    }
    const errors = validateObject(parsed.body, spec);
    if (errors.length > 0) {
      sendError(res, 400, validationError(errors));
      return undefined;
    }
    return parsed.body as Record<string, unknown>;
  }

  #log(
    e:
      | { kind: 'sim-serving'; adapters: string[] }
      | { kind: 'sim-stopped' }
      | { kind: 'adapter-loaded'; adapter: string },
    at?: number,
  ): void {
    this.#opts.timeline?.append({
      ...e,
      pod: this.#opts.timelineKey ?? this.url,
      ...(at === undefined ? {} : { at }),
    });
  }

  #lost(adapter: string, cause: LossCause, at?: number): void {
    this.#opts.timeline?.append({
      kind: 'adapter-lost',
      pod: this.#opts.timelineKey ?? this.url,
      adapter,
      cause,
      ...(at === undefined ? {} : { at }),
    });
  }

  #event(kind: SimEvent['kind'], name: string, status?: number): void {
    const e: SimEvent = { seq: ++this.#seq, at: this.#clock(), kind, name };
    if (status !== undefined) e.status = status;
    this.events.push(e);
  }

  // ---- LoRA -------------------------------------------------------------------------------------

  async #loadRoute(req: IncomingMessage, res: ServerResponse, proc: ProcessState): Promise<void> {
    const body = await this.#jsonBody(req, res, LOAD_SPEC);
    if (!body) return;
    const name = body.lora_name as string;
    const r = await this.#loadAdapter(
      proc,
      name,
      body.lora_path as string,
      body.load_inplace === true,
      undefined,
    );
    if ('body' in r) {
      sendError(res, r.status, r.body);
      return;
    }
    this.stats.loads++;
    sendText(res, 200, `Success: LoRA adapter '${name}' added successfully.`, 'text/plain; charset=utf-8');
  }

  /** OpenAIServingModels.load_lora_adapter: pre-checks and engine step under the per-name lock. */
  #loadAdapter(
    proc: ProcessState,
    name: string,
    path: string,
    inplace: boolean,
    baseModelName: string | undefined,
  ): Promise<Outcome> {
    this.#event('load-queued', name);
    return proc.locks.run(name, async (): Promise<Outcome> => {
      if (!name || !path) {
        return {
          status: 400,
          body: errorBody("Both 'lora_name' and 'lora_path' must be provided.", 'InvalidUserInput', 400),
        };
      }
      const existing = proc.adapters.get(name);
      if (existing && !inplace) {
        const msg = `The lora adapter '${name}' has already been loaded. If you want to load the adapter in place, set 'load_inplace' to True.`;
        return { status: 400, body: errorBody(msg, 'InvalidUserInput', 400) };
      }
      const id = existing?.id ?? proc.nextId++;
      this.#event('load-begin', name);
      const failure = await this.#engineAddLora(proc, name, path);
      if (failure) {
        this.#event('load-end', name, failure.status);
        return failure;
      }
      const adapter: Adapter = { id, name, path };
      if (baseModelName !== undefined && this.engineArgs.servedModelNames.includes(baseModelName)) {
        adapter.baseModelName = baseModelName;
      }
      proc.adapters.set(name, adapter); // an in-place reload keeps its place (and id), like a dict
      proc.cache(adapter, this.engineArgs.maxCpuLoras);
      this.#event('load-end', name, 200);
      // Static adapters (before serving starts) are logged with sim-serving.
      if (this.#proc === proc) this.#log({ kind: 'adapter-loaded', adapter: name });
      debug(`loaded ${name} from ${path}`);
      return { status: 200 };
    });
  }

  #engineDown(proc: ProcessState): boolean {
    return this.#faults.unhealthy === true || proc.engineDead;
  }

  /** engine_client.add_lora: undefined on success, else the error answer. */
  async #engineAddLora(proc: ProcessState, name: string, path: string): Promise<Outcome | undefined> {
    const signal = proc.abort.signal;
    const gate = this.#gate;
    if (gate) {
      await new Promise<void>((resolve, reject) => {
        const onAbort = (): void => {
          reject(new Error('aborted'));
        };
        if (signal.aborted) onAbort();
        signal.addEventListener('abort', onAbort, { once: true });
        void gate.promise.then(() => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        });
      });
    }
    const latency = this.#faults.loadLatencyMs ?? 0;
    if (latency > 0) await delay(latency, undefined, { signal });
    const fail = (f: { status: number; type: string; message: string }): Outcome => ({
      status: f.status,
      body: errorBody(f.message, f.type, f.status),
    });
    if (this.#faults.unhealthy || proc.engineDead) return fail(internal(ENGINE_DEAD_MESSAGE));
    const args = this.engineArgs;
    if (!args.enableLora) return fail(internal('LoRA is not enabled. Use --enable-lora to enable LoRA.'));
    const forced = (this.#faults.failLoads ?? []).find((f) => f.name === undefined || f.name === name);
    if (forced) {
      const base =
        forced.status === 404
          ? notFound(name, path)
          : internal(`Simulated failure loading LoRA adapter '${name}'.`);
      return fail({ ...base, message: forced.message ?? base.message });
    }
    const r = await inspectAdapter(name, path, this.#opts.resolvePath(path), args.maxLoraRank);
    if (isLoadFailure(r)) return fail(r);
    // Reading the weights: the adapter is not registered (nor listed) until this is over.
    if (this.adapterLoadMs > 0) {
      await delay(this.adapterLoadMs, undefined, { signal });
      if (this.#engineDown(proc)) return fail(internal(ENGINE_DEAD_MESSAGE)); // died meanwhile
    }
    return undefined;
  }

  async #unloadRoute(req: IncomingMessage, res: ServerResponse, proc: ProcessState): Promise<void> {
    const body = await this.#jsonBody(req, res, UNLOAD_SPEC);
    if (!body) return;
    const name = body.lora_name as string;
    this.#event('unload-queued', name);
    const r = await proc.locks.run(name, (): Promise<Outcome> => {
      if (!name) {
        const msg = "'lora_name' needs to be provided to unload a LoRA adapter.";
        return Promise.resolve({ status: 400, body: errorBody(msg, 'InvalidUserInput', 400) });
      }
      if (!proc.adapters.delete(name)) {
        const msg = `The lora adapter '${name}' cannot be found.`;
        return Promise.resolve({ status: 404, body: errorBody(msg, 'NotFoundError', 404) });
      }
      if (this.#proc === proc) this.#lost(name, 'unload');
      return Promise.resolve({ status: 200 });
    });
    this.#event('unload', name, r.status);
    if ('body' in r) {
      sendError(res, r.status, r.body);
      return;
    }
    this.stats.unloads++;
    sendText(res, 200, `Success: LoRA adapter '${name}' removed successfully.`, 'text/plain; charset=utf-8');
  }

  // ---- models, completions, metrics -------------------------------------------------------------

  async #complete(
    kind: CompletionKind,
    req: IncomingMessage,
    res: ServerResponse,
    proc: ProcessState,
  ): Promise<void> {
    const startedPerf = performance.now();
    const entry: SimRequest = {
      at: this.#clock(),
      kind,
      model: '',
      stream: false,
      served: false,
      status: 0,
      aborted: false,
      tokens: 0,
      durationMs: 0,
      done: false,
    };
    this.#requests.push({ entry, startedPerf });
    const gone = new AbortController();
    // The response closing before it finished: the client went away (or stop() cut the connection).
    res.on('close', () => {
      if (!res.writableFinished) gone.abort(new Error('client disconnected'));
    });
    const signal = AbortSignal.any([gone.signal, proc.abort.signal]);
    try {
      await this.#serveCompletion(kind, req, res, proc, entry, signal);
    } catch (e) {
      if (!signal.aborted) throw e;
      // Generation stopped with the connection: nothing more to answer.
    } finally {
      entry.status = res.headersSent ? res.statusCode : 0;
      entry.aborted = signal.aborted && !res.writableFinished;
      entry.durationMs = performance.now() - startedPerf;
      entry.done = true;
    }
  }

  async #serveCompletion(
    kind: CompletionKind,
    req: IncomingMessage,
    res: ServerResponse,
    proc: ProcessState,
    entry: SimRequest,
    signal: AbortSignal,
  ): Promise<void> {
    const parsed = parseJsonBody(req, await buffer(req));
    if (!parsed.ok) {
      sendError(res, 400, parsed.error);
      return;
    }
    const raw = parsed.body;
    if (typeof raw === 'object' && raw !== null && !Array.isArray(raw)) {
      const r = raw as Record<string, unknown>;
      entry.model = typeof r.model === 'string' ? r.model : '';
      entry.stream = r.stream === true;
    }
    // The stream_options check is a "before" model validator: it runs ahead of the field checks.
    const streamOptions = streamOptionsError(raw);
    const errors = streamOptions
      ? [streamOptions]
      : validateObject(raw, kind === 'chat' ? CHAT_SPEC : COMPLETION_SPEC);
    if (errors.length > 0) {
      sendError(res, 400, validationError(errors));
      return;
    }
    const body = raw as Record<string, unknown>;
    const args = this.engineArgs;
    const first = args.servedModelNames[0] ?? args.model;
    const addressed = typeof body.model === 'string' && body.model !== '' ? body.model : first;
    const adapter = proc.adapters.get(addressed); // an adapter wins over a base name it shadows
    if (!adapter && !args.servedModelNames.includes(addressed)) {
      sendError(
        res,
        404,
        errorBody(`The model \`${addressed}\` does not exist.`, 'NotFoundError', 404, 'model'),
      );
      return;
    }
    const maxModelLen = args.maxModelLen ?? DEFAULT_MAX_MODEL_LEN;
    const prompts = promptTokens(kind, body);
    const invalid = checkRequest(kind, body, prompts, maxModelLen);
    if (invalid) {
      sendError(res, invalid.error.code, invalid);
      return;
    }
    // Checked before any streaming starts, so a dead engine is a 500 for streams too.
    if (this.#engineDown(proc)) {
      sendEmpty(res, 500);
      return;
    }
    proc.inflight++;
    try {
      if (adapter && !proc.cpuCache.has(adapter.id)) {
        // Evicted from the CPU LRU: the worker re-reads it from lora_path; if that fails, the engine dies.
        if (!(await adapterReadable(this.#opts.resolvePath(adapter.path)))) {
          proc.engineDead = true;
          debug(`adapter ${adapter.name} no longer readable at ${adapter.path}: engine dead`);
          sendEmpty(res, 500);
          return;
        }
      }
      if (adapter) proc.cache(adapter, args.maxCpuLoras);
      entry.served = true;
      const job: Job = {
        proc,
        adapter: adapter?.name,
        choices: plan(kind, body, prompts, addressed, maxModelLen),
        prompts,
        entry,
        signal,
      };
      const created = Math.floor(this.#clock() / 1000);
      const model = adapter ? adapter.name : first;
      if (body.stream !== true) {
        if ((await this.#run(job, () => Promise.resolve())) === 'dead') {
          sendEmpty(res, 500);
          return;
        }
        this.#counted(addressed);
        const total = prompts.reduce((a, b) => a + b, 0);
        sendJson(res, 200, completionBody(kind, job.choices, total, model, created));
        return;
      }
      const usage = usageOptions(body);
      const ctx: StreamContext = {
        kind,
        id: requestId(kind),
        created,
        model,
        includeUsage: usage.include,
        continuousUsage: usage.continuous,
        promptTokens: prompts,
      };
      await this.#stream(job, ctx, res, addressed);
    } finally {
      proc.inflight--;
    }
  }

  /** Streams the job's tokens as server-sent events, exactly as vLLM frames them (stream.ts). */
  async #stream(job: Job, ctx: StreamContext, res: ServerResponse, addressed: string): Promise<void> {
    const { signal } = job;
    startStream(res);
    let first = true;
    const outcome = await this.#run(job, async (step) => {
      // vLLM sends the chat role chunk with the first output, just before its token.
      if (ctx.kind === 'chat' && first) await sendEvent(res, chatRoleChunk(ctx), signal);
      first = false;
      for (const t of step) {
        const data =
          ctx.kind === 'chat'
            ? chatContentChunk(ctx, t.token, t.finishReason, t.generated)
            : completionChunk(ctx, t.index, t.token, t.finishReason, t.generated);
        await sendEvent(res, data, signal);
      }
    });
    if (outcome === 'dead') {
      // The generator's `except Exception`: one error event, then [DONE] as usual.
      await sendEvent(res, streamingError(ENGINE_DEAD_MESSAGE), signal);
    } else {
      if (ctx.includeUsage) await sendEvent(res, usageChunk(ctx, job.entry.tokens), signal);
      this.#counted(addressed);
    }
    await sendEvent(res, DONE, signal);
    res.end();
  }

  /**
   * Schedules the job (it may wait for a LoRA slot) and runs its engine steps, calling `onStep`
   * with each step's tokens. 'dead' when the engine died midway.
   */
  async #run(job: Job, onStep: (step: TokenOut[]) => Promise<void>): Promise<'done' | 'dead'> {
    const { proc, signal } = job;
    const lora = this.engineArgs.enableLora;
    const timing = { firstTokenMs: this.firstTokenLatencyMs, tokenMs: this.tokenLatencyMs };
    const tick = (): void => {
      if (lora) proc.noteLora(this.#clock() / 1000);
    };
    const admitted = proc.sched.admit(job.adapter, signal);
    tick(); // running at once, or waiting for a slot
    try {
      await admitted;
    } catch (e) {
      tick(); // gone while waiting
      throw e;
    }
    try {
      tick();
      proc.promptTokens += job.prompts.reduce((a, b) => a + b, 0);
      for await (const step of engineSteps(job.choices, timing, signal)) {
        if (this.#engineDown(proc)) return 'dead';
        proc.generationTokens += step.length;
        job.entry.tokens += step.length;
        tick();
        await onStep(step);
      }
      for (const c of job.choices) proc.success[c.finishReason]++;
      return 'done';
    } finally {
      proc.sched.release(job.adapter);
      tick();
    }
  }

  #counted(addressed: string): void {
    this.stats.completions[addressed] = (this.stats.completions[addressed] ?? 0) + 1;
  }
}

/** One admitted completion request on its way through the engine. */
interface Job {
  proc: ProcessState;
  /** The adapter's name; undefined for the base model. */
  adapter: string | undefined;
  choices: PlannedChoice[];
  prompts: number[];
  entry: SimRequest;
  signal: AbortSignal;
}
