// The router in front of an oci StackedDeployment (issue 9): the operator deploys it, the test kubelet
// runs it as a real process with its own ServiceAccount's token, and it forwards an A/B experiment, a
// member's model OCID and the base's key to the OCI emulator's predict, signed with the key of the
// deployment's Secret. The emulator verifies every signature and records who signed each predict and
// which model it named, so what reached OCI is counted from OCI's side.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { VARIANT_HEADER } from '../../src/api/router/v1.ts';
import type { ControlPlane } from '../../playground/controlplane.ts';
import { startKubelet, type Kubelet } from '../../playground/kubelet.ts';
import { kubectl } from '../../playground/kubectl.ts';
import { startOciEmulator, type OciEmulator, type RequestRecord } from '../../playground/oci-emulator.ts';
import { apiKeySecret, makeApiKey, type ApiKey } from '../../playground/oci-keys.ts';
import { controlPlaneWithNamespace, startOperator, type OperatorProcess } from '../../playground/operator.ts';
import { routerRunner, type RouterProcess, type RouterRunner } from '../../playground/router-container.ts';
import { eventually, waitForReady } from '../../playground/wait.ts';
import { ociDeployment } from '../support/objects.ts';

const NS = 'router-oci';
const SDEP = 'sql-oci';
const GROUP = 'sql';
const SECRET = 'oci-api-key';
const ROUTER_ENDPOINT = `http://${SDEP}-router.${NS}.svc:8080`;
const BASE = 'ocid1.datasciencemodel.oc1.iad.aaaaaaaarouterbase';
const lora = (n: number) => `ocid1.datasciencemodel.oc1.iad.aaaaaaaarouterlora${String(n)}`;
const A = 'sql-lora-1';
const B = 'sql-lora-2';
const EXPERIMENT = 'sql-ab';
const REQUESTS = 400;
const P_A = 0.8;
/** The emulator's fast polls: an operator flag, so the test does not wait 2 s per step. */
const OPERATOR_ARGS = [
  '--oci-progress-interval-ms=100',
  '--oci-poll-interval=2',
  `--leader-election-id=${NS}`,
];

interface Answer {
  status: number;
  variant: string | null;
  body: { model?: string; choices?: { text: string }[]; code?: string; message?: string } | undefined;
}

describe('the router over an oci deployment, against the OCI emulator', function () {
  this.timeout(240_000);
  let cp: ControlPlane;
  let emu: OciEmulator;
  let key: ApiKey;
  let kubelet: Kubelet | undefined;
  let runner: RouterRunner;
  let operator: OperatorProcess | undefined;
  let root: string;

  const apply = (obj: object) => kubectl(cp, ['apply', '-n', NS, '-f', '-'], { input: JSON.stringify(obj) });
  const router = (): RouterProcess => {
    const ps = [...runner.running.values()].filter((p) => p.podKey.startsWith(`${NS}/`));
    assert.equal(ps.length, 1, `one router process: ${ps.map((p) => p.podKey).join(', ')}`);
    return ps[0]!;
  };
  /** A completion through the router's address, unsigned as clients call it. */
  const ask = async (model: string, headers: Record<string, string> = {}): Promise<Answer> => {
    const r = router();
    const res = await fetch(`http://${r.ip}:${String(r.port)}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ model, prompt: 'SELECT * FROM', max_tokens: 4, temperature: 0 }),
      signal: AbortSignal.timeout(10_000),
    });
    const text = await res.text();
    return {
      status: res.status,
      variant: res.headers.get(VARIANT_HEADER),
      body: text === '' ? undefined : (JSON.parse(text) as Answer['body']),
    };
  };
  /** The label the emulator's completion text starts with: `[<inferenceKey>]`. */
  const answeredBy = (a: Answer) => /^\[([^\]]+)\]/.exec(a.body?.choices?.[0]?.text ?? '')?.[1];
  /**
   * Asks for `model` every 200 ms until the answer has status `want`; any status but `want` and
   * `meanwhile` fails at once, as does no `want` within timeoutMs.
   */
  const firstAnswer = async (model: string, want: number, meanwhile: number, timeoutMs: number) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const a = await ask(model);
      if (a.status === want) return a;
      assert.equal(a.status, meanwhile, `waiting for ${String(want)}: ${JSON.stringify(a.body)}`);
      assert.ok(Date.now() < deadline, `no ${String(want)} within ${String(timeoutMs)} ms`);
      await sleep(200);
    }
  };
  const predicts = (since: number): RequestRecord[] =>
    emu.requests().filter((r) => r.operation === 'Predict' && r.at >= since);
  /**
   * The emulator's log position now, and the predicts logged after it: exact where a time would not
   * be (a request that arrived in the same millisecond as the mark would count).
   */
  const mark = (): number => emu.requests().length;
  const predictsAfter = (at: number): RequestRecord[] =>
    emu
      .requests()
      .slice(at)
      .filter((r) => r.operation === 'Predict');

  before(async function () {
    this.timeout(3_600_000);
    cp = await controlPlaneWithNamespace(NS);
    root = mkdtempSync(join(tmpdir(), 'router-oci-'));
    key = makeApiKey('router-oci');
    emu = await startOciEmulator({
      keys: { [key.keyId]: key.publicKeyPem },
      models: [BASE, lora(1), lora(2)],
      delays: { groupCreateMs: 50, groupDeleteMs: 50, deploymentCreateMs: 300, deploymentUpdateMs: 200 },
    });
    runner = routerRunner(cp, (line) => {
      if (process.env.ROUTER_LOGS) process.stderr.write(`${line}\n`);
    });
    // The router's pod needs no GPU, only a node to run on.
    kubelet = await startKubelet({
      kubeconfigPath: cp.kubeconfigPath,
      nodes: [{ name: 'router-oci-cpu-1', gpus: 0 }],
      pvcRoot: join(root, 'pvc'),
      hfRoot: join(root, 'hf'),
      namespaces: [NS],
      runContainer: runner.run,
    });
    operator = await startOperator(cp, { identity: NS, namespace: NS, extraArgs: OPERATOR_ARGS });
    await apply(apiKeySecret(SECRET, key));
    await apply({
      apiVersion: 'serving.stacked.dev/v1alpha1',
      kind: 'StackedModelGroup',
      metadata: { name: GROUP },
      spec: {
        displayName: 'Model Group - Stacked',
        baseModel: { inferenceKey: 'basemodel', modelId: BASE },
        members: [
          { inferenceKey: A, modelId: lora(1) },
          { inferenceKey: B, modelId: lora(2) },
        ],
      },
    });
    const d = ociDeployment(SDEP, {
      group: GROUP,
      endpoint: emu.url,
      oci: {
        auth: { type: 'apiKey', secretRef: { name: SECRET } },
        displayName: 'MMS Model Group Deployment - Stacked',
        container: {
          image: 'iad.ocir.io/namespace/odsc-vllm-serving:0.6.4.post1.1',
          serverPort: 8080,
          environmentVariables: { MODEL_DEPLOY_PREDICT_ENDPOINT: '/v1/completions' },
        },
        retainModelGroups: 0,
        router: { enabled: true },
      },
    });
    d.spec.experiments = [
      {
        name: EXPERIMENT,
        stickyHeader: 'x-user-id',
        variants: [
          { inferenceKey: A, weight: 80 },
          { inferenceKey: B, weight: 20 },
        ],
      },
    ];
    await apply(d);
  });

  after(async () => {
    await operator?.stop();
    await kubelet?.stop();
    await emu.close();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it('is Ready with status.endpoint naming the router, whose process runs on the router pod', async () => {
    const d = await eventually(
      'Ready (Serving) with the router as endpoint',
      async () => {
        const o = await waitForReady(cp, NS, 'sdep', SDEP, 'True', 'Serving', 5_000).catch(() => undefined);
        return o?.status?.endpoint === ROUTER_ENDPOINT ? o : undefined;
      },
      120_000,
    );
    const predictUrl = (d.status?.oci as { predictUrl?: string } | undefined)?.predictUrl ?? '';
    assert.match(predictUrl, /^http:\/\/127\.0\.0\.1:\d+\/.+\/predict$/, 'status.oci.predictUrl');
    assert.ok(predictUrl.startsWith(emu.url), 'the predict URL is the emulator');
    const r = router();
    assert.match(r.podKey, new RegExp(`^${NS}/${SDEP}-router-`));
    // The router learns the deployment and its group through its own watches before it routes.
    await eventually('the router answers the experiment', async () =>
      (await ask(EXPERIMENT)).status === 200 ? true : undefined,
    );
  });

  it(`runs ${String(REQUESTS)} requests for the 80/20 experiment through OCI predict, within 4 sigma, each answered by its variant`, async () => {
    const since = mark();
    const answers: Answer[] = [];
    const CONCURRENCY = 16;
    let next = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < REQUESTS) {
          next++;
          answers.push(await ask(EXPERIMENT));
        }
      }),
    );
    assert.equal(answers.length, REQUESTS);
    const failed = answers.filter((a) => a.status !== 200);
    assert.deepEqual(
      failed.slice(0, 3).map((a) => [a.status, a.body]),
      [],
      `${String(failed.length)} of ${String(REQUESTS)} failed`,
    );
    const counts = new Map<string, number>();
    for (const [i, a] of answers.entries()) {
      assert.ok(
        a.variant === A || a.variant === B,
        `answer ${String(i)}: variant header ${String(a.variant)}`,
      );
      // What OCI's stacked predict served is the member the header names.
      assert.equal(answeredBy(a), a.variant, `answer ${String(i)}: completion text vs ${VARIANT_HEADER}`);
      counts.set(a.variant, (counts.get(a.variant) ?? 0) + 1);
    }
    const mean = REQUESTS * P_A;
    const sigma = Math.sqrt(REQUESTS * P_A * (1 - P_A));
    const a = counts.get(A) ?? 0;
    assert.ok(
      Math.abs(a - mean) <= 4 * sigma,
      `${A}: ${String(a)}, ${B}: ${String(counts.get(B) ?? 0)}; want ${String(mean)} ± ${String(4 * sigma)}`,
    );

    // From OCI's side: every one arrived as a predict, signed with the Secret's key, naming the
    // variant's inferenceKey (the router rewrote the experiment's name), and was answered 200.
    const seen = predictsAfter(since);
    assert.equal(seen.length, REQUESTS, 'one predict per request, no retry');
    assert.deepEqual(
      [...new Set(seen.map((r) => `${String(r.status)} ${r.keyId ?? 'unsigned'}`))],
      [`200 ${key.keyId}`],
    );
    const byModel = new Map<string, number>();
    for (const r of seen) byModel.set(r.model ?? '?', (byModel.get(r.model ?? '?') ?? 0) + 1);
    assert.deepEqual(
      Object.fromEntries(byModel),
      Object.fromEntries([...counts].filter(([, n]) => n > 0)),
      'the models OCI was asked for are the variants the router named',
    );
  });

  it('keeps one x-user-id on one variant', async () => {
    for (const user of ['alice', 'bob', 'carol', 'dave']) {
      const variants = new Set<string | null>();
      for (let i = 0; i < 8; i++) {
        const a = await ask(EXPERIMENT, { 'x-user-id': user });
        assert.equal(a.status, 200);
        assert.equal(answeredBy(a), a.variant);
        variants.add(a.variant);
      }
      assert.equal(variants.size, 1, `${user}: ${[...variants].join(', ')}`);
    }
  });

  it("answers a member's model OCID and the base's inference key and OCID, signed with the Secret's key", async () => {
    const since = mark();
    for (const [model, label] of [
      [lora(1), A],
      [lora(2), B],
      ['basemodel', 'basemodel'],
      [BASE, 'basemodel'],
      [A, A],
    ] as const) {
      const a = await ask(model);
      assert.equal(a.status, 200, `${model}: ${JSON.stringify(a.body)}`);
      assert.equal(a.variant, null, `${model} is no experiment`);
      assert.equal(answeredBy(a), label, model);
    }
    const seen = predictsAfter(since);
    assert.equal(seen.length, 5);
    for (const r of seen) assert.equal(r.keyId, key.keyId, `${String(r.model)} signed with the Secret's key`);
    // An unknown name never leaves the cluster.
    const asked = mark();
    const unknown = await ask('no-such-model');
    assert.equal(unknown.status, 404);
    assert.deepEqual(predictsAfter(asked), [], 'an unknown name is not sent to OCI');
  });

  it('signs with the key in the Secret: an unknown key gets 401 within 15 s, the right one again recovers', async () => {
    const stranger = makeApiKey('stranger'); // the emulator does not know its public half
    const replaced = Date.now();
    await apply(apiKeySecret(SECRET, stranger));
    // Until the cached Secret expires the old key still signs (200); then OCI refuses the new one.
    const refused = await firstAnswer(EXPERIMENT, 401, 200, 20_000);
    const took = Date.now() - replaced;
    assert.ok(took <= 15_000, `401 after ${String(took)} ms`);
    assert.equal(refused.body?.code, 'NotAuthenticated', JSON.stringify(refused.body));
    // The emulator refused it: the last predicts were 401 and carried no key it knows.
    const last = predicts(replaced).at(-1);
    assert.equal(last?.status, 401);
    assert.equal(last.keyId, undefined);
    // Every request now fails the same way, none with another status.
    for (let i = 0; i < 5; i++) assert.equal((await ask(A)).status, 401);

    const restored = Date.now();
    await apply(apiKeySecret(SECRET, key));
    await firstAnswer(A, 200, 401, 20_000);
    // OCI's 401 makes the router read the Secret again at the next request, not at the cache's end.
    const back = Date.now() - restored;
    assert.ok(back <= 5_000, `200 after ${String(back)} ms`);
    for (let i = 0; i < 10; i++) {
      const a = await ask(EXPERIMENT);
      assert.equal(a.status, 200);
      assert.equal(answeredBy(a), a.variant);
    }
    assert.equal(predicts(Date.now() - 2_000).at(-1)?.keyId, key.keyId);
  });

  it("leaves no 403 from the API server in the router's logs", () => {
    const lines = router().lines;
    assert.ok(lines.length > 0, 'the router logged');
    const denied = lines.filter((l) => /\b403\b|forbidden/i.test(l));
    assert.deepEqual(denied, [], 'the router was refused something its Role should allow');
  });
});
