/**
 * The wire contract between the operator and the fetch agent sidecar (src/agent/server.ts serves it,
 * src/backends/vllm/agent-client.ts calls it). One source for both sides, so they cannot drift.
 */

/** The port the agent listens on inside each vLLM pod. */
export const AGENT_PORT = 8089;

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
