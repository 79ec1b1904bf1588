/**
 * The seam between the proxy and where requests go. The proxy resolves the model, chooses the
 * variant and rewrites the body; an Upstream says where one try of that request is sent.
 *
 * - vLLM pods (pod-upstream.ts): a pod that holds the adapter, with its own outstanding count.
 * - OCI (to plug in): `POST <modelDeploymentUrl>/predict`, with headers signed by oci-common's
 *   signer over the body. The body is known before sending (request bodies are buffered, so the
 *   signature can cover it); the response streams back through the same proxy code. Such an
 *   upstream returns one endpoint and, having nothing else to fall back to, undefined once it has
 *   been tried.
 */
import type { Agent, OutgoingHttpHeaders } from 'node:http';
import type { ServedTarget } from './names.ts';
import type { RoutingState } from './state.ts';

export interface UpstreamRequest {
  target: ServedTarget;
  /** The OpenAI path vLLM serves it on: /v1/completions or /v1/chat/completions. */
  path: string;
  /** The client's headers, minus hop-by-hop ones and Host/Content-Length. */
  headers: OutgoingHttpHeaders;
  /** The body with `model` rewritten to the served name. */
  body: Buffer;
  /** The snapshot the request was resolved with. */
  state: RoutingState;
}

/** Where one try goes. */
export interface UpstreamEndpoint {
  /** Names the endpoint among one request's tries (a pod name); what `tried` collects. */
  id: string;
  url: URL;
  headers: OutgoingHttpHeaders;
  /** What to send: the request's body, or another (e.g. re-shaped for the endpoint). */
  body: Buffer;
  /** The connection pool to send it with (an https.Agent for an https URL); default Node's global one. */
  agent?: Agent;
  /** Called once when the try is over, however it ended (releases the outstanding count). */
  release(): void;
  /** The endpoint refused the connection: keep it out of picks for a while. */
  refused(): void;
  /** The endpoint answered with this status (e.g. OCI's 401 for a key rotated since it was read). */
  answered?(status: number): void;
}

export interface Upstream {
  /**
   * The endpoint for the next try, or undefined when none is left: none can serve the target now, or
   * every one that could has been tried (`tried` holds their ids).
   */
  prepare(req: UpstreamRequest, tried: ReadonlySet<string>): Promise<UpstreamEndpoint | undefined>;
  /** Frees what it holds (connection pools, timers). */
  close(): void;
}
