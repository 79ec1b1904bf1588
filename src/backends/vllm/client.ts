/**
 * vLLM's runtime LoRA API as the operator uses it, with every answer vLLM gives turned into an
 * outcome the sync can act on (shapes and statuses: vLLM's serving.py; see the project's reference).
 */
import { errorText } from '../../runtime/errors.ts';

/** A card of GET /v1/models; adapters have a parent, base models do not. */
export interface ModelCard {
  id: string;
  root?: string | null;
  parent?: string | null;
}

export type LoadOutcome =
  | { kind: 'loaded' }
  /** 400 "has already been loaded": another load won the race; it counts as loaded. */
  | { kind: 'already-loaded' }
  /** 404 bad path, 500 rank/config errors: the member's own fault, repeated until fixed. */
  | { kind: 'rejected'; status: number; message: string }
  /** The route itself is absent: VLLM_ALLOW_RUNTIME_LORA_UPDATING is off in that container. */
  | { kind: 'route-missing' }
  /** Anything else (timeouts, 5xx without an engine message, connection errors): retry with backoff. */
  | { kind: 'error'; message: string };

export type UnloadOutcome =
  | { kind: 'unloaded' }
  | { kind: 'not-loaded' }
  | { kind: 'route-missing' }
  | { kind: 'error'; message: string };

/** EngineDeadError's message (vllm/v1/engine/exceptions.py), the body of every call once the engine died. */
const ENGINE_DEAD = 'EngineCore encountered an issue.';

interface ErrorBody {
  error?: { message?: string; type?: string };
  message?: string;
  detail?: string;
}

async function readError(res: Response): Promise<{ message: string; routeMissing: boolean }> {
  const text = await res.text();
  try {
    const body = JSON.parse(text) as ErrorBody;
    // FastAPI's own 404 for a route that does not exist; vLLM's errors are {"error":{...}} since
    // v0.10.1 and a flat {"message"} before.
    if (body.detail === 'Not Found') return { message: 'Not Found', routeMissing: true };
    return { message: body.error?.message ?? body.message ?? text, routeMissing: false };
  } catch {
    return { message: text || res.statusText, routeMissing: false };
  }
}

export interface VllmClientOptions {
  /** Per request; a load reads the adapter from disk, so allow it time. */
  timeoutMs?: number;
  fetch?: typeof fetch;
}

export class VllmClient {
  private readonly timeoutMs: number;
  private readonly fetchFn: typeof fetch;

  constructor(opts: VllmClientOptions = {}) {
    this.timeoutMs = opts.timeoutMs ?? 120_000;
    this.fetchFn = opts.fetch ?? fetch;
  }

  /** The served models; throws when the server cannot be asked (the pod is then retried). */
  async listModels(baseUrl: string, signal?: AbortSignal): Promise<ModelCard[]> {
    const res = await this.fetchFn(`${baseUrl}/v1/models`, { signal: this.signal(signal) });
    if (!res.ok) throw new Error(`GET /v1/models answered ${res.status}: ${(await readError(res)).message}`);
    const body = (await res.json()) as { data?: ModelCard[] };
    return body.data ?? [];
  }

  async load(
    baseUrl: string,
    name: string,
    path: string,
    inPlace = false,
    signal?: AbortSignal,
  ): Promise<LoadOutcome> {
    let res: Response;
    try {
      res = await this.post(
        `${baseUrl}/v1/load_lora_adapter`,
        {
          lora_name: name,
          lora_path: path,
          ...(inPlace ? { load_inplace: true } : {}),
        },
        signal,
      );
    } catch (err) {
      return { kind: 'error', message: errorText(err) };
    }
    if (res.ok) {
      await res.text();
      return { kind: 'loaded' };
    }
    const { message, routeMissing } = await readError(res);
    if (routeMissing) return { kind: 'route-missing' };
    if (res.status === 400 && message.includes('has already been loaded')) return { kind: 'already-loaded' };
    // A dead engine answers every load with 500 too (vLLM's EngineDeadError handler): that is the
    // server's fault, not the member's; the pod is restarted by its liveness probe, then reloaded.
    if (res.status === 500 && message.startsWith(ENGINE_DEAD)) {
      return { kind: 'error', message: `the engine is dead: ${message}` };
    }
    if (res.status === 400 || res.status === 404 || res.status === 500) {
      return { kind: 'rejected', status: res.status, message };
    }
    return { kind: 'error', message: `load answered ${res.status}: ${message}` };
  }

  async unload(baseUrl: string, name: string, signal?: AbortSignal): Promise<UnloadOutcome> {
    let res: Response;
    try {
      res = await this.post(`${baseUrl}/v1/unload_lora_adapter`, { lora_name: name }, signal);
    } catch (err) {
      return { kind: 'error', message: errorText(err) };
    }
    if (res.ok) {
      await res.text();
      return { kind: 'unloaded' };
    }
    const { message, routeMissing } = await readError(res);
    if (routeMissing) return { kind: 'route-missing' };
    if (res.status === 404) return { kind: 'not-loaded' };
    return { kind: 'error', message: `unload answered ${res.status}: ${message}` };
  }

  /** The request's deadline, cut short when the reconcile is cancelled (lease lost, shutdown). */
  private signal(cancel: AbortSignal | undefined): AbortSignal {
    const timeout = AbortSignal.timeout(this.timeoutMs);
    return cancel === undefined ? timeout : AbortSignal.any([timeout, cancel]);
  }

  private post(url: string, body: object, signal?: AbortSignal): Promise<Response> {
    return this.fetchFn(url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
      signal: this.signal(signal),
    });
  }
}
