// The test kubelet on a real control plane: it schedules the pods of a real Deployment onto fake GPU
// nodes, runs their vllm containers as simulators on loopback IPs, and reports status the way the real
// kubelet does (readiness probes, readiness gates, restarts, deletion), so the Deployment controller
// and the garbage collector act on it.
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { V1Container } from '@kubernetes/client-node';
import { type ControlPlane, sharedControlPlane } from '../../playground/controlplane.ts';
import {
  startKubelet,
  podIps,
  type ContainerContext,
  type Kubelet,
  type RunningContainer,
} from '../../playground/kubelet.ts';
import { kubectl } from '../../playground/kubectl.ts';
import {
  DEPLOYMENT_LABEL,
  adapterViolations,
  formatTimeline,
  missingAdapters,
  type TimelineEvent,
} from '../../playground/timeline.ts';
import { eventually } from '../../playground/wait.ts';

const GATE = 'serving.stacked.dev/adapters-loaded';
const APP = 'llm';
/** Liveness probes run 10x faster than written; startup and readiness probes are capped at 200 ms anyway. */
const PROBE_TIME_SCALE = 0.1;
/** As written; scaled: first probe 200 ms after start, then every 500 ms, a restart after 4 failures. */
const LIVENESS = {
  httpGet: { path: '/health', port: 8000 },
  initialDelaySeconds: 2,
  periodSeconds: 5,
  failureThreshold: 4,
  timeoutSeconds: 5,
};

/** A non-vLLM container that the test's runContainer hook runs: a health endpoint that can fail. */
const SIDECAR = 'sidecar';
const SIDECAR_PORT = 9090;

/**
 * The hook's side: one small server per running sidecar, answering /healthz 200, or 500 while its
 * pod is in `unhealthy`; every start is counted per pod.
 */
class Sidecars {
  readonly unhealthy = new Set<string>();
  readonly starts = new Map<string, number>();

  run = async (c: V1Container, ctx: ContainerContext): Promise<RunningContainer | undefined> => {
    if (c.name !== SIDECAR || ctx.init) return undefined;
    const server = createServer((req, res) => {
      res.writeHead(req.url === '/healthz' && !this.unhealthy.has(ctx.podKey) ? 200 : 500).end();
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(SIDECAR_PORT, ctx.ip, resolve);
    });
    this.starts.set(ctx.podKey, (this.starts.get(ctx.podKey) ?? 0) + 1);
    return {
      stop: () =>
        new Promise<void>((resolve) => {
          server.close(() => {
            resolve();
          });
          server.closeAllConnections();
        }),
    };
  };
}

interface PodCondition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
  lastTransitionTime?: string;
}

interface ContainerStatus {
  name: string;
  ready: boolean;
  started?: boolean;
  restartCount: number;
  containerID?: string;
  imageID: string;
  state: { running?: { startedAt: string }; waiting?: { reason: string; message?: string } };
  lastState: { terminated?: { exitCode: number; reason: string; containerID?: string } };
}

interface Pod {
  metadata: { name: string; namespace: string; uid: string; deletionTimestamp?: string };
  spec: { nodeName?: string };
  status: {
    phase?: string;
    podIP?: string;
    podIPs?: { ip: string }[];
    hostIP?: string;
    startTime?: string;
    conditions?: PodCondition[];
    containerStatuses?: ContainerStatus[];
    initContainerStatuses?: ContainerStatus[];
  };
}

function cond(pod: Pod | undefined, type: string): PodCondition | undefined {
  return pod?.status.conditions?.find((c) => c.type === type);
}

function vllmStatus(pod: Pod): ContainerStatus | undefined {
  return pod.status.containerStatuses?.find((c) => c.name === 'vllm');
}

/** The fields of a core/v1 Event that these tests read. */
interface PodEvent {
  type: string;
  reason: string;
  message: string;
  count?: number;
  source?: { component?: string; host?: string };
  involvedObject: { kind: string; name: string; uid: string; fieldPath?: string };
}

function sidecarStatus(pod: Pod): ContainerStatus | undefined {
  return pod.status.containerStatuses?.find((c) => c.name === SIDECAR);
}

describe('test kubelet (fake GPU nodes)', function () {
  const ns = `kubelet-${Date.now().toString(36)}`;
  const nodeNames = [`${ns}-gpu-a`, `${ns}-gpu-b`];
  let cp: ControlPlane | undefined;
  let kubelet: Kubelet | undefined;
  let root = '';
  let pvcRoot = '';
  let hfRoot = '';
  /** The two pods that run, by name, as first seen Ready. */
  let running: Pod[] = [];
  const sidecars = new Sidecars();

  async function pods(): Promise<Pod[]> {
    const { stdout } = await kubectl(cp!, ['get', 'pods', '-n', ns, '-l', `app=${APP}`, '-o', 'json']);
    return (JSON.parse(stdout) as { items: Pod[] }).items;
  }

  async function bare(name: string): Promise<Pod | undefined> {
    const r = await kubectl(cp!, ['get', 'pod', name, '-n', ns, '-o', 'json'], { allowFail: true });
    return r.code === 0 ? (JSON.parse(r.stdout) as Pod) : undefined;
  }

  /** The Events about one pod (by uid: a pod of the same name made before is another object). */
  async function podEvents(p: Pod): Promise<PodEvent[]> {
    const r = await kubectl(cp!, [
      'get',
      'events',
      '-n',
      ns,
      '--field-selector',
      `involvedObject.name=${p.metadata.name}`,
      '-o',
      'json',
    ]);
    return (JSON.parse(r.stdout) as { items: PodEvent[] }).items.filter(
      (e) => e.involvedObject.uid === p.metadata.uid,
    );
  }

  async function pod(name: string): Promise<Pod | undefined> {
    const r = await kubectl(cp!, ['get', 'pod', name, '-n', ns, '-o', 'json'], { allowFail: true });
    if (r.code !== 0) {
      if (r.stderr.includes('NotFound')) return undefined;
      throw new Error(r.stderr);
    }
    return JSON.parse(r.stdout) as Pod;
  }

  /** What the operator does: its own condition, through pods/status, as a strategic merge patch. */
  async function setGate(name: string, status: 'True' | 'False'): Promise<void> {
    const patch = {
      status: {
        conditions: [
          {
            type: GATE,
            status,
            reason: status === 'True' ? 'AdaptersLoaded' : 'AdaptersMissing',
            message: status === 'True' ? 'every adapter is loaded' : 'adapter sql is missing',
            lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
          },
        ],
      },
    };
    await kubectl(cp!, [
      'patch',
      'pod',
      name,
      '-n',
      ns,
      '--subresource=status',
      '--type=strategic',
      '-p',
      JSON.stringify(patch),
    ]);
  }

  async function httpJson(url: string, init?: RequestInit): Promise<{ status: number; body: unknown }> {
    const res = await fetch(url, { ...init, signal: AbortSignal.timeout(5000) });
    const text = await res.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // plain-text answers (load/unload) stay text
    }
    return { status: res.status, body };
  }

  async function modelIds(ip: string): Promise<string[]> {
    const { status, body } = await httpJson(`http://${ip}:8000/v1/models`);
    assert.equal(status, 200);
    return (body as { data: { id: string }[] }).data.map((m) => m.id);
  }

  before(async function () {
    // A cold build of the control-plane binaries takes tens of minutes; a warm start takes seconds.
    this.timeout(60 * 60_000);
    cp = await sharedControlPlane();
    root = await mkdtemp(join(tmpdir(), 'kubelet-test-'));
    pvcRoot = join(root, 'pvc');
    hfRoot = join(root, 'hf');
    writeAdapter(join(hfRoot, 'org', 'sql-lora'));
    writeAdapter(join(pvcRoot, ns, 'lora-store', 'adapters', 'chat'));
    await kubectl(cp, ['create', 'namespace', ns]);
    await kubectl(cp, ['apply', '-n', ns, '-f', '-'], { input: JSON.stringify(pvc('lora-store')) });
    kubelet = await startKubelet({
      kubeconfigPath: cp.kubeconfigPath,
      nodes: nodeNames.map((name) => ({ name, gpus: 1, labels: { 'stacked.dev/gpu': 'a10' } })),
      pvcRoot,
      hfRoot,
      namespaces: [ns],
      probeTimeScale: PROBE_TIME_SCALE,
      runContainer: sidecars.run,
    });
  });

  after(async function () {
    this.timeout(120_000);
    if (cp) {
      await kubectl(cp, ['delete', 'namespace', ns, '--wait=false'], { allowFail: true });
      await kubectl(cp, ['delete', 'node', ...nodeNames, '--wait=false'], { allowFail: true });
    }
    await kubelet?.stop();
    if (root) await rm(root, { recursive: true, force: true });
  });

  it('registers the fake GPU nodes as Ready, with capacity and labels', async function () {
    const { stdout } = await kubectl(cp!, ['get', 'nodes', ...nodeNames, '-o', 'json']);
    const nodes = (JSON.parse(stdout) as { items: NodeObj[] }).items;
    assert.equal(nodes.length, 2);
    for (const n of nodes) {
      assert.equal(n.status.capacity['nvidia.com/gpu'], '1');
      assert.equal(n.status.allocatable['nvidia.com/gpu'], '1');
      assert.ok(
        n.status.allocatable['cpu'] && n.status.allocatable['memory'] && n.status.allocatable['pods'],
      );
      assert.equal(n.status.conditions.find((c) => c.type === 'Ready')?.status, 'True');
      assert.equal(n.metadata.labels['kubernetes.io/hostname'], n.metadata.name);
      assert.equal(n.metadata.labels['stacked.dev/gpu'], 'a10');
    }
  });

  it('binds one pod per GPU node, runs it on a loopback IP, and holds Ready for the readiness gate', async function () {
    this.timeout(120_000);
    await kubectl(cp!, ['apply', '-n', ns, '-f', '-'], { input: JSON.stringify(deployment(2)) });

    running = await eventually(
      'two Running pods with ContainersReady=True',
      async () => {
        const list = await pods();
        const ok = list.filter(
          (p) => p.status.phase === 'Running' && cond(p, 'ContainersReady')?.status === 'True',
        );
        return ok.length === 2 ? ok : undefined;
      },
      60_000,
    );
    assert.deepEqual(running.map((p) => p.spec.nodeName).sort(), [...nodeNames].sort());
    for (const p of running) {
      assert.match(p.status.podIP ?? '', /^127\.0\.1\.\d+$/);
      assert.deepEqual(p.status.podIPs, [{ ip: p.status.podIP }]);
      assert.equal(p.status.hostIP, '127.0.0.1');
      assert.ok(p.status.startTime);
      assert.equal(cond(p, 'PodScheduled')?.status, 'True');
      assert.equal(cond(p, 'Initialized')?.status, 'True');
      // The gate is not set yet: the kubelet's rule keeps Ready False and says why.
      const ready = cond(p, 'Ready')!;
      assert.equal(ready.status, 'False');
      assert.equal(ready.reason, 'ReadinessGatesNotReady');
      assert.equal(ready.message, `corresponding condition of pod readiness gate "${GATE}" does not exist.`);
      const vllm = vllmStatus(p)!;
      assert.equal(vllm.ready, true);
      assert.equal(vllm.started, true);
      assert.equal(vllm.restartCount, 0);
      assert.match(vllm.containerID ?? '', /^containerd:\/\/[0-9a-f]{64}$/);
      assert.ok(vllm.state.running?.startedAt);
      // The sidecar is simply running and ready; the init container completed first.
      assert.equal(p.status.containerStatuses?.find((c) => c.name === 'sidecar')?.ready, true);
      const init = p.status.initContainerStatuses?.[0];
      assert.equal(init?.state.running, undefined);
      assert.equal((init?.state as { terminated?: { reason: string } }).terminated?.reason, 'Completed');
      assert.ok(kubelet!.simulator(`${ns}/${p.metadata.name}`));
      assert.equal(
        kubelet!.volumePath(`${ns}/${p.metadata.name}`, 'adapters'),
        join(pvcRoot, ns, 'lora-store'),
      );
    }
    assert.notEqual(running[0]!.status.podIP, running[1]!.status.podIP);

    // The simulator serves the base model on podIP:8000.
    const { status, body } = await httpJson(`http://${running[0]!.status.podIP!}:8000/v1/models`);
    assert.equal(status, 200);
    const card = (body as { data: { id: string; root: string; parent: unknown }[] }).data[0];
    assert.deepEqual([card?.id, card?.root, card?.parent], ['basekey', 'org/base', null]);
    assert.deepEqual(kubelet!.runningPods().filter((k) => k.startsWith(`${ns}/`)).length, 2);
  });

  it('makes a pod Ready once the operator sets its gate condition, and the Deployment counts it', async function () {
    this.timeout(120_000);
    for (const p of running) await setGate(p.metadata.name, 'True');
    for (const p of running) {
      const ready = await eventually(`pod ${p.metadata.name} Ready`, async () => {
        const c = cond(await pod(p.metadata.name), 'Ready');
        return c?.status === 'True' ? c : undefined;
      });
      assert.equal(ready.reason, undefined);
      assert.equal(ready.message, undefined);
    }
    await eventually('Deployment readyReplicas=2', async () => {
      const { stdout } = await kubectl(cp!, ['get', 'deployment', APP, '-n', ns, '-o', 'json']);
      const d = JSON.parse(stdout) as { status: { readyReplicas?: number; availableReplicas?: number } };
      return d.status.readyReplicas === 2 && d.status.availableReplicas === 2 ? true : undefined;
    });
  });

  it('writes nothing while nothing changes (probes keep passing)', async function () {
    this.timeout(30_000);
    const since = Date.now();
    await sleep(2500);
    const writes = (await cp!.writesBy('admin', since)).filter((e) => e.objectRef?.namespace === ns);
    assert.deepEqual(
      writes.map((e) => `${e.verb} ${e.objectRef?.resource ?? ''}/${e.objectRef?.subresource ?? ''}`),
      [],
    );
  });

  it('takes Ready away when the gate goes False, and gives it back when it is True again', async function () {
    this.timeout(60_000);
    const name = running[0]!.metadata.name;
    await setGate(name, 'False');
    const unready = await eventually('Ready=False after the gate went False', async () => {
      const c = cond(await pod(name), 'Ready');
      return c?.status === 'False' ? c : undefined;
    });
    assert.equal(unready.reason, 'ReadinessGatesNotReady');
    assert.equal(unready.message, `the status of pod readiness gate "${GATE}" is not "True", but False`);
    await setGate(name, 'True');
    await eventually('Ready=True again', async () =>
      cond(await pod(name), 'Ready')?.status === 'True' ? true : undefined,
    );
  });

  it('follows the readiness probe: an unhealthy simulator makes the container unready', async function () {
    this.timeout(60_000);
    const name = running[1]!.metadata.name;
    const sim = kubelet!.simulator(`${ns}/${name}`)!;
    sim.setFaults({ unhealthy: true });
    const p = await eventually('ContainersReady=False', async () => {
      const p = await pod(name);
      return cond(p, 'ContainersReady')?.status === 'False' ? p : undefined;
    });
    assert.equal(cond(p, 'ContainersReady')?.message, 'containers with unready status: [vllm]');
    assert.equal(cond(p, 'Ready')?.status, 'False');
    assert.equal(cond(p, GATE)?.status, 'True');
    assert.equal(vllmStatus(p)?.restartCount, 0); // readiness never restarts a container
    sim.setFaults({});
    await eventually('Ready=True after the probe passes again', async () =>
      cond(await pod(name), 'Ready')?.status === 'True' ? true : undefined,
    );
  });

  it('leaves a replica that fits no node Pending with PodScheduled=False (Unschedulable)', async function () {
    this.timeout(60_000);
    await kubectl(cp!, ['scale', 'deployment', APP, '-n', ns, '--replicas=3']);
    const pending = await eventually('an Unschedulable third pod', async () => {
      const list = await pods();
      const p = list.find((x) => !x.spec.nodeName);
      return cond(p, 'PodScheduled')?.reason === 'Unschedulable' ? p : undefined;
    });
    const scheduled = cond(pending, 'PodScheduled')!;
    assert.equal(scheduled.status, 'False');
    assert.equal(scheduled.message, '0/2 nodes are available: 2 Insufficient nvidia.com/gpu.');
    assert.equal(pending.status.phase, 'Pending');
    assert.equal(pending.status.podIP, undefined);
    await kubectl(cp!, ['scale', 'deployment', APP, '-n', ns, '--replicas=2']);
    await eventually('the Pending pod to go', async () =>
      (await pod(pending.metadata.name)) ? undefined : true,
    );
  });

  it('restartContainer: adapters lost, restartCount+1, new containerID, gate condition kept', async function () {
    this.timeout(60_000);
    const name = running[0]!.metadata.name;
    const ip = running[0]!.status.podIP!;
    const before = (await pod(name))!;
    const gateBefore = cond(before, GATE)!;
    const idBefore = vllmStatus(before)!.containerID;

    // Load through both path kinds: a Hugging Face id and a path on the PVC mount.
    for (const [loraName, loraPath] of [
      ['sql', 'org/sql-lora'],
      ['chat', '/models/adapters/chat'],
    ]) {
      const r = await httpJson(`http://${ip}:8000/v1/load_lora_adapter`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ lora_name: loraName, lora_path: loraPath }),
      });
      assert.equal(r.status, 200, JSON.stringify(r.body));
    }
    const missing = await httpJson(`http://${ip}:8000/v1/load_lora_adapter`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ lora_name: 'nope', lora_path: '/models/adapters/nope' }),
    });
    assert.equal(missing.status, 404);
    assert.deepEqual(await modelIds(ip), ['basekey', 'sql', 'chat']);

    // Faults survive a restart: an unhealthy engine keeps the restarted container unready (without
    // it the next probe, 200 ms later, would make it ready before kubectl can look).
    const sim = kubelet!.simulator(`${ns}/${name}`)!;
    sim.setFaults({ unhealthy: true });
    const since = kubelet!.timeline.now();
    await kubelet!.restartContainer(ns, name);
    // In the timeline: the old process stops with its adapters, the pod is not Ready (written),
    // then the new process serves, empty.
    assert.deepEqual(
      brief(kubelet!.timeline.events(since), `${ns}/${name}`),
      ['lost sql (stopped)', 'lost chat (stopped)', 'stopped', 'Ready=False', 'serving []'],
      formatTimeline(kubelet!.timeline.events(since)),
    );
    // Written before restartContainer resolved.
    const after = (await pod(name))!;
    const vllm = vllmStatus(after)!;
    assert.equal(vllm.restartCount, 1);
    assert.equal(vllm.ready, false);
    assert.notEqual(vllm.containerID, idBefore);
    assert.equal(vllm.lastState.terminated?.containerID, idBefore);
    assert.equal(vllm.lastState.terminated?.reason, 'Error');
    assert.equal(cond(after, 'ContainersReady')?.status, 'False');
    assert.equal(cond(after, 'Ready')?.status, 'False');
    assert.deepEqual(await modelIds(ip), ['basekey']);

    sim.setFaults({});
    const ready = await eventually('Ready=True after the restart', async () => {
      const p = await pod(name);
      return cond(p, 'Ready')?.status === 'True' ? p : undefined;
    });
    // The operator's condition went through every kubelet write unchanged.
    assert.deepEqual(cond(ready, GATE), gateBefore);
    assert.equal(vllmStatus(ready)?.restartCount, 1);
  });

  it('finalizes deleted pods: the garbage collector removes them, their simulators stop and IPs are freed', async function () {
    this.timeout(120_000);
    const ips = running.map((p) => p.status.podIP!);
    const uids = running.map((p) => p.metadata.uid);
    await kubectl(cp!, ['delete', 'deployment', APP, '-n', ns]);
    await eventually(
      'every pod of the Deployment to be gone',
      async () => {
        const list = await pods();
        return list.some((p) => uids.includes(p.metadata.uid)) ? undefined : true;
      },
      90_000,
    );
    await eventually('the simulators to stop', () =>
      Promise.resolve(kubelet!.runningPods().some((k) => k.startsWith(`${ns}/`)) ? undefined : true),
    );
    for (const ip of ips) {
      assert.ok(!podIps.inUse().includes(ip), `${ip} is still allocated`);
      await assert.rejects(fetch(`http://${ip}:8000/health`, { signal: AbortSignal.timeout(2000) }));
    }
    for (const p of running) assert.equal(kubelet!.simulator(`${ns}/${p.metadata.name}`), undefined);
  });

  it('explains other misfits like kube-scheduler: node selector, missing PVC (until it appears)', async function () {
    this.timeout(60_000);
    await kubectl(cp!, ['apply', '-n', ns, '-f', '-'], {
      input: JSON.stringify(barePod('h100', { nodeSelector: { 'stacked.dev/gpu': 'h100' } })),
    });
    await kubectl(cp!, ['apply', '-n', ns, '-f', '-'], {
      input: JSON.stringify(barePod('late-pvc', { claim: 'late' })),
    });
    const selector = await eventually('h100 Unschedulable', async () => {
      const c = cond(await bare('h100'), 'PodScheduled');
      return c?.reason === 'Unschedulable' ? c : undefined;
    });
    assert.equal(
      selector.message,
      "0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector.",
    );
    const claim = await eventually('late-pvc Unschedulable', async () => {
      const c = cond(await bare('late-pvc'), 'PodScheduled');
      return c?.reason === 'Unschedulable' ? c : undefined;
    });
    assert.equal(claim.message, '0/2 nodes are available: persistentvolumeclaim "late" not found.');

    await kubectl(cp!, ['apply', '-n', ns, '-f', '-'], { input: JSON.stringify(pvc('late')) });
    const p = await eventually('late-pvc Running once its PVC exists', async () => {
      const p = await bare('late-pvc');
      return cond(p, 'ContainersReady')?.status === 'True' ? p : undefined;
    });
    assert.equal(cond(p, 'PodScheduled')?.status, 'True');
    assert.equal(cond(p, 'Ready')?.status, 'True'); // no readiness gate on this one

    // A forced delete removes the object at once; the simulator stops all the same.
    await kubectl(cp!, ['delete', 'pod', 'late-pvc', 'h100', '-n', ns, '--force', '--grace-period=0']);
    await eventually('the forced-deleted pod to stop', () =>
      Promise.resolve(kubelet!.runningPods().includes(`${ns}/late-pvc`) ? undefined : true),
    );
    assert.ok(!podIps.inUse().includes(p.status.podIP!));
  });

  it('schedules a waiting pod as soon as a GPU frees up', async function () {
    this.timeout(60_000);
    for (const name of ['one', 'two', 'three']) {
      await kubectl(cp!, ['apply', '-n', ns, '-f', '-'], { input: JSON.stringify(barePod(name, {})) });
    }
    const waiting = await eventually('one of three pods Unschedulable', async () => {
      const ps = await Promise.all(['one', 'two', 'three'].map((n) => bare(n)));
      const bound = ps.filter((p) => p?.spec.nodeName);
      const unschedulable = ps.find((p) => cond(p, 'PodScheduled')?.reason === 'Unschedulable');
      return bound.length === 2 && unschedulable ? unschedulable : undefined;
    });
    const victim = ['one', 'two', 'three'].find((n) => n !== waiting.metadata.name)!;
    await kubectl(cp!, ['delete', 'pod', victim, '-n', ns]);
    const placed = await eventually('the waiting pod bound and running', async () => {
      const p = await bare(waiting.metadata.name);
      return p?.spec.nodeName && cond(p, 'ContainersReady')?.status === 'True' ? p : undefined;
    });
    assert.equal(cond(placed, 'PodScheduled')?.status, 'True');
    await kubectl(cp!, ['delete', 'pod', '-n', ns, '-l', 'app=bare']);
    await eventually('bare pods gone', async () => {
      const { stdout } = await kubectl(cp!, ['get', 'pods', '-n', ns, '-l', 'app=bare', '-o', 'name']);
      return stdout.trim() === '' ? true : undefined;
    });
  });

  it('reports a simulator that cannot start as a crash loop', async function () {
    this.timeout(60_000);
    await kubectl(cp!, ['apply', '-n', ns, '-f', '-'], {
      input: JSON.stringify(barePod('bad-flags', { args: ['--model', 'org/base', '--max-lora-rank', '7'] })),
    });
    const p = await eventually('restartCount >= 2 in CrashLoopBackOff', async () => {
      const p = await bare('bad-flags');
      const s = p && vllmStatus(p);
      return s && s.restartCount >= 2 && s.state.waiting?.reason === 'CrashLoopBackOff' ? p : undefined;
    });
    const s = vllmStatus(p)!;
    assert.equal(p.status.phase, 'Running');
    assert.equal(s.ready, false);
    assert.equal(s.lastState.terminated?.exitCode, 1);
    assert.match(
      (s.lastState.terminated as { message?: string } | undefined)?.message ?? '',
      /--max-lora-rank: invalid choice: 7/,
    );
    assert.equal(cond(p, 'ContainersReady')?.status, 'False');
    assert.equal(kubelet!.simulator(`${ns}/bad-flags`), undefined);
    // Each wait is a BackOff Event; the repeats count up on the one Event.
    await eventually('the BackOff Event counted twice', async () => {
      const backOff = (await podEvents(p)).find((e) => e.reason === 'BackOff');
      return backOff?.type === 'Warning' && (backOff.count ?? 0) >= 2 ? true : undefined;
    });
    await kubectl(cp!, ['delete', 'pod', 'bad-flags', '-n', ns]);
    await eventually('bad-flags gone', async () => ((await bare('bad-flags')) ? undefined : true));
  });

  it('restarts a container that fails its liveness probe failureThreshold times: a new empty simulator', async function () {
    this.timeout(60_000);
    const key = `${ns}/lively`;
    const t0 = kubelet!.timeline.now();
    await kubectl(cp!, ['apply', '-n', ns, '-f', '-'], {
      input: JSON.stringify(barePod('lively', { liveness: LIVENESS, lora: true })),
    });
    const first = await eventually('lively Ready', async () => {
      const p = await bare('lively');
      return cond(p, 'Ready')?.status === 'True' ? p : undefined;
    });
    const ip = first.status.podIP!;
    const r = await httpJson(`http://${ip}:8000/v1/load_lora_adapter`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ lora_name: 'sql', lora_path: 'org/sql-lora' }),
    });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const sim = kubelet!.simulator(key)!;
    await sleep(1200); // the liveness probe passes meanwhile: nothing happens
    assert.equal(vllmStatus((await bare('lively'))!)?.restartCount, 0);

    // vLLM's engine dies; nobody restarts it by hand.
    const tCrash = kubelet!.timeline.now();
    assert.ok(sim.crashEngine());
    const again = await eventually('lively restarted and Ready again', async () => {
      const p = await bare('lively');
      return vllmStatus(p!)?.restartCount === 1 && cond(p, 'Ready')?.status === 'True' ? p : undefined;
    });
    const s = vllmStatus(again)!;
    const killed = s.lastState.terminated!;
    assert.deepEqual(
      [killed.exitCode, killed.reason, killed.containerID],
      [137, 'Error', vllmStatus(first)!.containerID],
    );
    assert.notEqual(s.containerID, vllmStatus(first)!.containerID);
    assert.equal(again.status.podIP, ip);
    assert.equal(kubelet!.simulator(key), sim, 'the same simulator, restarted');
    assert.deepEqual(sim.loadedAdapters(), []);
    assert.deepEqual(await modelIds(ip), ['basekey']);

    const events = kubelet!.timeline.events(t0);
    const log = formatTimeline(events, key);
    // Readiness (3 x 200 ms) noticed first; liveness killed it after 4 failures 500 ms apart.
    assert.deepEqual(
      brief(kubelet!.timeline.events(tCrash), key),
      ['Ready=False', 'lost sql (stopped)', 'stopped', 'serving []', 'Ready=True'],
      log,
    );
    const stop = events.find((e) => e.kind === 'sim-stopped' && e.pod === key)!;
    assert.ok(stop.at - tCrash >= 1400, `killed ${stop.at - tCrash} ms after the crash\n${log}`);
    assert.ok(stop.at - tCrash < 10_000, `killed ${stop.at - tCrash} ms after the crash\n${log}`);

    // The replay sees what a check from two reads could miss: the pod is Ready again without sql.
    const ready = events.filter((e) => e.kind === 'pod-ready' && e.pod === key && e.ready);
    assert.equal(ready.length, 2, log);
    const missing = missingAdapters(events, ['sql'], { pods: key, since: tCrash });
    assert.deepEqual(
      missing.map((v) => [v.pod, v.adapter, v.from, v.to]),
      [[key, 'sql', ready[1]!.at, undefined]],
      log,
    );
    // One pod alone has no peer to lack anything against; labels from the kubelet group it.
    assert.deepEqual(adapterViolations(events, { pods: key }), []);
    const labelled = events.find((e) => e.kind === 'pod-ready' && e.pod === key);
    assert.equal(labelled?.kind === 'pod-ready' ? labelled.labels[DEPLOYMENT_LABEL] : undefined, 'lively');

    // What `kubectl describe pod` shows: each failed probe (repeats counted on one Event), the kill.
    const recorded = await eventually('the Unhealthy and Killing Events', async () => {
      const es = await podEvents(again);
      const unhealthy = es.find(
        (e) =>
          e.reason === 'Unhealthy' &&
          e.message === 'Liveness probe failed: HTTP probe failed with statuscode: 503',
      );
      const killing = es.find((e) => e.reason === 'Killing');
      return (unhealthy?.count ?? 0) >= LIVENESS.failureThreshold && killing
        ? { es, unhealthy, killing }
        : undefined;
    });
    assert.deepEqual(
      [recorded.unhealthy?.type, recorded.killing.type, recorded.killing.message],
      ['Warning', 'Normal', 'Container vllm failed liveness probe, will be restarted'],
    );
    assert.deepEqual(
      [recorded.killing.source, recorded.killing.involvedObject.fieldPath],
      [{ component: 'kubelet', host: again.spec.nodeName }, 'spec.containers{vllm}'],
    );
    // The first restart of a container goes at once, as the kubelet's: no back-off yet.
    assert.deepEqual(
      recorded.es.filter((e) => e.reason === 'BackOff'),
      [],
    );
  });

  it('keeps restarting a container whose fault outlives restarts, until the fault clears', async function () {
    this.timeout(60_000);
    const key = `${ns}/lively`;
    const sim = kubelet!.simulator(key)!;
    const since = kubelet!.timeline.now();
    sim.setFaults({ unhealthy: true });
    // A restart soon after the one before waits in CrashLoopBackOff, 0.5 s then doubling.
    const waiting = await eventually(
      'a liveness restart held in CrashLoopBackOff',
      async () => {
        const p = await bare('lively');
        const w = vllmStatus(p!)?.state.waiting;
        return w?.reason === 'CrashLoopBackOff' ? { pod: p!, message: w.message } : undefined;
      },
      30_000,
      20,
    );
    const { metadata } = waiting.pod;
    assert.match(
      waiting.message ?? '',
      new RegExp(
        String.raw`^back-off \d+(\.\d)?s restarting failed container=vllm pod=lively_${ns}\(${metadata.uid}\)$`,
      ),
    );
    assert.equal(vllmStatus(waiting.pod)?.ready, false);
    await eventually(
      'a second liveness restart',
      () => Promise.resolve(restarts(kubelet!.timeline.events(since), key) >= 2 ? true : undefined),
      30_000,
      20,
    );
    await eventually('the BackOff Event', async () =>
      (await podEvents(waiting.pod)).some(
        (e) =>
          e.type === 'Warning' &&
          e.message === `Back-off restarting failed container vllm in pod lively_${ns}(${metadata.uid})`,
      )
        ? true
        : undefined,
    );
    sim.setFaults({});
    const p = await eventually('lively Ready after the fault cleared', async () => {
      const p = await bare('lively');
      return cond(p, 'Ready')?.status === 'True' ? p : undefined;
    });
    assert.ok(vllmStatus(p)!.restartCount >= 3, `restartCount ${vllmStatus(p)!.restartCount}`);
    await kubectl(cp!, ['delete', 'pod', 'lively', '-n', ns]);
    await eventually('lively gone', async () => ((await bare('lively')) ? undefined : true));
    const last = kubelet!.timeline.events(since).filter((e) => 'pod' in e && e.pod === key);
    assert.equal(last.at(-1)?.kind, 'sim-stopped');
    assert.ok(last.some((e) => e.kind === 'pod-gone'));
  });

  it('restarts a container that runContainer runs when it fails its liveness probe, and leaves vllm alone', async function () {
    this.timeout(60_000);
    const key = `${ns}/sidecar`;
    await kubectl(cp!, ['apply', '-n', ns, '-f', '-'], {
      input: JSON.stringify(
        barePod('sidecar', {
          sidecarLiveness: { ...LIVENESS, httpGet: { path: '/healthz', port: 'health' } },
        }),
      ),
    });
    const first = await eventually('sidecar pod Ready', async () => {
      const p = await bare('sidecar');
      return cond(p, 'Ready')?.status === 'True' ? p : undefined;
    });
    assert.equal(sidecars.starts.get(key), 1);
    await sleep(1200); // the liveness probe passes meanwhile: nothing happens
    assert.equal(sidecarStatus((await bare('sidecar'))!)?.restartCount, 0);

    sidecars.unhealthy.add(key);
    const restarted = await eventually('the sidecar killed and started again', async () => {
      const p = await bare('sidecar');
      return sidecarStatus(p!)?.restartCount === 1 ? p : undefined;
    });
    const killed = sidecarStatus(restarted)!.lastState.terminated!;
    assert.deepEqual(
      [killed.exitCode, killed.reason, killed.containerID],
      [137, 'Error', sidecarStatus(first)!.containerID],
    );
    assert.ok((sidecars.starts.get(key) ?? 0) >= 2, 'started again through the hook');

    sidecars.unhealthy.delete(key);
    const again = await eventually('the sidecar pod Ready again', async () => {
      const p = await bare('sidecar');
      return cond(p, 'Ready')?.status === 'True' && sidecarStatus(p!)?.ready ? p : undefined;
    });
    const s = sidecarStatus(again)!;
    assert.notEqual(s.containerID, sidecarStatus(first)!.containerID);
    assert.equal(vllmStatus(again)?.restartCount, 0, 'the vllm container was not restarted');
    assert.equal(vllmStatus(again)?.containerID, vllmStatus(first)?.containerID);
    await kubectl(cp!, ['delete', 'pod', 'sidecar', '-n', ns]);
    await eventually('sidecar pod gone', async () => ((await bare('sidecar')) ? undefined : true));
  });

  it('restarts a container whose startup probe fails for failureThreshold periods as written, not sooner', async function () {
    this.timeout(60_000);
    // Scaled: failures count from 200 ms, every 500 ms; given up on 2.2 s after the start. The
    // probe itself runs every 200 ms (the cap), which must not bring the restart forward.
    const startup = {
      httpGet: { path: '/never', port: 8000 },
      initialDelaySeconds: 2,
      periodSeconds: 5,
      failureThreshold: 4,
    };
    const key = `${ns}/slow-start`;
    const t0 = kubelet!.timeline.now();
    await kubectl(cp!, ['apply', '-n', ns, '-f', '-'], {
      input: JSON.stringify(barePod('slow-start', { startup })),
    });
    const first = await eventually('slow-start running, not started', async () => {
      const p = await bare('slow-start');
      const s = p && vllmStatus(p);
      return s?.state.running && s.started === false ? p : undefined;
    });
    const restarted = await eventually('slow-start restarted', async () => {
      const p = await bare('slow-start');
      return (vllmStatus(p!)?.restartCount ?? 0) >= 1 ? p : undefined;
    });
    const s = vllmStatus(restarted)!;
    const killed = s.lastState.terminated!;
    assert.deepEqual(
      [killed.exitCode, killed.reason, killed.containerID],
      [137, 'Error', vllmStatus(first)!.containerID],
    );
    const events = kubelet!.timeline.events(t0);
    const served = events.find((e) => e.kind === 'sim-serving' && e.pod === key);
    const stopped = events.find((e) => e.kind === 'sim-stopped' && e.pod === key);
    const after = (stopped?.at ?? 0) - (served?.at ?? Infinity);
    assert.ok(after >= 2000, `killed ${String(after)} ms after it served: before 4 periods as written`);
    assert.equal(s.started, false, 'never started');
    assert.equal(cond(restarted, 'Ready')?.status, 'False');
    await eventually('the Killing Event', async () =>
      (await podEvents(restarted)).some(
        (e) =>
          e.reason === 'Killing' && e.message === 'Container vllm failed startup probe, will be restarted',
      )
        ? true
        : undefined,
    );
    await kubectl(cp!, ['delete', 'pod', 'slow-start', '-n', ns]);
    await eventually('slow-start gone', async () => ((await bare('slow-start')) ? undefined : true));
  });

  it('runs the pods of its nodes again after a kubelet restart (same IP, restartCount+1)', async function () {
    this.timeout(60_000);
    await kubectl(cp!, ['apply', '-n', ns, '-f', '-'], { input: JSON.stringify(barePod('survivor', {})) });
    const first = await eventually('survivor Ready', async () => {
      const p = await bare('survivor');
      return cond(p, 'Ready')?.status === 'True' ? p : undefined;
    });
    await kubelet!.stop();
    kubelet = await startKubelet({
      kubeconfigPath: cp!.kubeconfigPath,
      nodes: nodeNames.map((name) => ({ name, gpus: 1, labels: { 'stacked.dev/gpu': 'a10' } })),
      pvcRoot,
      hfRoot,
      namespaces: [ns],
      probeTimeScale: PROBE_TIME_SCALE,
    });
    const again = await eventually('survivor restarted and Ready', async () => {
      const p = await bare('survivor');
      const s = p && vllmStatus(p);
      return s?.restartCount === 1 && cond(p, 'Ready')?.status === 'True' ? p : undefined;
    });
    assert.equal(again.status.podIP, first.status.podIP);
    assert.equal(again.spec.nodeName, first.spec.nodeName);
    assert.equal(vllmStatus(again)!.lastState.terminated?.reason, 'Unknown');
    assert.equal(vllmStatus(again)!.lastState.terminated?.containerID, vllmStatus(first)!.containerID);
    assert.deepEqual(await modelIds(again.status.podIP!), ['basekey']);
    await kubectl(cp!, ['delete', 'pod', 'survivor', '-n', ns]);
    await eventually('survivor gone', async () => ((await bare('survivor')) ? undefined : true));
  });
});

interface NodeObj {
  metadata: { name: string; labels: Record<string, string> };
  status: {
    capacity: Record<string, string>;
    allocatable: Record<string, string>;
    conditions: { type: string; status: string }[];
  };
}

function writeAdapter(dir: string): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, 'adapter_config.json'),
    JSON.stringify({
      peft_type: 'LORA',
      base_model_name_or_path: 'org/base',
      r: 8,
      lora_alpha: 16,
      target_modules: ['q_proj', 'v_proj'],
    }),
  );
  writeFileSync(join(dir, 'adapter_model.safetensors'), '');
}

function pvc(name: string): object {
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: { name },
    spec: { accessModes: ['ReadOnlyMany'], resources: { requests: { storage: '1Gi' } } },
  };
}

/** The pod's events in the timeline, in short: "Ready=True", "lost sql", "serving []", ... */
function brief(events: TimelineEvent[], pod: string): string[] {
  const out: string[] = [];
  for (const e of events) {
    if (e.kind === 'note' || e.pod !== pod) continue;
    if (e.kind === 'pod-ready') out.push(`Ready=${e.ready ? 'True' : 'False'}`);
    else if (e.kind === 'adapter-lost')
      out.push(`lost ${e.adapter}${e.cause === 'stopped' ? ' (stopped)' : ''}`);
    else if (e.kind === 'sim-serving') out.push(`serving [${e.adapters.join(', ')}]`);
    else if (e.kind === 'sim-stopped') out.push('stopped');
    else if (e.kind === 'adapter-loaded') out.push(`loaded ${e.adapter}`);
    else out.push('gone');
  }
  return out;
}

/** How many times the pod's simulator started serving again after a stop. */
function restarts(events: TimelineEvent[], pod: string): number {
  return events.filter((e) => e.kind === 'sim-serving' && e.pod === pod).length;
}

function barePod(
  name: string,
  o: {
    nodeSelector?: Record<string, string>;
    claim?: string;
    args?: string[];
    liveness?: object;
    startup?: object;
    lora?: boolean;
    /** A second container, run by the test's runContainer hook, with this liveness probe. */
    sidecarLiveness?: object;
  },
): object {
  const lora = o.lora === true;
  const sidecar =
    o.sidecarLiveness === undefined
      ? []
      : [
          {
            name: SIDECAR,
            image: 'registry.invalid/sidecar:1',
            ports: [{ name: 'health', containerPort: SIDECAR_PORT }],
            readinessProbe: { httpGet: { path: '/healthz', port: 'health' } },
            livenessProbe: o.sidecarLiveness,
          },
        ];
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, labels: { app: 'bare', [DEPLOYMENT_LABEL]: name } },
    spec: {
      ...(o.nodeSelector ? { nodeSelector: o.nodeSelector } : {}),
      containers: [
        {
          name: 'vllm',
          image: 'registry.invalid/vllm/vllm-openai:v0.11.0',
          args: o.args ?? [
            '--model',
            'org/base',
            '--served-model-name',
            'basekey',
            ...(lora ? ['--enable-lora'] : []),
          ],
          ...(lora ? { env: [{ name: 'VLLM_ALLOW_RUNTIME_LORA_UPDATING', value: 'true' }] } : {}),
          resources: { limits: { 'nvidia.com/gpu': '1' } },
          readinessProbe: { httpGet: { path: '/health', port: 8000 } },
          ...(o.liveness ? { livenessProbe: o.liveness } : {}),
          ...(o.startup ? { startupProbe: o.startup } : {}),
          ...(o.claim ? { volumeMounts: [{ name: 'data', mountPath: '/data' }] } : {}),
        },
        ...sidecar,
      ],
      ...(o.claim ? { volumes: [{ name: 'data', persistentVolumeClaim: { claimName: o.claim } }] } : {}),
    },
  };
}

function deployment(replicas: number): object {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: APP, labels: { app: APP } },
    spec: {
      replicas,
      selector: { matchLabels: { app: APP } },
      template: {
        metadata: { labels: { app: APP } },
        spec: {
          readinessGates: [{ conditionType: GATE }],
          nodeSelector: { 'stacked.dev/gpu': 'a10' },
          initContainers: [{ name: 'prepare', image: 'registry.invalid/busybox:1', command: ['true'] }],
          containers: [
            {
              name: 'vllm',
              image: 'registry.invalid/vllm/vllm-openai:v0.11.0',
              args: [
                '--model',
                'org/base',
                '--served-model-name',
                'basekey',
                '--port',
                '8000',
                '--enable-lora',
                '--max-lora-rank',
                '16',
              ],
              env: [{ name: 'VLLM_ALLOW_RUNTIME_LORA_UPDATING', value: 'true' }],
              ports: [{ name: 'http', containerPort: 8000 }],
              resources: { limits: { 'nvidia.com/gpu': '1' } },
              readinessProbe: { httpGet: { path: '/health', port: 8000 }, periodSeconds: 5 },
              volumeMounts: [{ name: 'adapters', mountPath: '/models' }],
            },
            { name: 'sidecar', image: 'registry.invalid/sidecar:1' },
          ],
          volumes: [{ name: 'adapters', persistentVolumeClaim: { claimName: 'lora-store', readOnly: true } }],
        },
      },
    },
  };
}
