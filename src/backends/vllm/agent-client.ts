/**
 * The fetch agent's API as the operator uses it (src/agent/server.ts is the other side, the contract
 * is src/api/agent/v1.ts): have a source downloaded into the pod's shared volume before vLLM loads
 * it, and remove what is no longer needed. Downloads are jobs on the agent; every call here is a
 * few short HTTP requests, so no reconcile ever waits for a download.
 */
import {
  FETCH_PATH,
  type FetchJobStatus,
  type FetchListBody,
  type FetchRequestBody,
  fetchJobPath,
  fetchRequestKey,
} from '../../api/agent/v1.ts';
import { errorText } from '../../runtime/errors.ts';

export type FetchOutcome =
  | { kind: 'fetched' }
  /** The agent is downloading it: ask again later (the job goes on without the caller). */
  | { kind: 'pending'; message: string }
  /** The source failed (bad checksum, too large, not an adapter, remote error): the member's fault. */
  | { kind: 'rejected'; message: string }
  /** The remote or the agent failed: retry with backoff. */
  | { kind: 'error'; message: string };

/** Each HTTP call to the agent, which answers from memory or a marker file, never after a download. */
export const AGENT_TIMEOUT_MS = 5_000;

async function message(res: Response): Promise<string> {
  const text = await res.text();
  try {
    return (JSON.parse(text) as { error?: { message?: string } }).error?.message ?? text;
  } catch {
    return text || res.statusText;
  }
}

/** A job's status as an outcome for the member. */
function outcome(status: FetchJobStatus): FetchOutcome {
  switch (status.state) {
    case 'Fetched':
      return { kind: 'fetched' };
    case 'Fetching':
      return {
        kind: 'pending',
        message: `downloading ${status.name} (${String(status.bytes ?? 0)} bytes so far)`,
      };
    case 'Failed': {
      const text = status.message ?? `fetching ${status.name} failed`;
      return status.reason === 'Rejected'
        ? { kind: 'rejected', message: text }
        : { kind: 'error', message: text };
    }
  }
}

export class AgentClient {
  private readonly timeoutMs: number;

  constructor(timeoutMs = AGENT_TIMEOUT_MS) {
    this.timeoutMs = timeoutMs;
  }

  /** The caller's signal (a reconcile cancelled, the lease lost) or the timeout, whichever is first. */
  private signal(signal: AbortSignal | undefined): AbortSignal {
    const timeout = AbortSignal.timeout(this.timeoutMs);
    return signal === undefined ? timeout : AbortSignal.any([signal, timeout]);
  }

  /**
   * One step towards `req` being on the pod: reads the agent's job for the name, and starts (or
   * restarts) it only when that job is not this request running, nor this request failed recently.
   * A failure is thus reported on every call until the agent's retry advice has passed, then the
   * next call retries it; a folder already there for this request answers 'fetched'.
   */
  async fetch(agentUrl: string, req: FetchRequestBody, signal?: AbortSignal): Promise<FetchOutcome> {
    try {
      const key = fetchRequestKey(req);
      const current = await this.status(agentUrl, req.name, signal);
      if (current?.request === key) {
        if (current.state === 'Fetching') return outcome(current);
        if (current.state === 'Failed' && (current.retryAfterMs ?? 0) > 0) return outcome(current);
      }
      const res = await fetch(`${agentUrl}${FETCH_PATH}`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(req),
        signal: this.signal(signal),
      });
      if (res.ok) return outcome((await res.json()) as FetchJobStatus);
      const msg = await message(res);
      // 400: the request itself is wrong, so the member is; retried on the member's schedule.
      return res.status === 400 ? { kind: 'rejected', message: msg } : { kind: 'error', message: msg };
    } catch (err) {
      return { kind: 'error', message: `fetch agent: ${errorText(err)}` };
    }
  }

  /** The job (or folder) of `name`; undefined when the agent knows none, or cannot say (a POST decides). */
  private async status(
    agentUrl: string,
    name: string,
    signal: AbortSignal | undefined,
  ): Promise<FetchJobStatus | undefined> {
    const res = await fetch(`${agentUrl}${fetchJobPath(name)}`, { signal: this.signal(signal) });
    if (!res.ok) {
      await res.body?.cancel();
      return undefined;
    }
    return (await res.json()) as FetchJobStatus;
  }

  /**
   * Names the agent holds: complete folders and unfinished jobs, so that removing a name no member
   * uses also cancels its download. Undefined when it cannot be asked (cleanup waits).
   */
  async list(agentUrl: string, signal?: AbortSignal): Promise<string[] | undefined> {
    try {
      const res = await fetch(`${agentUrl}${FETCH_PATH}`, { signal: this.signal(signal) });
      if (!res.ok) return undefined;
      const body = (await res.json()) as Partial<FetchListBody>;
      const names = [...(body.adapters ?? []), ...(body.jobs ?? [])].map((a) => a.name);
      return [...new Set(names)];
    } catch {
      return undefined;
    }
  }

  /** Cancels the name's download if it runs and removes its folder. */
  async remove(agentUrl: string, name: string, signal?: AbortSignal): Promise<void> {
    try {
      const res = await fetch(`${agentUrl}${fetchJobPath(name)}`, {
        method: 'DELETE',
        signal: this.signal(signal),
      });
      await res.body?.cancel();
    } catch {
      // Best effort: the next sync lists and removes it again.
    }
  }
}
