// Model group version histories: a named line of model groups whose newest member is
// latestModelGroupId. Create, get, update and list are synchronous; delete has a work request.

import { incorrectState, invalid } from './errors.ts';
import { type Call, type Reply, bodyOf } from './http.ts';
import { newEtag } from './ids.ts';
import { type ListSpec, listReply } from './lists.ts';
import { HISTORY_CREATE, HISTORY_UPDATE } from './model-group-schema.ts';
import { attachHistory, defaultName } from './model-groups.ts';
import { validated } from './schema.ts';
import { type HistoryRecord, type Store, checkIfMatch, copy, touch } from './store.ts';
import type { DefinedTags, FreeformTags, ModelGroupVersionHistory } from './types.ts';
import { startWork } from './work-requests.ts';

interface HistoryBody {
  compartmentId: string;
  projectId: string;
  displayName?: string;
  description?: string;
  latestModelGroupId?: string;
  freeformTags?: FreeformTags;
  definedTags?: DefinedTags;
}

export function createVersionHistory(store: Store, call: Call): Reply {
  const b = validated<HistoryBody>(bodyOf(call), HISTORY_CREATE);
  const now = store.now();
  const h: ModelGroupVersionHistory = {
    id: store.ocid('datasciencemodelgroupversionhistory'),
    compartmentId: b.compartmentId,
    projectId: b.projectId,
    displayName: b.displayName ?? defaultName('modelgroupversionhistory', now),
    freeformTags: copy(b.freeformTags ?? {}),
    definedTags: copy(b.definedTags ?? {}),
    systemTags: {},
    lifecycleState: 'ACTIVE',
    timeCreated: store.nowIso(),
    timeUpdated: store.nowIso(),
    createdBy: call.principal,
  };
  if (b.description !== undefined) h.description = b.description;
  const rec: HistoryRecord = { data: h, etag: newEtag(), seq: store.nextSeq() };
  if (b.latestModelGroupId !== undefined) {
    const g = store.group(b.latestModelGroupId);
    if (g.data.modelGroupVersionHistoryId !== undefined) {
      throw invalid(
        `Model group ${g.data.id} already belongs to version history ${g.data.modelGroupVersionHistoryId}`,
      );
    }
    store.histories.set(h.id, rec); // attachHistory looks the history up
    try {
      attachHistory(store, g.data, h.id);
    } catch (e) {
      store.histories.delete(h.id);
      throw e;
    }
    touch(g, store.nowIso());
  }
  store.histories.set(h.id, rec);
  return { status: 200, body: copy(h), headers: { etag: rec.etag } };
}

export function getVersionHistory(store: Store, call: Call): Reply {
  const seen = store.read(store.history(call.params.id ?? ''));
  return { status: 200, body: copy(seen.data), headers: { etag: seen.etag } };
}

export function updateVersionHistory(store: Store, call: Call): Reply {
  const rec = store.history(call.params.id ?? '');
  const h = rec.data;
  checkIfMatch(call.ifMatch, rec, `model group version history ${h.id}`);
  const b = validated<Omit<HistoryBody, 'compartmentId' | 'projectId'>>(bodyOf(call), HISTORY_UPDATE);
  if (h.lifecycleState !== 'ACTIVE')
    throw incorrectState(`Model group version history ${h.id} is ${h.lifecycleState}`);
  if (b.latestModelGroupId !== undefined) {
    const g = store.group(b.latestModelGroupId);
    if (g.data.modelGroupVersionHistoryId !== h.id) {
      throw invalid(`Model group ${g.data.id} is not a version in history ${h.id}`);
    }
    h.latestModelGroupId = g.data.id;
  }
  if (b.displayName !== undefined) h.displayName = b.displayName;
  if (b.description !== undefined) h.description = b.description;
  if (b.freeformTags !== undefined) h.freeformTags = copy(b.freeformTags);
  if (b.definedTags !== undefined) h.definedTags = copy(b.definedTags);
  touch(rec, store.nowIso());
  return { status: 200, body: copy(h), headers: { etag: rec.etag } };
}

export function deleteVersionHistory(store: Store, call: Call): Reply {
  const rec = store.history(call.params.id ?? '');
  const h = rec.data;
  checkIfMatch(call.ifMatch, rec, `model group version history ${h.id}`);
  if (h.lifecycleState !== 'ACTIVE' && h.lifecycleState !== 'FAILED') {
    throw incorrectState(`Model group version history ${h.id} is ${h.lifecycleState} and cannot be deleted`);
  }
  const members = [...store.groups.values()].filter(
    (g) => g.data.modelGroupVersionHistoryId === h.id && g.data.lifecycleState !== 'DELETED',
  );
  if (members.length > 0) {
    throw incorrectState(
      `Model group version history ${h.id} still holds model group ${members.map((g) => g.data.id).join(', ')}`,
    );
  }
  const previous = h.lifecycleState;
  h.lifecycleState = 'DELETING';
  touch(rec, store.nowIso());
  const work = startWork(store, {
    operationType: 'MODEL_GROUP_VERSION_HISTORY_DELETE',
    compartmentId: h.compartmentId,
    entityType: 'modelGroupVersionHistory',
    identifier: h.id,
    collection: 'modelGroupVersionHistory',
    actionType: 'DELETED',
    delayMs: store.delays.groupDeleteMs,
    finish: () => {
      if (h.lifecycleState !== 'DELETING') return `version history ${h.id} went ${h.lifecycleState}`;
      h.lifecycleState = 'DELETED';
      touch(rec, store.nowIso());
      return undefined;
    },
    cancel: () => {
      h.lifecycleState = previous;
      touch(rec, store.nowIso());
    },
  });
  return { status: 204, headers: { 'opc-work-request-id': work.data.id } };
}

const HISTORY_LIST: ListSpec<ModelGroupVersionHistory> = {
  filters: {
    compartmentId: (h, v) => h.compartmentId === v,
    projectId: (h, v) => h.projectId === v,
    id: (h, v) => h.id === v,
    displayName: (h, v) => h.displayName === v,
    lifecycleState: (h, v) => h.lifecycleState === v,
    createdBy: (h, v) => h.createdBy === v,
  },
  enums: { lifecycleState: ['ACTIVE', 'DELETING', 'DELETED', 'FAILED'] },
  sortBy: {
    timeCreated: (h) => h.timeCreated,
    displayName: (h) => h.displayName,
    lifecycleState: (h) => h.lifecycleState,
  },
  defaultSortBy: 'timeCreated',
};

export function listVersionHistories(store: Store, call: Call): Reply {
  const items = [...store.histories.values()].flatMap((r) => {
    const item = store.listed(r);
    return item === undefined ? [] : [{ item, seq: r.seq }];
  });
  return listReply(call, items, HISTORY_LIST, (h) => {
    const { description: _description, ...summary } = h;
    return copy(summary);
  });
}
