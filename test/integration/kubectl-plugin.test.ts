// `kubectl stacked` (bin/kubectl-stacked, found by kubectl on the PATH as a plugin) against a real
// control plane: the operator deploys a vllm StackedDeployment with its router, the test kubelet runs
// simulators and the router process, and the plugin predicts by inference key, by model id and
// through an experiment (plain and streamed), reports each member on each replica, and the
// experiment's traffic from the router's /metrics.
//
// Transport covered here: `pod` (the Service's name does not resolve on this machine; the test
// kubelet's pod IPs, 127.0.1.x, are reachable) and `port-forward` (--via port-forward: client-node's
// PortForward to the API server, which proxies it to the test kubelet's streaming server, which
// dials the router pod). The `service` path (in-cluster DNS) and the API server's pod proxy for
// /metrics (it refuses loopback pod IPs) are not exercised.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { writeAdapter } from '../../playground/adapters.ts';
import type { ControlPlane } from '../../playground/controlplane.ts';
import { startKubelet, type Kubelet } from '../../playground/kubelet.ts';
import { kubectl } from '../../playground/kubectl.ts';
import { controlPlaneWithNamespace, startOperator, type OperatorProcess } from '../../playground/operator.ts';
import { routerRunner, type RouterRunner } from '../../playground/router-container.ts';
import { condition, eventually, getObject } from '../../playground/wait.ts';
import { adaptersClaim } from '../support/objects.ts';

const repoRoot = resolve(import.meta.dirname, '..', '..');
const NS = 'plugin-test';
const SDEP = 'sql-prod';
const GROUP = 'sql-adapters';
const ID_A = 'ocid1.datasciencemodel.oc1.iad.a';
const ID_B = 'ocid1.datasciencemodel.oc1.iad.b';
/** A short completion by inference key. */
const PREDICT_SQL_A = ['predict', SDEP, '--model', 'sql-a', '--prompt', 'SELECT', '--max-tokens', '4'];

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

describe('kubectl stacked (the kubectl plugin) on a real control plane', function () {
  this.timeout(240_000);
  let cp: ControlPlane;
  let kubelet: Kubelet;
  let operator: OperatorProcess;
  let runner: RouterRunner;
  let root: string;

  /** `kubectl stacked ARGS --kubeconfig=... -n NS`, through kubectl's own plugin lookup. */
  async function plugin(...args: string[]): Promise<Run> {
    const child = spawn(
      join(cp.binDir, 'kubectl'),
      ['stacked', ...args, `--kubeconfig=${cp.kubeconfigPath}`, '-n', NS],
      {
        env: { ...process.env, PATH: `${join(repoRoot, 'bin')}:${process.env.PATH ?? ''}`, KUBECONFIG: '' },
        stdio: ['ignore', 'pipe', 'pipe'],
        timeout: 60_000,
      },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const [code] = (await once(child, 'close')) as [number | null];
    return { code: code ?? -1, stdout, stderr };
  }
  async function json<T>(...args: string[]): Promise<T> {
    const r = await plugin(...args, '-o', 'json');
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as T;
  }
  /** A streamed predict through the experiment: some text, and exit 0. */
  async function streamsThroughExperiment(...flags: string[]): Promise<void> {
    const streamed = await plugin(
      'predict',
      SDEP,
      '--model',
      'sql-ab',
      '--prompt',
      'SELECT',
      '--max-tokens',
      '3',
      '--stream',
      ...flags,
    );
    assert.equal(streamed.code, 0, streamed.stderr);
    assert.ok(streamed.stdout.trim().length > 0, 'streamed text');
  }
  const apply = (obj: object) => kubectl(cp, ['apply', '-n', NS, '-f', '-'], { input: JSON.stringify(obj) });

  before(async function () {
    this.timeout(3_600_000);
    cp = await controlPlaneWithNamespace(NS);
    root = mkdtempSync(join(tmpdir(), 'plugin-test-'));
    for (const k of ['sql-a', 'sql-b']) writeAdapter(join(root, 'pvc', NS, 'adapters', k), 16);
    runner = routerRunner(cp);
    kubelet = await startKubelet({
      kubeconfigPath: cp.kubeconfigPath,
      nodes: [
        { name: 'plugin-gpu-1', gpus: 1 },
        { name: 'plugin-gpu-2', gpus: 1 },
        { name: 'plugin-gpu-3', gpus: 1 },
      ],
      pvcRoot: join(root, 'pvc'),
      hfRoot: join(root, 'hf'),
      namespaces: [NS],
      adapterLoadMs: 50,
      probeTimeScale: 0.1,
      runContainer: runner.run,
    });
    operator = await startOperator(cp, {
      identity: 'plugin-test',
      namespace: NS,
      extraArgs: ['--leader-election-id=plugin-test'],
    });
    await apply(adaptersClaim());
    await apply({
      apiVersion: 'serving.stacked.dev/v1alpha1',
      kind: 'StackedModelGroup',
      metadata: { name: GROUP },
      spec: {
        baseModel: { inferenceKey: 'base', source: { huggingface: 'org/base' } },
        members: [
          { inferenceKey: 'sql-a', modelId: ID_A, source: { pvc: { claimName: 'adapters', path: 'sql-a' } } },
          { inferenceKey: 'sql-b', modelId: ID_B, source: { pvc: { claimName: 'adapters', path: 'sql-b' } } },
        ],
      },
    });
    await apply({
      apiVersion: 'serving.stacked.dev/v1alpha1',
      kind: 'StackedDeployment',
      metadata: { name: SDEP },
      spec: {
        modelGroupRef: { name: GROUP },
        backend: 'vllm',
        engine: { maxLoraRank: 64, maxLoras: 4 },
        vllm: { replicas: 2, router: { enabled: true, replicas: 1 } },
        experiments: [
          {
            name: 'sql-ab',
            variants: [
              { inferenceKey: 'sql-a', weight: 50 },
              { inferenceKey: 'sql-b', weight: 50 },
            ],
          },
        ],
      },
    });
    await eventually(
      'Ready with the router serving',
      async () => {
        const d = await getObject(cp, NS, 'sdep', SDEP);
        const fresh = d?.status?.observedGeneration === d?.metadata.generation;
        return fresh && condition(d, 'Ready')?.status === 'True' && runner.running.size > 0 ? d : undefined;
      },
      120_000,
    );
  });

  after(async () => {
    await operator.stop();
    await kubelet.stop();
    rmSync(root, { recursive: true, force: true });
  });

  interface Predicted {
    endpoint: string;
    via: string;
    pod?: string;
    model: string;
    variant?: string;
    response: { object: string; choices: { text: string }[] };
  }

  it('prints its usage with --help, and exits 2 on a bad command line and 1 for a missing deployment', async () => {
    const help = await plugin('--help');
    assert.equal(help.code, 0, help.stderr);
    assert.match(help.stdout, /kubectl stacked predict DEPLOYMENT --model NAME --prompt TEXT/);
    const bad = await plugin('predict', SDEP, '--model', 'sql-a');
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--model and --prompt are required/);
    const missing = await plugin('status', 'nope');
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /not found/);
  });

  it('predicts by inference key, at the router resolved from status.endpoint, through a pod IP', async () => {
    const p = await json<Predicted>(...PREDICT_SQL_A);
    assert.equal(p.endpoint, `http://${SDEP}-router.${NS}.svc:8080`);
    assert.equal(p.via, 'pod', 'the Service name does not resolve here; the pod IP answers');
    assert.ok(p.pod?.startsWith(`${SDEP}-router-`), `a router pod: ${String(p.pod)}`);
    assert.equal(p.model, 'sql-a');
    assert.equal(p.response.object, 'text_completion');
    const plain = await plugin(...PREDICT_SQL_A);
    assert.equal(plain.code, 0, plain.stderr);
    // The table output is the completion's text alone, as a script would read it.
    assert.ok(plain.stdout.endsWith('\n') && plain.stdout.trim().length > 0, `text: ${plain.stdout}`);
    assert.ok(!plain.stdout.trimStart().startsWith('{'), 'not JSON');
  });

  it('predicts through a port-forward over the API server and the kubelet, plain and streamed', async () => {
    const p = await json<Predicted>(...PREDICT_SQL_A, '--via', 'port-forward');
    assert.equal(p.via, 'port-forward');
    assert.ok(p.pod?.startsWith(`${SDEP}-router-`), `a router pod: ${String(p.pod)}`);
    assert.equal(p.model, 'sql-a');
    assert.equal(p.response.object, 'text_completion');
    assert.ok((p.response.choices[0]?.text ?? '').length > 0, 'a completion came back through the tunnel');
    await streamsThroughExperiment('--via', 'port-forward');
  });

  it('predicts by model id: the answer names the inference key', async () => {
    const p = await json<Predicted>('predict', SDEP, '--model', ID_B, '--prompt', 'SELECT');
    assert.equal(p.model, 'sql-b');
  });

  it('predicts through an experiment, naming the variant that answered; and streams', async () => {
    const p = await json<Predicted>('predict', SDEP, '--model', 'sql-ab', '--prompt', 'SELECT');
    assert.ok(p.variant === 'sql-a' || p.variant === 'sql-b', `variant ${String(p.variant)}`);
    assert.equal(p.model, p.variant);
    await streamsThroughExperiment();
  });

  it("status: each member Loaded on each ready replica, from the pods' adapter-state annotations", async () => {
    const s = await json<{
      backend: string;
      pods: { name: string; ready: boolean }[];
      members: { inferenceKey: string; state: string; replicas: Record<string, string> }[];
    }>('status', SDEP);
    assert.equal(s.backend, 'vllm');
    assert.equal(s.pods.filter((p) => p.ready).length, 2);
    assert.deepEqual(
      s.members.map((m) => m.inferenceKey),
      ['sql-a', 'sql-b'],
    );
    for (const m of s.members) {
      assert.equal(m.state, 'Loaded');
      assert.deepEqual(Object.values(m.replicas), ['Loaded', 'Loaded'], m.inferenceKey);
    }
    const t = await plugin('status', SDEP);
    assert.equal(t.code, 0, t.stderr);
    assert.match(t.stdout, /MEMBER\s+STATE\s+LOADED/);
    assert.match(t.stdout, /sql-a\s+Loaded\s+2\/2\s+Loaded\s+Loaded/);
  });

  it("experiment -o json: traffic, errors and latency per variant from the router's /metrics", async () => {
    const before = await json<{ variants: { variant: string; requests: number }[] }>('experiment', SDEP);
    const n = 10;
    for (let i = 0; i < n; i++) {
      const r = await plugin('predict', SDEP, '--model', 'sql-ab', '--prompt', 'x', '--max-tokens', '1');
      assert.equal(r.code, 0, r.stderr);
    }
    const e = await json<{
      routers: { pod: string; via: string }[];
      variants: {
        experiment: string;
        variant: string;
        weight: number;
        requests: number;
        errors: number;
        share: number;
        meanSeconds?: number;
        p95Seconds?: number;
      }[];
    }>('experiment', SDEP);
    assert.deepEqual(
      e.routers.map((r) => r.via),
      ['pod'],
    );
    assert.deepEqual(
      e.variants.map((v) => [v.experiment, v.variant, v.weight]),
      [
        ['sql-ab', 'sql-a', 50],
        ['sql-ab', 'sql-b', 50],
      ],
    );
    const total = (vs: { requests: number }[]) => vs.reduce((a, v) => a + v.requests, 0);
    assert.equal(total(e.variants) - total(before.variants), n);
    for (const v of e.variants) {
      assert.equal(v.errors, 0);
      if (v.requests > 0) {
        assert.ok(v.meanSeconds !== undefined && v.meanSeconds > 0, 'mean latency');
        assert.ok(v.p95Seconds !== undefined, 'p95 latency');
      }
    }
    const t = await plugin('experiment', SDEP);
    assert.equal(t.code, 0, t.stderr);
    assert.match(t.stdout, /EXPERIMENT\s+VARIANT\s+WEIGHT\s+REQUESTS/);
  });
});
