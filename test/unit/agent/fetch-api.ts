// The fetch agent's HTTP API as its tests call it: POST /v1/fetch and the reply.
import { createHash } from 'node:crypto';
import type { AgentServer } from '../../../src/agent/server.ts';

export interface Reply {
  status: number;
  body: {
    name?: string;
    path?: string;
    sha256?: string;
    bytes?: number;
    cached?: boolean;
    error?: { message: string };
  };
}

export function sha256(buf: Buffer): string {
  return createHash('sha256').update(buf).digest('hex');
}

/** POSTs a fetch request; every raw answer also goes to `seen`, so tests can search them for leaks. */
export async function postFetch(agent: AgentServer, body: unknown, seen: string[]): Promise<Reply> {
  const res = await fetch(`${agent.url}/v1/fetch`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  seen.push(text);
  return { status: res.status, body: JSON.parse(text) as Reply['body'] };
}
