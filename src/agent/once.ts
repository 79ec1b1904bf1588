/**
 * One-shot mode: one fetch into the root, then done. An init container runs it for a base model
 * from a uri or the Model Catalog, so vLLM starts with the weights already on its volume. Unlike the
 * server's jobs it waits for the download: the container's exit is what lets vLLM start.
 */
import { badRequest } from './errors.ts';
import type { FetchResult } from './fetcher.ts';
import { parseFetchRequest } from './request.ts';
import { type AgentOptions, prepare } from './server.ts';

/** Fetches the JSON request `json`; throws an AgentError (or a system error) when it fails. */
export async function fetchOnce(
  opts: Omit<AgentOptions, 'host' | 'port'>,
  json: string,
): Promise<FetchResult> {
  let body: unknown;
  try {
    body = JSON.parse(json);
  } catch {
    throw badRequest('--fetch is not valid JSON');
  }
  const prepared = await prepare(opts);
  try {
    return await prepared.fetcher.fetch(parseFetchRequest(body, prepared.defaultMaxBytes));
  } finally {
    prepared.close();
  }
}
