// Everything the emulated service holds: resources with their etags, work requests, the model
// catalog, counters, and the timers that drive lifecycle transitions (all cleared by close()).
//
// Two of OCI's less kind habits live here because every read goes through the store:
//   - reads lag writes (readLagMs): a GET or LIST is answered from the state as it was readLagMs
//     ago, as a replica that has not caught up would; a LIST misses what was created since, a GET of
//     such a young resource reads its first state (the create's own answer), never a 404;
//   - DELETED records are purged (deletedRetentionMs after they became DELETED): GET answers 404
//     and LIST leaves them out. The test accessors (emu.modelGroups() ...) still see them.

import { ApiError, noEtagMatch, notFound } from './errors.ts';
import { iso, newEtag, newOcid } from './ids.ts';
import type {
  MemberState,
  ModelDeployment,
  ModelGroup,
  ModelGroupVersionHistory,
  OciEmulatorDelays,
  OciEmulatorLimits,
  WorkRequest,
  WorkRequestError,
  WorkRequestLogEntry,
} from './types.ts';

export interface Snapshot<T> {
  /** Date.now() when this state was written. */
  at: number;
  data: T;
  etag: string;
}

export interface Versioned<T> {
  data: T;
  etag: string;
  /** Creation order, the tie-breaker of list sorting. */
  seq: number;
  /**
   * With lagged reads only: the states a lagging replica may still serve, oldest first (pruned to
   * the lag window plus the newest state older than it).
   */
  past?: { lagMs: number; states: Snapshot<T>[] };
  /** Date.now() when the record became DELETED: it is purged deletedRetentionMs later. */
  deletedAt?: number;
}

/** What a read returns: the record's state as the answering replica sees it. */
export interface Seen<T> {
  data: T;
  etag: string;
}

export type GroupRecord = Versioned<ModelGroup>;
export type HistoryRecord = Versioned<ModelGroupVersionHistory>;

export interface DeploymentRecord extends Versioned<ModelDeployment> {
  /** The group answering predict; undefined until the first creation completes. */
  servingGroupId: string | undefined;
  /** What an update in progress will make visible when it completes. */
  pending: ModelDeployment | undefined;
  /** Member states set out of band, cleared when an update completes (the models are reloaded). */
  memberStates: Map<string, MemberState>;
}

export interface WorkRecord extends Versioned<WorkRequest> {
  errors: WorkRequestError[];
  logs: WorkRequestLogEntry[];
  timers: Set<NodeJS.Timeout>;
  onCancel: (() => void) | undefined;
}

export type Delays = Required<OciEmulatorDelays>;

export interface Consistency {
  /** 0: reads see every write at once. */
  readLagMs: number;
  /** undefined: DELETED records stay readable forever. */
  deletedRetentionMs: number | undefined;
}

/** A queued work-request failure (outOfBand.failNextWork). */
export interface WorkFailure {
  operationType: string;
  remaining: number;
  code: string;
  message: string;
}

/**
 * A Map that starts the snapshot history of every record put into it, so lagged reads have the
 * creation state to serve (the handlers need not remember to).
 */
class Tracked<V extends Versioned<object>> extends Map<string, V> {
  readonly #lagMs: () => number;

  constructor(lagMs: () => number) {
    super();
    this.#lagMs = lagMs;
  }

  override set(key: string, rec: V): this {
    const lagMs = this.#lagMs();
    if (lagMs > 0) rec.past = { lagMs, states: [{ at: Date.now(), data: copy(rec.data), etag: rec.etag }] };
    return super.set(key, rec);
  }
}

export class Store {
  readonly url: string;
  readonly region: string;
  readonly delays: Delays;
  readonly consistency: Consistency;
  readonly groups: Map<string, GroupRecord>;
  readonly histories: Map<string, HistoryRecord>;
  readonly deployments: Map<string, DeploymentRecord>;
  // Work requests are read consistently: the reference's advice is to poll them, not the resource.
  readonly workRequests = new Map<string, WorkRecord>();
  readonly models = new Set<string>();
  readonly created = { modelGroups: 0, modelDeployments: 0 };
  /** Group creates that end FAILED instead of ACTIVE (a model the service cannot stack, say). */
  readonly failingGroupCreates = { count: 0, details: '' };
  /** Work requests that end FAILED, by operation type, in order. */
  readonly failingWork: WorkFailure[] = [];
  /** Service limits (tenancy) and quotas (compartment) on creates; absent = unlimited. */
  limits: OciEmulatorLimits = {};
  /** Instances of a shape the region can still host, over all deployments; absent = unlimited. */
  readonly capacity = new Map<string, number>();
  /** Changes made "by someone else" just before the next call of an operation runs (a race). */
  readonly races: { operation: string; change: () => void }[] = [];
  readonly #timers = new Set<NodeJS.Timeout>();
  #seq = 0;
  #closed = false;

  constructor(url: string, region: string, delays: Delays, consistency: Consistency) {
    this.url = url;
    this.region = region;
    this.delays = delays;
    this.consistency = consistency;
    const lag = (): number => this.consistency.readLagMs;
    this.groups = new Tracked<GroupRecord>(lag);
    this.histories = new Tracked<HistoryRecord>(lag);
    this.deployments = new Tracked<DeploymentRecord>(lag);
  }

  /** Gone for the API: DELETED for longer than the retention. */
  purged(rec: Versioned<object>): boolean {
    const keep = this.consistency.deletedRetentionMs;
    return keep !== undefined && rec.deletedAt !== undefined && this.now() - rec.deletedAt >= keep;
  }

  /**
   * The state a lagging replica serves: the newest written at least readLagMs ago. `young` is what a
   * record created within the window reads as: its first state (GET) or nothing (LIST).
   */
  #lagged<T>(rec: Versioned<T>, young: 'first' | 'none'): Seen<T> | undefined {
    const past = rec.past;
    if (past === undefined) return { data: rec.data, etag: rec.etag };
    const horizon = this.now() - past.lagMs;
    let seen: Snapshot<T> | undefined;
    for (const s of past.states) if (s.at <= horizon) seen = s;
    if (seen === undefined) {
      const first = past.states[0];
      return young === 'none' || first === undefined ? undefined : { data: first.data, etag: first.etag };
    }
    return { data: seen.data, etag: seen.etag };
  }

  /** What a GET answers: 404 once purged, else the (possibly lagging) state. */
  read<T extends object>(rec: Versioned<T>): Seen<T> {
    if (this.purged(rec)) throw notFound('The resource was not found or you are not authorized');
    return this.#lagged(rec, 'first') ?? { data: rec.data, etag: rec.etag };
  }

  /** What a LIST shows of a record: nothing once purged or while too young for the replica. */
  listed<T extends object>(rec: Versioned<T>): T | undefined {
    if (this.purged(rec)) return undefined;
    return this.#lagged(rec, 'none')?.data;
  }

  /** Runs the race queued for `operation`, if any (outOfBand.beforeNext). */
  race(operation: string): void {
    const i = this.races.findIndex((r) => r.operation === operation);
    if (i < 0) return;
    const [r] = this.races.splice(i, 1);
    r?.change();
  }

  /** The failure the next work request of this type ends with, if one is queued. */
  takeWorkFailure(operationType: string): WorkFailure | undefined {
    const f = this.failingWork.find((w) => w.operationType === operationType);
    if (f === undefined) return undefined;
    f.remaining--;
    if (f.remaining <= 0) this.failingWork.splice(this.failingWork.indexOf(f), 1);
    return f;
  }

  /**
   * OCI's answers to a create beyond a service limit (tenancy) or a quota (compartment), per the API
   * errors table: 400 LimitExceeded, 400 QuotaExceeded.
   */
  checkLimits(kind: 'modelGroups' | 'modelDeployments', compartmentId: string): void {
    const records: Versioned<{ lifecycleState: string; compartmentId: string }>[] = [
      ...(kind === 'modelGroups' ? this.groups.values() : this.deployments.values()),
    ];
    const live = records.filter((r) => r.data.lifecycleState !== 'DELETED');
    const what = kind === 'modelGroups' ? 'model-group-count' : 'model-deployment-count';
    const limit = this.limits[kind];
    if (limit !== undefined && live.length >= limit) {
      throw new ApiError(
        400,
        'LimitExceeded',
        `Fulfilling this request exceeds the Oracle-defined limit for this tenancy for this resource type (${what}: ${String(limit)})`,
      );
    }
    const quota = this.limits.compartmentQuotas?.[kind];
    if (quota !== undefined && live.filter((r) => r.data.compartmentId === compartmentId).length >= quota) {
      throw new ApiError(
        400,
        'QuotaExceeded',
        `Fulfilling this request exceeds the administrator-defined quota for this compartment for this resource (${what}: ${String(quota)})`,
      );
    }
  }

  now(): number {
    return Date.now();
  }

  nowIso(): string {
    return iso(this.now());
  }

  nextSeq(): number {
    return ++this.#seq;
  }

  ocid(type: string): string {
    return newOcid(type, this.region);
  }

  /** Runs `fn` after `ms` on a later timer tick (also for 0), unless the emulator was closed first. */
  schedule(ms: number, fn: () => void, owner?: Set<NodeJS.Timeout>): NodeJS.Timeout {
    const t = setTimeout(() => {
      this.#timers.delete(t);
      owner?.delete(t);
      if (this.#closed) return;
      try {
        fn();
      } catch (e) {
        process.stderr.write(
          `[oci-emu] scheduled transition failed: ${e instanceof Error ? e.stack : String(e)}\n`,
        );
      }
    }, ms);
    this.#timers.add(t);
    owner?.add(t);
    return t;
  }

  unschedule(t: NodeJS.Timeout): void {
    clearTimeout(t);
    this.#timers.delete(t);
  }

  close(): void {
    this.#closed = true;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
  }

  group(id: string): GroupRecord {
    return found(this, this.groups.get(id), 'ModelGroup', id);
  }

  history(id: string): HistoryRecord {
    return found(this, this.histories.get(id), 'ModelGroupVersionHistory', id);
  }

  deployment(id: string): DeploymentRecord {
    return found(this, this.deployments.get(id), 'ModelDeployment', id);
  }

  workRequest(id: string): WorkRecord {
    const rec = this.workRequests.get(id);
    if (rec === undefined) throw notFound(`WorkRequest ${id} not found or not authorized`);
    return rec;
  }

  /** Deployments that are not DELETED and serve, are configured with, or are moving to `groupId`. */
  deploymentsUsing(groupId: string): DeploymentRecord[] {
    return [...this.deployments.values()].filter(
      (d) =>
        d.data.lifecycleState !== 'DELETED' &&
        (d.servingGroupId === groupId ||
          d.data.modelDeploymentConfigurationDetails.modelGroupConfigurationDetails.modelGroupId ===
            groupId ||
          d.pending?.modelDeploymentConfigurationDetails.modelGroupConfigurationDetails.modelGroupId ===
            groupId),
    );
  }
}

function found<T extends Versioned<object>>(store: Store, rec: T | undefined, kind: string, id: string): T {
  if (rec === undefined || store.purged(rec)) throw notFound(`${kind} ${id} not found or not authorized`);
  return rec;
}

/**
 * A change: new etag, and timeUpdated where the resource has one. Every change of a resource ends
 * here, so this is where lagged reads get their history and DELETED records their purge clock.
 */
export function touch<T extends object>(rec: Versioned<T>, now: string): void {
  rec.etag = newEtag();
  if ('timeUpdated' in rec.data) (rec.data as { timeUpdated: string }).timeUpdated = now;
  const at = Date.now();
  if ((rec.data as { lifecycleState?: string }).lifecycleState === 'DELETED') rec.deletedAt ??= at;
  else delete rec.deletedAt;
  const past = rec.past;
  if (past === undefined) return;
  past.states.push({ at, data: copy(rec.data), etag: rec.etag });
  // Keep the newest state older than the window: it is what a lagging read serves.
  const horizon = at - past.lagMs;
  while (past.states.length > 1 && (past.states[1]?.at ?? at) <= horizon) past.states.shift();
}

/** An absent if-match is allowed; a present one must equal the current etag. */
export function checkIfMatch(ifMatch: string | undefined, rec: { etag: string }, what: string): void {
  if (ifMatch !== undefined && ifMatch !== rec.etag) {
    throw noEtagMatch(`The if-match value does not match the current etag of ${what}`);
  }
}

export function copy<T>(v: T): T {
  return structuredClone(v);
}
