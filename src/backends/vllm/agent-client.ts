/**
 * The fetch agent's API as the operator uses it (src/agent/server.ts is the other side): download a
 * uri source into the pod's shared volume before vLLM loads it, and remove what is no longer needed.
 */
import type { FetchRequestBody as FetchRequest } from '../../api/agent/v1.ts';
import { errorText } from '../../runtime/errors.ts';

export type FetchOutcome =
  | { kind: 'fetched' }
  /** The source failed (bad checksum, too large, not an adapter, remote error): the member's fault. */
  | { kind: 'rejected'; message: string }
  /** The remote or the agent failed: retry with backoff. */
  | { kind: 'error'; message: string };

async function message(res: Response): Promise<string> {
  const text = await res.text();
  try {
    return (JSON.parse(text) as { error?: { message?: string } }).error?.message ?? text;
  } catch {
    return text || res.statusText;
  }
}

export class AgentClient {
  private readonly timeoutMs: number;

  /** Downloads can be large: the timeout covers the whole fetch. */
  constructor(timeoutMs = 30 * 60_000) {
    this.timeoutMs = timeoutMs;
  }

  async fetch(agentUrl: string, req: FetchRequest): Promise<FetchOutcome> {
    try {
      const res = await fetch(`${agentUrl}/v1/fetch`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(req),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      if (res.ok) {
        await res.text();
        return { kind: 'fetched' };
      }
      const msg = await message(res);
      // 400/422: the source itself is wrong; 502: its server refused or failed. Both are the member's
      // problem, reported on it and retried on the member's schedule; the pod itself is fine.
      return res.status === 400 || res.status === 422 || res.status === 502
        ? { kind: 'rejected', message: msg }
        : { kind: 'error', message: msg };
    } catch (err) {
      return { kind: 'error', message: `fetch agent: ${errorText(err)}` };
    }
  }

  /** Names of the folders the agent holds; undefined when it cannot be asked (cleanup waits). */
  async list(agentUrl: string): Promise<string[] | undefined> {
    try {
      const res = await fetch(`${agentUrl}/v1/fetch`, { signal: AbortSignal.timeout(10_000) });
      if (!res.ok) return undefined;
      return ((await res.json()) as { adapters?: { name: string }[] }).adapters?.map((a) => a.name) ?? [];
    } catch {
      return undefined;
    }
  }

  async remove(agentUrl: string, name: string): Promise<void> {
    try {
      await fetch(`${agentUrl}/v1/fetch/${encodeURIComponent(name)}`, {
        method: 'DELETE',
        signal: AbortSignal.timeout(10_000),
      });
    } catch {
      // Best effort: the next sync lists and removes it again.
    }
  }
}
