// The operator's vLLM client against the simulator (which answers as vLLM does): every answer must
// land in the outcome the adapter sync acts on.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VllmClient } from '../../../../src/backends/vllm/client.ts';
import { writeAdapter } from '../../../../playground/adapters.ts';
import { VllmSimulator } from '../../../../playground/vllm-simulator.ts';

describe('vllm backend: HTTP client against the simulator', () => {
  let root: string;
  const client = new VllmClient({ timeoutMs: 10_000 });
  const sims: VllmSimulator[] = [];

  async function sim(
    env: Record<string, string> = { VLLM_ALLOW_RUNTIME_LORA_UPDATING: 'true' },
  ): Promise<VllmSimulator> {
    const s = new VllmSimulator({
      args: ['--model', 'org/base', '--served-model-name', 'base', '--enable-lora', '--max-lora-rank', '16'],
      env,
      resolvePath: (p) => (p.startsWith('/adapters/') ? join(root, p.slice('/adapters/'.length)) : undefined),
      host: '127.0.0.1',
      port: 0,
    });
    await s.start();
    sims.push(s);
    return s;
  }

  before(() => {
    root = mkdtempSync(join(tmpdir(), 'client-test-'));
    writeAdapter(join(root, 'small'), 8);
    writeAdapter(join(root, 'big'), 64);
  });

  after(async () => {
    await Promise.all(sims.map((s) => s.stop()));
    rmSync(root, { recursive: true, force: true });
  });

  it('loads, then counts a repeated load as loaded, and lists the adapter with its parent', async () => {
    const s = await sim();
    assert.deepEqual(await client.load(s.url, 'a', '/adapters/small'), { kind: 'loaded' });
    assert.deepEqual(await client.load(s.url, 'a', '/adapters/small'), { kind: 'already-loaded' });
    const cards = await client.listModels(s.url);
    assert.deepEqual(
      cards.map((c) => [c.id, c.parent ?? null, c.root]),
      [
        ['base', null, 'org/base'],
        ['a', 'base', '/adapters/small'],
      ],
    );
  });

  it("reports the engine's refusals with its message: bad path (404) and rank (500)", async () => {
    const s = await sim();
    const missing = await client.load(s.url, 'm', '/adapters/none');
    assert.ok(missing.kind === 'rejected', `got ${missing.kind}`);
    assert.match(missing.message, /No adapter found for \/adapters\/none/);
    const big = await client.load(s.url, 'b', '/adapters/big');
    assert.deepEqual(big, {
      kind: 'rejected',
      status: 500,
      message: 'LoRA rank 64 is greater than max_lora_rank 16.',
    });
  });

  it("counts a dead engine's 500 as the server's failure, to retry, not as the member's refusal", async () => {
    const s = await sim();
    s.crashEngine();
    const r = await client.load(s.url, 'a', '/adapters/small');
    assert.ok(r.kind === 'error', `got ${r.kind}`);
    assert.match(r.message, /^the engine is dead: EngineCore encountered an issue/);
  });

  it('stops a call when the caller cancels it', async () => {
    const s = await sim();
    const cancel = new AbortController();
    cancel.abort(new Error('leader lease lost'));
    await assert.rejects(client.listModels(s.url, cancel.signal), /leader lease lost/);
    const r = await client.load(s.url, 'a', '/adapters/small', false, cancel.signal);
    assert.deepEqual(r, { kind: 'error', message: 'leader lease lost' });
  });

  it('tells a missing route (runtime updates off) from a refused adapter', async () => {
    const s = await sim({});
    assert.deepEqual(await client.load(s.url, 'a', '/adapters/small'), { kind: 'route-missing' });
    assert.deepEqual(await client.unload(s.url, 'a'), { kind: 'route-missing' });
  });

  it('unloads, and treats unloading an unknown adapter as already done', async () => {
    const s = await sim();
    await client.load(s.url, 'a', '/adapters/small');
    assert.deepEqual(await client.unload(s.url, 'a'), { kind: 'unloaded' });
    assert.deepEqual(await client.unload(s.url, 'a'), { kind: 'not-loaded' });
  });

  it('turns a server that is gone into a transient error', async () => {
    const s = await sim();
    await s.stop();
    const outcome = await client.load(s.url, 'a', '/adapters/small');
    assert.equal(outcome.kind, 'error');
    await assert.rejects(client.listModels(s.url));
  });
});
