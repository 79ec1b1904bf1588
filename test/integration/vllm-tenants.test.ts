// Several StackedDeployments at once, in one namespace and in two: state that outlives a reconcile
// belongs to its pod or its object, never to the backend, so one tenant's trouble never reaches
// another's pods, gates or status. The operator watches every namespace; loads take 300 ms; what
// serves is replayed from the kubelet's and the simulators' one timeline.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeAdapter } from '../../playground/adapters.ts';
import { startControlPlane, type ControlPlane } from '../../playground/controlplane.ts';
import { startKubelet, type Kubelet } from '../../playground/kubelet.ts';
import { kubectl } from '../../playground/kubectl.ts';
import { installApi, startOperator, type OperatorProcess } from '../../playground/operator.ts';
import { adapterViolations, formatViolations, Timeline } from '../../playground/timeline.ts';
import { condition, eventually, getObject, type Obj } from '../../playground/wait.ts';
import { adaptersClaim } from '../support/objects.ts';

const A = 'tenants-a';
const B = 'tenants-b';
const LOAD_MS = 300;

interface PodObj {
  metadata: { name: string; deletionTimestamp?: string };
  status?: { conditions?: { type: string; status: string }[] };
}

function group(name: string, keys: string[]) {
  return {
    apiVersion: 'serving.stacked.dev/v1alpha1',
    kind: 'StackedModelGroup',
    metadata: { name },
    spec: {
      baseModel: { inferenceKey: 'base', source: { huggingface: 'org/base' } },
      members: keys.map((k) => ({ inferenceKey: k, source: { pvc: { claimName: 'adapters', path: k } } })),
    },
  };
}

function deployment(name: string, replicas: number) {
  return {
    apiVersion: 'serving.stacked.dev/v1alpha1',
    kind: 'StackedDeployment',
    metadata: { name },
    spec: { modelGroupRef: { name }, backend: 'vllm', engine: { maxLoraRank: 64 }, vllm: { replicas } },
  };
}

describe('vllm backend: several StackedDeployments at once, in one namespace and in two', function () {
  this.timeout(180_000);
  let cp: ControlPlane;
  let kubelet: Kubelet;
  let operator: OperatorProcess;
  let root: string;
  const timeline = new Timeline();
  /** The members of each deployment, by "namespace/name". */
  const groups = new Map<string, string[]>([
    [`${A}/alpha`, ['a1', 'a2']],
    [`${A}/beta`, ['b1', 'b2']],
    [`${B}/gamma`, ['a1', 'c1']],
  ]);
  const replicas = new Map([
    [`${A}/alpha`, 2],
    [`${A}/beta`, 2],
    [`${B}/gamma`, 1],
  ]);

  const apply = (ns: string, obj: object) =>
    kubectl(cp, ['apply', '-n', ns, '-f', '-'], { input: JSON.stringify(obj) });
  const split = (key: string) => key.split('/') as [string, string];
  const applyGroup = (key: string, keys: string[]) => {
    groups.set(key, keys);
    const [ns, name] = split(key);
    return apply(ns, group(name, keys));
  };
  async function podsOf(key: string): Promise<PodObj[]> {
    const [ns, name] = split(key);
    const r = await kubectl(cp, [
      'get',
      'pods',
      '-n',
      ns,
      '-l',
      `serving.stacked.dev/deployment=${name}`,
      '-o',
      'json',
    ]);
    return (JSON.parse(r.stdout) as { items: PodObj[] }).items.filter((p) => !p.metadata.deletionTimestamp);
  }
  const isReady = (p: PodObj) =>
    p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
  const sims = async (key: string) => {
    const [ns] = split(key);
    return (await podsOf(key)).map((p) => ({ pod: p, sim: kubelet.simulator(`${ns}/${p.metadata.name}`)! }));
  };

  /** Every replica Ready, holding exactly its group's members, and the object Ready. */
  async function served(key: string): Promise<Obj> {
    const want = [...(groups.get(key) ?? [])].sort().join();
    const [ns, name] = split(key);
    return eventually(
      `${key} served`,
      async () => {
        const ps = await sims(key);
        const ok =
          ps.length === replicas.get(key) &&
          ps.every(({ pod, sim }) => isReady(pod) && sim.loadedAdapters().slice().sort().join() === want);
        if (!ok) return undefined;
        const d = await getObject(cp, ns, 'sdep', name);
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
    // A control plane of its own: the operator here watches every namespace, and pods that other test
    // files left behind (their kubelets gone, their status frozen) would carry the loopback IPs this
    // file's kubelet hands out again.
    cp = await startControlPlane();
    await installApi(cp);
    for (const ns of [A, B]) await kubectl(cp, ['create', 'namespace', ns]);
    root = mkdtempSync(join(tmpdir(), 'tenants-test-'));
    for (const ns of [A, B]) {
      for (const k of ['a1', 'a2', 'a3', 'b1', 'b2', 'b3', 'c1']) {
        writeAdapter(join(root, 'pvc', ns, 'adapters', k), 8);
      }
    }
    kubelet = await startKubelet({
      kubeconfigPath: cp.kubeconfigPath,
      nodes: Array.from({ length: 6 }, (_, i) => ({ name: `tenant-gpu-${i + 1}`, gpus: 1 })),
      pvcRoot: join(root, 'pvc'),
      hfRoot: join(root, 'hf'),
      namespaces: [A, B],
      adapterLoadMs: LOAD_MS,
      probeTimeScale: 0.1,
      timeline,
    });
    // Every namespace: one operator serves both tenants, as in a cluster.
    operator = await startOperator(cp, {
      identity: 'tenants-test',
      extraArgs: ['--leader-election-id=tenants-test', '--adapter-verify-interval=2'],
    });
    for (const ns of [A, B]) {
      await apply(ns, adaptersClaim());
    }
  });

  after(async () => {
    for (const key of groups.keys()) {
      const [ns, name] = split(key);
      await kubectl(cp, ['delete', 'sdep,smg', '-n', ns, name, '--ignore-not-found', '--wait=false']);
    }
    await operator.stop();
    await kubelet.stop();
    await cp.stop();
    rmSync(root, { recursive: true, force: true });
  });

  it('serves two StackedDeployments in one namespace and one in another, each pod holding its own group', async () => {
    const since = timeline.now();
    for (const key of groups.keys()) {
      const [ns, name] = split(key);
      await applyGroup(key, groups.get(key)!);
      await apply(ns, deployment(name, replicas.get(key)!));
    }
    for (const key of groups.keys()) await served(key);
    // gamma's a1 lives in another namespace than alpha's: the same key, another tenant.
    assert.equal(formatViolations(adapterViolations(timeline.events(), { since }), since), '');
  });

  it('a member failing on every pod of one deployment closes no gate there, and never slows the other', async () => {
    const beta = await sims(`${A}/beta`);
    // b3's files are not there yet on beta's volume (an Argo CD sync that applies the member first):
    // the engine refuses it on every pod.
    for (const { sim } of beta) sim.setFaults({ failLoads: [{ name: 'b3', status: 404 }] });
    const since = timeline.now();
    await applyGroup(`${A}/beta`, ['b1', 'b2', 'b3']);
    const degraded = await eventually(
      'beta Degraded naming b3',
      async () => {
        const d = await getObject(cp, A, 'sdep', 'beta');
        const c = condition(d, 'Degraded');
        return c?.status === 'True' && c.message.includes('member b3') ? d : undefined;
      },
      60_000,
    );
    assert.equal(condition(degraded, 'Available')?.status, 'True');
    assert.equal(degraded.status?.readyReplicas, 2, 'both pods still serve b1 and b2');
    // Meanwhile alpha's member change goes through as usual.
    groups.set(`${A}/alpha`, ['a1', 'a2', 'a3']);
    const t0 = performance.now();
    await applyGroup(`${A}/alpha`, ['a1', 'a2', 'a3']);
    await served(`${A}/alpha`);
    const alphaMs = performance.now() - t0;
    // No beta pod left the Service while b3 failed everywhere.
    const betaPods = new Set(beta.map(({ pod }) => `${A}/${pod.metadata.name}`));
    const closed = timeline
      .events(since)
      .filter((e) => e.kind === 'pod-ready' && !e.ready && betaPods.has(e.pod));
    assert.deepEqual(closed, [], 'no beta pod turned unready');
    // Beta's Ready pods all serve the same adapters throughout. (Alpha's are not checked here: while a
    // member is being added, the replica that loads it first serves it milliseconds before the
    // others, which the README says.)
    const betaOnly = { since, pods: (k: string) => betaPods.has(k) };
    assert.equal(formatViolations(adapterViolations(timeline.events(), betaOnly), since), '');
    // The files appear: b3 loads on its retry, with no restart.
    for (const { sim } of beta) sim.setFaults({});
    await served(`${A}/beta`);
    assert.ok(alphaMs < 30_000, `alpha's member change took ${alphaMs.toFixed(0)} ms`);
  });

  it('a sick pod backs off on its own key: the other tenants are synced as usual', async () => {
    const [sick] = await sims(`${B}/gamma`);
    // gamma's vLLM stops answering the operator (a NetworkPolicy, a wedged frontend) while it stays
    // healthy to the kubelet.
    sick!.sim.setFaults({ resetRequests: true });
    const attemptsBefore = sick!.sim.events.filter((e) => e.kind === 'load-queued').length;
    // Its next verification finds it sick; from then on only its own backoff decides.
    await eventually(
      'the sick pod tried',
      () => Promise.resolve(sick!.sim.resetCount > 0 ? true : undefined),
      30_000,
    );
    const triesBefore = sick!.sim.resetCount;
    const started = performance.now();
    // alpha churns: three member changes, each a reconcile of alpha's pods.
    for (const keys of [
      ['a1', 'a2'],
      ['a1', 'a2', 'a3'],
      ['a1', 'a3'],
    ]) {
      await applyGroup(`${A}/alpha`, keys);
      await served(`${A}/alpha`);
    }
    const elapsed = performance.now() - started;
    const gamma = await getObject(cp, B, 'sdep', 'gamma');
    // Its last published state still counts: the adapters it held are reported where they are.
    const adapters = gamma?.status?.adapters as { inferenceKey: string; loadedReplicas: number }[];
    assert.deepEqual(
      adapters.map((a) => [a.inferenceKey, a.loadedReplicas]),
      [
        ['a1', 1],
        ['c1', 1],
      ],
    );
    sick!.sim.setFaults({});
    const loads = sick!.sim.events.filter((e) => e.kind === 'load-queued').length - attemptsBefore;
    assert.equal(loads, 0, 'nothing was loaded into the sick pod');
    const tries = sick!.sim.resetCount - triesBefore;
    // Per-key backoff from 0.5 s doubling: over `elapsed` ms at most log2(elapsed / 500) + 2 tries,
    // however often the other tenants were reconciled.
    const bound = Math.ceil(Math.log2(elapsed / 500)) + 2;
    assert.ok(tries <= bound, `${tries} tries in ${elapsed.toFixed(0)} ms (bound ${bound})`);
    await served(`${B}/gamma`);
  });
});
