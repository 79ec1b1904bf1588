// The serving path end to end: the operator deploys the router for a StackedDeployment, the test
// kubelet runs it as its own process with its ServiceAccount's token, and it routes to the vLLM
// simulators of the pods by what each pod publishes that it holds. Loads take 300 ms. What a pod
// received is counted from each simulator's own request log.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { VARIANT_HEADER } from '../../src/api/router/v1.ts';
import { writeAdapter } from '../../playground/adapters.ts';
import type { ControlPlane } from '../../playground/controlplane.ts';
import { startKubelet, type Kubelet } from '../../playground/kubelet.ts';
import { kubectl } from '../../playground/kubectl.ts';
import { controlPlaneWithNamespace, startOperator, type OperatorProcess } from '../../playground/operator.ts';
import { routerRunner, type RouterRunner } from '../../playground/router-container.ts';
import type { SimRequest, VllmSimulator } from '../../playground/vllm-simulator.ts';
import { condition, eventually, getObject } from '../../playground/wait.ts';
import { adaptersClaim } from '../support/objects.ts';

const NS = 'router-test';
const SDEP = 'sql-prod';
const GROUP = 'sql-adapters';
const BASE_ID = 'ocid1.datasciencemodel.oc1.iad.base';
const ID_A = 'ocid1.datasciencemodel.oc1.iad.a';
const ID_B = 'ocid1.datasciencemodel.oc1.iad.b';

interface Member {
  inferenceKey: string;
  modelId?: string;
}

function group(members: Member[]) {
  return {
    apiVersion: 'serving.stacked.dev/v1alpha1',
    kind: 'StackedModelGroup',
    metadata: { name: GROUP },
    spec: {
      baseModel: { inferenceKey: 'base', modelId: BASE_ID, source: { huggingface: 'org/base' } },
      members: members.map((m) => ({
        ...m,
        source: { pvc: { claimName: 'adapters', path: m.inferenceKey } },
      })),
    },
  };
}

function deployment(weights: [number, number], opts: { env?: string } = {}) {
  return {
    apiVersion: 'serving.stacked.dev/v1alpha1',
    kind: 'StackedDeployment',
    metadata: { name: SDEP },
    spec: {
      modelGroupRef: { name: GROUP },
      backend: 'vllm',
      engine: { maxLoraRank: 64, maxLoras: 4 },
      vllm: {
        replicas: 2,
        router: { enabled: true, replicas: 1 },
        ...(opts.env !== undefined ? { env: [{ name: 'ROLLOUT', value: opts.env }] } : {}),
      },
      experiments: [
        {
          name: 'sql-ab',
          stickyHeader: 'x-user-id',
          variants: [
            { inferenceKey: 'sql-a', weight: weights[0] },
            { inferenceKey: 'sql-b', weight: weights[1] },
          ],
        },
      ],
    },
  };
}

interface Answer {
  status: number;
  variant: string | null;
  body: string;
}

describe('the router on a real control plane, with the test kubelet and simulators', function () {
  this.timeout(240_000);
  let cp: ControlPlane;
  let kubelet: Kubelet;
  let operator: OperatorProcess;
  let runner: RouterRunner;
  let root: string;
  let members: Member[] = [
    { inferenceKey: 'sql-a', modelId: ID_A },
    { inferenceKey: 'sql-b', modelId: ID_B },
  ];
  /** Every simulator seen since the start: a stopped pod's log still counts. */
  const sims = new Map<string, VllmSimulator>();
  let watchingSims: ReturnType<typeof setInterval> | undefined;

  const apply = (obj: object) => kubectl(cp, ['apply', '-n', NS, '-f', '-'], { input: JSON.stringify(obj) });
  const routerUrl = (): string => {
    const r = [...runner.running.values()][0];
    if (r === undefined) throw new Error('no router process runs');
    return `http://${r.ip}:${String(r.port)}`;
  };
  async function call(path: string, body: object, headers: Record<string, string> = {}): Promise<Answer> {
    const res = await fetch(`${routerUrl()}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
    });
    return { status: res.status, variant: res.headers.get(VARIANT_HEADER), body: await res.text() };
  }
  const complete = (model: string, headers: Record<string, string> = {}) =>
    call('/v1/completions', { model, prompt: 'SELECT', max_tokens: 4 }, headers);
  /** n requests, `concurrency` at a time. */
  async function many(
    n: number,
    concurrency: number,
    one: (i: number) => Promise<Answer>,
  ): Promise<Answer[]> {
    const out: Answer[] = new Array<Answer>(n);
    let next = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        for (let i = next++; i < n; i = next++) out[i] = await one(i);
      }),
    );
    return out;
  }
  /** Requests that reached a simulator for a model it did not serve (vLLM's 404), from every log. */
  const misrouted = (since: number): SimRequest[] =>
    [...sims.values()].flatMap((s) => s.requests().filter((r) => r.at >= since && r.status === 404));

  async function settled(): Promise<void> {
    await eventually(
      'Ready with the router serving',
      async () => {
        const d = await getObject(cp, NS, 'sdep', SDEP);
        const fresh = d?.status?.observedGeneration === d?.metadata.generation;
        return fresh && condition(d, 'Ready')?.status === 'True' && runner.running.size > 0 ? d : undefined;
      },
      120_000,
    );
  }

  before(async function () {
    this.timeout(3_600_000);
    cp = await controlPlaneWithNamespace(NS);
    root = mkdtempSync(join(tmpdir(), 'router-test-'));
    for (const k of ['sql-a', 'sql-b', 'sql-c']) writeAdapter(join(root, 'pvc', NS, 'adapters', k), 16);
    runner = routerRunner(cp);
    kubelet = await startKubelet({
      kubeconfigPath: cp.kubeconfigPath,
      nodes: Array.from({ length: 5 }, (_, i) => ({ name: `router-gpu-${i + 1}`, gpus: 1 })),
      pvcRoot: join(root, 'pvc'),
      hfRoot: join(root, 'hf'),
      namespaces: [NS],
      adapterLoadMs: 300,
      probeTimeScale: 0.1,
      runContainer: runner.run,
    });
    const k = kubelet;
    watchingSims = setInterval(() => {
      for (const p of k.runningPods()) {
        const s = k.simulator(p);
        if (s !== undefined) sims.set(p, s);
      }
    }, 20);
    operator = await startOperator(cp, {
      identity: 'router-test',
      namespace: NS,
      extraArgs: ['--leader-election-id=router-test'],
    });
    await apply(adaptersClaim());
    await apply(group(members));
    await apply(deployment([80, 20]));
    await settled();
    // Ready says a request would succeed: the router knows both members on both pods.
    await eventually('the router answers sql-b', async () =>
      (await complete('sql-b')).status === 200 ? true : undefined,
    );
  });

  after(async () => {
    clearInterval(watchingSims);
    await operator.stop();
    await kubelet.stop();
    rmSync(root, { recursive: true, force: true });
  });

  it("answers every name form (keys, model ids, the experiment) and /predict, and 404s an unknown name in vLLM's shape", async () => {
    for (const [name, served] of [
      ['base', 'base'],
      [BASE_ID, 'base'],
      ['sql-a', 'sql-a'],
      [ID_A, 'sql-a'],
      ['sql-b', 'sql-b'],
      [ID_B, 'sql-b'],
    ] as const) {
      const a = await complete(name);
      assert.equal(a.status, 200, `${name}: ${a.body}`);
      assert.equal((JSON.parse(a.body) as { model: string }).model, served, `the model field of ${name}`);
    }
    const ab = await complete('sql-ab');
    assert.equal(ab.status, 200, ab.body);
    assert.ok(ab.variant === 'sql-a' || ab.variant === 'sql-b', `variant header ${String(ab.variant)}`);
    assert.equal((JSON.parse(ab.body) as { model: string }).model, ab.variant);

    const chat = await call('/v1/chat/completions', {
      model: ID_B,
      messages: [{ role: 'user', content: 'hi' }],
    });
    assert.equal(chat.status, 200, chat.body);
    // The seed's call shape, forwarded as a completion.
    const predict = await call('/predict', {
      model: ID_A,
      prompt: 'SELECT 1',
      max_tokens: 3,
      temperature: 0,
    });
    assert.equal(predict.status, 200, predict.body);
    assert.equal((JSON.parse(predict.body) as { object: string }).object, 'text_completion');

    const models = (await (await fetch(`${routerUrl()}/v1/models`)).json()) as { data: { id: string }[] };
    assert.deepEqual(
      models.data.map((m) => m.id).sort(),
      ['base', BASE_ID, 'sql-a', ID_A, 'sql-b', ID_B, 'sql-ab'].sort(),
    );

    const unknown = await complete('nope');
    assert.equal(unknown.status, 404);
    assert.deepEqual(JSON.parse(unknown.body), {
      error: {
        message: 'The model `nope` does not exist.',
        type: 'NotFoundError',
        param: 'model',
        code: 404,
      },
    });
  });

  it('splits an 80/20 experiment over 2,000 requests within 4 standard deviations, and the variant named is the one that answered', async () => {
    const since = Date.now();
    const answers = await many(2000, 16, () => complete('sql-ab'));
    assert.deepEqual([...new Set(answers.map((a) => a.status))], [200], 'every request answered 200');
    const a = answers.filter((x) => x.variant === 'sql-a').length;
    const b = answers.filter((x) => x.variant === 'sql-b').length;
    assert.equal(a + b, 2000);
    const sigma = Math.sqrt(2000 * 0.8 * 0.2);
    assert.ok(
      Math.abs(a - 1600) <= 4 * sigma,
      `sql-a got ${a} of 2000 (expected 1600 ± ${(4 * sigma).toFixed(0)})`,
    );
    // What the simulators received, from their own logs, is what the header said.
    const received = [...sims.values()].flatMap((s) => s.requests().filter((r) => r.at >= since));
    assert.equal(received.filter((r) => r.model === 'sql-a').length, a);
    assert.equal(received.filter((r) => r.model === 'sql-b').length, b);
  });

  it('keeps every sticky value on one variant while the weights stay the same', async () => {
    const users = Array.from({ length: 200 }, (_, i) => `user-${i}`);
    const first = new Map<string, string | null>();
    for (let round = 0; round < 3; round++) {
      const answers = await many(users.length, 16, (i) => complete('sql-ab', { 'x-user-id': users[i]! }));
      answers.forEach((ans, i) => {
        assert.equal(ans.status, 200);
        const u = users[i]!;
        if (round === 0) first.set(u, ans.variant);
        else assert.equal(ans.variant, first.get(u), `${u} switched variant in round ${round}`);
      });
    }
    const onA = [...first.values()].filter((v) => v === 'sql-a').length;
    assert.ok(onA > 100 && onA < 200, `sticky users spread by weight too (${onA} of 200 on sql-a)`);
  });

  it('applies a weight change under load, live, with no failed request', async () => {
    let stop = false;
    const answers: Answer[] = [];
    const load = Promise.all(
      Array.from({ length: 8 }, async () => {
        while (!stop) answers.push(await complete('sql-ab'));
      }),
    );
    try {
      await sleep(500);
      await apply(deployment([20, 80]));
      // The change has applied once a window of answers leans the new way.
      await eventually(
        'the new weights in force',
        async () => {
          const window = await many(400, 8, () => complete('sql-ab'));
          answers.push(...window);
          const a = window.filter((x) => x.variant === 'sql-a').length;
          return Math.abs(a - 80) <= 4 * Math.sqrt(400 * 0.2 * 0.8) ? true : undefined;
        },
        30_000,
        0,
      );
    } finally {
      stop = true;
      await load;
    }
    assert.ok(answers.length > 400);
    const failed = answers.filter((a) => a.status !== 200);
    assert.deepEqual(failed, [], 'no request failed while the weights changed');
    await settled();
  });

  it('streams chunks before the upstream has finished, and a client abort reaches the simulator', async () => {
    for (const s of sims.values()) s.tokenLatencyMs = 20;
    try {
      const t0 = performance.now();
      const res = await fetch(`${routerUrl()}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          model: 'sql-a',
          prompt: 'SELECT',
          max_tokens: 40,
          stream: true,
          ignore_eos: true,
        }),
      });
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
      const reader = res.body!.getReader();
      const arrivals: number[] = [];
      let text = '';
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        arrivals.push(performance.now() - t0);
        text += Buffer.from(value).toString('utf8');
      }
      const total = arrivals.at(-1)!;
      assert.ok(total >= 40 * 20 * 0.9, `the stream took ${total.toFixed(0)} ms for 40 tokens at 20 ms`);
      assert.ok(
        arrivals[0]! < total / 2,
        `first chunk at ${arrivals[0]!.toFixed(0)} ms of ${total.toFixed(0)} ms`,
      );
      assert.ok(arrivals.length >= 10, `${arrivals.length} reads: chunks pass through as they come`);
      assert.ok(text.trimEnd().endsWith('data: [DONE]'), 'the stream ends as vLLM ends it');

      // A client that goes away mid-stream: the simulator sees the request end as aborted.
      const since = Date.now();
      const abort = new AbortController();
      const res2 = await fetch(`${routerUrl()}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          model: 'sql-b',
          prompt: 'abort me',
          max_tokens: 200,
          stream: true,
          ignore_eos: true,
        }),
        signal: abort.signal,
      });
      const r2 = res2.body!.getReader();
      await r2.read();
      abort.abort();
      const aborted = await eventually('the simulator saw the abort', () => {
        const rs = [...sims.values()].flatMap((s) =>
          s.requests().filter((r) => r.at >= since && r.model === 'sql-b' && r.stream),
        );
        return Promise.resolve(rs.length === 1 && rs[0]!.aborted ? rs[0] : undefined);
      });
      assert.ok(
        aborted.durationMs < 200 * 20,
        `stopped after ${aborted.durationMs.toFixed(0)} ms, not at the end`,
      );
    } finally {
      for (const s of sims.values()) s.tokenLatencyMs = 0;
    }
  });

  it('sends no request to a pod without the adapter: during a member addition with 300 ms loads, and during a rolling update', async () => {
    const since = Date.now();
    let stop = false;
    const answers = new Map<string, Answer[]>();
    const keys = ['sql-a', 'sql-b', 'sql-c', 'base'];
    const load = Promise.all(
      Array.from({ length: 8 }, async (_, w) => {
        for (let i = w; !stop; i += 8) {
          const key = keys[i % keys.length]!;
          const a = await complete(key);
          answers.set(key, [...(answers.get(key) ?? []), a]);
        }
      }),
    );
    let learnedMs: number;
    try {
      members = [...members, { inferenceKey: 'sql-c' }];
      await apply(group(members));
      // The first moment a pod holds sql-c, then the first 200 the router gives for it.
      const held = await eventually(
        'a pod holds sql-c',
        () =>
          Promise.resolve(
            [...sims.values()].some((s) => s.loadedAdapters().includes('sql-c'))
              ? performance.now()
              : undefined,
          ),
        60_000,
        5,
      );
      await eventually(
        'the router serves sql-c',
        async () => ((await complete('sql-c')).status === 200 ? true : undefined),
        60_000,
        10,
      );
      learnedMs = performance.now() - held;
      await settled();
      // A rolling update: a new pod template, so new pods come up (and sync) while old ones go.
      await apply(deployment([20, 80], { env: 'v2' }));
      await eventually(
        'the rollout done',
        async () => {
          const r = await kubectl(cp, ['get', 'deploy', `${SDEP}-vllm`, '-n', NS, '-o', 'json']);
          const st = (JSON.parse(r.stdout) as { status?: Record<string, number> }).status ?? {};
          return st.updatedReplicas === 2 && st.readyReplicas === 2 && st.replicas === 2 ? true : undefined;
        },
        120_000,
      );
      await settled();
      await sleep(500);
    } finally {
      stop = true;
      await load;
    }
    console.log(`      the router served sql-c ${learnedMs.toFixed(0)} ms after the first pod held it`);
    assert.deepEqual(misrouted(since), [], 'no simulator was asked for a model it did not hold');
    for (const key of ['sql-a', 'sql-b', 'base']) {
      const bad = (answers.get(key) ?? []).filter((a) => a.status !== 200);
      assert.deepEqual(bad, [], `every request for ${key} answered 200`);
    }
    // sql-c: unknown until the router saw the group (404), known but held nowhere yet (503), then 200.
    const statuses = new Set((answers.get('sql-c') ?? []).map((a) => a.status));
    assert.ok(
      [...statuses].every((s) => [200, 404, 503].includes(s)),
      `sql-c answered ${[...statuses].join(', ')}`,
    );
    assert.ok(statuses.has(200));
    assert.ok(learnedMs < 5_000, `learned of sql-c in ${learnedMs.toFixed(0)} ms`);
  });

  it('retries a connection refused by a pod on another pod', async () => {
    // The rollout above is done once the Deployment counts 2 pods, but the kubelet may not have
    // seen an old pod's deletion yet: wait until it runs only the 2 new ones.
    const ready = await eventually(
      'the kubelet runs two vLLM pods',
      () => {
        const running = [...sims.entries()].filter(([p]) => kubelet.runningPods().includes(p));
        return Promise.resolve(running.length === 2 ? running : undefined);
      },
      30_000,
    );
    const [, refusing] = ready[0]!;
    const [, other] = ready[1]!;
    const retries = async () => {
      const text = await (await fetch(`${routerUrl()}/metrics`)).text();
      return Number(/^stacked_router_upstream_retries_total (\S+)$/m.exec(text)?.[1] ?? 0);
    };
    const retriedBefore = await retries();
    const since = Date.now();
    const reopen = await refusing.refuseConnections();
    try {
      const answers = await many(40, 4, () => complete('sql-a'));
      assert.deepEqual([...new Set(answers.map((a) => a.status))], [200]);
      assert.equal(refusing.requests().filter((r) => r.at >= since).length, 0);
      assert.equal(other.requests().filter((r) => r.at >= since).length, 40);
      assert.ok((await retries()) > retriedBefore, 'the router met the refusal and tried the other pod');
    } finally {
      await reopen();
    }
  });
});
