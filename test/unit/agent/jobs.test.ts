/**
 * The fetch agent's downloads as jobs (src/api/agent/v1.ts): POST answers at once, GET reads the job
 * back, a second POST joins it, a failure stays readable, DELETE cancels it. Against a real agent
 * server and a loopback HTTPS source whose downloads can be made to stall.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AgentError } from '../../../src/agent/errors.ts';
import { DEFAULT_RETRY_BACKOFF, failureReason, retryDelayMs } from '../../../src/agent/jobs.ts';
import { type AgentServer, startAgentServer } from '../../../src/agent/server.ts';
import { FETCH_PATH, type FetchListBody, fetchJobPath, fetchRequestKey } from '../../../src/api/agent/v1.ts';
import { getJob, postFetch, sha256, type Reply } from './fetch-api.ts';
import { type Remote, STALL_FIRST_BYTES, adapterArchive, startRemote, until } from './remote.ts';

/** What an answer that does not wait on a download takes, with room for a busy 2-core machine. */
const QUICK_MS = 1_000;

describe('agent/jobs: downloads as jobs', function () {
  this.timeout(20_000);
  let dir: string;
  let root: string;
  let remote: Remote;
  let agent: AgentServer;
  let archive: Buffer;
  const seen: string[] = [];
  const logs: { msg: string; meta?: Record<string, unknown> }[] = [];

  const post = (body: unknown): Promise<Reply> => postFetch(agent, body, seen);
  const get = (name: string): Promise<Reply> => getJob(agent, name, seen);
  /** Reads the job of `name` until it is no longer Fetching. */
  const settled = (name: string): Promise<Reply> =>
    until(`${name} to settle`, async () => {
      const r = await get(name);
      return r.body.state === 'Fetching' ? undefined : r;
    });
  /** Reads the job of `name` until it shows the stalled source's first bytes. */
  const started = (name: string): Promise<Reply> =>
    until(`${name} to start downloading`, async () => {
      const r = await get(name);
      return (r.body.bytes ?? 0) >= STALL_FIRST_BYTES ? r : undefined;
    });
  const timed = async <T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> => {
    const t0 = performance.now();
    const value = await fn();
    return { value, ms: performance.now() - t0 };
  };
  const staging = (): Promise<string[]> => readdir(join(root, '.staging'));

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'agent-jobs-'));
    root = join(dir, 'root');
    remote = await startRemote();
    archive = await adapterArchive();
    agent = await startAgentServer({
      host: '127.0.0.1',
      port: 0,
      root,
      ca: remote.ca,
      log: (msg, meta) => logs.push(meta === undefined ? { msg } : { msg, meta }),
    });
  });

  after(async () => {
    await agent.close();
    await remote.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('answers 202 Fetching at once, then GET reads the job Fetched', async () => {
    const stall = remote.stall('/later.tgz', archive);
    const body = { name: 'later', uri: `${remote.url}/later.tgz` };
    const { value: posted, ms } = await timed(() => post(body));
    assert.equal(posted.status, 202, JSON.stringify(posted.body));
    assert.ok(ms < QUICK_MS, `POST took ${ms.toFixed(0)} ms`);
    assert.equal(posted.body.state, 'Fetching');
    assert.equal(posted.body.name, 'later');
    assert.equal(posted.body.request, fetchRequestKey(body));
    assert.ok(!Number.isNaN(Date.parse(posted.body.startedAt ?? '')), 'startedAt is a date');
    assert.equal((await started('later')).body.state, 'Fetching');
    stall.release();
    const done = await settled('later');
    assert.equal(done.status, 200);
    assert.deepEqual(done.body, {
      name: 'later',
      state: 'Fetched',
      sha256: sha256(archive),
      bytes: archive.length,
    });
    assert.deepEqual((await readdir(join(root, 'later'))).sort(), [
      'adapter_config.json',
      'adapter_model.safetensors',
    ]);
    assert.deepEqual(await staging(), []);
  });

  it('keeps answering quickly while a slow source downloads, and a second POST joins the job', async () => {
    const stall = remote.stall('/slow.tgz', archive);
    const body = { name: 'slow', uri: `${remote.url}/slow.tgz` };
    const first = await timed(() => post(body));
    assert.equal(first.value.status, 202);
    assert.ok(first.ms < QUICK_MS, `POST took ${first.ms.toFixed(0)} ms`);
    const progress = await started('slow');
    assert.equal(progress.body.bytes, STALL_FIRST_BYTES, 'the job shows the bytes received so far');
    for (let i = 0; i < 3; i++) {
      const again = await timed(() => post(body));
      assert.equal(again.value.status, 202);
      assert.ok(again.ms < QUICK_MS, `POST took ${again.ms.toFixed(0)} ms`);
      assert.equal(again.value.body.startedAt, first.value.body.startedAt, 'the same job');
      const read = await timed(() => get('slow'));
      assert.equal(read.value.body.state, 'Fetching');
      assert.ok(read.ms < QUICK_MS, `GET took ${read.ms.toFixed(0)} ms`);
    }
    assert.equal(stall.requests, 1, 'one download for all the POSTs');
    const listed = (await (await fetch(`${agent.url}${FETCH_PATH}`)).json()) as FetchListBody;
    assert.deepEqual(
      listed.jobs.filter((j) => j.name === 'slow').map((j) => j.state),
      ['Fetching'],
      'the running job is listed',
    );
    stall.release();
    assert.equal((await settled('slow')).body.state, 'Fetched');
    assert.equal(stall.requests, 1);
  });

  it('keeps a failed job readable as Failed with its reason, until the next POST retries it', async () => {
    const body = { name: 'flaky', uri: `${remote.url}/flaky.tgz` };
    assert.equal((await post(body)).status, 202);
    const failed = await settled('flaky');
    assert.equal(failed.status, 200);
    assert.equal(failed.body.state, 'Failed');
    assert.equal(failed.body.reason, 'Rejected', 'a 404 of the source is its own fault');
    assert.equal(failed.body.message, `GET ${remote.url}/flaky.tgz: 404 Not Found`);
    assert.equal(failed.body.attempts, 1);
    assert.equal(failed.body.request, fetchRequestKey(body));
    const advice = failed.body.retryAfterMs ?? 0;
    assert.ok(advice > 0 && advice <= DEFAULT_RETRY_BACKOFF.baseMs, `retryAfterMs ${advice}`);

    // Reading it does not retry it, however often.
    for (let i = 0; i < 3; i++) {
      const read = await get('flaky');
      assert.equal(read.body.state, 'Failed');
      assert.equal(read.body.reason, 'Rejected');
    }
    const listed = (await (await fetch(`${agent.url}${FETCH_PATH}`)).json()) as FetchListBody;
    assert.deepEqual(
      listed.jobs.filter((j) => j.name === 'flaky').map((j) => [j.state, j.reason]),
      [['Failed', 'Rejected']],
    );
    assert.equal(remote.hits.get('/flaky.tgz'), 1);

    // The next POST retries it; failing again, it counts the attempts and backs off further.
    assert.equal((await post(body)).status, 202);
    const again = await settled('flaky');
    assert.equal(again.body.state, 'Failed');
    assert.equal(again.body.attempts, 2);
    assert.ok((again.body.retryAfterMs ?? 0) > DEFAULT_RETRY_BACKOFF.baseMs, 'the advice doubles');
    assert.equal(remote.hits.get('/flaky.tgz'), 2);

    // Once the source is there, a retry fetches it and the failure is gone.
    remote.files.set('/flaky.tgz', archive);
    await post(body);
    assert.equal((await settled('flaky')).body.state, 'Fetched');
    const after = (await (await fetch(`${agent.url}${FETCH_PATH}`)).json()) as FetchListBody;
    assert.equal(
      after.jobs.some((j) => j.name === 'flaky'),
      false,
    );
  });

  it('cancels a running job on DELETE: the download stops and its staging folder is removed', async () => {
    const stall = remote.stall('/doomed.tgz', archive);
    assert.equal((await post({ name: 'doomed', uri: `${remote.url}/doomed.tgz` })).status, 202);
    await started('doomed');
    assert.equal((await staging()).length, 1, 'the download is staged');
    const res = await fetch(`${agent.url}${fetchJobPath('doomed')}`, { method: 'DELETE' });
    assert.equal(res.status, 204);
    // Done by the time DELETE answers.
    assert.deepEqual(await staging(), []);
    const gone = await get('doomed');
    assert.equal(gone.status, 404);
    assert.equal(gone.body.error?.message, 'no fetch job or folder named doomed');
    await until('the source to see the agent hang up', () => (stall.cutOff === 1 ? true : undefined));
    assert.ok(logs.some((l) => l.msg === 'fetch cancelled' && l.meta?.['name'] === 'doomed'));
    // Releasing the source now brings nothing back.
    stall.release();
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(existsSync(join(root, 'doomed')), false);
    assert.equal(existsSync(join(root, '.doomed.json')), false);
    assert.equal(stall.requests, 1);
  });

  it('replaces a running job when the same name is asked with another source', async () => {
    const stall = remote.stall('/old.tgz', archive);
    const old = await post({ name: 'moving', uri: `${remote.url}/old.tgz` });
    assert.equal(old.status, 202);
    await started('moving');
    const fresh = await adapterArchive();
    remote.files.set('/new.tgz', fresh);
    const body = { name: 'moving', uri: `${remote.url}/new.tgz` };
    const replaced = await post(body);
    assert.equal(replaced.body.request, fetchRequestKey(body));
    assert.notEqual(replaced.body.request, old.body.request);
    const done = await settled('moving');
    assert.equal(done.body.state, 'Fetched');
    assert.equal(done.body.sha256, sha256(fresh), 'the newer source');
    await until('the older download to be cut off', () => (stall.cutOff === 1 ? true : undefined));
    assert.deepEqual(await staging(), []);
  });

  it('answers 404 for a name it knows nothing of, 400 for a bad name', async () => {
    const unknown = await get('never-asked');
    assert.equal(unknown.status, 404);
    assert.deepEqual(unknown.body, { error: { message: 'no fetch job or folder named never-asked' } });
    const bad = await fetch(`${agent.url}${FETCH_PATH}/..%2Fetc`);
    assert.equal(bad.status, 400);
  });

  it('stops its running downloads when it closes', async () => {
    const own = await startAgentServer({
      host: '127.0.0.1',
      port: 0,
      root: join(dir, 'root2'),
      ca: remote.ca,
    });
    const stall = remote.stall('/closing.tgz', archive);
    assert.equal(
      (await postFetch(own, { name: 'closing', uri: `${remote.url}/closing.tgz` }, seen)).status,
      202,
    );
    await until('the download to start', () => (stall.requests === 1 ? true : undefined));
    const closing = await timed(() => own.close());
    assert.ok(closing.ms < QUICK_MS, `close took ${closing.ms.toFixed(0)} ms`);
    assert.deepEqual(await readdir(join(dir, 'root2', '.staging')), []);
    await until('the source to see the agent hang up', () => (stall.cutOff === 1 ? true : undefined));
    stall.release();
  });

  it("calls a failure Rejected when it is the source's fault, Error when it is the agent's", () => {
    for (const status of [400, 422, 502])
      assert.equal(failureReason(new AgentError(status, 'x')), 'Rejected');
    assert.equal(failureReason(new AgentError(500, 'x')), 'Error');
    assert.equal(
      failureReason(Object.assign(new Error('ENOSPC: no space left'), { syscall: 'write' })),
      'Error',
    );
  });

  it('advises a retry delay that doubles with each failure in a row, up to its cap', () => {
    const backoff = { baseMs: 10, maxMs: 50 };
    assert.deepEqual(
      [1, 2, 3, 4].map((n) => retryDelayMs(backoff, n)),
      [10, 20, 40, 50],
    );
  });
});
