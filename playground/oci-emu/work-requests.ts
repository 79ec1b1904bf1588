// Work requests: every asynchronous mutation makes one, ACCEPTED -> IN_PROGRESS -> SUCCEEDED or FAILED,
// with timeFinished always set at the end (the SDK's forWorkRequest waiter stops only on that). Only an
// ACCEPTED work request can be canceled; the operation is then undone. A work request can also FAIL
// (queued by outOfBand.failNextWork, or for lack of capacity): its errors are then listed by
// ListWorkRequestErrors and the resource is rolled back (updates, deletes) or FAILED (creates).

import { incorrectState } from './errors.ts';
import type { Call, Reply } from './http.ts';
import { newEtag } from './ids.ts';
import { type ListSpec, listReply } from './lists.ts';
import { type Store, type WorkRecord, checkIfMatch, copy } from './store.ts';
import type { WorkRequest, WorkRequestResource } from './types.ts';

export interface WorkSpec {
  operationType: string;
  compartmentId: string;
  entityType: 'modelDeployment' | 'modelGroup' | 'modelGroupVersionHistory';
  identifier: string;
  /** The collection in the API path, e.g. 'modelDeployments'. */
  collection: string;
  /** The resource's action type once the work succeeds. */
  actionType: 'CREATED' | 'UPDATED' | 'DELETED';
  related?: WorkRequestResource[];
  delayMs: number;
  /** Performs the transition when the delay has passed; a string is the failure message. */
  finish: () => string | undefined;
  /** Undoes the accepted operation when the work request is canceled before it starts. */
  cancel?: () => void;
  /**
   * What the resource becomes when the work fails by injection (outOfBand.failNextWork) or for lack
   * of capacity; default: what `cancel` does.
   */
  fail?: (message: string) => void;
  /** Checked when the work would complete, as OCI provisions then: a reason it cannot. */
  refuse?: () => WorkError | undefined;
}

export interface WorkError {
  code: string;
  message: string;
}

export const OPERATION_TYPES = [
  'MODEL_DEPLOYMENT_CREATE',
  'MODEL_DEPLOYMENT_UPDATE',
  'MODEL_DEPLOYMENT_DELETE',
  'MODEL_DEPLOYMENT_ACTIVATE',
  'MODEL_DEPLOYMENT_DEACTIVATE',
  'MODEL_GROUP_CREATE',
  'MODEL_GROUP_UPDATE',
  'MODEL_GROUP_DELETE',
  'MODEL_GROUP_VERSION_HISTORY_DELETE',
] as const;
const STATUSES = ['ACCEPTED', 'IN_PROGRESS', 'FAILED', 'SUCCEEDED', 'CANCELING', 'CANCELED'] as const;

function change(store: Store, rec: WorkRecord, apply: (w: WorkRequest) => void, log: string): void {
  apply(rec.data);
  rec.etag = newEtag();
  rec.logs.push({ message: log, timestamp: store.nowIso() });
}

export function startWork(store: Store, spec: WorkSpec): WorkRecord {
  const id = store.ocid('datascienceworkrequest');
  const entityUri = `/20190101/${spec.collection}/${spec.identifier}`;
  const rec: WorkRecord = {
    data: {
      id,
      operationType: spec.operationType,
      status: 'ACCEPTED',
      compartmentId: spec.compartmentId,
      percentComplete: 0,
      resources: [
        { actionType: 'IN_PROGRESS', entityType: spec.entityType, identifier: spec.identifier, entityUri },
        ...(spec.related ?? []),
      ],
      timeAccepted: store.nowIso(),
    },
    etag: newEtag(),
    seq: store.nextSeq(),
    errors: [],
    logs: [{ message: `${spec.operationType} accepted for ${spec.identifier}`, timestamp: store.nowIso() }],
    timers: new Set(),
    onCancel: spec.cancel,
  };
  store.workRequests.set(id, rec);
  const main = (w: WorkRequest): WorkRequestResource | undefined => w.resources[0];
  store.schedule(
    Math.floor(spec.delayMs / 5),
    () => {
      change(
        store,
        rec,
        (w) => {
          w.status = 'IN_PROGRESS';
          w.timeStarted = store.nowIso();
        },
        'started',
      );
    },
    rec.timers,
  );
  store.schedule(
    Math.floor(spec.delayMs / 2),
    () => {
      change(
        store,
        rec,
        (w) => {
          w.percentComplete = 50;
        },
        'half done',
      );
    },
    rec.timers,
  );
  store.schedule(
    spec.delayMs,
    () => {
      // An injected failure, or no capacity: the operation does not happen, the resource is rolled
      // back or FAILED, and the errors are readable through ListWorkRequestErrors.
      const refused = store.takeWorkFailure(spec.operationType) ?? spec.refuse?.();
      let error: WorkError | undefined;
      if (refused === undefined) {
        const message = spec.finish();
        if (message !== undefined) error = { code: 'InternalServerError', message };
      } else {
        (spec.fail ?? spec.cancel)?.(refused.message);
        error = { code: refused.code, message: refused.message };
      }
      const failure = error?.message;
      change(
        store,
        rec,
        (w) => {
          w.timeFinished = store.nowIso();
          const r = main(w);
          if (failure === undefined) {
            w.status = 'SUCCEEDED';
            w.percentComplete = 100;
            if (r) r.actionType = spec.actionType;
          } else {
            w.status = 'FAILED';
            if (r) r.actionType = 'RELATED';
            rec.errors.push({
              code: error?.code ?? 'InternalServerError',
              message: failure,
              timestamp: store.nowIso(),
            });
          }
        },
        failure === undefined ? 'succeeded' : `failed: ${failure}`,
      );
    },
    rec.timers,
  );
  return rec;
}

const WORK_LIST: ListSpec<WorkRequest> = {
  filters: {
    compartmentId: (w, v) => w.compartmentId === v,
    id: (w, v) => w.id === v,
    resourceId: (w, v) => w.resources.some((r) => r.identifier === v),
    operationType: (w, v) => w.operationType === v,
    status: (w, v) => w.status === v,
  },
  enums: { operationType: OPERATION_TYPES, status: STATUSES },
  sortBy: {
    timeAccepted: (w) => w.timeAccepted,
    operationType: (w) => w.operationType,
    status: (w) => w.status,
  },
  defaultSortBy: 'timeAccepted',
};

export function getWorkRequest(store: Store, call: Call): Reply {
  const rec = store.workRequest(call.params.id ?? '');
  const headers: Record<string, string> = { etag: rec.etag };
  if (rec.data.timeFinished === undefined) headers['retry-after'] = '1';
  return { status: 200, body: copy(rec.data), headers };
}

export function listWorkRequests(store: Store, call: Call): Reply {
  const items = [...store.workRequests.values()].map((r) => ({ item: r.data, seq: r.seq }));
  return listReply(call, items, WORK_LIST, copy);
}

export function listWorkRequestErrors(store: Store, call: Call): Reply {
  const rec = store.workRequest(call.params.id ?? '');
  const items = rec.errors.map((e, i) => ({ item: e, seq: i }));
  return listReply(
    call,
    items,
    { filters: {}, sortBy: { timestamp: (e) => e.timestamp }, defaultSortBy: 'timestamp', sortable: false },
    copy,
  );
}

export function listWorkRequestLogs(store: Store, call: Call): Reply {
  const rec = store.workRequest(call.params.id ?? '');
  const items = rec.logs.map((e, i) => ({ item: e, seq: i }));
  return listReply(
    call,
    items,
    { filters: {}, sortBy: { timestamp: (e) => e.timestamp }, defaultSortBy: 'timestamp', sortable: false },
    copy,
  );
}

export function cancelWorkRequest(store: Store, call: Call): Reply {
  const rec = store.workRequest(call.params.id ?? '');
  checkIfMatch(call.ifMatch, rec, `work request ${rec.data.id}`);
  if (rec.data.status !== 'ACCEPTED') {
    throw incorrectState(
      `Work request ${rec.data.id} is ${rec.data.status}; only an ACCEPTED one can be canceled`,
    );
  }
  for (const t of rec.timers) store.unschedule(t);
  rec.timers.clear();
  rec.onCancel?.();
  change(
    store,
    rec,
    (w) => {
      w.status = 'CANCELED';
      w.timeFinished = store.nowIso();
      const r = w.resources[0];
      if (r) r.actionType = 'RELATED';
    },
    'canceled',
  );
  return { status: 204 };
}
