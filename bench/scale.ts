/**
 * Scale benchmark (issue 8): N StackedModelGroups and N StackedDeployments on the real control plane,
 * half vllm (replicas 0, and N/20 of them with 1 replica on the test kubelet), half oci on the OCI
 * emulator (every lifecycle delay 0). Measures and prints:
 *   - the time from the first create, and from the last, until every object is Ready (Ready True for
 *     its current generation, status.observedGeneration current too);
 *   - the operator's peak RSS (VmHWM of its process);
 *   - its API requests per object: writes by verb and resource from the audit log (its user only);
 *     reads from the API server's request metrics (every client: the audit policy records writes only);
 *   - its writes over REST_SECONDS at rest, Lease renewals apart, and its OCI calls meanwhile;
 *   - two floors from the same run, each a bare client in a namespace of its own, for the same objects
 *     created the same way and timed the same way, before the operator starts (scale-floors.ts): the
 *     issue's floor, one status patch per object; and the product floor, which first makes the
 *     writes and OCI creates the product as designed must make for the object;
 *   - every client's writes in each of the three runs (audit log), and their pace: with the machine's
 *     cores saturated, the time to all Ready follows the API server's writes.
 * Targets are printed beside the figures, not asserted: these machines are shared and noisy.
 *
 *   npm run bench:scale
 *     SCALE_N (1000)             StackedModelGroups, and as many StackedDeployments
 *     REST_SECONDS (600)         the at-rest window
 *     SETTLE_SECONDS (10)        between all Ready and the at-rest window (its writes are printed too)
 *     CREATE_CONCURRENCY (16)    creates in flight (a group, then its deployment)
 *     FLOOR_WORKERS (16)         each floor's objects in flight per kind (the operator's --workers default)
 *     WARMUP_PAIRS (100)         pairs a floor client makes Ready (then deleted) before the floors are timed
 *     OCI_PROGRESS_MS (100)      the operator's --oci-progress-interval-ms (the emulator's delays are 0)
 *     READY_TIMEOUT_SECONDS (900)
 *     OPERATOR_ARGS              more operator flags, e.g. "--workers=16"
 *     OPERATOR_NODE_ARGS         e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof"; with
 *                                "--heapsnapshot-signal=SIGUSR2 --diagnostic-dir=/tmp/prof" the benchmark
 *                                sends that signal when all are Ready and after the rest (heap snapshots)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
  type KubeConfig,
  type KubernetesObject,
  type KubernetesObjectApi,
} from '@kubernetes/client-node';
import type { AuditEvent, ControlPlane } from '../playground/controlplane.ts';
import { writeAdapter } from '../playground/adapters.ts';
import { operatorNodeFlags } from '../playground/image-runner.ts';
import { startKubelet, type Kubelet } from '../playground/kubelet.ts';
import { startOciEmulator, type OciEmulator } from '../playground/oci-emulator.ts';
import { apiKeyProvider, apiKeySecret, makeApiKey } from '../playground/oci-keys.ts';
import {
  OPERATOR_NAMESPACE,
  OPERATOR_USER,
  startOperator,
  type OperatorProcess,
} from '../playground/operator.ts';
import {
  apiserverRequests,
  countBy,
  cpuSecondsOf,
  countTable,
  diffCounts,
  freePort,
  memoryOf,
  startBenchCluster,
  sumCounts,
  until,
  type Counts,
} from './support.ts';
import { adaptersClaim, ociDeployment } from '../test/support/objects.ts';
import { FloorClient, ProductFloorClient } from './scale-floors.ts';
import { GROUP, PLURALS, ResourceWatch, VERSION, keyOf, progress, type Observed } from './scale-watch.ts';

/** CPU seconds used so far by each control-plane process, by name. */
function controlPlaneCpu(cp: ControlPlane): Counts {
  return new Map(cp.processes().map((p) => [p.name, cpuSecondsOf(p.pid)]));
}

const cpuText = (c: Counts): string => [...c].map(([name, s]) => `${name} ${s.toFixed(1)} s`).join(', ');

const env = (name: string, fallback: number): number => {
  const v = Number(process.env[name] ?? fallback);
  if (!Number.isFinite(v) || v < 0) throw new Error(`${name} must be a non-negative number`);
  return v;
};
const N = env('SCALE_N', 1000);
const REST_SECONDS = env('REST_SECONDS', 600);
const SETTLE_SECONDS = env('SETTLE_SECONDS', 10);
const CREATE_CONCURRENCY = Math.max(1, env('CREATE_CONCURRENCY', 16));
const FLOOR_WORKERS = Math.max(1, env('FLOOR_WORKERS', 16));
const WARMUP_PAIRS = env('WARMUP_PAIRS', 100);
const OCI_PROGRESS_MS = env('OCI_PROGRESS_MS', 100);
const READY_TIMEOUT_MS = env('READY_TIMEOUT_SECONDS', 900) * 1000;
const words = (text: string | undefined) => (text ?? '').split(' ').filter((a) => a !== '');
const OPERATOR_ARGS = words(process.env.OPERATOR_ARGS);
const OPERATOR_NODE_ARGS = words(process.env.OPERATOR_NODE_ARGS);
const SNAPSHOT_SIGNAL = OPERATOR_NODE_ARGS.find((a) => a.startsWith('--heapsnapshot-signal='))?.split(
  '=',
)[1] as NodeJS.Signals | undefined;

const NS = 'scale';
const WARMUP_NS = 'scale-warmup';
const FLOOR_NS = 'scale-floor';
const PRODUCT_NS = 'scale-product-floor';
const IDENTITY = 'bench-scale';
const BASE = 'ocid1.datasciencemodel.oc1.iad.aaaaaaaabase';
const lora = (n: number) => `ocid1.datasciencemodel.oc1.iad.aaaaaaaalora${String(n)}`;
const ADAPTERS = ['lora-a', 'lora-b'];

const VLLM_COUNT = Math.ceil(N / 2);
const OCI_COUNT = N - VLLM_COUNT;
const RUNNING = Math.min(VLLM_COUNT, Math.max(1, Math.round(N / 20)));

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const mb = (x: number) => `${x.toFixed(0)} MB`;

// ---------------------------------------------------------------------------------------------------------
// The objects

type Backend = 'vllm' | 'oci';
interface Pair {
  backend: Backend;
  group: KubernetesObject;
  deployment: KubernetesObject;
}

/**
 * N groups and their deployments, vllm and oci alternating so both backends are busy from the
 * start; the vllm ones with a replica are spread evenly over the vllm ones.
 */
function objects(namespace: string, emuUrl: string, count = N): Pair[] {
  const stride = Math.max(1, Math.floor(VLLM_COUNT / RUNNING));
  const pairs: Pair[] = [];
  for (let i = 0; i < count; i++) {
    const backend: Backend = i % 2 === 0 ? 'vllm' : 'oci';
    const j = Math.floor(i / 2);
    const name = `${backend}-${String(j).padStart(4, '0')}`;
    const metadata = { name, namespace };
    if (backend === 'vllm') {
      const replicas = j % stride === 0 && j / stride < RUNNING ? 1 : 0;
      pairs.push({
        backend,
        group: {
          apiVersion: `${GROUP}/${VERSION}`,
          kind: 'StackedModelGroup',
          metadata,
          spec: {
            baseModel: { inferenceKey: 'base', source: { huggingface: 'org/base' } },
            members: ADAPTERS.map((k) => ({
              inferenceKey: k,
              source: { pvc: { claimName: 'adapters', path: k } },
            })),
          },
        } as KubernetesObject,
        deployment: {
          apiVersion: `${GROUP}/${VERSION}`,
          kind: 'StackedDeployment',
          metadata,
          // No router: this measures the two kinds' reconciles; a router adds five objects of its own.
          spec: {
            modelGroupRef: { name },
            backend: 'vllm',
            engine: {},
            vllm: { replicas, router: { enabled: false } },
          },
        } as KubernetesObject,
      });
    } else {
      pairs.push({
        backend,
        group: {
          apiVersion: `${GROUP}/${VERSION}`,
          kind: 'StackedModelGroup',
          metadata,
          spec: {
            baseModel: { inferenceKey: 'basemodel', modelId: BASE },
            members: [1, 2].map((n) => ({ inferenceKey: `lora-${String(n)}`, modelId: lora(n) })),
          },
        } as KubernetesObject,
        deployment: ociDeployment(name, { namespace, endpoint: emuUrl, oci: { retainModelGroups: 1 } }),
      });
    }
  }
  return pairs;
}

const nameOf = (o: KubernetesObject) => o.metadata?.name ?? '';

/** Creates every pair (the group, then its deployment), CREATE_CONCURRENCY pairs in flight. */
async function createAll(
  api: KubernetesObjectApi,
  pairs: Pair[],
): Promise<{ firstAt: number; lastAt: number; createdAt: Map<string, number> }> {
  const createdAt = new Map<string, number>();
  let next = 0;
  const firstAt = performance.now();
  await Promise.all(
    Array.from({ length: CREATE_CONCURRENCY }, async () => {
      for (let i = next++; i < pairs.length; i = next++) {
        const p = pairs[i];
        if (p === undefined) break;
        await api.create(p.group);
        createdAt.set(keyOf('stackedmodelgroups', nameOf(p.group)), performance.now());
        await api.create(p.deployment);
        createdAt.set(keyOf('stackeddeployments', nameOf(p.deployment)), performance.now());
      }
    }),
  );
  return { firstAt, lastAt: performance.now(), createdAt };
}

// ---------------------------------------------------------------------------------------------------------
// Watching: readiness for the measurement

/** Which objects of a namespace are Ready for their current generation, and since when. */
class ReadyTracker {
  /** When each object first turned Ready (performance.now()). */
  readonly readyAt = new Map<string, number>();
  /** When every expected object was Ready at once, first. */
  allReadyAt: number | undefined;
  /** Ready -> not Ready transitions seen (churn). */
  flips = 0;
  readonly #state = new Map<string, { ready: boolean; reason: string }>();
  readonly #expected: number;
  readonly #watches: ResourceWatch[];
  #ready = 0;

  constructor(kc: KubeConfig, namespace: string, expected: number) {
    this.#expected = expected;
    this.#watches = PLURALS.map(
      (plural) =>
        new ResourceWatch(kc, namespace, plural, (phase, o) => {
          this.#observe(keyOf(plural, o.metadata?.name ?? ''), phase === 'DELETED' ? undefined : o);
        }),
    );
  }

  async start(): Promise<void> {
    await Promise.all(this.#watches.map((w) => w.start()));
  }

  stop(): void {
    for (const w of this.#watches) w.stop();
  }

  get ready(): number {
    return this.#ready;
  }

  /** The Ready condition (status and reason) of every object not Ready, counted. */
  notReady(): Counts {
    return countBy(
      [...this.#state].filter(([, s]) => !s.ready),
      ([key, s]) => `${key.split('/')[0] ?? ''} ${s.reason}`,
    );
  }

  /** Waits until every expected object is Ready, printing progress; false on timeout. */
  async waitAllReady(what: string): Promise<boolean> {
    const deadline = performance.now() + READY_TIMEOUT_MS;
    let lastPrint = performance.now();
    while (this.allReadyAt === undefined) {
      if (performance.now() > deadline) return false;
      if (performance.now() - lastPrint > 5000) {
        lastPrint = performance.now();
        progress(`${what}: ${String(this.#ready)}/${String(this.#expected)} Ready`);
      }
      await sleep(10);
    }
    return true;
  }

  #observe(key: string, o: Observed | undefined): void {
    const now = performance.now();
    const was = this.#state.get(key)?.ready ?? false;
    if (o === undefined) {
      this.#state.delete(key);
      if (was) this.#ready--;
      return;
    }
    const generation = o.metadata?.generation;
    const c = o.status?.conditions?.find((x) => x.type === 'Ready');
    const ready =
      generation !== undefined &&
      o.status?.observedGeneration === generation &&
      c?.status === 'True' &&
      c.observedGeneration === generation;
    this.#state.set(key, { ready, reason: c ? `Ready=${c.status} ${c.reason ?? ''}` : 'no Ready condition' });
    if (ready && !was) {
      this.#ready++;
      if (!this.readyAt.has(key)) this.readyAt.set(key, now);
    } else if (!ready && was) {
      this.#ready--;
      this.flips++;
    }
    if (this.#ready === this.#expected && this.allReadyAt === undefined) this.allReadyAt = now;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Reading what happened

const resourceOf = (e: AuditEvent) =>
  `${e.objectRef?.resource ?? '?'}${e.objectRef?.subresource ? `/${e.objectRef.subresource}` : ''}`;

/** The operator's writes received in [fromMs, toMs] (epoch ms), from the audit log. */
async function operatorWrites(cp: ControlPlane, fromMs: number, toMs: number): Promise<AuditEvent[]> {
  return (await cp.writesBy(OPERATOR_USER, fromMs)).filter(
    (e) => Date.parse(e.requestReceivedTimestamp) <= toMs,
  );
}

const byVerbAndResource = (events: AuditEvent[]) => countBy(events, (e) => `${e.verb} ${resourceOf(e)}`);
const failed = (events: AuditEvent[]) =>
  countBy(
    events.filter((e) => (e.responseStatus?.code ?? 200) >= 400),
    (e) => `${e.verb} ${resourceOf(e)} ${String(e.responseStatus?.code)} ${e.responseStatus?.reason ?? ''}`,
  );

/** Sums of a Prometheus counter from the operator's /metrics, keyed by the given labels' values. */
async function operatorCounter(port: number, metric: string, labels: string[]): Promise<Counts> {
  const text = await (await fetch(`http://127.0.0.1:${String(port)}/metrics`)).text();
  const counts: Counts = new Map();
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${metric}{`) && !line.startsWith(`${metric} `)) continue;
    const values = Object.fromEntries(
      [...line.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1] ?? '', m[2] ?? '']),
    );
    const key = labels.map((l) => values[l] ?? '').join(' ');
    counts.set(key, (counts.get(key) ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1)));
  }
  return counts;
}

const READ_VERBS = new Set(['GET', 'LIST', 'WATCH']);
const reads = (counts: Counts) => new Map([...counts].filter(([k]) => READ_VERBS.has(k.split(' ')[0] ?? '')));

/** Percentiles of create -> first Ready, per backend and kind. */
function latencies(pairs: Pair[], createdAt: Map<string, number>, readyAt: Map<string, number>): string {
  const rows: string[] = [];
  for (const backend of ['vllm', 'oci'] as const) {
    for (const plural of PLURALS) {
      const xs = pairs
        .filter((p) => p.backend === backend)
        .map((p) => keyOf(plural, nameOf(p.group)))
        .map((k) => (readyAt.get(k) ?? NaN) - (createdAt.get(k) ?? NaN))
        .filter((x) => Number.isFinite(x))
        .sort((a, b) => a - b);
      const at = (q: number) => xs[Math.min(xs.length - 1, Math.floor(q * xs.length))] ?? NaN;
      rows.push(
        `    ${backend.padEnd(4)} ${plural.padEnd(18)} p50 ${seconds(at(0.5))}, p90 ${seconds(at(0.9))}, max ${seconds(at(1))} (${String(xs.length)} Ready)`,
      );
    }
  }
  return rows.join('\n');
}

interface FloorRun {
  /** All Ready, from the first create and from the last; how long the creates took. */
  fromFirst: number;
  fromLast: number;
  creates: number;
  patches: number;
  failures: number;
  cpu: Counts;
  benchCpuSeconds: number;
  metrics: Counts;
  /** Every client's writes meanwhile (audit log), by user. */
  writes: Counts;
}

/** Creates the objects in `namespace` and times `client` making them all Ready. */
async function runFloor(
  cp: ControlPlane,
  kc: KubeConfig,
  api: KubernetesObjectApi,
  namespace: string,
  client: FloorClient,
  emuUrl: string,
  pairs = N,
): Promise<FloorRun> {
  const expected = 2 * pairs;
  progress(`${namespace}: ${String(expected)} objects`);
  const tracker = new ReadyTracker(kc, namespace, expected);
  await tracker.start();
  await client.start();
  const wallStart = Date.now();
  const metricsBefore = await apiserverRequests(kc);
  const cpuBefore = controlPlaneCpu(cp);
  const benchCpuBefore = process.cpuUsage();
  const create = await createAll(api, objects(namespace, emuUrl, pairs));
  const done = await tracker.waitAllReady(namespace);
  const wallEnd = Date.now();
  const cpu = diffCounts(controlPlaneCpu(cp), cpuBefore);
  const benchCpu = process.cpuUsage(benchCpuBefore);
  const metrics = diffCounts(await apiserverRequests(kc), metricsBefore);
  await client.stop();
  tracker.stop();
  if (!done) throw new Error(`${namespace}: only ${String(tracker.ready)} of ${String(expected)} Ready`);
  const allReady = tracker.allReadyAt ?? NaN;
  progress(`${namespace}: all Ready ${seconds(allReady - create.firstAt)} after the first create`);
  return {
    fromFirst: allReady - create.firstAt,
    fromLast: allReady - create.lastAt,
    creates: create.lastAt - create.firstAt,
    patches: client.patches,
    failures: client.failures,
    cpu,
    benchCpuSeconds: (benchCpu.user + benchCpu.system) / 1e6,
    metrics,
    writes: await writesByUser(cp, wallStart, wallEnd),
  };
}

const usersText = (c: Counts): string =>
  [...c]
    .sort((a, b) => b[1] - a[1])
    .map(([user, n]) => `${user} ${String(n)}`)
    .join(', ');

/**
 * The floor is often Ready within milliseconds of its last create (its patches keep up with the
 * creates): a ratio to that would be noise, not a measurement.
 */
const fromLastRatio = (run: number, floor: number): string =>
  floor < 100
    ? `none (the floor was Ready ${seconds(floor)} after its last create)`
    : `${(run / floor).toFixed(2)}x`;

/** The API server's pace: on a saturated machine the time to all Ready follows the writes made. */
const writeRate = (c: Counts, ms: number): string =>
  `${String(sumCounts(c))} (${((1000 * sumCounts(c)) / ms).toFixed(0)} per second)`;

function floorText(f: FloorRun): string {
  return [
    `  creates took ${seconds(f.creates)}; all Ready ${seconds(f.fromFirst)} after the first create, ${seconds(f.fromLast)} after the last`,
    `  CPU meanwhile: ${cpuText(f.cpu)}, this benchmark's process (creates, the floor's client, the emulator) ${f.benchCpuSeconds.toFixed(1)} s`,
    `  every client's writes meanwhile (audit log), ${writeRate(f.writes, f.fromFirst)}: ${usersText(f.writes)}`,
  ].join('\n');
}

/** Every client's writes between two instants, by user (ServiceAccounts and nodes by their name). */
async function writesByUser(cp: ControlPlane, fromMs: number, toMs: number): Promise<Counts> {
  const writes = (await cp.writes(fromMs)).filter((e) => Date.parse(e.requestReceivedTimestamp) <= toMs);
  return countBy(writes, (e) => e.user.username.split(':').at(-1) ?? '');
}

/** Drops a namespace and waits until it is gone: finalizers first, then whatever the garbage collector owes. */
async function removeNamespace(kc: KubeConfig, namespace: string): Promise<void> {
  const custom = kc.makeApiClient(CustomObjectsApi);
  const core = kc.makeApiClient(CoreV1Api);
  const list = (await custom.listNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    namespace,
    plural: 'stackeddeployments',
  })) as { items: { metadata?: { name?: string; finalizers?: string[] } }[] };
  for (const d of list.items) {
    if ((d.metadata?.finalizers ?? []).length === 0) continue;
    await custom.patchNamespacedCustomObject(
      {
        group: GROUP,
        version: VERSION,
        namespace,
        plural: 'stackeddeployments',
        name: d.metadata?.name ?? '',
        body: { metadata: { finalizers: null } },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
  }
  await core.deleteNamespace({ name: namespace });
  await until(
    `namespace ${namespace} is gone`,
    async () => (await core.readNamespace({ name: namespace }).catch(() => undefined)) === undefined,
    300_000,
    500,
  );
}

// ---------------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const expected = 2 * N;
  progress(
    `N=${String(N)}: ${String(VLLM_COUNT)} vllm (${String(RUNNING)} with 1 replica), ${String(OCI_COUNT)} oci; load ${loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}`,
  );
  const root = mkdtempSync(join(tmpdir(), 'bench-scale-'));
  const key = makeApiKey();
  let emu: OciEmulator | undefined;
  let kubelet: Kubelet | undefined;
  let operator: OperatorProcess | undefined;
  const { cp, kc, api, apply } = await startBenchCluster(NS);
  try {
    emu = await startOciEmulator({
      keys: { [key.keyId]: key.publicKeyPem },
      models: [BASE, lora(1), lora(2)],
      delays: {
        groupCreateMs: 0,
        groupDeleteMs: 0,
        deploymentCreateMs: 0,
        deploymentUpdateMs: 0,
        deploymentDeleteMs: 0,
      },
    });
    for (const name of [WARMUP_NS, FLOOR_NS, PRODUCT_NS])
      await apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
    await apply({ ...apiKeySecret('oci-api-key', key), metadata: { name: 'oci-api-key', namespace: NS } });
    await apply(adaptersClaim('adapters', NS));
    for (const k of ADAPTERS) writeAdapter(join(root, 'pvc', NS, 'adapters', k), 16);
    kubelet = await startKubelet({
      kubeconfigPath: cp.kubeconfigPath,
      nodes: Array.from({ length: RUNNING }, (_, i) => ({ name: `scale-gpu-${String(i + 1)}`, gpus: 1 })),
      pvcRoot: join(root, 'pvc'),
      hfRoot: join(root, 'hf'),
      namespaces: [NS],
    });

    // ---- The floors, before the operator runs, so that nothing else competes with them; each
    // namespace goes before the next run, so every run meets the same API server state. A warm-up
    // first: a cold API server would slow the first floor, and flatter every ratio to it.
    await runFloor(
      cp,
      kc,
      api,
      WARMUP_NS,
      new FloorClient(kc, WARMUP_NS, FLOOR_WORKERS),
      emu.url,
      WARMUP_PAIRS,
    );
    await removeNamespace(kc, WARMUP_NS);
    const floor = await runFloor(
      cp,
      kc,
      api,
      FLOOR_NS,
      new FloorClient(kc, FLOOR_NS, FLOOR_WORKERS),
      emu.url,
    );
    await removeNamespace(kc, FLOOR_NS);
    const productClient = new ProductFloorClient(kc, PRODUCT_NS, {
      workers: FLOOR_WORKERS,
      oci: apiKeyProvider(key),
    });
    const product = await runFloor(cp, kc, api, PRODUCT_NS, productClient, emu.url);
    await removeNamespace(kc, PRODUCT_NS);

    // ---- The operator
    const healthPort = await freePort();
    operator = await startOperator(cp, {
      identity: IDENTITY,
      namespace: NS,
      nodeArgs: OPERATOR_NODE_ARGS,
      extraArgs: [
        '--leader-election-id=bench-scale',
        '--log-level=warn',
        `--oci-progress-interval-ms=${String(OCI_PROGRESS_MS)}`,
        // The defaults, not startOperator's short test leases: the at-rest Lease renewals are real.
        '--lease-duration=15',
        '--renew-deadline=10',
        '--retry-period=2',
        `--health-port=${String(healthPort)}`,
        ...OPERATOR_ARGS,
      ],
    });
    const pid = operator.proc.pid;
    if (pid === undefined) throw new Error('the operator has no pid');
    const coordination = kc.makeApiClient(CoordinationV1Api);
    await until(
      'the operator leads and has synced',
      async () => {
        const lease = await coordination
          .readNamespacedLease({ name: 'bench-scale', namespace: OPERATOR_NAMESPACE })
          .catch(() => undefined);
        const ready = await fetch(`http://127.0.0.1:${String(healthPort)}/readyz`).catch(() => undefined);
        return lease?.spec?.holderIdentity === IDENTITY && ready?.status === 200;
      },
      120_000,
      200,
    );
    await sleep(2000);
    const idle = memoryOf(pid);
    progress(`operator ${String(pid)} leads; RSS ${mb(idle.rssMb)} (peak so far ${mb(idle.peakMb)})`);

    const tracker = new ReadyTracker(kc, NS, expected);
    await tracker.start();
    const pairs = objects(NS, emu.url);
    const wallStart = Date.now();
    const metricsBefore = await apiserverRequests(kc);
    const reconcilesBefore = await operatorCounter(healthPort, 'controller_runtime_reconcile_total', [
      'controller',
      'result',
    ]);
    const cpuBefore = cpuSecondsOf(pid);
    const benchCpuBefore = process.cpuUsage();
    const cpCpuBefore = controlPlaneCpu(cp);
    const created = await createAll(api, pairs);
    progress(`created ${String(expected)} objects in ${seconds(created.lastAt - created.firstAt)}`);
    const allReady = await tracker.waitAllReady('operator');
    const wallReady = Date.now();
    const readyAt = tracker.allReadyAt ?? performance.now();
    const atReady = memoryOf(pid);
    // What the RSS is made of: V8's heap (used of committed) and memory outside it (Buffers, TLS).
    const heap = await operatorCounter(healthPort, 'nodejs_heap_size_used_bytes', []);
    const heapTotal = await operatorCounter(healthPort, 'nodejs_heap_size_total_bytes', []);
    const external = await operatorCounter(healthPort, 'nodejs_external_memory_bytes', []);
    const heapMb = (c: Counts) => mb(sumCounts(c) / 2 ** 20);
    const cpu = cpuSecondsOf(pid) - cpuBefore;
    const benchCpu = process.cpuUsage(benchCpuBefore);
    const cpCpu = diffCounts(controlPlaneCpu(cp), cpCpuBefore);
    if (SNAPSHOT_SIGNAL !== undefined) operator.proc.kill(SNAPSHOT_SIGNAL);
    const metrics = diffCounts(await apiserverRequests(kc), metricsBefore);
    const reconciles = diffCounts(
      await operatorCounter(healthPort, 'controller_runtime_reconcile_total', ['controller', 'result']),
      reconcilesBefore,
    );
    const ociCalls = await operatorCounter(healthPort, 'stacked_oci_requests_total', ['operation']);
    const ociSeconds = await operatorCounter(healthPort, 'stacked_oci_request_duration_seconds_sum', [
      'operation',
    ]);
    const reconcileSeconds = await operatorCounter(
      healthPort,
      'controller_runtime_reconcile_time_seconds_sum',
      ['controller'],
    );
    const reconcileCount = await operatorCounter(
      healthPort,
      'controller_runtime_reconcile_time_seconds_count',
      ['controller'],
    );
    const writes = await operatorWrites(cp, wallStart, wallReady);
    const runWrites = await writesByUser(cp, wallStart, wallReady);
    const notReady = tracker.notReady();
    const run = { fromFirst: readyAt - created.firstAt, fromLast: readyAt - created.lastAt };
    progress(
      allReady
        ? `all Ready ${seconds(run.fromFirst)} after the first create`
        : `timed out: ${String(tracker.ready)}/${String(expected)} Ready`,
    );

    // ---- Settle, then rest
    await sleep(SETTLE_SECONDS * 1000);
    const wallRest = Date.now();
    const settleWrites = await operatorWrites(cp, wallReady + 1, wallRest - 1);
    const reconcilesRestBefore = await operatorCounter(healthPort, 'controller_runtime_reconcile_total', [
      'controller',
      'result',
    ]);
    progress(`at rest for ${String(REST_SECONDS)} s`);
    for (let left = REST_SECONDS; left > 0; left -= 60) {
      await sleep(Math.min(60, left) * 1000);
      if (left > 60) progress(`at rest: ${String(left - 60)} s left`);
    }
    const wallEnd = Date.now();
    const restWrites = await operatorWrites(cp, wallRest, wallEnd);
    const restReconciles = diffCounts(
      await operatorCounter(healthPort, 'controller_runtime_reconcile_total', ['controller', 'result']),
      reconcilesRestBefore,
    );
    const restOci = emu.requests().filter((r) => r.at >= wallRest && r.at <= wallEnd);
    const end = memoryOf(pid);
    const restCpu = cpuSecondsOf(pid) - cpuBefore - cpu;
    if (SNAPSHOT_SIGNAL !== undefined) operator.proc.kill(SNAPSHOT_SIGNAL);
    // Events say which transitions the writes above were (the audit log records no bodies).
    const events = await kc.makeApiClient(CoreV1Api).listNamespacedEvent({ namespace: NS });
    const eventReasons = countBy(
      events.items,
      (e) =>
        `${e.reportingComponent || (e.source?.component ?? '?')}: ${e.involvedObject.kind ?? '?'} ${e.type ?? ''} ${e.reason ?? ''}`,
    );
    const leases = restWrites.filter((e) => e.objectRef?.resource === 'leases');
    const otherRest = restWrites.filter((e) => e.objectRef?.resource !== 'leases');
    const warnings = operator.lines.filter((l) => l.level === 'warn' || l.level === 'error');

    // ---- Report
    const met = (ok: boolean) => (ok ? 'met' : 'MISSED');
    const ratio = run.fromFirst / floor.fromFirst;
    const writeVerbs = countBy(writes, (e) => e.verb);
    const out = [
      '',
      `scale benchmark: ${String(N)} StackedModelGroups + ${String(N)} StackedDeployments = ${String(expected)} objects`,
      `  ${String(VLLM_COUNT)} vllm (${String(RUNNING)} with 1 replica on the test kubelet, the rest 0), ${String(OCI_COUNT)} oci on the emulator (delays 0, --oci-progress-interval-ms=${String(OCI_PROGRESS_MS)})`,
      `  creates: ${String(CREATE_CONCURRENCY)} pairs in flight; operator flags ${OPERATOR_ARGS.join(' ') || '(defaults)'}; Node flags ${[...operatorNodeFlags(), ...OPERATOR_NODE_ARGS].join(' ')} (the image's ENTRYPOINT${OPERATOR_NODE_ARGS.length > 0 ? ' and OPERATOR_NODE_ARGS' : ''}); load average at the end ${loadavg()
        .map((x) => x.toFixed(2))
        .join(' ')}`,
      '',
      `floor (bare client, one status patch per object, ${String(FLOOR_WORKERS)} in flight per kind; ${String(floor.patches)} patches, ${String(floor.failures)} failed):`,
      floorText(floor),
      '',
      `product floor (bare client: per object the writes and OCI creates the design requires, then one status patch; ${String(product.patches)} objects, ${String(product.failures)} failed):`,
      `  made: ${[...productClient.made].map(([k, v]) => `${k} ${String(v)}`).join(', ')}`,
      floorText(product),
      `  ratio product floor/floor: ${(product.fromFirst / floor.fromFirst).toFixed(2)}x from the first create`,
      '',
      `operator:`,
      `  creates took ${seconds(created.lastAt - created.firstAt)}; ${allReady ? 'all Ready' : `NOT all Ready (${String(tracker.ready)}/${String(expected)}) at the timeout`} ${seconds(run.fromFirst)} after the first create, ${seconds(run.fromLast)} after the last`,
      `  ratio operator/floor: ${ratio.toFixed(2)}x from the first create; from the last: ${fromLastRatio(run.fromLast, floor.fromLast)}`,
      `  ratio operator/product floor: ${(run.fromFirst / product.fromFirst).toFixed(2)}x from the first create`,
      `  target all Ready within 2x the floor (${seconds(2 * floor.fromFirst)}): ${met(allReady && ratio <= 2)}`,
      `  target all Ready within 60 s of the last create: ${met(allReady && run.fromLast <= 60_000)}`,
      `  create -> first Ready, per object:`,
      latencies(pairs, created.createdAt, tracker.readyAt),
      `  Ready -> not Ready flips during the run: ${String(tracker.flips)}`,
      ...(notReady.size > 0 ? ['  not Ready at the end of the wait:', countTable(notReady)] : []),
      '',
      `  operator CPU: ${cpu.toFixed(1)} s from the first create to all Ready (${((1000 * cpu) / (readyAt - created.firstAt)).toFixed(2)} cores), ${restCpu.toFixed(1)} s after (settle and rest); this benchmark's process (kubelet, emulator, watches): ${((benchCpu.user + benchCpu.system) / 1e6).toFixed(1)} s`,
      `  control plane CPU meanwhile: ${cpuText(cpCpu)}`,
      `  every client's writes meanwhile (audit log), ${writeRate(runWrites, run.fromFirst)}: ${usersText(runWrites)}`,
      `  RSS: ${mb(idle.rssMb)} idle before the creates, ${mb(atReady.rssMb)} at all Ready, ${mb(end.rssMb)} after the rest`,
      `  peak RSS (VmHWM): ${mb(end.peakMb)} (${mb(atReady.peakMb)} by all Ready); target under 200 MB: ${met(end.peakMb < 200)}`,
      `  at all Ready: V8 heap ${heapMb(heap)} used of ${heapMb(heapTotal)}, external ${heapMb(external)}; the rest of the RSS is native (code, TLS, malloc)`,
      '',
      `  API writes from the first create to all Ready (audit log, user ${OPERATOR_USER}): ${String(writes.length)} = ${(writes.length / expected).toFixed(2)} per object`,
      `    by verb: ${[...writeVerbs].map(([v, c]) => `${v} ${String(c)} (${(c / expected).toFixed(2)}/object)`).join(', ')}`,
      countTable(byVerbAndResource(writes), expected),
      ...(failed(writes).size > 0
        ? ['    failed writes:', countTable(failed(writes), undefined, '      ')]
        : []),
      `    Events in ${NS} at the end, by reporter, object kind, type and reason:`,
      countTable(eventReasons, expected, '      '),
      `  API reads meanwhile (apiserver_request_total, every client: also the kubelet, the controller manager and this benchmark's watches): ${String(sumCounts(reads(metrics)))}`,
      countTable(reads(metrics), expected, '    ', 12),
      `  reconciles meanwhile (operator /metrics):`,
      countTable(reconciles, expected),
      `    mean reconcile time since the start, by controller: ${[...reconcileSeconds]
        .map(([c, sum]) => `${c} ${((1000 * sum) / (reconcileCount.get(c) ?? 1)).toFixed(0)} ms`)
        .join(', ')}`,
      `  OCI calls since the operator started, by operation (mean time): ${
        [...ociCalls]
          .map(([k, v]) => `${k} ${String(v)} (${((1000 * (ociSeconds.get(k) ?? NaN)) / v).toFixed(0)} ms)`)
          .join(', ') || '(none)'
      }`,
      '',
      `  writes in the ${String(SETTLE_SECONDS)} s after all Ready: ${String(settleWrites.length)}`,
      ...(settleWrites.length > 0 ? [countTable(byVerbAndResource(settleWrites))] : []),
      `  at rest for ${String(REST_SECONDS)} s: ${String(otherRest.length)} writes apart from ${String(leases.length)} Lease renewals (${leases.length > 0 ? `one per ${((wallEnd - wallRest) / 1000 / leases.length).toFixed(1)} s` : 'none'}); target 0: ${met(otherRest.length === 0)}`,
      ...(otherRest.length > 0 ? [countTable(byVerbAndResource(otherRest))] : []),
      `    Lease renewals: ${countTable(byVerbAndResource(leases), undefined, '').replace(/\n/g, ', ')}`,
      `    reconciles at rest: ${sumCounts(restReconciles) === 0 ? '0' : `\n${countTable(restReconciles)}`}`,
      `    OCI calls at rest: ${String(restOci.length)} (${String(restOci.filter((r) => r.method !== 'GET').length)} mutating): ${[
        ...countBy(restOci, (r) => r.operation),
      ]
        .map(([k, v]) => `${k} ${String(v)}`)
        .join(', ')}`,
      '',
      `  operator warnings/errors logged: ${String(warnings.length)}`,
      ...(warnings.length > 0
        ? [
            countTable(
              countBy(warnings, (l) => l.message.slice(0, 120)),
              undefined,
              '    ',
            ),
          ]
        : []),
      '',
      `floor's API requests (apiserver_request_total, every client), ${String(sumCounts(floor.metrics))}:`,
      countTable(floor.metrics, expected, '    ', 8),
    ];
    console.log(out.join('\n'));
    tracker.stop();
  } finally {
    await operator?.stop();
    await kubelet?.stop();
    await emu?.close();
    await cp.stop();
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
