// A test kubelet (and the scheduler it needs) that stands in for GPU nodes in integration tests. The test
// control plane has no kube-scheduler and no kubelet: Deployments and ReplicaSets create Pods, and this
// binds them to fake GPU nodes, runs each `vllm` container as a VllmSimulator on a loopback pod IP, and
// reports pod status the way a real kubelet does. Everything is level-triggered: on every pod event the
// pod's current state decides what to do. Pieces: kubelet/scheduler.ts (binding, Unschedulable) with
// kubelet/scheduling.ts (fit, FitError message), kubelet/nodes.ts (Node registration),
// kubelet/podstatus.ts (status, conditions, patch), kubelet/container.ts (argv, env, ports, volumes,
// probes), kubelet/net.ts (pod IPs, probe requests), kubelet/queue.ts (per-key serial work queue).
//
// Choices beyond the brief:
//   - Standing in for the node lifecycle controller too, it lifts the node.kubernetes.io/not-ready
//     taint that admission puts on a new Node (spec.taints becomes exactly FakeNode.taints).
//   - Nodes also advertise cpu, memory, pods and ephemeral-storage (FakeNode.cpu/memory/pods), and the
//     fit check counts every requested resource and the pod count, like NodeResourcesFit.
//   - Scheduling also honours required node affinity, NoExecute taints, spec.unschedulable, scheduling
//     gates and priority (higher first, then oldest), and refuses a pod whose PVC does not exist
//     (`persistentvolumeclaim "x" not found`); PVC binding is not checked (no PV controller runs).
//   - `namespaces` restricts which pods this instance schedules, so several kubelets can share one
//     control plane; pods bound to its nodes are always its own, whatever their namespace.
//   - Readiness probes follow the kubelet: 200-399 is success, successThreshold / failureThreshold /
//     timeoutSeconds are honoured; tcpSocket probes run too; exec and grpc probes count as passing.
//     A startupProbe holds `started` (and readiness probing) until it passes. Other containers
//     (those isVllmContainer refuses) follow their readiness and liveness probes when runContainer
//     runs them (no startup probe: ours have none); one that nothing runs is running and ready at
//     once, whatever its probes, since nothing would answer them.
//   - A runContainer hook may refuse a container as the kubelet does (CreateContainerConfigError,
//     e.g. runAsNonRoot with a non-numeric image user): it waits with that reason and message.
//   - A simulator that fails to start (bad flags, a failing --lora-modules) is a crash loop: waiting
//     CrashLoopBackOff, lastState terminated (exit 1, reason Error, the error as message), retried with
//     a doubling back-off from 0.5 s to 5 s (a BackOff Event each time), restartCount + 1 per retry.
//   - A pod already running on one of our nodes when the kubelet starts (a kubelet restart) is run
//     again as after a node reboot: restartCount + 1, lastState terminated (255, Unknown).
//   - Status also carries PodReadyToStartContainers, observedGeneration (status and conditions),
//     hostIPs, and a Pending step (containers waiting ContainerCreating) before Running.
//   - Liveness probes follow the kubelet: they start once the container has started (startup probe
//     passed) and initialDelaySeconds after the container started, run every periodSeconds with
//     timeoutSeconds, and after failureThreshold consecutive failures the container is killed
//     (restartPolicy is not consulted): the simulator process stops (its adapters are lost) and a
//     fresh one starts empty on the same address, restartCount + 1, lastState terminated (exit 137,
//     Error), ready only once its readiness probe passes again. A container runContainer runs is
//     stopped and started again through the hook, the same way. The first restart goes at once;
//     one soon after another waits in CrashLoopBackOff, as the kubelet's per-container back-off
//     (10 s doubling to 300 s) at this kubelet's pace (kubelet/backoff.ts: 0.5 s doubling to 5 s).
//     A startup probe that fails for as long as failureThreshold failures take as written
//     (initialDelaySeconds + failureThreshold x periodSeconds, scaled, not capped) restarts the
//     container the same way, though it is probed at the capped pace below.
//   - Events, as the kubelet records them (kubelet/events.ts): Unhealthy (Warning) for each failed
//     liveness probe ("Liveness probe failed: HTTP probe failed with statuscode: 503"), Killing
//     before a liveness or startup restart, BackOff when a restart waits; repeats count up on one
//     Event, and client-go's spam filter holds each pod to 25 at once, then one per 300 s (scaled by
//     probeTimeScale). Failed startup and readiness probes are Unhealthy Events on a node too, but
//     not here: their periods are capped far below what is written (below), so they would spend
//     the pod's budget at a pace no kubelet does. No other Events (Scheduled, Pulled, Started).
//   - Probe timing: liveness probes run at periodSeconds and initialDelaySeconds as written, scaled
//     by `probeTimeScale` (default 1; e.g. 0.1 turns the operator's 10 s x 6 liveness probe into a
//     restart after 6 s of failures). Startup and readiness probes are scaled too, and then capped
//     at 200 ms and 1 s (MAX_PROBE_PERIOD_MS, MAX_INITIAL_DELAY_MS) as before, so pods turn
//     ready (and unready) quickly. timeoutSeconds is never scaled.
//   - A restarted container (restartContainer or a liveness kill) has its status, not ready, written
//     before the new simulator starts listening: a real vLLM takes far longer to start than the
//     kubelet takes to write it, so no Ready pod ever serves from an empty restarted process.
//   - Every simulator gets `adapterLoadMs` (default 0): the time each adapter load takes.
//   - Everything that decides what serves goes to a Timeline (../support/timeline.ts; default the
//     process-wide sharedTimeline): each pod's Ready transitions, logged when the status write
//     succeeds (or the server already holds that value), with the pod's labels; `pod-gone` when a
//     pod is torn down; and, from the simulators, serving, stops, adapter loads and losses.
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  CoreV1Api,
  KubeConfig,
  PatchStrategy,
  V1DeleteOptions,
  V1Node,
  setHeaderOptions,
  type V1Container,
  type V1Pod,
} from '@kubernetes/client-node';
import { apiErrorCode, errorMeta, isNotFound } from '../src/runtime/errors.ts';
import { Informer } from '../src/runtime/informer.ts';
import { objectKey } from '../src/runtime/keys.ts';
import { createLogger } from '../src/runtime/logger.ts';
import { model } from '../src/runtime/model.ts';
import {
  containerEnv,
  listenPort,
  makeResolvePath,
  probeTarget,
  vllmArgs,
  type ProbeTarget,
} from './kubelet/container.ts';
import { podIps, probeOnce } from './kubelet/net.ts';
import {
  desiredStatus,
  rfc3339,
  statusMatches,
  statusPatch,
  timeString,
  type ContainerRun,
  type InitRun,
  type PodRun,
} from './kubelet/podstatus.ts';
import { isTerminal } from './kubelet/scheduling.ts';
import { FIELD_MANAGER, registerNode, type FakeNode } from './kubelet/nodes.ts';
import { startStreamingServer, type StreamingServer } from './kubelet/streaming.ts';
import { KeyedSerial } from './kubelet/queue.ts';
import { PodEventRecorder, type EventType } from './kubelet/events.ts';
import {
  BACKOFF_INITIAL_MS,
  BACKOFF_MAX_MS,
  backoffMessage,
  podRef,
  restartDelay,
  type RestartBackoff,
} from './kubelet/backoff.ts';
import { Scheduler } from './kubelet/scheduler.ts';
import { VllmSimulator } from './vllm-simulator.ts';
import { sharedTimeline, type Timeline } from './timeline.ts';

export { podIps } from './kubelet/net.ts';

export type { FakeNode } from './kubelet/nodes.ts';

export interface KubeletOptions {
  /** Admin kubeconfig of the test control plane. */
  kubeconfigPath: string;
  /**
   * Created (or updated) as Node objects: capacity/allocatable nvidia.com/gpu, cpu, memory, pods;
   * Ready condition; label kubernetes.io/hostname and the given labels.
   */
  nodes: FakeNode[];
  /** Host dir: a PVC named C in namespace N is the folder <pvcRoot>/<N>/<C>. */
  pvcRoot: string;
  /** Host dir: a Hugging Face id "org/name" resolves to <hfRoot>/org/name. */
  hfRoot: string;
  /** Only pods whose containers this returns true for run a simulator; default: containers named 'vllm'. */
  isVllmContainer?: (c: V1Container) => boolean;
  /** Only pods in these namespaces are scheduled by this kubelet; default: every namespace. */
  namespaces?: string[];
  /**
   * Runs a non-vLLM container for real (e.g. the operator's fetch agent) on the pod's IP; undefined
   * keeps the default of reporting it running and ready without running anything. Init containers
   * come here too (ctx.init), one at a time and before the app containers: one whose `exited`
   * rejects failed (its message is the termination message) and runs again after a back-off.
   */
  runContainer?: (c: V1Container, ctx: ContainerContext) => Promise<RunningContainer | undefined>;
  /** Progress and problems; default: nothing, or stderr when KUBELET_LOGS is set. */
  log?: (line: string) => void;
  /** Every simulator's adapter load time (SimulatorOptions.adapterLoadMs); default 0. */
  adapterLoadMs?: number;
  /**
   * Multiplies every probe's periodSeconds and initialDelaySeconds (not timeoutSeconds); default 1.
   * Liveness probes then run exactly at that pace; startup and readiness probes are also capped at
   * 200 ms / 1 s. E.g. 0.1: a livenessProbe of periodSeconds 10, failureThreshold 6 restarts a
   * container 6 s after it turned unhealthy instead of 60 s.
   */
  probeTimeScale?: number;
  /** Where the kubelet and its simulators log what serves; default: sharedTimeline. */
  timeline?: Timeline;
}

/** What runContainer gets to know about the pod a container runs in. */
export interface ContainerContext {
  podKey: string;
  ip: string;
  /** The pod as the kubelet admitted it (its ServiceAccount, labels, the other containers). */
  pod: V1Pod;
  /** Host folder of a volume of the pod (emptyDir, PVC or Secret), by volume name. */
  volumeDir: (volumeName: string) => string | undefined;
  /** An init container: the pod's app containers wait until it has exited successfully. */
  init: boolean;
}

/**
 * Thrown by runContainer when the kubelet would refuse to create the container (e.g. runAsNonRoot with
 * a non-numeric image user): the container waits with reason CreateContainerConfigError and this
 * message, and the pod stays Pending.
 */
export class CreateContainerConfigError extends Error {}

export interface RunningContainer {
  stop(): Promise<void>;
  /** Init containers: settles when the container exits; a rejection is a failure (exit code 1). */
  exited?: Promise<void>;
}

export interface Kubelet {
  /** The log of Ready transitions, simulator starts and stops, adapter loads and losses. */
  readonly timeline: Timeline;
  /** The simulator of a running pod (by "namespace/name"), for fault injection and assertions. */
  simulator(podKey: string): VllmSimulator | undefined;
  /**
   * Restarts the vllm container of a pod like a crash: the simulator restarts (adapters lost),
   * restartCount+1, a new containerID, ContainersReady/Ready False until its readiness probe passes
   * again. The status (ready false) is written before the new simulator listens; resolves once it
   * listens. Faults set on the simulator stay (crashEngine does not).
   */
  restartContainer(namespace: string, name: string): Promise<void>;
  /** Podkeys currently running. */
  runningPods(): string[];
  /** Host folder of a volume (emptyDir or PVC) of a running pod; undefined for other volume types. */
  volumePath(podKey: string, volumeName: string): string | undefined;
  /** Stops the watch and every simulator (does not delete pods). */
  stop(): Promise<void>;
}

const RETRY_MS = 500;
/** The longest grace period a deleted pod's vLLM gets to finish its requests (tests stay bounded). */
const MAX_GRACE_S = 30;
const UNSCHEDULABLE_RESYNC_MS = 1000;
/** How long a restart waits for the not-ready status to be written before the new process listens anyway. */
const RESTART_STATUS_WAIT_MS = 5000;

/** How a killed container ended, as lastState.terminated shows it. */
type Exit = { exitCode: number; reason: string };

/**
 * A running container killed (a failed liveness probe, a crash): not ready while `stop` runs, then,
 * unless the restart went stale meanwhile (false), its last run kept as lastState.terminated and one
 * restart more. Starting it again is the caller's.
 */
async function killed(
  run: ContainerRun,
  exit: Exit,
  stop: () => Promise<void>,
  stale: () => boolean,
): Promise<boolean> {
  const previous = { id: run.containerID, startedAt: run.startedAt ?? rfc3339() };
  run.ready = false;
  await stop();
  if (stale()) return false;
  run.lastTerminated = {
    ...exit,
    startedAt: previous.startedAt,
    finishedAt: rfc3339(),
    ...(previous.id === undefined ? {} : { containerID: previous.id }),
  };
  run.restartCount += 1;
  return true;
}

export async function startKubelet(opts: KubeletOptions): Promise<Kubelet> {
  const kubelet = new TestKubelet(opts);
  try {
    await kubelet.start();
  } catch (err) {
    await kubelet.stop();
    throw err;
  }
  return kubelet;
}

// ---------------------------------------------------------------------------------------------------------

interface ContainerRuntime {
  spec: V1Container;
  run: ContainerRun;
  vllm: boolean;
  sim: VllmSimulator | undefined;
  /** A non-vLLM container that runContainer started (e.g. our fetch agent). */
  other: RunningContainer | undefined;
  /** Bumped on every (re)start and on teardown: probe loops and retries of an older epoch stop. */
  epoch: number;
  backoffMs: number;
  /** The back-off of restarts after a kill (a failed liveness probe); unset until the first. */
  killBackoff: RestartBackoff | undefined;
  /** performance.now() when the current run started (for a liveness probe's initial delay). */
  startedPerf: number;
}

interface PodState {
  key: string;
  namespace: string;
  name: string;
  uid: string;
  run: PodRun;
  containers: ContainerRuntime[];
  /** Host folder of the pod's emptyDir volumes. */
  tmpDir: string;
  /** Host folder per emptyDir or PVC volume. */
  volumeDirs: Map<string, string>;
  stopping: boolean;
  /** The init container running now, if runContainer runs it. */
  initRunning: RunningContainer | undefined;
  /** Aborted on teardown: cuts short the sleeps of probe loops and restart back-offs. */
  abort: AbortController;
  tasks: Set<Promise<void>>;
  /** The Ready value last logged to the timeline. */
  loggedReady: boolean | undefined;
}

class TestKubelet implements Kubelet {
  readonly timeline: Timeline;
  readonly #opts: KubeletOptions;
  readonly #log: (line: string) => void;
  readonly #isVllm: (c: V1Container) => boolean;
  readonly #nodeNames: Set<string>;
  readonly #kc = new KubeConfig();
  readonly #core: CoreV1Api;
  readonly #events: PodEventRecorder;
  readonly #pods: Informer<V1Pod>;
  readonly #nodes: Informer<V1Node>;
  readonly #states = new Map<string, PodState>();
  #streaming: StreamingServer | undefined;
  readonly #podQueue: KeyedSerial;
  readonly #schedQueue: KeyedSerial;
  readonly #scheduler: Scheduler;
  /** Pods already finalized with a DELETE, by uid. */
  readonly #deleted = new Set<string>();
  readonly #digests = new Map<string, string>();
  #resync: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(opts: KubeletOptions) {
    this.#opts = opts;
    this.timeline = opts.timeline ?? sharedTimeline;
    const envLog = process.env['KUBELET_LOGS']
      ? (line: string) => process.stderr.write(`[kubelet] ${line}\n`)
      : () => undefined;
    this.#log = opts.log ?? envLog;
    this.#isVllm = opts.isVllmContainer ?? ((c) => c.name === 'vllm');
    this.#nodeNames = new Set(opts.nodes.map((n) => n.name));
    this.#kc.loadFromFile(opts.kubeconfigPath);
    this.#core = this.#kc.makeApiClient(CoreV1Api);
    this.#events = new PodEventRecorder(this.#core, this.#log, opts.probeTimeScale ?? 1);
    const log = this.#log;
    const logger = createLogger({
      level: 'warn',
      stream: new Writable({
        write(chunk: Buffer, _enc, done) {
          log(`informer: ${chunk.toString().trim()}`);
          done();
        },
      }),
    });
    const backoff = { initialMs: 200, maxMs: 5000 };
    this.#pods = new Informer<V1Pod>({
      kc: this.#kc,
      path: '/api/v1/pods',
      list: () => this.#core.listPodForAllNamespaces(),
      logger,
      backoff,
      apiVersion: 'v1',
      kind: 'Pod',
    });
    this.#nodes = new Informer<V1Node>({
      kc: this.#kc,
      path: '/api/v1/nodes',
      list: () => this.#core.listNode(),
      logger,
      backoff,
      apiVersion: 'v1',
      kind: 'Node',
    });
    this.#podQueue = new KeyedSerial(
      (key) => this.#syncPod(key),
      (key, err) => {
        this.#retry(`sync ${key}`, err, () => void this.#podQueue.enqueue(key));
      },
    );
    this.#scheduler = new Scheduler({
      core: this.#core,
      pods: this.#pods,
      nodes: this.#nodes,
      nodeNames: this.#nodeNames,
      namespaces: opts.namespaces ? new Set(opts.namespaces) : undefined,
      log: this.#log,
    });
    this.#schedQueue = new KeyedSerial(
      () => this.#scheduler.scheduleAll(),
      (_key, err) => {
        this.#retry('scheduling', err, () => void this.#schedQueue.enqueue('all'));
      },
    );
  }

  async start(): Promise<void> {
    this.#streaming = await startStreamingServer({
      podIp: (namespace, name) => {
        const state = this.#states.get(`${namespace}/${name}`);
        return state === undefined || state.stopping ? undefined : state.run.ip;
      },
      log: this.#log,
    });
    for (const n of this.#opts.nodes) await registerNode(this.#core, n, this.#streaming.port);
    const onPod = (pod: V1Pod): void => {
      void this.#podQueue.enqueue(objectKey(pod));
      void this.#schedQueue.enqueue('all');
    };
    this.#pods.on('add', onPod);
    this.#pods.on('update', onPod);
    this.#pods.on('delete', onPod);
    const onNode = (): void => void this.#schedQueue.enqueue('all');
    this.#nodes.on('add', onNode);
    this.#nodes.on('update', onNode);
    this.#nodes.on('delete', onNode);
    await Promise.all([this.#nodes.start(), this.#pods.start()]);
    // The scheduler retries unschedulable pods on cluster events and on a timer; the timer covers
    // what no watch here sees (a PVC created later).
    this.#resync = setInterval(() => {
      if (this.#scheduler.pendingPods().length > 0) void this.#schedQueue.enqueue('all');
    }, UNSCHEDULABLE_RESYNC_MS);
    this.#resync.unref();
    void this.#schedQueue.enqueue('all');
    this.#log(`started with nodes ${[...this.#nodeNames].join(', ')}`);
  }

  // ---- public API ---------------------------------------------------------------------------------

  simulator(podKey: string): VllmSimulator | undefined {
    const state = this.#states.get(podKey);
    if (!state || state.stopping) return undefined;
    return state.containers.find((c) => c.vllm && c.sim)?.sim;
  }

  runningPods(): string[] {
    return [...this.#states.values()]
      .filter((s) => !s.stopping)
      .map((s) => s.key)
      .sort();
  }

  volumePath(podKey: string, volumeName: string): string | undefined {
    const state = this.#states.get(podKey);
    return state?.stopping === false ? state.volumeDirs.get(volumeName) : undefined;
  }

  async restartContainer(namespace: string, name: string): Promise<void> {
    const key = `${namespace}/${name}`;
    const state = this.#states.get(key);
    if (!state || state.stopping) throw new Error(`test kubelet: pod ${key} is not running here`);
    const cr = state.containers.find((c) => c.vllm);
    if (!cr) throw new Error(`test kubelet: pod ${key} has no vllm container`);
    if (cr.run.phase !== 'running' || !cr.sim) {
      throw new Error(`test kubelet: the ${cr.spec.name} container of ${key} is not running`);
    }
    const restart = this.#killAndRestart(state, cr, cr.sim, { exitCode: 1, reason: 'Error' });
    this.#track(state, restart);
    await restart;
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.#resync) clearInterval(this.#resync);
    this.#podQueue.stopped = true;
    this.#schedQueue.stopped = true;
    this.#scheduler.stopped = true;
    this.#pods.stop();
    this.#nodes.stop();
    await Promise.all([...this.#states.values()].map((s) => this.#teardown(s)));
    await this.#streaming?.close();
    this.#log('stopped');
  }

  // ---- nodes --------------------------------------------------------------------------------------

  // ---- pods ---------------------------------------------------------------------------------------

  async #syncPod(key: string): Promise<void> {
    if (this.#stopped) return;
    const pod = this.#pods.get(key);
    let state = this.#states.get(key);
    if (state && pod?.metadata?.uid !== state.uid) {
      await this.#teardown(state);
      state = undefined;
    }
    if (!pod) return;
    const nodeName = pod.spec?.nodeName;
    if (!nodeName || !this.#nodeNames.has(nodeName)) return;
    if (pod.metadata?.deletionTimestamp) {
      // A graceful delete: vLLM finishes the requests in flight within the grace period.
      const graceMs = Math.min(pod.metadata.deletionGracePeriodSeconds ?? 30, MAX_GRACE_S) * 1000;
      if (state && !state.stopping) await this.#preStop(pod, graceMs);
      if (state) await this.#teardown(state, graceMs);
      await this.#finalizeDelete(pod);
      return;
    }
    if (isTerminal(pod)) {
      if (state) await this.#teardown(state);
      return;
    }
    if (state) {
      await this.#writeStatus(pod, state);
      return;
    }
    // The first status (Pending, init containers completed, app containers creating) goes out before
    // any app container starts.
    // Like the kubelet's volume manager: a pod whose Secret is missing waits in ContainerCreating
    // (FailedMount) until it appears, rather than starting without its credentials.
    const secrets = await this.#readSecrets(pod);
    if (secrets === undefined) {
      this.#retry(`mount volumes of ${key}`, new Error('a Secret it mounts does not exist'), () => {
        void this.#podQueue.enqueue(key);
      });
      return;
    }
    const admitted = this.#admit(pod);
    for (const [volume, files] of secrets) {
      const dir = join(admitted.tmpDir, volume);
      mkdirSync(dir, { recursive: true });
      for (const [file, data] of Object.entries(files)) writeFileSync(join(dir, file), data);
      admitted.volumeDirs.set(volume, dir);
    }
    try {
      await this.#writeStatus(pod, admitted);
    } finally {
      this.#track(admitted, this.#initThenStart(admitted, pod));
    }
  }

  /** Runs the init containers in order (each until it succeeds), then starts the app containers. */
  async #initThenStart(state: PodState, pod: V1Pod): Promise<void> {
    const specs = pod.spec?.initContainers ?? [];
    const gone = (): boolean => state.stopping || this.#stopped;
    for (const [i, spec] of specs.entries()) {
      const run = state.run.init[i];
      let backoffMs = BACKOFF_INITIAL_MS;
      while (run !== undefined && run.phase !== 'completed') {
        if (gone()) return;
        if (run.phase === 'backoff') {
          await sleep(backoffMs, undefined, { ref: false, signal: state.abort.signal });
          backoffMs = Math.min(backoffMs * 2, BACKOFF_MAX_MS);
          if (gone()) return;
          run.restartCount += 1;
        }
        await this.#runInit(state, pod, spec, run, backoffMs);
      }
    }
    for (const cr of state.containers) this.#track(state, this.#startContainer(state, cr, pod));
  }

  async #runInit(
    state: PodState,
    pod: V1Pod,
    spec: V1Container,
    run: InitRun,
    backoffMs: number,
  ): Promise<void> {
    run.phase = 'running';
    run.containerID = newContainerID();
    run.startedAt = rfc3339();
    void this.#podQueue.enqueue(state.key);
    try {
      const handle = await this.#opts.runContainer?.(spec, {
        podKey: state.key,
        ip: state.run.ip,
        pod,
        volumeDir: (volume) => state.volumeDirs.get(volume),
        init: true,
      });
      if (handle !== undefined) {
        state.initRunning = handle;
        try {
          await handle.exited;
        } finally {
          state.initRunning = undefined;
          await handle.stop();
        }
      }
      run.phase = 'completed';
      run.finishedAt = rfc3339();
      this.#log(`init container ${spec.name} of ${state.key} completed`);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      run.lastTerminated = {
        exitCode: 1,
        reason: 'Error',
        message,
        startedAt: run.startedAt,
        finishedAt: rfc3339(),
        containerID: run.containerID,
      };
      run.phase = 'backoff';
      run.backoffMessage = backoffMessage(backoffMs, spec.name, state);
      this.#log(`init container ${spec.name} of ${state.key} failed: ${message}`);
    }
    void this.#podQueue.enqueue(state.key);
  }

  /**
   * The data of every Secret the pod mounts, by volume name; undefined when a non-optional one does
   * not exist (yet).
   */
  async #readSecrets(pod: V1Pod): Promise<Map<string, Record<string, Buffer>> | undefined> {
    const out = new Map<string, Record<string, Buffer>>();
    for (const v of pod.spec?.volumes ?? []) {
      const name = v.secret?.secretName;
      if (!v.secret || !name) continue;
      try {
        const secret = await this.#core.readNamespacedSecret({
          name,
          namespace: pod.metadata?.namespace ?? '',
        });
        const data = Object.entries(secret.data ?? {}).map(
          ([k, b64]) => [k, Buffer.from(b64, 'base64')] as const,
        );
        out.set(v.name, Object.fromEntries(data));
      } catch (err) {
        if (!isNotFound(err)) throw err;
        if (v.secret.optional === true) continue;
        return undefined;
      }
    }
    return out;
  }

  /** Accepts a pod bound to one of our nodes: sandbox (IP, volumes), init containers, then the app containers. */
  #admit(pod: V1Pod): PodState {
    const key = objectKey(pod);
    const namespace = pod.metadata?.namespace ?? '';
    const name = pod.metadata?.name ?? '';
    const now = rfc3339();
    const previousIp = pod.status?.podIP;
    const ip = previousIp && podIps.claim(previousIp) ? previousIp : podIps.allocate();
    const previous = new Map((pod.status?.containerStatuses ?? []).map((s) => [s.name, s]));
    const containers: ContainerRuntime[] = (pod.spec?.containers ?? []).map((spec) => {
      const run: ContainerRun = {
        name: spec.name,
        image: spec.image ?? '',
        phase: 'creating',
        restartCount: 0,
        started: false,
        ready: false,
      };
      // Already ran under an earlier kubelet: to this one it is a container lost with the node.
      const prev = previous.get(spec.name);
      if (prev?.containerID) {
        run.restartCount = prev.restartCount + 1;
        run.lastTerminated = {
          exitCode: 255,
          reason: 'Unknown',
          startedAt: timeString(prev.state?.running?.startedAt) ?? now,
          finishedAt: now,
          containerID: prev.containerID,
        };
      }
      return {
        spec,
        run,
        vllm: this.#isVllm(spec),
        sim: undefined,
        other: undefined,
        epoch: 0,
        backoffMs: BACKOFF_INITIAL_MS,
        killBackoff: undefined,
        startedPerf: 0,
      };
    });
    const tmpDir = mkdtempSync(join(tmpdir(), `stacked-kubelet-${name.slice(0, 40)}-`));
    const volumeDirs = new Map<string, string>();
    for (const v of pod.spec?.volumes ?? []) {
      if (v.emptyDir) {
        volumeDirs.set(v.name, join(tmpDir, v.name));
        mkdirSync(join(tmpDir, v.name), { recursive: true });
      }
      const claim = v.persistentVolumeClaim?.claimName;
      if (claim) volumeDirs.set(v.name, join(this.#opts.pvcRoot, namespace, claim));
    }
    const state: PodState = {
      key,
      namespace,
      name,
      uid: pod.metadata?.uid ?? '',
      run: {
        uid: pod.metadata?.uid ?? '',
        ip,
        startTime: timeString(pod.status?.startTime) ?? now,
        // Without a hook nothing runs them: they completed as the pod started.
        init: (pod.spec?.initContainers ?? []).map((c) =>
          this.#opts.runContainer === undefined
            ? {
                name: c.name,
                image: c.image ?? '',
                phase: 'completed',
                restartCount: 0,
                containerID: newContainerID(),
                startedAt: now,
                finishedAt: now,
              }
            : { name: c.name, image: c.image ?? '', phase: 'waiting', restartCount: 0 },
        ),
        containers: containers.map((c) => c.run),
        written: new Map(),
      },
      containers,
      tmpDir,
      volumeDirs,
      stopping: false,
      initRunning: undefined,
      abort: new AbortController(),
      tasks: new Set(),
      loggedReady: undefined,
    };
    this.#states.set(key, state);
    this.#log(`admitted ${key} on ${pod.spec?.nodeName ?? ''} with IP ${ip}`);
    return state;
  }

  async #startContainer(state: PodState, cr: ContainerRuntime, pod: V1Pod): Promise<void> {
    if (state.stopping || this.#stopped) return;
    const epoch = ++cr.epoch;
    if (!cr.vllm) {
      const run = this.#opts.runContainer;
      if (run) {
        try {
          cr.other = await run(cr.spec, {
            podKey: state.key,
            ip: state.run.ip,
            pod,
            volumeDir: (volume) => state.volumeDirs.get(volume),
            init: false,
          });
        } catch (err) {
          if (!(err instanceof CreateContainerConfigError)) throw err;
          // Like the kubelet: the container is never created, the pod stays Pending with the reason.
          // Not retried: what the refusal depends on (securityContext, the image) does not change
          // without a new pod here.
          cr.run.phase = 'configError';
          cr.run.configMessage = err.message;
          this.#log(`${cr.spec.name} of ${state.key}: CreateContainerConfigError: ${err.message}`);
          void this.#podQueue.enqueue(state.key);
          return;
        }
        const stale = (): boolean => cr.epoch !== epoch || state.stopping;
        if (stale()) {
          await cr.other?.stop();
          cr.other = undefined;
          return;
        }
      }
      cr.run.phase = 'running';
      cr.run.containerID = newContainerID();
      cr.run.startedAt = rfc3339();
      cr.run.started = true;
      // A container that really runs (e.g. our router) is Ready by its readiness probe, as on a
      // node; one that runs nothing is reported ready at once.
      const readiness =
        cr.other === undefined
          ? undefined
          : probeTarget(cr.spec.readinessProbe, cr.spec, state.run.ip, {
              timeScale: this.#opts.probeTimeScale ?? 1,
            });
      cr.run.ready = readiness === undefined;
      cr.startedPerf = performance.now();
      void this.#podQueue.enqueue(state.key);
      if (readiness !== undefined) {
        const alive = (): boolean => !this.#stopped && !state.stopping && cr.epoch === epoch;
        const changed = (): void => void this.#podQueue.enqueue(state.key);
        this.#track(state, this.#readinessLoop(readiness, cr, state.abort.signal, alive, changed));
      }
      const liveness =
        cr.other === undefined
          ? undefined
          : probeTarget(cr.spec.livenessProbe, cr.spec, state.run.ip, {
              timeScale: this.#opts.probeTimeScale ?? 1,
              cap: false,
            });
      if (liveness !== undefined) this.#track(state, this.#livenessLoop(state, cr, epoch, liveness));
      return;
    }
    const env = containerEnv(cr.spec);
    const args = vllmArgs(cr.spec, env);
    const sim = new VllmSimulator({
      args,
      env,
      resolvePath: makeResolvePath(pod, cr.spec, {
        pvcRoot: this.#opts.pvcRoot,
        hfRoot: this.#opts.hfRoot,
        emptyDir: (volume) => join(state.tmpDir, volume),
      }),
      host: state.run.ip,
      port: listenPort(cr.spec, args),
      adapterLoadMs: this.#opts.adapterLoadMs ?? 0,
      timeline: this.timeline,
      timelineKey: state.key,
    });
    const stale = (): boolean => cr.epoch !== epoch || state.stopping;
    const startedAt = rfc3339();
    try {
      await sim.start();
    } catch (err) {
      await sim.stop().catch(() => undefined);
      if (stale()) return;
      this.#crashed(state, cr, err, newContainerID(), startedAt);
      void this.#podQueue.enqueue(state.key);
      return;
    }
    if (stale()) {
      await sim.stop();
      return;
    }
    cr.sim = sim;
    cr.backoffMs = BACKOFF_INITIAL_MS;
    cr.startedPerf = performance.now();
    cr.run.phase = 'running';
    cr.run.containerID = newContainerID();
    cr.run.startedAt = startedAt;
    cr.run.started = cr.spec.startupProbe === undefined;
    cr.run.ready = false;
    this.#log(`started ${cr.spec.name} of ${state.key} at ${sim.url}`);
    void this.#podQueue.enqueue(state.key);
    this.#track(state, this.#probeLoop(state, cr, epoch));
  }

  /** A start that failed: CrashLoopBackOff, then another start after the back-off. */
  #crashed(
    state: PodState,
    cr: ContainerRuntime,
    err: unknown,
    containerID?: string,
    startedAt?: string,
  ): void {
    const message = err instanceof Error ? err.message : String(err);
    const delayMs = cr.backoffMs;
    cr.backoffMs = Math.min(cr.backoffMs * 2, BACKOFF_MAX_MS);
    const now = rfc3339();
    cr.sim = undefined;
    cr.run.phase = 'backoff';
    cr.run.ready = false;
    cr.run.started = false;
    cr.run.lastTerminated = {
      exitCode: 1,
      reason: 'Error',
      message,
      startedAt: startedAt ?? now,
      finishedAt: now,
      ...(containerID === undefined ? {} : { containerID }),
    };
    cr.run.backoffMessage = backoffMessage(delayMs, cr.spec.name, state);
    this.#log(`${cr.spec.name} of ${state.key} failed to start: ${message}`);
    this.#backOffEvent(state, cr);
    const epoch = ++cr.epoch;
    this.#track(
      state,
      (async () => {
        await sleep(delayMs, undefined, { ref: false, signal: state.abort.signal });
        if (cr.epoch !== epoch || state.stopping || this.#stopped) return;
        cr.run.restartCount += 1;
        const pod = this.#pods.get(state.key);
        if (pod) await this.#startContainer(state, cr, pod);
      })(),
    );
  }

  async #probeLoop(state: PodState, cr: ContainerRuntime, epoch: number): Promise<void> {
    const alive = (): boolean => !this.#stopped && !state.stopping && cr.epoch === epoch;
    const changed = (): void => void this.#podQueue.enqueue(state.key);
    const timeScale = this.#opts.probeTimeScale ?? 1;
    const startup = probeTarget(cr.spec.startupProbe, cr.spec, state.run.ip, { timeScale });
    const readiness = probeTarget(cr.spec.readinessProbe, cr.spec, state.run.ip, { timeScale });
    const liveness = probeTarget(cr.spec.livenessProbe, cr.spec, state.run.ip, { timeScale, cap: false });
    if (!cr.run.started) {
      if (startup && !(await this.#startupPassed(state, cr, startup, alive))) return;
      if (!alive()) return;
      cr.run.started = true;
      changed();
    }
    // Like the kubelet's prober workers: liveness runs beside readiness, once the container started.
    if (liveness) this.#track(state, this.#livenessLoop(state, cr, epoch, liveness));
    if (!readiness) {
      if (alive() && !cr.run.ready) {
        cr.run.ready = true;
        changed();
      }
      return;
    }
    await this.#readinessLoop(readiness, cr, state.abort.signal, alive, changed);
  }

  /**
   * Probes startup until it passes (true). It is probed at the capped pace, so a pod starts quickly,
   * but given up on, as the kubelet does after failureThreshold failures, only once the time those
   * take as written (scaled, not capped) has passed: then the container is killed and restarted,
   * and this returns false.
   */
  async #startupPassed(
    state: PodState,
    cr: ContainerRuntime,
    startup: ProbeTarget,
    alive: () => boolean,
  ): Promise<boolean> {
    const signal = state.abort.signal;
    const written = probeTarget(cr.spec.startupProbe, cr.spec, state.run.ip, {
      timeScale: this.#opts.probeTimeScale ?? 1,
      cap: false,
    });
    const giveUpAt =
      cr.startedPerf +
      (written ? written.initialDelayMs + written.failureThreshold * written.periodMs : Infinity);
    await sleep(startup.initialDelayMs, undefined, { ref: false, signal });
    while (alive()) {
      if ((await probeOnce(startup)).ok) return true;
      if (!alive()) return false;
      if (performance.now() >= giveUpAt && cr.run.phase === 'running') {
        await this.#killForFailedProbe(state, cr, 'startup');
        return false;
      }
      await sleep(startup.periodMs, undefined, { ref: false, signal });
    }
    return false;
  }

  /** Probes liveness; after failureThreshold consecutive failures, kills and restarts the container. */
  async #livenessLoop(
    state: PodState,
    cr: ContainerRuntime,
    epoch: number,
    probe: ProbeTarget,
  ): Promise<void> {
    const alive = (): boolean => !this.#stopped && !state.stopping && cr.epoch === epoch;
    const signal = state.abort.signal;
    // initialDelaySeconds counts from the container's start, not from the startup probe's success.
    const wait = probe.initialDelayMs - (performance.now() - cr.startedPerf);
    if (wait > 0) await sleep(wait, undefined, { ref: false, signal });
    let failures = 0;
    while (alive()) {
      const { ok, output } = await probeOnce(probe);
      if (!ok && alive()) this.#event(state, cr, 'Warning', 'Unhealthy', `Liveness probe failed: ${output}`);
      if (!alive()) return;
      failures = ok ? 0 : failures + 1;
      if (failures >= probe.failureThreshold) {
        if (cr.run.phase === 'running') await this.#killForFailedProbe(state, cr, 'liveness');
        return;
      }
      await sleep(probe.periodMs, undefined, { ref: false, signal });
    }
  }

  /** The kubelet's answer to a failed liveness or startup probe: a Killing Event, then a restart. */
  async #killForFailedProbe(
    state: PodState,
    cr: ContainerRuntime,
    probe: 'liveness' | 'startup',
  ): Promise<void> {
    this.#log(`${cr.spec.name} of ${state.key} failed its ${probe} probe, restarting it`);
    const message = `Container ${cr.spec.name} failed ${probe} probe, will be restarted`;
    this.#event(state, cr, 'Normal', 'Killing', message);
    const exit: Exit = { exitCode: 137, reason: 'Error' };
    if (cr.sim) await this.#killAndRestart(state, cr, cr.sim, exit);
    else if (cr.other) await this.#restartOther(state, cr, exit);
  }

  /**
   * Kills the running vllm container and starts it again, as the kubelet does after a crash or a
   * failed liveness probe: the simulator stops (adapters lost), restartCount + 1, a new containerID,
   * not ready; that status is written, then the same simulator starts again, empty, and is probed.
   */
  async #killAndRestart(
    state: PodState,
    cr: ContainerRuntime,
    sim: VllmSimulator,
    exit: Exit,
  ): Promise<void> {
    const epoch = ++cr.epoch;
    const stale = (): boolean => cr.epoch !== epoch || state.stopping || this.#stopped;
    if (!(await killed(cr.run, exit, () => sim.stop(), stale))) return;
    if (!(await this.#restartBackoff(state, cr, stale))) return;
    cr.run.phase = 'running';
    cr.run.containerID = newContainerID();
    cr.run.startedAt = rfc3339();
    cr.run.started = cr.spec.startupProbe === undefined;
    this.#log(`restarted ${cr.spec.name} of ${state.key} (restartCount ${cr.run.restartCount})`);
    await this.#notReadyWritten(state);
    if (stale()) return;
    try {
      await sim.start();
    } catch (err) {
      await sim.stop().catch(() => undefined);
      if (stale()) return;
      this.#crashed(state, cr, err, cr.run.containerID, cr.run.startedAt);
      void this.#podQueue.enqueue(state.key);
      return;
    }
    if (stale()) {
      await sim.stop();
      return;
    }
    cr.startedPerf = performance.now();
    void this.#podQueue.enqueue(state.key);
    this.#track(state, this.#probeLoop(state, cr, epoch));
  }

  /**
   * #killAndRestart for a container that runContainer runs (the router, the fetch agent, the
   * operator's own pods): it is stopped, its not-ready status written, and it is started again
   * through the hook, with a new containerID, as the kubelet restarts any container.
   */
  async #restartOther(state: PodState, cr: ContainerRuntime, exit: Exit): Promise<void> {
    const epoch = ++cr.epoch;
    const stale = (): boolean => cr.epoch !== epoch || state.stopping || this.#stopped;
    const running = cr.other;
    cr.other = undefined;
    if (!(await killed(cr.run, exit, async () => running?.stop(), stale))) return;
    if (!(await this.#restartBackoff(state, cr, stale))) return;
    this.#log(`restarting ${cr.spec.name} of ${state.key} (restartCount ${cr.run.restartCount})`);
    await this.#notReadyWritten(state);
    if (stale()) return;
    const pod = this.#pods.get(state.key);
    if (pod) await this.#startContainer(state, cr, pod);
  }

  /**
   * The wait before a killed container starts again (restartDelay): none the first time; else it
   * waits in CrashLoopBackOff, that status written first. False if the restart went stale meanwhile.
   */
  async #restartBackoff(state: PodState, cr: ContainerRuntime, stale: () => boolean): Promise<boolean> {
    const { delayMs, next } = restartDelay(cr.killBackoff, performance.now());
    cr.killBackoff = next;
    if (delayMs === 0) return true;
    cr.run.phase = 'backoff';
    cr.run.started = false;
    cr.run.backoffMessage = backoffMessage(delayMs, cr.spec.name, state);
    this.#log(`${cr.spec.name} of ${state.key} waits ${delayMs} ms in CrashLoopBackOff`);
    this.#backOffEvent(state, cr);
    await this.#notReadyWritten(state);
    await sleep(delayMs, undefined, { ref: false, signal: state.abort.signal }).catch(() => undefined);
    return !stale();
  }

  #backOffEvent(state: PodState, cr: ContainerRuntime): void {
    const message = `Back-off restarting failed container ${cr.spec.name} in pod ${podRef(state)}`;
    this.#event(state, cr, 'Warning', 'BackOff', message);
  }

  #event(state: PodState, cr: ContainerRuntime, type: EventType, reason: string, message: string): void {
    const subject = {
      namespace: state.namespace,
      name: state.name,
      uid: state.uid,
      nodeName: this.#pods.get(state.key)?.spec?.nodeName ?? '',
      container: cr.spec.name,
    };
    this.#events.record(subject, type, reason, message);
  }

  /**
   * Syncs the pod until its not-ready status is written (bounded, and cut short by teardown, which a
   * sync may itself be waiting for).
   */
  async #notReadyWritten(state: PodState): Promise<void> {
    const deadline = performance.now() + RESTART_STATUS_WAIT_MS;
    const signal = state.abort.signal;
    let onAbort = (): void => undefined;
    const aborted = new Promise<void>((resolve) => {
      onAbort = resolve;
      if (signal.aborted) resolve();
    });
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      for (;;) {
        await Promise.race([this.#podQueue.enqueue(state.key), aborted]);
        if (state.loggedReady !== true || state.stopping || this.#stopped) return;
        if (performance.now() > deadline) {
          this.#log(`${state.key}: not-ready status not written yet, starting the container anyway`);
          return;
        }
        await sleep(RETRY_MS, undefined, { ref: false, signal }).catch(() => undefined);
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }

  async #readinessLoop(
    probe: ProbeTarget,
    cr: ContainerRuntime,
    signal: AbortSignal,
    alive: () => boolean,
    changed: () => void,
  ): Promise<void> {
    await sleep(probe.initialDelayMs, undefined, { ref: false, signal });
    let successes = 0;
    let failures = 0;
    while (alive()) {
      const { ok } = await probeOnce(probe);
      if (!alive()) return;
      if (ok) {
        successes += 1;
        failures = 0;
        if (!cr.run.ready && successes >= probe.successThreshold) {
          cr.run.ready = true;
          changed();
        }
      } else {
        failures += 1;
        successes = 0;
        if (cr.run.ready && failures >= probe.failureThreshold) {
          cr.run.ready = false;
          changed();
        }
      }
      await sleep(probe.periodMs, undefined, { ref: false, signal });
    }
  }

  async #writeStatus(pod: V1Pod, state: PodState): Promise<void> {
    const desired = desiredStatus(pod, state.run, rfc3339(), (image) => this.#digest(image));
    const ready = desired.conditions.some((c) => c.type === 'Ready' && c.status === 'True');
    // A cache that has not caught up with our last write may look like `desired` when the server
    // does not (Ready written False, now True again): then write all the same.
    const lastWritten = state.run.written.get('Ready')?.status;
    const cacheStale = lastWritten !== undefined && lastWritten !== (ready ? 'True' : 'False');
    if (!cacheStale && statusMatches(pod, desired)) {
      this.#logReady(pod, state, ready);
      return;
    }
    try {
      await this.#core.patchNamespacedPodStatus(
        {
          name: state.name,
          namespace: state.namespace,
          body: statusPatch(desired),
          fieldManager: FIELD_MANAGER,
        },
        setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
      );
    } catch (err) {
      if (apiErrorCode(err) === 404) return;
      throw err;
    }
    for (const c of desired.conditions) {
      state.run.written.set(c.type, { status: c.status, time: c.lastTransitionTime });
    }
    this.#logReady(pod, state, ready);
  }

  /** Logs a Ready value the server now holds, if it is new to the timeline. */
  #logReady(pod: V1Pod, state: PodState, ready: boolean): void {
    if (state.loggedReady === ready || state.stopping) return;
    state.loggedReady = ready;
    this.timeline.append({
      kind: 'pod-ready',
      pod: state.key,
      ready,
      labels: { ...(pod.metadata?.labels ?? {}) },
    });
  }

  /** The kubelet's last word on a terminating pod: DELETE with grace 0, for this uid only. */
  async #finalizeDelete(pod: V1Pod): Promise<void> {
    const uid = pod.metadata?.uid ?? '';
    if (this.#deleted.has(uid)) return;
    const name = pod.metadata?.name ?? '';
    const namespace = pod.metadata?.namespace ?? '';
    try {
      await this.#core.deleteNamespacedPod({
        name,
        namespace,
        gracePeriodSeconds: 0,
        body: model(V1DeleteOptions, { gracePeriodSeconds: 0, preconditions: { uid } }),
      });
    } catch (err) {
      const code = apiErrorCode(err);
      // Gone already, or the name now belongs to a new pod (uid precondition failed).
      if (code !== 404 && code !== 409) throw err;
    }
    this.#deleted.add(uid);
    this.#log(`deleted ${namespace}/${name}`);
  }

  /** Stops a pod's containers and gives back its IP and folders. */
  /**
   * The vLLM container's preStop sleep (scaled by probeTimeScale, like the probes), during which
   * the pod keeps serving; bounded by the grace period, as the kubelet bounds it.
   */
  async #preStop(pod: V1Pod, graceMs: number): Promise<void> {
    const seconds = Math.max(
      0,
      ...(pod.spec?.containers ?? []).map((c) => c.lifecycle?.preStop?.sleep?.seconds ?? 0),
    );
    const ms = Math.min(seconds * 1000 * (this.#opts.probeTimeScale ?? 1), graceMs);
    if (ms > 0) await sleep(ms, undefined, { ref: false });
  }

  /** Stops the pod's containers: at once, or (graceMs > 0) letting vLLM finish its requests first. */
  async #teardown(state: PodState, graceMs = 0): Promise<void> {
    if (!state.stopping) {
      state.stopping = true;
      this.timeline.append({ kind: 'pod-gone', pod: state.key });
      this.#events.forget(state.uid);
      state.abort.abort();
      for (const cr of state.containers) cr.epoch += 1;
      // A running init container is stopped so that its task (tracked below) can end.
      await state.initRunning?.stop().catch(() => undefined);
    }
    // Starts in flight finish first (and see `stopping`), so no simulator outlives its pod.
    while (state.tasks.size > 0) await Promise.allSettled([...state.tasks]);
    await Promise.all(
      state.containers.map(async (cr) => {
        const sim = cr.sim;
        const other = cr.other;
        cr.sim = undefined;
        cr.other = undefined;
        const failed = (err: unknown) => {
          this.#log(`stopping ${cr.spec.name} of ${state.key}: ${String(err)}`);
        };
        await (graceMs > 0 ? sim?.shutdown(graceMs) : sim?.stop())?.catch(failed);
        await other?.stop().catch(failed);
      }),
    );
    if (this.#states.get(state.key) === state) {
      this.#states.delete(state.key);
      podIps.release(state.run.ip);
      await rm(state.tmpDir, { recursive: true, force: true });
      this.#log(`stopped ${state.key}, released ${state.run.ip}`);
    }
  }

  // ---- helpers ------------------------------------------------------------------------------------

  #track(state: PodState, p: Promise<void>): void {
    const tracked = p.catch((err: unknown) => {
      // Aborted sleeps of a pod being torn down are expected.
      if (!state.stopping) this.#log(`${state.key}: ${String(err)}`);
    });
    state.tasks.add(tracked);
    void tracked.finally(() => state.tasks.delete(tracked));
  }

  #retry(what: string, err: unknown, again: () => void): void {
    if (this.#stopped) return;
    this.#log(`${what} failed, retrying: ${JSON.stringify(errorMeta(err))}`);
    setTimeout(() => {
      if (!this.#stopped) again();
    }, RETRY_MS).unref();
  }

  #digest(image: string): string {
    let d = this.#digests.get(image);
    if (d === undefined) {
      d = createHash('sha256').update(image).digest('hex');
      this.#digests.set(image, d);
    }
    return d;
  }
}

function newContainerID(): string {
  return `containerd://${randomBytes(32).toString('hex')}`;
}
