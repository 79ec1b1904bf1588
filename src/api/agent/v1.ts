/**
 * The wire contract between the operator and the fetch agent sidecar (src/agent/server.ts serves it,
 * src/backends/vllm/agent-client.ts calls it). One source for both sides, so they cannot drift.
 *
 * Downloads are jobs, like OCI work requests: `POST /v1/fetch` starts one and answers at once (200
 * and state Fetched when the folder is already there for that request, 202 and state Fetching
 * otherwise; 400 for a body it refuses); `GET /v1/fetch/<name>` reads it; `DELETE /v1/fetch/<name>`
 * cancels it and removes the folder; `GET /v1/fetch` lists the folders and the unfinished jobs.
 * Errors are `{ error: { message } }`.
 */
import { createHash } from 'node:crypto';

/** The port the agent listens on inside each vLLM pod. */
export const AGENT_PORT = 8089;

/** The agent's entry point in the operator's image (the Dockerfile builds dist/ from src/). */
export const AGENT_COMMAND = ['node', 'dist/agent.mjs'] as const;

/** `POST` starts a job, `GET` lists the folders and jobs. */
export const FETCH_PATH = '/v1/fetch';

/** `GET` reads the job (or the folder) of one name, `DELETE` cancels it and removes the folder. */
export function fetchJobPath(name: string): string {
  return `${FETCH_PATH}/${encodeURIComponent(name)}`;
}

/** The body of `POST /v1/fetch`: what to download into the pod's adapter volume, and under which name. */
export interface FetchRequestBody {
  name: string;
  uri?: string;
  modelId?: string;
  /** A base model (config.json) rather than an adapter (adapter_config.json). */
  content?: 'model';
  sha256?: string;
  maxBytes?: number;
  secret?: { name: string; key: string };
}

export type FetchJobState = 'Fetching' | 'Fetched' | 'Failed';

/**
 * Why a job failed. Rejected: the source's fault or its server's (not found, refused, unreachable,
 * bad checksum, too large, unsafe or not a model; a Secret or OCI access missing), reported on the
 * member; the pod itself is fine. Error: the agent's own trouble (disk full, a bug).
 */
export type FetchFailureReason = 'Rejected' | 'Error';

/** The answer of `POST /v1/fetch` and `GET /v1/fetch/<name>`. */
export interface FetchJobStatus {
  name: string;
  state: FetchJobState;
  /**
   * {@link fetchRequestKey} of the request the job runs, so a caller knows whether the job is its
   * own. Absent for a folder found on disk with no job in memory (the agent restarted since).
   */
  request?: string;
  /** Failed only. */
  reason?: FetchFailureReason;
  /** Failed: what went wrong (never a credential). */
  message?: string;
  /** When the job started (RFC 3339). */
  startedAt?: string;
  /** Fetching: bytes downloaded so far. Fetched: size of the archive (or sum of the objects). */
  bytes?: number;
  /** Fetched: hex SHA-256 of the archive (of the manifest for a folder of objects). */
  sha256?: string;
  /** Failed: how many times in a row this same request has failed. */
  attempts?: number;
  /**
   * Failed: milliseconds until a retry is worth it (the agent's backoff, on its own clock, over the
   * consecutive failures); 0 once that time has passed. The next POST retries in any case.
   */
  retryAfterMs?: number;
}

/** One folder in `GET /v1/fetch`. */
export interface FetchedFolder {
  name: string;
  uri: string;
  sha256: string;
  bytes: number;
}

/** The answer of `GET /v1/fetch`: complete folders, and the jobs still running or failed. */
export interface FetchListBody {
  adapters: FetchedFolder[];
  jobs: FetchJobStatus[];
}

/** The body of every error answer. */
export interface AgentErrorBody {
  error: { message: string };
}

/**
 * A digest of everything in a request that shapes its result, the same on both sides whatever the
 * key order of the JSON. A digest rather than the fields: a pre-signed uri is a credential.
 */
export function fetchRequestKey(body: FetchRequestBody): string {
  const fields = [
    body.name,
    body.uri ?? null,
    body.modelId ?? null,
    body.content ?? null,
    body.sha256 ?? null,
    body.maxBytes ?? null,
    body.secret?.name ?? null,
    body.secret?.key ?? null,
  ];
  return createHash('sha256').update(JSON.stringify(fields)).digest('hex');
}
