// Everything the emulated service holds: resources with their etags, work requests, the model
// catalog, counters, and the timers that drive lifecycle transitions (all cleared by close()).

import { noEtagMatch, notFound } from './errors.ts';
import { iso, newEtag, newOcid } from './ids.ts';
import type {
  MemberState,
  ModelDeployment,
  ModelGroup,
  ModelGroupVersionHistory,
  OciEmulatorDelays,
  WorkRequest,
  WorkRequestError,
  WorkRequestLogEntry,
} from './types.ts';

export interface Versioned<T> {
  data: T;
  etag: string;
  /** Creation order, the tie-breaker of list sorting. */
  seq: number;
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

export class Store {
  readonly url: string;
  readonly region: string;
  readonly delays: Delays;
  readonly groups = new Map<string, GroupRecord>();
  readonly histories = new Map<string, HistoryRecord>();
  readonly deployments = new Map<string, DeploymentRecord>();
  readonly workRequests = new Map<string, WorkRecord>();
  readonly models = new Set<string>();
  readonly created = { modelGroups: 0, modelDeployments: 0 };
  /** Group creates that end FAILED instead of ACTIVE (a model the service cannot stack, say). */
  readonly failingGroupCreates = { count: 0, details: '' };
  readonly #timers = new Set<NodeJS.Timeout>();
  #seq = 0;
  #closed = false;

  constructor(url: string, region: string, delays: Delays) {
    this.url = url;
    this.region = region;
    this.delays = delays;
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
    return found(this.groups.get(id), 'ModelGroup', id);
  }

  history(id: string): HistoryRecord {
    return found(this.histories.get(id), 'ModelGroupVersionHistory', id);
  }

  deployment(id: string): DeploymentRecord {
    return found(this.deployments.get(id), 'ModelDeployment', id);
  }

  workRequest(id: string): WorkRecord {
    return found(this.workRequests.get(id), 'WorkRequest', id);
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

function found<T>(rec: T | undefined, kind: string, id: string): T {
  if (rec === undefined) throw notFound(`${kind} ${id} not found or not authorized`);
  return rec;
}

/** A change: new etag, and timeUpdated where the resource has one. */
export function touch(rec: { etag: string; data: object }, now: string): void {
  rec.etag = newEtag();
  if ('timeUpdated' in rec.data) (rec.data as { timeUpdated: string }).timeUpdated = now;
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
