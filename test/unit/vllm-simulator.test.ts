import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Timeline, formatTimeline } from '../../playground/timeline.ts';
import { type SimulatorOptions, VllmSimulator } from '../../playground/vllm-simulator.ts';

interface Reply {
  status: number;
  type: string | undefined;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: () => unknown;
  err: () => ErrorJson;
  models: () => ModelList;
  completion: () => Completion;
}

interface ErrorJson {
  error: { message: string; type: string; param: string | null; code: number };
}
interface Card {
  id: string;
  object: string;
  created: number;
  owned_by: string;
  root: string;
  parent: string | null;
  max_model_len: number | null;
  permission: Record<string, unknown>[];
}
interface ModelList {
  object: string;
  data: Card[];
}
interface Completion {
  object: string;
  model: string;
  choices: { text: string; finish_reason: string; message: { role: string; content: string } }[];
  usage: Record<string, unknown>;
}

function call(
  base: string,
  method: string,
  path: string,
  opts: { json?: unknown; body?: string; contentType?: string } = {},
): Promise<Reply> {
  const body = opts.json !== undefined ? JSON.stringify(opts.json) : opts.body;
  const headers: Record<string, string> = {};
  const contentType = opts.contentType ?? (opts.json !== undefined ? 'application/json' : undefined);
  if (contentType !== undefined) headers['content-type'] = contentType;
  return new Promise((resolve, reject) => {
    const req = request(`${base}${path}`, { method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({
          status: res.statusCode ?? 0,
          type: res.headers['content-type'],
          headers: res.headers,
          text,
          json: () => JSON.parse(text) as unknown,
          err: () => JSON.parse(text) as ErrorJson,
          models: () => JSON.parse(text) as ModelList,
          completion: () => JSON.parse(text) as Completion,
        });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function waitFor(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 2000; i++) {
    if (cond()) return;
    await sleep(5);
  }
  throw new Error(`timed out waiting for ${what}`);
}

const BASE_ARGS = [
  '--model',
  'meta-llama/Llama-3.1-8B-Instruct',
  '--served-model-name',
  'basemodel',
  'ocid1.datasciencemodel.oc1..base',
  '--port',
  '8000',
  '--enable-lora',
  '--max-loras',
  '4',
  '--max-cpu-loras',
  '8',
  '--max-lora-rank',
  '64',
  '--max-model-len',
  '4096',
  '--tensor-parallel-size',
  '1',
];
const ON = { VLLM_ALLOW_RUNTIME_LORA_UPDATING: 'True' };

describe('vLLM simulator', () => {
  let root: string;
  const running: VllmSimulator[] = [];

  /** An adapter directory under the fake mount: lora_path `/mnt/<name>`. */
  function adapter(
    name: string,
    config: Record<string, unknown> | string = {},
    opts: { weights?: boolean } = {},
  ): string {
    const dir = join(root, name);
    mkdirSync(dir, { recursive: true });
    const text =
      typeof config === 'string'
        ? config
        : JSON.stringify({
            peft_type: 'LORA',
            r: 8,
            lora_alpha: 16,
            target_modules: ['q_proj', 'v_proj'],
            bias: 'none',
            ...config,
          });
    writeFileSync(join(dir, 'adapter_config.json'), text);
    if (opts.weights ?? true) writeFileSync(join(dir, 'adapter_model.safetensors'), '');
    return `/mnt/${name}`;
  }

  async function sim(over: Partial<SimulatorOptions> = {}): Promise<VllmSimulator> {
    const s = new VllmSimulator({
      args: BASE_ARGS,
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

  const load = (s: VllmSimulator, body: unknown): Promise<Reply> =>
    call(s.url, 'POST', '/v1/load_lora_adapter', { json: body });
  const unload = (s: VllmSimulator, body: unknown): Promise<Reply> =>
    call(s.url, 'POST', '/v1/unload_lora_adapter', { json: body });

  function assertError(r: Reply, status: number, type: string, message?: string | RegExp): void {
    assert.equal(r.status, status, r.text);
    assert.equal(r.type, 'application/json');
    const e = r.err().error;
    assert.deepEqual(Object.keys(e).sort(), ['code', 'message', 'param', 'type']);
    assert.equal(e.type, type);
    assert.equal(e.code, status);
    if (typeof message === 'string') assert.equal(e.message, message);
    else if (message) assert.match(e.message, message);
  }

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'vllm-sim-'));
  });
  afterEach(async () => {
    await Promise.all(running.splice(0).map((s) => s.stop()));
    rmSync(root, { recursive: true, force: true });
  });

  describe('flags', () => {
    it('parses vLLM flags in both forms and ignores unknown ones', () => {
      const s = new VllmSimulator({
        args: [
          'org/model',
          '--gpu-memory-utilization',
          '0.9',
          '--served_model_name=alias',
          '--max-lora-rank=32',
          '--enable-lora',
          '--trust-remote-code',
          '--max-loras',
          '2',
          '--max-model-len',
          '8k',
          '--lora-modules',
          'a=/mnt/a',
          '{"name":"b","path":"/mnt/b","base_model_name":"alias"}',
        ],
        env: {},
        resolvePath: () => undefined,
        host: '127.0.0.1',
      });
      const a = s.engineArgs;
      assert.equal(a.model, 'org/model');
      assert.deepEqual(a.servedModelNames, ['alias']);
      assert.equal(a.maxLoraRank, 32);
      assert.equal(a.maxLoras, 2);
      assert.equal(a.maxCpuLoras, 2, 'defaults to --max-loras');
      assert.equal(a.maxModelLen, 8000);
      assert.equal(a.enableLora, true);
      assert.deepEqual(a.loraModules, [
        { name: 'a', path: '/mnt/a' },
        { name: 'b', path: '/mnt/b', baseModelName: 'alias' },
      ]);
      assert.equal(s.url, 'http://127.0.0.1:8000', 'port defaults to 8000');
      assert.equal(
        new VllmSimulator({
          args: ['--model', 'm', '--port=9001'],
          env: {},
          resolvePath: () => undefined,
          host: '::1',
        }).url,
        'http://[::1]:9001',
      );
    });

    it('refuses to start on values vLLM refuses', async () => {
      for (const [args, msg] of [
        [['--model', 'm', '--max-lora-rank', '48'], /invalid choice: 48/],
        [
          ['--model', 'm', '--max-loras', '4', '--max-cpu-loras', '2'],
          /max_cpu_loras \(2\) must be >= max_loras \(4\)/,
        ],
        [['--model', 'm', '--max-loras', 'four'], /invalid int value/],
        [['--served-model-name', 'x'], /no model given/],
      ] as const) {
        const s = new VllmSimulator({
          args: [...args],
          env: ON,
          resolvePath: () => undefined,
          host: '127.0.0.1',
          port: 0,
        });
        await assert.rejects(s.start(), msg);
        assert.equal(s.running, false);
      }
    });

    it('aborts start-up when a --lora-modules adapter fails, and loads them before serving', async () => {
      const good = adapter('good');
      const bad = adapter('bad', { r: 128 });
      await assert.rejects(
        sim({ args: [...BASE_ARGS, '--lora-modules', `bad=${bad}`] }),
        /LoRA rank 128 is greater/,
      );
      const s = await sim({ args: [...BASE_ARGS, '--lora-modules', `good=${good}`], env: {} });
      assert.deepEqual(s.loadedAdapters(), ['good']);
      await s.restart();
      assert.deepEqual(s.loadedAdapters(), ['good'], 'static adapters come back after a restart');
    });
  });

  describe('routing', () => {
    it('has no load/unload routes without VLLM_ALLOW_RUNTIME_LORA_UPDATING', async () => {
      for (const env of [
        {} as Record<string, string>,
        { VLLM_ALLOW_RUNTIME_LORA_UPDATING: '0' },
        { VLLM_ALLOW_RUNTIME_LORA_UPDATING: 'yes' },
      ]) {
        const s = await sim({ env });
        for (const path of ['/v1/load_lora_adapter', '/v1/unload_lora_adapter']) {
          const r = await call(s.url, 'POST', path, { json: { lora_name: 'a', lora_path: adapter('a') } });
          assert.equal(r.status, 404);
          assert.equal(r.type, 'application/json');
          assert.deepEqual(r.json(), { detail: 'Not Found' });
        }
        assert.deepEqual(s.loadedAdapters(), []);
      }
      const on = await sim({ env: { VLLM_ALLOW_RUNTIME_LORA_UPDATING: '  TRUE \n' } });
      assert.equal((await load(on, { lora_name: 'a', lora_path: adapter('a') })).status, 200);
      const one = await sim({ env: { VLLM_ALLOW_RUNTIME_LORA_UPDATING: '1' } });
      assert.equal((await load(one, { lora_name: 'a', lora_path: adapter('a') })).status, 200);
    });

    it('answers unknown routes 404 and wrong methods 405 like FastAPI', async () => {
      const s = await sim();
      const nf = await call(s.url, 'GET', '/v1/nothing');
      assert.equal(nf.status, 404);
      assert.deepEqual(nf.json(), { detail: 'Not Found' });
      assert.equal((await call(s.url, 'GET', '/health/ready')).status, 404, 'vLLM has no /health/ready');
      const wrong = await call(s.url, 'GET', '/v1/load_lora_adapter');
      assert.equal(wrong.status, 405);
      assert.deepEqual(wrong.json(), { detail: 'Method Not Allowed' });
      assert.equal(wrong.headers.allow, 'POST');
      assert.equal((await call(s.url, 'POST', '/health')).status, 405);
      const redirect = await call(s.url, 'GET', '/v1/models/');
      assert.equal(redirect.status, 307);
      assert.equal(redirect.headers.location, `${s.url}/v1/models`);
    });

    it('serves /health, /ping, /version and /load', async () => {
      const s = await sim();
      for (const [method, path] of [
        ['GET', '/health'],
        ['GET', '/ping'],
        ['POST', '/ping'],
      ] as const) {
        const r = await call(s.url, method, path);
        assert.equal(r.status, 200);
        assert.equal(r.text, '');
      }
      assert.deepEqual((await call(s.url, 'GET', '/version')).json(), { version: '0.11.0' });
      assert.deepEqual((await call(s.url, 'GET', '/load')).json(), { server_load: 0 });
    });
  });

  describe('load and unload', () => {
    it('loads an adapter with a plain-text success body', async () => {
      const s = await sim();
      const r = await load(s, { lora_name: 'sql', lora_path: adapter('sql') });
      assert.equal(r.status, 200);
      assert.equal(r.text, "Success: LoRA adapter 'sql' added successfully.");
      assert.match(r.type ?? '', /^text\/plain/);
      assert.deepEqual(s.loadedAdapters(), ['sql']);
      assert.equal(s.stats.loads, 1);
      const u = await unload(s, { lora_name: 'sql' });
      assert.equal(u.status, 200);
      assert.equal(u.text, "Success: LoRA adapter 'sql' removed successfully.");
      assert.match(u.type ?? '', /^text\/plain/);
      assert.deepEqual(s.loadedAdapters(), []);
      assert.equal(s.stats.unloads, 1);
      assert.equal((await unload(s, { lora_name: 'sql', lora_int_id: null })).status, 404);
    });

    it('answers 400 InvalidUserInput for an empty name or path', async () => {
      const s = await sim();
      const msg = "Both 'lora_name' and 'lora_path' must be provided.";
      assertError(await load(s, { lora_name: '', lora_path: adapter('a') }), 400, 'InvalidUserInput', msg);
      assertError(await load(s, { lora_name: 'a', lora_path: '' }), 400, 'InvalidUserInput', msg);
      assert.equal(s.stats.loads, 0);
    });

    it('answers 400 BadRequestError for a missing field, a wrong type or a non-JSON body', async () => {
      const s = await sim();
      const path = adapter('a');
      const missing = await load(s, { lora_name: 'a' });
      assertError(missing, 400, 'BadRequestError', /Field required/);
      assert.equal(missing.err().error.param, 'body.lora_path');
      assertError(await load(s, { lora_name: 5, lora_path: path }), 400, 'BadRequestError', /valid string/);
      assertError(
        await load(s, { lora_name: 'a', lora_path: path, load_inplace: 'true' }),
        400,
        'BadRequestError',
        /valid boolean/,
      );
      assertError(await load(s, [1, 2]), 400, 'BadRequestError', /valid dictionary/);
      assertError(await unload(s, {}), 400, 'BadRequestError', /Field required/);
      assertError(
        await unload(s, { lora_name: 'a', lora_int_id: 'x' }),
        400,
        'BadRequestError',
        /valid integer/,
      );
      const text = await call(s.url, 'POST', '/v1/load_lora_adapter', {
        body: JSON.stringify({ lora_name: 'a', lora_path: path }),
        contentType: 'text/plain',
      });
      assertError(text, 400, 'BadRequestError', /Only 'application\/json' is allowed/);
      const none = await call(s.url, 'POST', '/v1/load_lora_adapter', {
        body: JSON.stringify({ lora_name: 'a', lora_path: path }),
      });
      assertError(none, 400, 'BadRequestError', /Unsupported Media Type/);
      const broken = await call(s.url, 'POST', '/v1/load_lora_adapter', {
        body: '{"lora_name": ',
        contentType: 'application/json; charset=utf-8',
      });
      assertError(broken, 400, 'BadRequestError', /JSON decode error/);
      assert.deepEqual(s.loadedAdapters(), []);
    });

    it('answers 400 for a name already loaded unless load_inplace', async () => {
      const s = await sim();
      await load(s, { lora_name: 'a', lora_path: adapter('a') });
      await load(s, { lora_name: 'b', lora_path: adapter('b') });
      assertError(
        await load(s, { lora_name: 'a', lora_path: adapter('a2') }),
        400,
        'InvalidUserInput',
        "The lora adapter 'a' has already been loaded. If you want to load the adapter in place, set 'load_inplace' to True.",
      );
      const inplace = await load(s, { lora_name: 'a', lora_path: adapter('a2'), load_inplace: true });
      assert.equal(inplace.status, 200);
      assert.equal(inplace.text, "Success: LoRA adapter 'a' added successfully.");
      assert.deepEqual(s.loadedAdapters(), ['a', 'b'], 'an in-place reload keeps its place');
      const cards = (await call(s.url, 'GET', '/v1/models')).models().data;
      assert.equal(cards.find((c) => c.id === 'a')?.root, '/mnt/a2');
      assert.equal(
        (await load(s, { lora_name: 'c', lora_path: adapter('c'), load_inplace: true })).status,
        200,
      );
      // A failed in-place reload leaves the registered adapter alone.
      const failed = await load(s, { lora_name: 'a', lora_path: '/mnt/nowhere', load_inplace: true });
      assert.equal(failed.status, 404);
      assert.deepEqual(s.loadedAdapters(), ['a', 'b', 'c']);
    });

    it('answers 404 NotFoundError when nothing is at the path', async () => {
      const s = await sim();
      assertError(
        await load(s, { lora_name: 'x', lora_path: '/elsewhere/x' }),
        404,
        'NotFoundError',
        'Loading lora x failed: No adapter found for /elsewhere/x',
      );
      assertError(
        await load(s, { lora_name: 'y', lora_path: '/mnt/missing' }),
        404,
        'NotFoundError',
        'Loading lora y failed: No adapter found for /mnt/missing',
      );
      mkdirSync(join(root, 'empty'));
      assertError(
        await load(s, { lora_name: 'z', lora_path: '/mnt/empty' }),
        404,
        'NotFoundError',
        'Loading lora z failed: No adapter found for /mnt/empty',
      );
      assert.deepEqual(s.loadedAdapters(), []);
    });

    it('answers 500 for a rank above --max-lora-rank, rank_pattern included', async () => {
      const s = await sim();
      assertError(
        await load(s, { lora_name: 'big', lora_path: adapter('big', { r: 128 }) }),
        500,
        'InternalServerError',
        'LoRA rank 128 is greater than max_lora_rank 64.',
      );
      assertError(
        await load(s, {
          lora_name: 'pat',
          lora_path: adapter('pat', { r: 8, rank_pattern: { q_proj: 256, v_proj: 16 } }),
        }),
        500,
        'InternalServerError',
        'LoRA rank 256 is greater than max_lora_rank 64.',
      );
      const ok = await load(s, {
        lora_name: 'ok',
        lora_path: adapter('ok', { r: 8, rank_pattern: { q_proj: 64 } }),
      });
      assert.equal(ok.status, 200);
      assert.deepEqual(s.loadedAdapters(), ['ok']);
    });

    it('answers 500 for a bad adapter_config.json, DoRA, a non-LoRA PEFT type or missing weights', async () => {
      const s = await sim();
      const cases: [string, Record<string, unknown> | string, RegExp | string, { weights?: boolean }?][] = [
        ['garbled', '{"r": 8,', /Invalid JSON in \/mnt\/garbled\/adapter_config\.json/],
        ['list', '[1]', "'list' object has no attribute 'keys'"],
        [
          'nofields',
          '{"peft_type":"LORA"}',
          "Missing required configuration fields: {'lora_alpha', 'r', 'target_modules'}",
        ],
        ['strrank', { r: '8' }, /r must be a positive integer/],
        ['dora', { use_dora: true }, 'vLLM does not yet support DoRA.'],
        ['ia3', { peft_type: 'IA3' }, /peft_type "IA3"/],
        ['bias', { bias: 'all' }, 'Adapter bias is not supported.'],
        ['save', { modules_to_save: ['lm_head'] }, 'vLLM only supports modules_to_save being None.'],
        [
          'dorabig',
          { use_dora: true, r: 128 },
          'vLLM does not yet support DoRA. LoRA rank 128 is greater than max_lora_rank 64.',
        ],
        ['noweights', {}, "/mnt/noweights doesn't contain tensors", { weights: false }],
      ];
      for (const [name, config, msg, opts] of cases) {
        assertError(
          await load(s, { lora_name: name, lora_path: adapter(name, config, opts) }),
          500,
          'InternalServerError',
          msg,
        );
      }
      assert.deepEqual(s.loadedAdapters(), []);
      assert.equal(s.stats.loads, 0);
    });

    it('answers 500 when LoRA is not enabled', async () => {
      const s = await sim({ args: BASE_ARGS.filter((a) => a !== '--enable-lora') });
      assertError(
        await load(s, { lora_name: 'a', lora_path: adapter('a') }),
        500,
        'InternalServerError',
        'LoRA is not enabled. Use --enable-lora to enable LoRA.',
      );
      assertError(await load(s, { lora_name: '', lora_path: 'x' }), 400, 'InvalidUserInput');
    });

    it('answers unload errors: 400 for an empty name, 404 for an unknown one', async () => {
      const s = await sim();
      assertError(
        await unload(s, { lora_name: '' }),
        400,
        'InvalidUserInput',
        "'lora_name' needs to be provided to unload a LoRA adapter.",
      );
      assertError(
        await unload(s, { lora_name: 'ghost' }),
        404,
        'NotFoundError',
        "The lora adapter 'ghost' cannot be found.",
      );
      await load(s, { lora_name: 'a', lora_path: adapter('a') });
      assert.equal(s.unloadDirect('a'), true);
      assert.equal(s.unloadDirect('a'), false);
      assertError(
        await unload(s, { lora_name: 'a' }),
        404,
        'NotFoundError',
        "The lora adapter 'a' cannot be found.",
      );
      assert.equal(s.stats.unloads, 0);
    });
  });

  describe('per-name lock', () => {
    it('serialises two loads of one name: one 200, one 400', async () => {
      const s = await sim();
      const path = adapter('x');
      const resume = s.pauseLoads();
      const both = Promise.all([
        load(s, { lora_name: 'x', lora_path: path }),
        load(s, { lora_name: 'x', lora_path: path }),
      ]);
      await waitFor(
        () =>
          s.events.filter((e) => e.kind === 'load-queued').length === 2 &&
          s.events.some((e) => e.kind === 'load-begin'),
        'both loads queued, one in the engine',
      );
      resume();
      const statuses = (await both).map((r) => r.status).sort();
      assert.deepEqual(statuses, [200, 400]);
      assert.deepEqual(
        s.events.map((e) => e.kind),
        ['load-queued', 'load-begin', 'load-queued', 'load-end'],
        'the second load never reached the engine',
      );
      const rejected = (await both).find((r) => r.status === 400);
      assert.match(rejected?.err().error.message ?? '', /has already been loaded/);
      assert.deepEqual(s.loadedAdapters(), ['x']);
    });

    it('makes an unload of a name wait for its load in progress', async () => {
      const s = await sim();
      const resume = s.pauseLoads();
      const loading = load(s, { lora_name: 'x', lora_path: adapter('x') });
      await waitFor(() => s.events.some((e) => e.kind === 'load-begin'), 'load in the engine');
      const unloading = unload(s, { lora_name: 'x' });
      await waitFor(() => s.events.some((e) => e.kind === 'unload-queued'), 'unload waiting for the lock');
      resume();
      assert.equal((await loading).status, 200);
      assert.equal((await unloading).status, 200, 'the unload ran after the load registered the adapter');
      assert.deepEqual(
        s.events.map((e) => e.kind),
        ['load-queued', 'load-begin', 'unload-queued', 'load-end', 'unload'],
      );
    });

    it('loads different names concurrently', async () => {
      const s = await sim();
      const resume = s.pauseLoads();
      const all = Promise.all(['a', 'b', 'c'].map((n) => load(s, { lora_name: n, lora_path: adapter(n) })));
      // All three are inside the engine step at once: none could finish while the gate is closed.
      await waitFor(
        () => s.events.filter((e) => e.kind === 'load-begin').length === 3,
        'three loads in the engine',
      );
      assert.equal(s.events.filter((e) => e.kind === 'load-end').length, 0);
      resume();
      assert.deepEqual(
        (await all).map((r) => r.status),
        [200, 200, 200],
      );
      assert.deepEqual(s.loadedAdapters().sort(), ['a', 'b', 'c']);
    });
  });

  describe('/v1/models', () => {
    it('lists base cards, then adapters in registration order', async () => {
      let now = 1_700_000_000_000;
      const s = await sim({ clock: () => now });
      await load(s, { lora_name: 'zeta', lora_path: adapter('zeta') });
      await load(s, { lora_name: 'alpha', lora_path: adapter('alpha') });
      const r = await call(s.url, 'GET', '/v1/models');
      assert.equal(r.status, 200);
      assert.equal(r.type, 'application/json');
      const list = r.models();
      assert.equal(list.object, 'list');
      assert.deepEqual(
        list.data.map((c) => c.id),
        ['basemodel', 'ocid1.datasciencemodel.oc1..base', 'zeta', 'alpha'],
      );
      const base = list.data[0]!;
      const alias = list.data[1]!;
      const zeta = list.data[2]!;
      const perm = base.permission[0]!;
      assert.match(perm.id as string, /^modelperm-[0-9a-f]+$/);
      assert.deepEqual(
        { ...base, permission: [{ ...perm, id: 'x' }] },
        {
          id: 'basemodel',
          object: 'model',
          created: 1_700_000_000,
          owned_by: 'vllm',
          root: 'meta-llama/Llama-3.1-8B-Instruct',
          parent: null,
          max_model_len: 4096,
          permission: [
            {
              id: 'x',
              object: 'model_permission',
              created: 1_700_000_000,
              allow_create_engine: false,
              allow_sampling: true,
              allow_logprobs: true,
              allow_search_indices: false,
              allow_view: true,
              allow_fine_tuning: false,
              organization: '*',
              group: null,
              is_blocking: false,
            },
          ],
        },
      );
      assert.equal(alias.root, 'meta-llama/Llama-3.1-8B-Instruct');
      assert.equal(alias.parent, null);
      assert.deepEqual(
        {
          id: zeta.id,
          root: zeta.root,
          parent: zeta.parent,
          max_model_len: zeta.max_model_len,
          owned_by: zeta.owned_by,
        },
        { id: 'zeta', root: '/mnt/zeta', parent: 'basemodel', max_model_len: null, owned_by: 'vllm' },
      );
      assert.equal(zeta.permission.length, 1);
      now += 5000;
      const again = (await call(s.url, 'GET', '/v1/models')).models();
      assert.equal(again.data[0]!.created, 1_700_000_005, 'created is new on each call');
    });

    it('defaults the served name to --model and max_model_len to 4096', async () => {
      const s = await sim({ args: ['--model', 'org/m', '--enable-lora'] });
      const data = (await call(s.url, 'GET', '/v1/models')).models().data;
      assert.equal(data.length, 1);
      assert.equal(data[0]!.id, 'org/m');
      assert.equal(data[0]!.root, 'org/m');
      assert.equal(data[0]!.max_model_len, 4096);
    });
  });

  describe('completions', () => {
    it('serves base names and loaded adapters, naming the model in the text', async () => {
      const s = await sim();
      await load(s, { lora_name: 'sql', lora_path: adapter('sql') });
      const viaBase = await call(s.url, 'POST', '/v1/completions', {
        json: { model: 'basemodel', prompt: 'hi there' },
      });
      assert.equal(viaBase.status, 200);
      const b = viaBase.completion();
      assert.equal(b.object, 'text_completion');
      assert.equal(b.model, 'basemodel');
      assert.match(b.choices[0]!.text, /basemodel/);
      assert.equal(b.choices[0]!.finish_reason, 'stop');
      assert.deepEqual(b.usage, {
        prompt_tokens: 2,
        total_tokens: 5,
        completion_tokens: 3,
        prompt_tokens_details: null,
      });

      const viaAdapter = (
        await call(s.url, 'POST', '/v1/completions', { json: { model: 'sql', prompt: 'x' } })
      ).completion();
      assert.equal(viaAdapter.model, 'sql');
      assert.match(viaAdapter.choices[0]!.text, /^sql:/);

      const viaAlias = (
        await call(s.url, 'POST', '/v1/completions', {
          json: { model: 'ocid1.datasciencemodel.oc1..base', prompt: 'x' },
        })
      ).completion();
      assert.equal(viaAlias.model, 'basemodel', 'vLLM answers with the first served name');
      assert.match(viaAlias.choices[0]!.text, /ocid1\.datasciencemodel/);

      const noModel = (
        await call(s.url, 'POST', '/v1/completions', { json: { prompt: 'x', max_tokens: 1 } })
      ).completion();
      assert.equal(noModel.model, 'basemodel');
      assert.equal(noModel.choices[0]!.text, 'basemodel:');
      assert.equal(noModel.choices[0]!.finish_reason, 'length');

      const chat = await call(s.url, 'POST', '/v1/chat/completions', {
        json: { model: 'sql', messages: [{ role: 'user', content: 'list tables' }] },
      });
      assert.equal(chat.status, 200);
      const c = chat.completion();
      assert.equal(c.object, 'chat.completion');
      assert.equal(c.choices[0]!.message.role, 'assistant');
      assert.match(c.choices[0]!.message.content, /^sql:/);

      assert.deepEqual(s.stats.completions, { basemodel: 2, sql: 2, 'ocid1.datasciencemodel.oc1..base': 1 });
    });

    it('answers 404 for an unknown or unloaded model', async () => {
      const s = await sim();
      for (const path of ['/v1/completions', '/v1/chat/completions']) {
        const r = await call(s.url, 'POST', path, {
          json: { model: 'foo', prompt: 'x', messages: [{ role: 'user', content: 'x' }] },
        });
        assert.equal(r.status, 404);
        assert.deepEqual(r.json(), {
          error: {
            message: 'The model `foo` does not exist.',
            type: 'NotFoundError',
            param: 'model',
            code: 404,
          },
        });
      }
      await load(s, { lora_name: 'gone', lora_path: adapter('gone') });
      await unload(s, { lora_name: 'gone' });
      const r = await call(s.url, 'POST', '/v1/completions', { json: { model: 'gone', prompt: 'x' } });
      assert.equal(r.err().error.message, 'The model `gone` does not exist.');
      assert.deepEqual(s.stats.completions, {});
    });

    it('refuses stream_options without stream, bad bodies and context overflow with 400', async () => {
      const s = await sim();
      const post = (body: unknown): Promise<Reply> => call(s.url, 'POST', '/v1/completions', { json: body });
      const noStream = await post({ prompt: 'x', stream_options: { include_usage: true } });
      assertError(noStream, 400, 'BadRequestError', /Stream options can only be defined when `stream=True`/);
      assert.equal(noStream.err().error.param, 'body');
      assertError(await post({ model: 'basemodel' }), 400, 'BadRequestError', /Field required/);
      assertError(
        await post({ prompt: 'x', max_tokens: 5000 }),
        400,
        'BadRequestError',
        /maximum context length is 4096/,
      );
      assert.equal((await post({ prompt: 'x', max_tokens: 5000 })).err().error.param, 'max_tokens');
      assertError(
        await call(s.url, 'POST', '/v1/chat/completions', { json: { messages: 'hi' } }),
        400,
        'BadRequestError',
      );
    });
  });

  describe('metrics', () => {
    it('exposes vLLM gauges and counters and lora_requests_info', async () => {
      let now = 1_700_000_000_000;
      const s = await sim({ clock: () => now });
      await load(s, { lora_name: 'sql', lora_path: adapter('sql') });
      now += 1000;
      await call(s.url, 'POST', '/v1/completions', { json: { model: 'sql', prompt: 'x' } });
      const r = await call(s.url, 'GET', '/metrics');
      assert.equal(r.status, 200);
      assert.match(r.type ?? '', /^text\/plain; version=0\.0\.4/);
      const m = r.text;
      assert.match(m, /^# TYPE vllm:num_requests_running gauge$/m);
      assert.match(m, /^vllm:num_requests_running\{model_name="basemodel",engine="0"\} 0\.0$/m);
      assert.match(m, /^vllm:num_requests_waiting\{model_name="basemodel",engine="0"\} 0\.0$/m);
      assert.match(
        m,
        /^vllm:request_success_total\{model_name="basemodel",engine="0",finished_reason="stop"\} 1\.0$/m,
      );
      assert.match(m, /^# TYPE vllm:lora_requests_info gauge$/m);
      // Running while it ran; the empty series again once it finished (a millisecond on, so the
      // newest series is the idle one).
      assert.match(
        m,
        /^vllm:lora_requests_info\{max_lora="4",waiting_lora_adapters="",running_lora_adapters="sql"\} 1\.700000001e\+09$/m,
      );
      assert.match(
        m,
        /^vllm:lora_requests_info\{max_lora="4",waiting_lora_adapters="",running_lora_adapters=""\} 1\.700000001001e\+09$/m,
      );

      const off = await sim({ args: BASE_ARGS.filter((a) => a !== '--enable-lora') });
      assert.doesNotMatch((await call(off.url, 'GET', '/metrics')).text, /lora_requests_info/);
    });
  });

  describe('lifecycle', () => {
    it('loses runtime adapters on restart, on the same address', async () => {
      const s = await sim();
      const url = s.url;
      await load(s, { lora_name: 'a', lora_path: adapter('a') });
      await call(s.url, 'POST', '/v1/completions', { json: { model: 'a', prompt: 'x' } });
      await s.restart();
      assert.equal(s.url, url);
      assert.deepEqual(s.loadedAdapters(), []);
      const models = (await call(s.url, 'GET', '/v1/models')).models().data;
      assert.deepEqual(
        models.map((c) => c.id),
        ['basemodel', 'ocid1.datasciencemodel.oc1..base'],
      );
      assert.equal(
        (await call(s.url, 'POST', '/v1/completions', { json: { model: 'a', prompt: 'x' } })).status,
        404,
      );
      assert.match(
        (await call(s.url, 'GET', '/metrics')).text,
        /finished_reason="stop"\} 0\.0$/m,
        'counters reset',
      );
      assert.equal(s.stats.loads, 1, 'stats are the test harness view: cumulative');
      assert.equal((await load(s, { lora_name: 'a', lora_path: adapter('a') })).status, 200);
    });

    it('stop() cuts open connections like a killed process', async () => {
      const s = await sim();
      const resume = s.pauseLoads();
      const pending = load(s, { lora_name: 'a', lora_path: adapter('a') });
      await waitFor(() => s.events.some((e) => e.kind === 'load-begin'), 'load in the engine');
      await s.stop();
      await assert.rejects(pending, /socket hang up|ECONNRESET/);
      resume();
      assert.equal(s.running, false);
      assert.deepEqual(s.loadedAdapters(), []);
      await assert.rejects(call(s.url, 'GET', '/health'), /ECONNREFUSED/);
      await s.start();
      assert.deepEqual(s.loadedAdapters(), [], 'the interrupted load did not land in the new process');
    });

    it('re-reads an adapter evicted from the CPU LRU, and dies when its files are gone', async () => {
      const s = await sim({ args: ['--model', 'm', '--enable-lora', '--max-loras', '1'] });
      await load(s, { lora_name: 'a', lora_path: adapter('a') });
      await load(s, { lora_name: 'b', lora_path: adapter('b') }); // evicts a (max-cpu-loras = 1)
      assert.equal(
        (await call(s.url, 'POST', '/v1/completions', { json: { model: 'a', prompt: 'x' } })).status,
        200,
      );
      // a is cached again, b evicted; remove b's files
      rmSync(join(root, 'b'), { recursive: true });
      const r = await call(s.url, 'POST', '/v1/completions', { json: { model: 'b', prompt: 'x' } });
      assert.equal(r.status, 500);
      assert.equal(r.text, '');
      assert.equal((await call(s.url, 'GET', '/health')).status, 503);
      await s.restart();
      assert.equal((await call(s.url, 'GET', '/health')).status, 200);
    });
  });

  describe('faults', () => {
    it('adds loadLatencyMs to successful and failed loads', async () => {
      const s = await sim({ faults: { loadLatencyMs: 150 } });
      let t = performance.now();
      assert.equal((await load(s, { lora_name: 'a', lora_path: adapter('a') })).status, 200);
      assert.ok(performance.now() - t >= 140, 'success delayed');
      t = performance.now();
      assert.equal((await load(s, { lora_name: 'b', lora_path: '/mnt/none' })).status, 404);
      assert.ok(performance.now() - t >= 140, 'failure delayed');
    });

    it('forces load failures by name or for any name', async () => {
      const s = await sim({ faults: { failLoads: [{ name: 'a', status: 404 }] } });
      assertError(
        await load(s, { lora_name: 'a', lora_path: adapter('a') }),
        404,
        'NotFoundError',
        'Loading lora a failed: No adapter found for /mnt/a',
      );
      assert.equal((await load(s, { lora_name: 'b', lora_path: adapter('b') })).status, 200);
      s.setFaults({ failLoads: [{ status: 500, message: 'CUDA out of memory' }] });
      assertError(
        await load(s, { lora_name: 'c', lora_path: adapter('c') }),
        500,
        'InternalServerError',
        'CUDA out of memory',
      );
      s.setFaults({ failLoads: [{ name: 'd', status: 500 }] });
      assertError(
        await load(s, { lora_name: 'd', lora_path: adapter('d') }),
        500,
        'InternalServerError',
        /'d'/,
      );
      s.setFaults({});
      assert.equal((await load(s, { lora_name: 'a', lora_path: adapter('a') })).status, 200);
      assert.deepEqual(s.loadedAdapters(), ['b', 'a']);
    });

    it('reports an unhealthy engine', async () => {
      const s = await sim();
      await load(s, { lora_name: 'a', lora_path: adapter('a') });
      s.setFaults({ unhealthy: true });
      for (const [method, path] of [
        ['GET', '/health'],
        ['GET', '/ping'],
        ['POST', '/ping'],
      ] as const) {
        const r = await call(s.url, method, path);
        assert.equal(r.status, 503);
        assert.equal(r.text, '');
      }
      const c = await call(s.url, 'POST', '/v1/completions', { json: { model: 'a', prompt: 'x' } });
      assert.equal(c.status, 500);
      assert.equal(c.text, '');
      assertError(
        await load(s, { lora_name: 'b', lora_path: adapter('b') }),
        500,
        'InternalServerError',
        /EngineCore/,
      );
      assert.equal((await call(s.url, 'GET', '/v1/models')).status, 200, 'the frontend still answers');
      s.setFaults({});
      assert.equal((await call(s.url, 'GET', '/health')).status, 200);
    });

    it('crashEngine kills this process only: a restart brings a healthy engine, faults stay', async () => {
      const s = await sim();
      assert.equal(s.crashEngine(), true);
      assert.equal((await call(s.url, 'GET', '/health')).status, 503);
      assertError(
        await load(s, { lora_name: 'a', lora_path: adapter('a') }),
        500,
        'InternalServerError',
        /EngineCore/,
      );
      await s.restart();
      assert.equal((await call(s.url, 'GET', '/health')).status, 200);
      s.setFaults({ unhealthy: true });
      await s.restart();
      assert.equal((await call(s.url, 'GET', '/health')).status, 503, 'a fault outlives the process');
      await s.stop();
      assert.equal(s.crashEngine(), false);
    });

    it('delays /health by slowHealthMs', async () => {
      const s = await sim({ faults: { slowHealthMs: 150 } });
      const t = performance.now();
      assert.equal((await call(s.url, 'GET', '/health')).status, 200);
      assert.ok(performance.now() - t >= 140);
    });
  });
  describe('adapter load time', () => {
    it('takes adapterLoadMs per load, lists the adapter only when done, and keeps it across setFaults', async () => {
      const s = await sim({ adapterLoadMs: 200 });
      s.setFaults({ slowHealthMs: 0 });
      const t = performance.now();
      const pending = load(s, { lora_name: 'a', lora_path: adapter('a') });
      await waitFor(() => s.events.some((e) => e.kind === 'load-begin'), 'load in the engine');
      const during = (await call(s.url, 'GET', '/v1/models')).models().data.map((c) => c.id);
      assert.ok(!during.includes('a'), 'a load in progress is not listed');
      assert.deepEqual(s.loadedAdapters(), []);
      assert.equal(
        (await call(s.url, 'POST', '/v1/completions', { json: { model: 'a', prompt: 'x' } })).status,
        404,
        'nor served',
      );
      assert.equal((await pending).status, 200);
      assert.ok(performance.now() - t >= 190, 'the load took its time');
      assert.deepEqual(s.loadedAdapters(), ['a']);
    });

    it('fails a bad path or too high a rank at once, and loads different names side by side', async () => {
      const s = await sim({ adapterLoadMs: 300 });
      let t = performance.now();
      assert.equal((await load(s, { lora_name: 'x', lora_path: '/mnt/none' })).status, 404);
      assert.equal((await load(s, { lora_name: 'y', lora_path: adapter('y', { r: 128 }) })).status, 500);
      assert.ok(performance.now() - t < 250, 'config checks come before the weights');
      t = performance.now();
      const rs = await Promise.all(
        ['a', 'b', 'c'].map((n) => load(s, { lora_name: n, lora_path: adapter(n) })),
      );
      assert.deepEqual(
        rs.map((r) => r.status),
        [200, 200, 200],
      );
      const took = performance.now() - t;
      assert.ok(took >= 290 && took < 850, `three names in ${took} ms`);
      s.adapterLoadMs = 0;
      t = performance.now();
      assert.equal((await load(s, { lora_name: 'd', lora_path: adapter('d') })).status, 200);
      assert.ok(performance.now() - t < 250);
    });

    it('loads --lora-modules with the same load time before it serves', async () => {
      const path = adapter('s');
      const t = performance.now();
      const s = await sim({ args: [...BASE_ARGS, '--lora-modules', `s=${path}`], adapterLoadMs: 150 });
      assert.ok(performance.now() - t >= 140);
      assert.deepEqual(s.loadedAdapters(), ['s']);
    });

    it('fails a load whose engine dies while it reads the weights', async () => {
      const s = await sim({ adapterLoadMs: 150 });
      const pending = load(s, { lora_name: 'a', lora_path: adapter('a') });
      await waitFor(() => s.events.some((e) => e.kind === 'load-begin'), 'load in the engine');
      s.crashEngine();
      assertError(await pending, 500, 'InternalServerError', /EngineCore/);
      assert.deepEqual(s.loadedAdapters(), []);
    });
  });

  describe('timeline', () => {
    it('logs serving (with static adapters), loads, every kind of loss, and stops, under its key', async () => {
      const timeline = new Timeline();
      const path = adapter('s');
      const s = await sim({
        args: [...BASE_ARGS, '--lora-modules', `s=${path}`],
        timeline,
        timelineKey: 'ns/pod-1',
      });
      assert.equal((await load(s, { lora_name: 'a', lora_path: adapter('a') })).status, 200);
      assert.equal((await load(s, { lora_name: 'b', lora_path: adapter('b') })).status, 200);
      assert.equal((await load(s, { lora_name: 'x', lora_path: '/mnt/none' })).status, 404);
      assert.equal((await unload(s, { lora_name: 'a' })).status, 200);
      assert.equal((await unload(s, { lora_name: 'a' })).status, 404);
      assert.equal(s.unloadDirect('b'), true);
      assert.equal(s.unloadDirect('b'), false);
      assert.equal((await load(s, { lora_name: 'c', lora_path: adapter('c') })).status, 200);
      await s.restart();
      const events = timeline.events();
      assert.ok(events.every((e) => e.kind === 'note' || e.pod === 'ns/pod-1'));
      assert.deepEqual(
        formatTimeline(events)
          .split('\n')
          .map((l) => l.replace(/^ *[\d.]+ ms /, '')),
        [
          'ns/pod-1 serving [s]',
          'ns/pod-1 loaded a',
          'ns/pod-1 loaded b',
          'ns/pod-1 lost a (unload)',
          'ns/pod-1 lost b (unload-direct)',
          'ns/pod-1 loaded c',
          'ns/pod-1 lost s (stopped)',
          'ns/pod-1 lost c (stopped)',
          'ns/pod-1 stopped',
          'ns/pod-1 serving [s]',
        ],
      );
      for (let i = 1; i < events.length; i++) assert.ok(events[i]!.at >= events[i - 1]!.at);
      const death = events.filter(
        (e) => e.kind === 'sim-stopped' || (e.kind === 'adapter-lost' && e.cause === 'stopped'),
      );
      assert.equal(new Set(death.map((e) => e.at)).size, 1, 'a process dies at one instant');
    });

    it('does not log a load that the process did not live to finish', async () => {
      const timeline = new Timeline();
      const s = await sim({ timeline, adapterLoadMs: 100 });
      const pending = load(s, { lora_name: 'a', lora_path: adapter('a') });
      await waitFor(() => s.events.some((e) => e.kind === 'load-begin'), 'load in the engine');
      await s.stop();
      await assert.rejects(pending);
      await sleep(150);
      assert.deepEqual(
        timeline.events().map((e) => e.kind),
        ['sim-serving', 'sim-stopped'],
      );
      const first = timeline.events()[0];
      assert.equal(first?.kind === 'sim-serving' ? first.pod : undefined, s.url, 'logged under its url');
    });
  });
});
