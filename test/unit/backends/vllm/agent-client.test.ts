// The operator's fetch agent client against a real agent server (and a loopback HTTPS source whose
// downloads can be made to stall): every call is short, whatever the download does, and every
// state of the agent's job lands in the outcome the adapter sync acts on.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type AgentServer, startAgentServer } from '../../../../src/agent/server.ts';
import { type FetchJobStatus, fetchRequestKey } from '../../../../src/api/agent/v1.ts';
import { AgentClient, type FetchOutcome } from '../../../../src/backends/vllm/agent-client.ts';
import { type Remote, adapterArchive, startRemote, until } from '../../agent/remote.ts';

/** What a call that does not wait on a download takes, with room for a busy 2-core machine. */
const QUICK_MS = 1_000;
/** The agent's retry advice after a failure, short for the test. */
const RETRY_MS = 300;

async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const t0 = performance.now();
  const value = await fn();
  return { value, ms: performance.now() - t0 };
}

/** A stand-in agent on loopback that answers with `handler` (or never, if it does not end the response). */
async function fakeAgent(
  handler: Parameters<typeof createServer>[1],
): Promise<{ url: string; server: Server; close(): Promise<void> }> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    server,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => {
        server.close(() => {
          resolve();
        });
      });
    },
  };
}

describe('vllm backend: fetch agent client against a real agent', function () {
  this.timeout(20_000);
  let dir: string;
  let remote: Remote;
  let agent: AgentServer;
  let archive: Buffer;
  const client = new AgentClient();

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'agent-client-'));
    remote = await startRemote();
    archive = await adapterArchive();
    agent = await startAgentServer({
      host: '127.0.0.1',
      port: 0,
      root: join(dir, 'root'),
      ca: remote.ca,
      retryBackoff: { baseMs: RETRY_MS, maxMs: RETRY_MS },
    });
  });

  after(async () => {
    await agent.close();
    await remote.close();
    await rm(dir, { recursive: true, force: true });
  });

  const settled = (what: string, ask: () => Promise<FetchOutcome>): Promise<FetchOutcome> =>
    until(what, async () => {
      const got = await ask();
      return got.kind === 'pending' ? undefined : got;
    });

  it('answers pending at once while a download does not finish, then fetched, with one download', async () => {
    const stall = remote.stall('/slow.tgz', archive);
    const req = { name: 'slow', uri: `${remote.url}/slow.tgz` };
    for (let i = 0; i < 4; i++) {
      const { value, ms } = await timed(() => client.fetch(agent.url, req));
      assert.equal(value.kind, 'pending', JSON.stringify(value));
      assert.ok(ms < QUICK_MS, `fetch took ${ms.toFixed(0)} ms`);
    }
    assert.equal(stall.requests, 1, 'the calls joined one download');
    stall.release();
    assert.deepEqual(await settled('the download', () => client.fetch(agent.url, req)), { kind: 'fetched' });
    assert.deepEqual(await client.fetch(agent.url, req), { kind: 'fetched' }, 'from the folder');
    assert.equal(stall.requests, 1);
  });

  it("reports a failed source as rejected, and retries it only once the agent's advice has passed", async () => {
    const req = { name: 'missing', uri: `${remote.url}/missing.tgz` };
    const failed = await settled('the failure', () => client.fetch(agent.url, req));
    assert.deepEqual(failed, { kind: 'rejected', message: `GET ${remote.url}/missing.tgz: 404 Not Found` });
    assert.equal((await client.fetch(agent.url, req)).kind, 'rejected', 'still reported');
    assert.equal(remote.hits.get('/missing.tgz'), 1, 'not retried within the advice');
    await new Promise((resolve) => setTimeout(resolve, RETRY_MS + 50));
    remote.files.set('/missing.tgz', archive);
    assert.deepEqual(await settled('the retry', () => client.fetch(agent.url, req)), { kind: 'fetched' });
    assert.equal(remote.hits.get('/missing.tgz'), 2, 'retried once');
  });

  it('reports a request the agent refuses (400) as rejected', async () => {
    const got = await client.fetch(agent.url, { name: 'plain', uri: 'http://127.0.0.1/a.tgz' });
    assert.ok(got.kind === 'rejected', JSON.stringify(got));
    assert.match(got.message, /uri must be an https URL/);
  });

  it('reports a job that failed for reasons of its own as error, without starting it again', async () => {
    const req = { name: 'disk', uri: 'https://example.invalid/a.tgz' };
    const status: FetchJobStatus = {
      name: 'disk',
      state: 'Failed',
      reason: 'Error',
      message: 'ENOSPC: no space left on device',
      request: fetchRequestKey(req),
      retryAfterMs: 5_000,
    };
    const methods: string[] = [];
    const fake = await fakeAgent((r, res) => {
      methods.push(r.method ?? '');
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(status));
    });
    try {
      assert.deepEqual(await client.fetch(fake.url, req), {
        kind: 'error',
        message: 'ENOSPC: no space left on device',
      });
      assert.deepEqual(methods, ['GET'], 'no POST within the advice');
    } finally {
      await fake.close();
    }
  });

  it('starts the newer request when the agent still runs an older one for the name', async () => {
    const stall = remote.stall('/old.tgz', archive);
    assert.equal(
      (await client.fetch(agent.url, { name: 'moved', uri: `${remote.url}/old.tgz` })).kind,
      'pending',
    );
    await until('the older download', () => (stall.requests === 1 ? true : undefined));
    remote.files.set('/new.tgz', archive);
    const req = { name: 'moved', uri: `${remote.url}/new.tgz` };
    assert.deepEqual(await settled('the newer request', () => client.fetch(agent.url, req)), {
      kind: 'fetched',
    });
    await until('the older download to be cut off', () => (stall.cutOff === 1 ? true : undefined));
  });

  it('lists folders and running downloads, and remove cancels a running download', async () => {
    const stall = remote.stall('/listed.tgz', archive);
    assert.equal(
      (await client.fetch(agent.url, { name: 'listed', uri: `${remote.url}/listed.tgz` })).kind,
      'pending',
    );
    const names = await client.list(agent.url);
    assert.ok(names !== undefined);
    assert.ok(names.includes('slow'), 'a folder');
    assert.ok(names.includes('listed'), 'a running download');
    await until('the download to start', () => (stall.requests === 1 ? true : undefined));
    await client.remove(agent.url, 'listed');
    await until('the download to be cut off', () => (stall.cutOff === 1 ? true : undefined));
    assert.equal((await client.list(agent.url))?.includes('listed'), false);
    await client.remove(agent.url, 'slow');
    assert.equal((await client.list(agent.url))?.includes('slow'), false);
  });

  it('reports an agent that cannot be reached, or does not answer, as error within its timeout', async () => {
    const refused = await client.fetch('http://127.0.0.1:1', { name: 'x', uri: `${remote.url}/x.tgz` });
    assert.equal(refused.kind, 'error');
    const silent = await fakeAgent(() => undefined);
    try {
      const short = new AgentClient(200);
      const { value, ms } = await timed(() =>
        short.fetch(silent.url, { name: 'x', uri: `${remote.url}/x.tgz` }),
      );
      assert.equal(value.kind, 'error');
      assert.ok(ms < QUICK_MS, `fetch took ${ms.toFixed(0)} ms`);
      const listed = await timed(() => short.list(silent.url));
      assert.equal(listed.value, undefined);
      assert.ok(listed.ms < QUICK_MS, `list took ${listed.ms.toFixed(0)} ms`);
      const removed = await timed(() => short.remove(silent.url, 'x'));
      assert.ok(removed.ms < QUICK_MS, `remove took ${removed.ms.toFixed(0)} ms`);
    } finally {
      await silent.close();
    }
  });

  it("stops as soon as the caller's signal aborts, well before its own timeout", async () => {
    const silent = await fakeAgent(() => undefined);
    try {
      const patient = new AgentClient(10_000);
      const req = { name: 'x', uri: `${remote.url}/x.tgz` };
      const calls: [string, (signal: AbortSignal) => Promise<unknown>][] = [
        ['fetch', (signal) => patient.fetch(silent.url, req, signal)],
        ['list', (signal) => patient.list(silent.url, signal)],
        ['remove', (signal) => patient.remove(silent.url, 'x', signal)],
      ];
      for (const [name, call] of calls) {
        const { value, ms } = await timed(() => call(AbortSignal.timeout(100)));
        assert.ok(ms < QUICK_MS, `${name} took ${ms.toFixed(0)} ms`);
        if (name === 'fetch') assert.equal((value as FetchOutcome).kind, 'error');
      }
    } finally {
      await silent.close();
    }
  });
});
