// The simulator's streaming, request timing, request log and in-flight metrics, against facts read
// from vLLM's source (test/fixtures/vllm-streaming.md).

import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { type IncomingHttpHeaders, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { type SimulatorOptions, VllmSimulator } from '../../playground/vllm-simulator.ts';

const ARGS = [
  '--model',
  'meta-llama/Llama-3.1-8B-Instruct',
  '--served-model-name',
  'basemodel',
  '--enable-lora',
  '--max-loras',
  '1',
  '--max-cpu-loras',
  '4',
];
const ON = { VLLM_ALLOW_RUNTIME_LORA_UPDATING: 'True' };

interface Streamed {
  status: number;
  headers: IncomingHttpHeaders;
  raw: string;
  /** performance.now() at each body chunk received */
  arrivals: number[];
}

/** POSTs JSON and collects the raw body with the arrival time of each network chunk. */
function post(base: string, path: string, json: unknown): Promise<Streamed> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${base}${path}`,
      { method: 'POST', headers: { 'content-type': 'application/json' }, agent: false },
      (res) => {
        const out: Streamed = { status: res.statusCode ?? 0, headers: res.headers, raw: '', arrivals: [] };
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          out.raw += c;
          out.arrivals.push(performance.now());
        });
        res.on('end', () => {
          resolve(out);
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify(json));
  });
}

/** The data of each event; asserts the exact `data: ...\n\n` framing. */
function events(raw: string): string[] {
  assert.ok(raw.endsWith('\n\n'), 'every event ends with a blank line');
  return raw
    .slice(0, -2)
    .split('\n\n')
    .map((e) => {
      assert.ok(e.startsWith('data: '), `event framed as data: ${e}`);
      return e.slice('data: '.length);
    });
}

function parse(data: string): Record<string, unknown> {
  return JSON.parse(data) as Record<string, unknown>;
}

async function until(cond: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 1000; i++) {
    if (await cond()) return;
    await sleep(5);
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('vLLM simulator: streaming, timing and the request log', () => {
  let root: string;
  const running: VllmSimulator[] = [];

  async function sim(over: Partial<SimulatorOptions> = {}): Promise<VllmSimulator> {
    const s = new VllmSimulator({
      args: ARGS,
      env: ON,
      resolvePath: (p) => (p.startsWith('/mnt/') ? join(root, p.slice(5)) : undefined),
      host: '127.0.0.1',
      port: 0,
      ...over,
    });
    running.push(s);
    await s.start();
    return s;
  }

  async function load(s: VllmSimulator, name: string): Promise<void> {
    const dir = join(root, name);
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      join(dir, 'adapter_config.json'),
      JSON.stringify({ peft_type: 'LORA', r: 8, lora_alpha: 16, target_modules: ['q_proj'] }),
    );
    writeFileSync(join(dir, 'adapter_model.safetensors'), '');
    const r = await post(s.url, '/v1/load_lora_adapter', { lora_name: name, lora_path: `/mnt/${name}` });
    assert.equal(r.status, 200, r.raw);
  }

  async function metrics(s: VllmSimulator): Promise<string> {
    return new Promise((resolve, reject) => {
      request(`${s.url}/metrics`, { agent: false }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => {
          resolve(text);
        });
      })
        .on('error', reject)
        .end();
    });
  }

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'vllm-sim-stream-'));
  });
  afterEach(async () => {
    await Promise.all(running.splice(0).map((s) => s.stop()));
    rmSync(root, { recursive: true, force: true });
  });

  it('streams /v1/completions one full chunk per token, usage last, then [DONE]', async () => {
    const s = await sim();
    const r = await post(s.url, '/v1/completions', {
      model: 'basemodel',
      prompt: 'hi there',
      stream: true,
      stream_options: { include_usage: true },
    });
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], 'text/event-stream; charset=utf-8');
    assert.equal(r.headers['content-length'], undefined);
    assert.equal(r.headers['transfer-encoding'], 'chunked');
    const ev = events(r.raw);
    assert.equal(ev.at(-1), '[DONE]');
    const chunks = ev.slice(0, -1).map(parse);
    assert.equal(chunks.length, 4, 'three tokens and the usage chunk');
    const id = chunks[0]?.id as string;
    assert.match(id, /^cmpl-[0-9a-f]{32}$/);
    const texts = ['basemodel:', ' simulated', ' completion'];
    chunks.slice(0, 3).forEach((c, i) => {
      assert.deepEqual(Object.keys(c), ['id', 'object', 'created', 'model', 'choices', 'usage']);
      assert.equal(c.id, id);
      assert.equal(c.object, 'text_completion');
      assert.equal(c.model, 'basemodel');
      assert.equal(c.usage, null);
      assert.deepEqual(c.choices, [
        {
          index: 0,
          text: texts[i],
          logprobs: null,
          finish_reason: i === 2 ? 'stop' : null,
          stop_reason: null,
          prompt_token_ids: null,
          token_ids: null,
        },
      ]);
    });
    const usage = chunks[3];
    assert.ok(usage);
    assert.deepEqual(Object.keys(usage), ['id', 'object', 'created', 'model', 'choices', 'usage']);
    assert.deepEqual(usage.choices, []);
    assert.deepEqual(usage.usage, { prompt_tokens: 2, total_tokens: 5, completion_tokens: 3 });
    assert.deepEqual(s.stats.completions, { basemodel: 1 });
  });

  it('streams chat chunks: the role first, content deltas, finish_reason on the last token', async () => {
    const s = await sim();
    const r = await post(s.url, '/v1/chat/completions', {
      messages: [{ role: 'user', content: 'list tables' }],
      max_tokens: 2,
      stream: true,
    });
    assert.equal(r.headers['content-type'], 'text/event-stream; charset=utf-8');
    const ev = events(r.raw);
    assert.equal(ev.at(-1), '[DONE]');
    const [role, a, b, ...rest] = ev.slice(0, -1).map(parse);
    assert.equal(rest.length, 0, 'no usage chunk without stream_options');
    assert.ok(role && a && b);
    assert.deepEqual(Object.keys(role), ['id', 'object', 'created', 'model', 'choices', 'prompt_token_ids']);
    assert.match(role.id as string, /^chatcmpl-[0-9a-f]{32}$/);
    assert.equal(role.object, 'chat.completion.chunk');
    assert.deepEqual(role.choices, [
      { index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null },
    ]);
    assert.deepEqual(Object.keys(a), ['id', 'object', 'created', 'model', 'choices']);
    assert.deepEqual(a.choices, [
      { index: 0, delta: { content: 'basemodel:' }, logprobs: null, finish_reason: null, token_ids: null },
    ]);
    assert.deepEqual(b.choices, [
      {
        index: 0,
        delta: { content: ' simulated' },
        logprobs: null,
        finish_reason: 'length',
        stop_reason: null,
        token_ids: null,
      },
    ]);
    assert.equal(a.id, role.id);
  });

  it('adds usage to every chat chunk with continuous_usage_stats, and a usage chunk (include_usage defaults to true)', async () => {
    const s = await sim();
    const r = await post(s.url, '/v1/chat/completions', {
      messages: [{ role: 'user', content: 'one two' }],
      stream: true,
      stream_options: { continuous_usage_stats: true },
    });
    const chunks = events(r.raw).slice(0, -1).map(parse);
    assert.deepEqual(
      chunks.map((c) => c.usage),
      [
        { prompt_tokens: 2, total_tokens: 2, completion_tokens: 0 },
        { prompt_tokens: 2, total_tokens: 3, completion_tokens: 1 },
        { prompt_tokens: 2, total_tokens: 4, completion_tokens: 2 },
        { prompt_tokens: 2, total_tokens: 5, completion_tokens: 3 },
        { prompt_tokens: 2, total_tokens: 5, completion_tokens: 3 },
      ],
    );
    assert.deepEqual(chunks.at(-1)?.choices, []);
    assert.deepEqual(Object.keys(chunks.at(-1) ?? {}), [
      'id',
      'object',
      'created',
      'model',
      'choices',
      'usage',
    ]);
  });

  it('interleaves the prompts of one completions request, each chunk with its index', async () => {
    const s = await sim();
    const r = await post(s.url, '/v1/completions', { prompt: ['a', 'b'], max_tokens: 2, stream: true });
    const chunks = events(r.raw).slice(0, -1).map(parse);
    const seen = chunks.map((c) => {
      const [choice] = c.choices as { index: number; text: string; finish_reason: string | null }[];
      return [choice?.index, choice?.text, choice?.finish_reason];
    });
    assert.deepEqual(seen, [
      [0, 'basemodel:', null],
      [1, 'basemodel:', null],
      [0, ' simulated', 'length'],
      [1, ' simulated', 'length'],
    ]);
  });

  it('sends chunks as tokens are generated, tokenLatencyMs apart', async () => {
    const s = await sim({ tokenLatencyMs: 20, firstTokenLatencyMs: 30 });
    const t0 = performance.now();
    const r = await post(s.url, '/v1/completions', { prompt: 'x', max_tokens: 3, stream: true });
    const firstData = r.arrivals[0] ?? 0;
    const last = r.arrivals.at(-1) ?? 0;
    // Headers may come in their own chunk; the tokens come ~20 ms apart after ~50 ms.
    assert.ok(r.arrivals.length >= 4, `chunks arrived one by one (${r.arrivals.length})`);
    assert.ok(last - firstData >= 35, `first chunk ${firstData - t0} ms, last ${last - t0} ms`);
    assert.ok(last - t0 >= 85, `three tokens take first 30 + 3 x 20 ms, took ${last - t0}`);
    const log = s.requests();
    assert.equal(log.length, 1);
    assert.ok((log[0]?.durationMs ?? 0) >= 85);
  });

  it('takes the same time without streaming, and counts the request as running meanwhile', async () => {
    const s = await sim({ tokenLatencyMs: 40 });
    await load(s, 'sql');
    const t0 = performance.now();
    const pending = post(s.url, '/v1/completions', { model: 'sql', prompt: 'x' });
    await until(async () => /num_requests_running\{[^}]*\} 1\.0$/m.test(await metrics(s)), 'running 1');
    const m = await metrics(s);
    const series = [
      ...m.matchAll(
        /^vllm:lora_requests_info\{max_lora="1",waiting_lora_adapters="([^"]*)",running_lora_adapters="([^"]*)"\} (\S+)$/gm,
      ),
    ];
    const newest = series.sort((a, b) => Number(b[3]) - Number(a[3]))[0];
    assert.equal(newest?.[2], 'sql', 'the newest series lists the adapter as running');
    const r = await pending;
    assert.equal(r.status, 200);
    assert.ok(performance.now() - t0 >= 110, 'three tokens at 40 ms');
    assert.match(await metrics(s), /num_requests_running\{[^}]*\} 0\.0$/m);
  });

  it('makes a second adapter wait for the only LoRA slot, listing it as waiting', async () => {
    const s = await sim({ tokenLatencyMs: 30 });
    await load(s, 'a');
    await load(s, 'b');
    const ra = post(s.url, '/v1/completions', { model: 'a', prompt: 'x' });
    await until(() => s.requests().some((q) => q.model === 'a' && q.tokens > 0), 'a generating');
    const rb = post(s.url, '/v1/completions', { model: 'b', prompt: 'x' });
    await until(async () => /num_requests_waiting\{[^}]*\} 1\.0$/m.test(await metrics(s)), 'b waiting');
    assert.match(
      await metrics(s),
      /^vllm:lora_requests_info\{max_lora="1",waiting_lora_adapters="b",running_lora_adapters="a"\} /m,
    );
    assert.equal(s.requests().find((q) => q.model === 'b')?.tokens, 0);
    await Promise.all([ra, rb]);
    const [la, lb] = s.requests();
    assert.ok(la && lb);
    assert.ok(lb.durationMs > la.durationMs, 'b waited for a to finish');
  });

  it('logs every request, and records a client that goes away mid-stream as aborted', async () => {
    const s = await sim({ tokenLatencyMs: 30 });
    await post(s.url, '/v1/completions', { model: 'nope', prompt: 'x' });
    await post(s.url, '/v1/chat/completions', { messages: [{ role: 'user', content: 'x' }], max_tokens: 1 });
    let chunks = 0;
    await new Promise<void>((resolve, reject) => {
      const req = request(
        `${s.url}/v1/completions`,
        { method: 'POST', headers: { 'content-type': 'application/json' }, agent: false },
        (res) => {
          res.on('data', () => {
            if (++chunks === 1) {
              req.destroy();
              resolve();
            }
          });
        },
      );
      req.on('error', () => undefined);
      req.on('close', resolve);
      req.end(JSON.stringify({ model: 'basemodel', prompt: 'x', stream: true }));
      setTimeout(() => {
        reject(new Error('no chunk'));
      }, 2000);
    });
    await until(() => s.requests().every((q) => q.done), 'the aborted request to end');
    const log = s.requests();
    assert.deepEqual(
      log.map(({ kind, model, stream, served, status, aborted }) => ({
        kind,
        model,
        stream,
        served,
        status,
        aborted,
      })),
      [
        { kind: 'completion', model: 'nope', stream: false, served: false, status: 404, aborted: false },
        { kind: 'chat', model: '', stream: false, served: true, status: 200, aborted: false },
        { kind: 'completion', model: 'basemodel', stream: true, served: true, status: 200, aborted: true },
      ],
    );
    assert.ok((log[2]?.tokens ?? 3) < 3, 'generation stopped with the client');
    assert.ok(log.every((q) => q.at > 0 && q.durationMs >= 0));
    assert.match(await metrics(s), /num_requests_running\{[^}]*\} 0\.0$/m);
    s.clearRequests();
    assert.deepEqual(s.requests(), []);
  });

  it('sends an error event then [DONE] when the engine dies mid-stream', async () => {
    const s = await sim({ tokenLatencyMs: 20 });
    const pending = post(s.url, '/v1/completions', { prompt: 'x', stream: true });
    await until(() => (s.requests()[0]?.tokens ?? 0) > 0, 'a token');
    s.crashEngine();
    const r = await pending;
    const ev = events(r.raw);
    assert.equal(ev.at(-1), '[DONE]');
    assert.equal(
      ev.at(-2),
      '{"error": {"message": "EngineCore encountered an issue. See stack trace (above) for the root cause.", "type": "BadRequestError", "param": null, "code": 400}}',
    );
    assert.deepEqual(s.stats.completions, {});
  });
});
