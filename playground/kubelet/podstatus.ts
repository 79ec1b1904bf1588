// The pod status a kubelet reports, as pure functions of what runs (PodRun) and the pod as last seen:
// the kubelet's own conditions (with its ContainersReady / Ready rules, readiness gates included),
// container statuses, IPs and phase; whether that differs from what the server has; and the strategic
// merge patch that writes it without touching anyone else's conditions.
import type { V1Pod, V1PodCondition, V1PodStatus } from '@kubernetes/client-node';

export const HOST_IP = '127.0.0.1';

/** Condition types the kubelet owns; every other type (readiness gates) belongs to someone else. */
export const KUBELET_CONDITIONS = [
  'PodReadyToStartContainers',
  'Initialized',
  'Ready',
  'ContainersReady',
  'PodScheduled',
] as const;

export interface TerminatedState {
  exitCode: number;
  reason: string;
  message?: string;
  startedAt: string;
  finishedAt: string;
  containerID?: string;
}

/** One app container as the test runtime runs it. */
export interface ContainerRun {
  name: string;
  image: string;
  /**
   * creating: not started yet; running; backoff: its last start failed, it waits to start again;
   * configError: the kubelet refused to create it (CreateContainerConfigError, configMessage says why).
   */
  phase: 'creating' | 'running' | 'backoff' | 'configError';
  containerID?: string;
  restartCount: number;
  /** RFC 3339, of the current run. */
  startedAt?: string;
  /** The startup probe passed (true at once without one). */
  started: boolean;
  ready: boolean;
  lastTerminated?: TerminatedState;
  /** Message of the CrashLoopBackOff waiting state. */
  backoffMessage?: string;
  /** Message of the CreateContainerConfigError waiting state. */
  configMessage?: string;
}

/**
 * An init container. Without a runContainer hook it is completed at once; with one it waits its
 * turn, runs, and completes or fails (then waits in back-off before it runs again).
 */
export interface InitRun {
  name: string;
  image: string;
  phase: 'waiting' | 'running' | 'completed' | 'backoff';
  restartCount: number;
  containerID?: string;
  startedAt?: string;
  finishedAt?: string;
  lastTerminated?: TerminatedState;
  /** Message of the CrashLoopBackOff waiting state. */
  backoffMessage?: string;
}

export interface PodRun {
  uid: string;
  ip: string;
  startTime: string;
  init: InitRun[];
  containers: ContainerRun[];
  /** Transition times this kubelet last wrote, per condition type, for when the cache lags behind. */
  written: Map<string, { status: string; time: string }>;
}

/** RFC 3339 with second precision, the form the API server stores (metav1.Time). */
export function rfc3339(d: Date | number = Date.now()): string {
  return new Date(d).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** A time read back from the server (a string from a watch event, a Date from a typed list). */
export function timeString(v: unknown): string | undefined {
  if (v instanceof Date) return rfc3339(v);
  if (typeof v === 'string' && v !== '') {
    const ms = Date.parse(v);
    return Number.isNaN(ms) ? v : rfc3339(ms);
  }
  return undefined;
}

/** sha256-looking image digest, stable per image reference. */
export function imageID(image: string, digest: string): string {
  const repo = image.replace(/[:@].*$/, '');
  return `${repo}@sha256:${digest}`;
}

interface CondInput {
  type: string;
  status: 'True' | 'False';
  reason?: string;
  message?: string;
}

/** kubelet's GenerateContainersReadyCondition for running containers (Go's %s of a []string). */
export function containersReadyCondition(pod: V1Pod, run: PodRun): CondInput {
  const unknown: string[] = [];
  const unready: string[] = [];
  for (const c of pod.spec?.containers ?? []) {
    const r = run.containers.find((x) => x.name === c.name);
    if (r === undefined) unknown.push(c.name);
    else if (!r.ready) unready.push(c.name);
  }
  const parts: string[] = [];
  if (unknown.length > 0) parts.push(`containers with unknown status: [${unknown.join(' ')}]`);
  if (unready.length > 0) parts.push(`containers with unready status: [${unready.join(' ')}]`);
  if (parts.length > 0) {
    return {
      type: 'ContainersReady',
      status: 'False',
      reason: 'ContainersNotReady',
      message: parts.join(', '),
    };
  }
  return { type: 'ContainersReady', status: 'True' };
}

/** kubelet's GeneratePodReadyCondition: ContainersReady and every readiness gate's condition True. */
export function readyCondition(pod: V1Pod, containersReady: CondInput): CondInput {
  if (containersReady.status !== 'True') {
    return { ...containersReady, type: 'Ready' };
  }
  const conditions = pod.status?.conditions ?? [];
  const unready: string[] = [];
  for (const gate of pod.spec?.readinessGates ?? []) {
    const c = conditions.find((x) => x.type === gate.conditionType);
    if (c === undefined) {
      unready.push(`corresponding condition of pod readiness gate "${gate.conditionType}" does not exist.`);
    } else if (c.status !== 'True') {
      unready.push(`the status of pod readiness gate "${gate.conditionType}" is not "True", but ${c.status}`);
    }
  }
  if (unready.length > 0) {
    return { type: 'Ready', status: 'False', reason: 'ReadinessGatesNotReady', message: unready.join(', ') };
  }
  return { type: 'Ready', status: 'True' };
}

/** A condition as written: every field present, absent ones null so the merge removes stale values. */
export interface WrittenCondition {
  type: string;
  status: string;
  reason: string | null;
  message: string | null;
  lastProbeTime: null;
  lastTransitionTime: string;
  observedGeneration?: number;
}

function finishCondition(pod: V1Pod, run: PodRun, c: CondInput, now: string): WrittenCondition {
  const current = (pod.status?.conditions ?? []).find((x) => x.type === c.type);
  const memo = run.written.get(c.type);
  let time: string;
  if (current?.status === c.status) time = timeString(current.lastTransitionTime) ?? now;
  else if (memo?.status === c.status) time = memo.time;
  else time = now;
  const out: WrittenCondition = {
    type: c.type,
    status: c.status,
    reason: c.reason ?? null,
    message: c.message ?? null,
    lastProbeTime: null,
    lastTransitionTime: time,
  };
  const generation = pod.metadata?.generation;
  if (generation !== undefined) out.observedGeneration = generation;
  return out;
}

interface ContainerStatusOut {
  name: string;
  image: string;
  imageID: string;
  containerID?: string;
  ready: boolean;
  started: boolean;
  restartCount: number;
  state: Record<string, unknown>;
  lastState: Record<string, unknown>;
}

function terminated(t: TerminatedState): Record<string, unknown> {
  const out: Record<string, unknown> = {
    exitCode: t.exitCode,
    reason: t.reason,
    startedAt: t.startedAt,
    finishedAt: t.finishedAt,
  };
  if (t.message !== undefined) out['message'] = t.message;
  if (t.containerID !== undefined) out['containerID'] = t.containerID;
  return { terminated: out };
}

function containerStatus(
  r: ContainerRun,
  digest: (image: string) => string,
  initializing: boolean,
): ContainerStatusOut {
  const out: ContainerStatusOut = {
    name: r.name,
    image: r.image,
    imageID:
      (r.phase === 'creating' || r.phase === 'configError') && r.restartCount === 0
        ? ''
        : imageID(r.image, digest(r.image)),
    ready: r.ready,
    started: r.phase === 'running' && r.started,
    restartCount: r.restartCount,
    state: {},
    lastState: r.lastTerminated ? terminated(r.lastTerminated) : {},
  };
  if (r.phase === 'running') {
    out.containerID = r.containerID;
    out.state = { running: { startedAt: r.startedAt } };
  } else if (r.phase === 'backoff') {
    out.containerID = r.lastTerminated?.containerID;
    out.state = { waiting: { reason: 'CrashLoopBackOff', message: r.backoffMessage } };
  } else if (r.phase === 'configError') {
    out.state = { waiting: { reason: 'CreateContainerConfigError', message: r.configMessage } };
  } else {
    out.state = { waiting: { reason: initializing ? 'PodInitializing' : 'ContainerCreating' } };
  }
  return out;
}

function initStatus(i: InitRun, digest: (image: string) => string): ContainerStatusOut {
  const out: ContainerStatusOut = {
    name: i.name,
    image: i.image,
    imageID: i.phase === 'waiting' && i.restartCount === 0 ? '' : imageID(i.image, digest(i.image)),
    // The prober marks an init container that exited 0 ready; it is not running, so not started.
    ready: i.phase === 'completed',
    started: i.phase === 'running',
    restartCount: i.restartCount,
    state: {},
    lastState: i.lastTerminated ? terminated(i.lastTerminated) : {},
  };
  if (i.containerID !== undefined) out.containerID = i.containerID;
  switch (i.phase) {
    case 'completed':
      out.state = terminated({
        exitCode: 0,
        reason: 'Completed',
        startedAt: i.startedAt ?? '',
        finishedAt: i.finishedAt ?? '',
        ...(i.containerID !== undefined ? { containerID: i.containerID } : {}),
      });
      break;
    case 'running':
      out.state = { running: { startedAt: i.startedAt } };
      break;
    case 'backoff':
      out.containerID = i.lastTerminated?.containerID;
      out.state = { waiting: { reason: 'CrashLoopBackOff', message: i.backoffMessage } };
      break;
    case 'waiting':
      out.state = { waiting: { reason: 'PodInitializing' } };
      break;
  }
  return out;
}

/** kubelet's Initialized condition: every init container has completed. */
function initializedCondition(run: PodRun): CondInput {
  const incomplete = run.init.filter((i) => i.phase !== 'completed').map((i) => i.name);
  return incomplete.length === 0
    ? { type: 'Initialized', status: 'True' }
    : {
        type: 'Initialized',
        status: 'False',
        reason: 'ContainersNotInitialized',
        message: `containers with incomplete status: [${incomplete.join(' ')}]`,
      };
}

/** The part of pod.status this kubelet owns, in the form it writes it. */
export interface OwnedStatus {
  phase: 'Pending' | 'Running';
  hostIP: string;
  hostIPs: { ip: string }[];
  podIP: string;
  podIPs: { ip: string }[];
  startTime: string;
  observedGeneration?: number;
  conditions: WrittenCondition[];
  containerStatuses: ContainerStatusOut[];
  initContainerStatuses?: ContainerStatusOut[];
}

/** What the status should be now; `now` is the transition time of conditions that change. */
export function desiredStatus(
  pod: V1Pod,
  run: PodRun,
  now: string,
  digest: (image: string) => string,
): OwnedStatus {
  const containersReady = containersReadyCondition(pod, run);
  const initialized = initializedCondition(run);
  const conds: CondInput[] = [
    { type: 'PodReadyToStartContainers', status: 'True' },
    initialized,
    readyCondition(pod, containersReady),
    containersReady,
    { type: 'PodScheduled', status: 'True' },
  ];
  const out: OwnedStatus = {
    phase: run.containers.some((c) => c.phase === 'creating' || c.phase === 'configError')
      ? 'Pending'
      : 'Running',
    hostIP: HOST_IP,
    hostIPs: [{ ip: HOST_IP }],
    podIP: run.ip,
    podIPs: [{ ip: run.ip }],
    startTime: run.startTime,
    conditions: conds.map((c) => finishCondition(pod, run, c, now)),
    containerStatuses: run.containers.map((c) => containerStatus(c, digest, initialized.status === 'False')),
  };
  if (run.init.length > 0) out.initContainerStatuses = run.init.map((i) => initStatus(i, digest));
  const generation = pod.metadata?.generation;
  if (generation !== undefined) out.observedGeneration = generation;
  return out;
}

/**
 * Plain JSON with sorted keys, without null/undefined/empty-object fields and with Dates as RFC 3339
 * strings: objects from a typed list and from a watch event compare equal to what we wrote.
 */
export function canonical(v: unknown): unknown {
  if (v instanceof Date) return rfc3339(v);
  if (Array.isArray(v)) return v.map(canonical);
  if (typeof v === 'object' && v !== null) {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) {
      const c = canonical((v as Record<string, unknown>)[k]);
      if (c === undefined || c === null) continue;
      if (typeof c === 'object' && !Array.isArray(c) && Object.keys(c).length === 0) continue;
      out[k] = c;
    }
    return out;
  }
  return v;
}

const TIME_FIELDS = new Set(['startedAt', 'finishedAt', 'startTime', 'lastTransitionTime']);

function canonicalTimes(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(canonicalTimes);
  if (typeof v === 'object' && v !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = TIME_FIELDS.has(k) ? timeString(x) : canonicalTimes(x);
    return out;
  }
  return v;
}

const CONTAINER_FIELDS = [
  'name',
  'image',
  'imageID',
  'containerID',
  'ready',
  'started',
  'restartCount',
  'state',
  'lastState',
] as const;

function pick(o: unknown, keys: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (typeof o !== 'object' || o === null) return out;
  for (const k of keys) out[k] = (o as Record<string, unknown>)[k];
  return out;
}

/** The server's pod.status cut down to the fields in `desired`, for comparison. */
function ownedView(pod: V1Pod, desired: OwnedStatus): unknown {
  const s: Partial<V1PodStatus> = pod.status ?? {};
  const conditions = desired.conditions.map((d) =>
    pick(
      (s.conditions ?? []).find((c: V1PodCondition) => c.type === d.type),
      ['type', 'status', 'reason', 'message', 'lastTransitionTime', 'observedGeneration'],
    ),
  );
  return {
    phase: s.phase,
    hostIP: s.hostIP,
    hostIPs: s.hostIPs?.map((x) => ({ ip: x.ip })),
    podIP: s.podIP,
    podIPs: s.podIPs?.map((x) => ({ ip: x.ip })),
    startTime: s.startTime,
    observedGeneration: desired.observedGeneration === undefined ? undefined : s.observedGeneration,
    conditions,
    containerStatuses: s.containerStatuses?.map((c) => pick(c, CONTAINER_FIELDS)),
    initContainerStatuses:
      desired.initContainerStatuses === undefined
        ? undefined
        : s.initContainerStatuses?.map((c) => pick(c, CONTAINER_FIELDS)),
  };
}

function desiredView(desired: OwnedStatus): unknown {
  return {
    ...desired,
    conditions: desired.conditions.map((c) =>
      pick(c, ['type', 'status', 'reason', 'message', 'lastTransitionTime', 'observedGeneration']),
    ),
  };
}

/** True when the server already has `desired` (times compared at second precision). */
export function statusMatches(pod: V1Pod, desired: OwnedStatus): boolean {
  const a = JSON.stringify(canonical(canonicalTimes(ownedView(pod, desired))));
  const b = JSON.stringify(canonical(canonicalTimes(desiredView(desired))));
  return a === b;
}

/**
 * The strategic merge patch body for pods/status: conditions merge by type, so only the kubelet's
 * own condition types are sent and readiness-gate conditions written by others stay as they are.
 */
export function statusPatch(desired: OwnedStatus): { status: OwnedStatus } {
  return { status: desired };
}
