// The fetch agent's HTTP API as its tests call it: POST /v1/fetch, GET /v1/fetch/<name>, and a POST
// followed until its job settles.
import { createHash } from 'node:crypto';
import type { AgentServer } from '../../../src/agent/server.ts';
import { FETCH_PATH, type FetchJobStatus, fetchJobPath } from '../../../src/api/agent/v1.ts';

export interface Reply {
  status: number;
  /** A job status, or an error body. */
  body: Partial<FetchJobStatus> & { error?: { message: string } };
}

export function sha256(buf: Buffer): string {
  return createHash('sha256').update(buf).digest('hex');
}

async function reply(res: Response, seen: string[]): Promise<Reply> {
  const text = await res.text();
  seen.push(text);
  return { status: res.status, body: JSON.parse(text) as Reply['body'] };
}

/** POSTs a fetch request; every raw answer also goes to `seen`, so tests can search them for leaks. */
export async function postFetch(agent: AgentServer, body: unknown, seen: string[]): Promise<Reply> {
  const res = await fetch(`${agent.url}${FETCH_PATH}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return reply(res, seen);
}

export async function getJob(agent: AgentServer, name: string, seen: string[]): Promise<Reply> {
  return reply(await fetch(`${agent.url}${fetchJobPath(name)}`), seen);
}

/**
 * POSTs a fetch request, then reads its job until it is no longer Fetching: the answer the
 * synchronous API used to give. A POST the agent refuses (400) is returned as it is.
 */
export async function fetchSettled(agent: AgentServer, body: unknown, seen: string[]): Promise<Reply> {
  const posted = await postFetch(agent, body, seen);
  if (posted.status !== 202) return posted;
  const name = posted.body.name ?? '';
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, 10));
    const got = await getJob(agent, name, seen);
    if (got.body.state !== 'Fetching') return got;
  }
}
