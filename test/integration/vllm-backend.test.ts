// The vllm backend end to end: the real control plane runs the Deployment and ReplicaSets, the test
// kubelet runs each pod as a vLLM simulator on its own loopback address, and the operator (its own
// process, its own RBAC) loads every adapter into every pod and gates readiness on it.
import assert from 'node:assert/strict';
import { V1ObjectMeta } from '@kubernetes/client-node';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { StackedModelGroup } from '../../src/api/v1alpha1/modelgroup.ts';
import type { StackedDeployment } from '../../src/api/v1alpha1/deployment.ts';
import { model } from '../../src/runtime/model.ts';
import { writeAdapter } from '../../playground/adapters.ts';
import type { ControlPlane } from '../../playground/controlplane.ts';
import { startKubelet, type Kubelet } from '../../playground/kubelet.ts';
import { adapterViolations, formatViolations, missingAdapters, Timeline } from '../../playground/timeline.ts';
import { kubectl } from '../../playground/kubectl.ts';
import { controlPlaneWithNamespace, startOperator, type OperatorProcess } from '../../playground/operator.ts';
import {
  condition,
  eventsFor,
  eventually,
  getObject,
  waitForReady,
  type Obj,
} from '../../playground/wait.ts';
import { adaptersClaim } from '../support/objects.ts';

const NS = 'vllm-test';
const SDEP = 'sql-prod';
const GROUP = 'sql-adapters';

interface PodObj {
  metadata: { name: string; uid: string; labels?: Record<string, string>; deletionTimestamp?: string };
  status?: {
    podIP?: string;
    conditions?: { type: string; status: string }[];
    containerStatuses?: { name: string; restartCount: number }[];
  };
}

function group(
  members: { key: string; path: string; rank?: number }[],
  base = 'org/base',
): StackedModelGroup {
  return {
    apiVersion: 'serving.stacked.dev/v1alpha1',
    kind: 'StackedModelGroup',
    metadata: model(V1ObjectMeta, { name: GROUP }),
    spec: {
      baseModel: { inferenceKey: 'basemodel', source: { huggingface: base } },
      members: members.map((m) => ({
        inferenceKey: m.key,
        source: { pvc: { claimName: 'adapters', path: m.path } },
        ...(m.rank === undefined ? {} : { rank: m.rank }),
      })),
    },
  };
}

function deployment(
  replicas: number,
  mutate: (d: StackedDeployment) => void = () => undefined,
): StackedDeployment {
  const d = {
    apiVersion: 'serving.stacked.dev/v1alpha1',
    kind: 'StackedDeployment',
    metadata: { name: SDEP },
    spec: {
      modelGroupRef: { name: GROUP },
      backend: 'vllm',
      engine: { maxLoraRank: 64, maxLoras: 4 },
      vllm: { replicas, image: 'vllm/vllm-openai:v0.11.0' },
    },
  } as unknown as StackedDeployment;
  mutate(d);
  return d;
}

describe('vllm backend on a real control plane with the test kubelet', function () {
  this.timeout(180_000);
  let cp: ControlPlane;
  let kubelet: Kubelet;
  let operator: OperatorProcess;
  let root: string;
  let members = [
    { key: 'sql-lora-1', path: 'sql/1' },
    { key: 'sql-lora-2', path: 'sql/2' },
    { key: 'sql-lora-3', path: 'sql/3' },
  ];

  const apply = (obj: object) => kubectl(cp, ['apply', '-n', NS, '-f', '-'], { input: JSON.stringify(obj) });
  const pods = async (): Promise<PodObj[]> => {
    const r = await kubectl(cp, [
      'get',
      'pods',
      '-n',
      NS,
      '-l',
      `serving.stacked.dev/deployment=${SDEP}`,
      '-o',
      'json',
    ]);
    return (JSON.parse(r.stdout) as { items: PodObj[] }).items.filter((p) => !p.metadata.deletionTimestamp);
  };
  const isReady = (p: PodObj) =>
    p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
  const loaded = (p: PodObj) => kubelet.simulator(`${NS}/${p.metadata.name}`)?.loadedAdapters() ?? [];
  const wantedKeys = () => members.map((m) => m.key).sort();
  /** What the kubelet and the simulators did, in one order: the invariants are replayed from it. */
  const timeline = new Timeline();

  /**
   * Runs `work`, then replays the timeline of that time: no moment where a Ready pod whose vLLM runs
   * lacks a member, nor lacks an adapter another Ready pod serves. Returns the violations, printed.
   */
  async function violationsDuring(work: () => Promise<unknown>): Promise<string> {
    const since = timeline.now();
    await work();
    const events = timeline.events();
    const pods = `${NS}/`;
    const vs = [
      ...missingAdapters(events, wantedKeys(), { pods, since }),
      ...adapterViolations(events, { pods, since }),
    ];
    return formatViolations(vs, since);
  }

  async function servedEverywhere(replicas: number): Promise<Obj> {
    return eventually(
      `${replicas} ready pods holding ${wantedKeys().join(', ')}`,
      async () => {
        const ps = (await pods()).filter(isReady);
        const ok =
          ps.length === replicas && ps.every((p) => loaded(p).slice().sort().join() === wantedKeys().join());
        if (!ok) return undefined;
        const d = await getObject(cp, NS, 'sdep', SDEP);
        return condition(d, 'Ready')?.status === 'True' &&
          d?.status?.observedGeneration === d?.metadata.generation
          ? d
          : undefined;
      },
      90_000,
    );
  }

  before(async function () {
    this.timeout(3_600_000);
    cp = await controlPlaneWithNamespace(NS);
    root = mkdtempSync(join(tmpdir(), 'vllm-test-'));
    for (const [i, m] of ['sql/1', 'sql/2', 'sql/3', 'sql/4'].entries())
      writeAdapter(join(root, 'pvc', NS, 'adapters', m), 8 + i * 8);
    writeAdapter(join(root, 'pvc', NS, 'adapters', 'big'), 128);
    kubelet = await startKubelet({
      kubeconfigPath: cp.kubeconfigPath,
      nodes: Array.from({ length: 5 }, (_, i) => ({ name: `gpu-${i + 1}`, gpus: 1 })),
      pvcRoot: join(root, 'pvc'),
      hfRoot: join(root, 'hf'),
      namespaces: [NS],
      // Loads take time, as on a GPU, so a gate that opened before its adapters were in would show.
      adapterLoadMs: 300,
      // The operator's liveness probe (10 s x 6) at a tenth of its pace.
      probeTimeScale: 0.1,
      timeline,
    });
    operator = await startOperator(cp, {
      identity: 'vllm-test',
      namespace: NS,
      extraArgs: ['--leader-election-id=vllm-test', '--adapter-verify-interval=2'],
    });
    await apply(adaptersClaim());
  });

  after(async () => {
    await operator.stop();
    await kubelet.stop();
    rmSync(root, { recursive: true, force: true });
  });

  it('serves 3 members on 2 replicas: Ready, every adapter on both pods, completions by each key', async () => {
    await apply(group(members));
    await apply(deployment(2));
    const d = await servedEverywhere(2);
    const adapters = d.status?.adapters as { inferenceKey: string; state: string; loadedReplicas: number }[];
    assert.deepEqual(
      adapters.map((a) => [a.inferenceKey, a.state, a.loadedReplicas]),
      members.map((m) => [m.key, 'Loaded', 2]),
    );
    // The router is on by default (spec.vllm.router.enabled): clients go through its Service.
    assert.equal(d.status?.endpoint, `http://${SDEP}-router.${NS}.svc:8080`);
    for (const p of await pods()) {
      for (const key of ['basemodel', ...wantedKeys()]) {
        const res = await fetch(`http://${p.status!.podIP!}:8000/v1/completions`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ model: key, prompt: 'SELECT', max_tokens: 4 }),
        });
        assert.equal(res.status, 200, `${key} on ${p.metadata.name}`);
      }
    }
    const g = await eventually('servedBy in the group status', async () => {
      const obj = await getObject(cp, NS, 'smg', GROUP);
      const ms = obj?.status?.members as { servedBy?: string[] }[] | undefined;
      return ms?.every((m) => m.servedBy?.includes(SDEP)) ? obj : undefined;
    });
    assert.ok(g);
  });

  it('adds a member live on every replica without restarting a pod, and removes one', async () => {
    const before = (await pods()).map((p) => p.metadata.uid).sort();
    members = [...members, { key: 'sql-lora-4', path: 'sql/4' }];
    await apply(group(members));
    await servedEverywhere(2);
    assert.deepEqual((await pods()).map((p) => p.metadata.uid).sort(), before, 'no pod was replaced');
    // A member that was never loaded was not lost: adding one warns nobody.
    const warned = (await eventsFor(cp, NS, SDEP)).filter((e) => e.reason === 'AdaptersReloaded');
    assert.deepEqual(warned, [], 'adding a member emits no AdaptersReloaded');

    members = members.filter((m) => m.key !== 'sql-lora-2');
    await apply(group(members));
    await servedEverywhere(2);
    for (const p of await pods())
      assert.ok(!loaded(p).includes('sql-lora-2'), `unloaded from ${p.metadata.name}`);
  });

  it('scales to 4: new pods become Ready only with every adapter loaded', async () => {
    const violations = await violationsDuring(async () => {
      await apply(deployment(4));
      await servedEverywhere(4);
    });
    assert.equal(violations, '');
  });

  it('vLLM dies: the kubelet restarts it on its liveness probe and the operator reloads its adapters', async () => {
    const [victim] = await pods();
    const key = `${NS}/${victim!.metadata.name}`;
    const violations = await violationsDuring(async () => {
      // The engine dies (EngineDeadError): /health answers 503 until the liveness probe's failure
      // threshold restarts the container. Nobody restarts it by hand.
      kubelet.simulator(key)!.crashEngine();
      await eventually(
        'the restarted pod back in service with every adapter',
        async () => {
          const p = (await pods()).find((x) => x.metadata.name === victim!.metadata.name);
          const restarted = (p?.status?.containerStatuses?.[0]?.restartCount ?? 0) >= 1;
          return p && restarted && isReady(p) && loaded(p).length === members.length ? true : undefined;
        },
        90_000,
      );
    });
    assert.equal(violations, '');
    assert.equal(kubelet.simulator(key)?.loadedAdapters().length, members.length);
    const events = await eventsFor(cp, NS, SDEP);
    assert.ok(
      events.some((e) => e.reason === 'AdaptersReloading' && e.message.includes(victim!.metadata.name)),
      'the gate closed when vLLM stopped being ready, naming the pod',
    );
  });

  it('reloads an adapter someone unloaded by hand, and says so in an Event naming pod and adapter', async () => {
    const [p] = await pods();
    const sim = kubelet.simulator(`${NS}/${p!.metadata.name}`)!;
    assert.ok(sim.unloadDirect('sql-lora-1'));
    await eventually(
      'sql-lora-1 reloaded',
      () => Promise.resolve(sim.loadedAdapters().includes('sql-lora-1') ? true : undefined),
      30_000,
    );
    const warned = await eventually('an AdaptersReloaded Event', async () => {
      const es = (await eventsFor(cp, NS, SDEP)).filter((e) => e.reason === 'AdaptersReloaded');
      return es.length > 0 ? es : undefined;
    });
    assert.deepEqual(
      warned.map((e) => [e.type, e.message]),
      [['Warning', `pod ${p!.metadata.name} lost adapter sql-lora-1 (unloaded by hand?); reloading`]],
    );
  });

  it('reports a member with a bad path or too high a rank as Degraded, naming it, and serves the others', async () => {
    await apply(group([...members, { key: 'missing', path: 'nowhere' }, { key: 'big-rank', path: 'big' }]));
    const d = await eventually(
      'Degraded',
      async () => {
        const obj = await getObject(cp, NS, 'sdep', SDEP);
        const c = condition(obj, 'Degraded');
        return c?.status === 'True' && /big-rank/.test(c.message) && /missing/.test(c.message)
          ? obj
          : undefined;
      },
      60_000,
    );
    const degraded = condition(d, 'Degraded')!;
    assert.equal(degraded.reason, 'AdapterFailed');
    assert.match(
      degraded.message,
      /member missing: Loading lora missing failed: No adapter found for \/mnt\/pvc\/adapters\/nowhere/,
    );
    assert.match(degraded.message, /member big-rank: LoRA rank 128 is greater than max_lora_rank 64/);
    assert.equal(condition(d, 'Available')?.status, 'True');
    for (const p of (await pods()).filter(isReady)) {
      for (const m of members)
        assert.ok(loaded(p).includes(m.key), `${m.key} still served on ${p.metadata.name}`);
    }
    await apply(group(members));
    await servedEverywhere(4);
  });

  it('refuses a declared rank above maxLoraRank before touching any pod, and keeps caring for the pods meanwhile', async () => {
    await apply(group([...members, { key: 'declared-big', path: 'big', rank: 128 }]));
    const d = await waitForReady(cp, NS, 'sdep', SDEP, 'False', 'RankTooHigh');
    assert.match(condition(d, 'Ready')!.message, /declared-big \(rank 128\) exceeds engine.maxLoraRank 64/);
    for (const p of await pods()) assert.ok(!loaded(p).includes('declared-big'));
    // A problem with the new spec must not stop the care of what serves: a container that restarts
    // now gets its adapters back before it rejoins the Service.
    const [victim] = await pods();
    const violations = await violationsDuring(async () => {
      await kubelet.restartContainer(NS, victim!.metadata.name);
      await eventually(
        'the restarted pod back in service with every adapter while RankTooHigh stands',
        async () => {
          const p = (await pods()).find((x) => x.metadata.name === victim!.metadata.name);
          return p && isReady(p) && loaded(p).slice().sort().join() === wantedKeys().join()
            ? true
            : undefined;
        },
        60_000,
      );
    });
    assert.equal(violations, '');
    assert.equal(condition(await getObject(cp, NS, 'sdep', SDEP), 'Ready')?.reason, 'RankTooHigh');
    await apply(group(members));
    await servedEverywhere(4);
  });

  it('rolls out a base model change with no moment where a Ready pod lacks an adapter', async () => {
    const before = new Set((await pods()).map((p) => p.metadata.uid));
    const violations = await violationsDuring(async () => {
      await apply(group(members, 'org/base-v2'));
      await eventually(
        'every pod replaced',
        async () => {
          const ps = await pods();
          return ps.length === 4 && ps.every((p) => !before.has(p.metadata.uid)) ? true : undefined;
        },
        120_000,
      );
      await servedEverywhere(4);
    });
    assert.equal(violations, '');
  });

  it('says clearly when the runtime LoRA switch is off', async () => {
    await apply(
      deployment(
        1,
        (d) => (d.spec.vllm!.env = [{ name: 'VLLM_ALLOW_RUNTIME_LORA_UPDATING', value: 'false' }]),
      ),
    );
    const d = await eventually(
      'RuntimeLoraUpdatesDisabled',
      async () => {
        const obj = await getObject(cp, NS, 'sdep', SDEP);
        return condition(obj, 'Degraded')?.reason === 'RuntimeLoraUpdatesDisabled' ? obj : undefined;
      },
      120_000,
    );
    assert.equal(condition(d, 'Ready')?.status, 'False');
    assert.match(condition(d, 'Degraded')!.message, /VLLM_ALLOW_RUNTIME_LORA_UPDATING is off/);
  });

  it('garbage-collects the Deployment, Service and pods with the StackedDeployment', async () => {
    await kubectl(cp, ['delete', 'sdep', '-n', NS, SDEP, '--wait=true']);
    await eventually(
      'children gone',
      async () => {
        const r = await kubectl(cp, [
          'get',
          'deployments,services,pods',
          '-n',
          NS,
          '-l',
          `serving.stacked.dev/deployment=${SDEP}`,
          '-o',
          'name',
        ]);
        return r.stdout.trim() === '' ? true : undefined;
      },
      90_000,
    );
    assert.deepEqual(
      kubelet.runningPods().filter((k) => k.startsWith(`${NS}/`)),
      [],
    );
  });
});
