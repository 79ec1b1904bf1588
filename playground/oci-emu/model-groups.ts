// Model groups (reference §2): CREATE and CLONE, immutable members, version history attachment,
// delete refused while a deployment uses the group. Creation and deletion are asynchronous, with a
// work request; update and activate/deactivate are synchronous.

import { incorrectState, invalid, notFound } from './errors.ts';
import { type Call, type Reply, bodyOf } from './http.ts';
import { newEtag } from './ids.ts';
import { type ListSpec, listReply } from './lists.ts';
import {
  type CloneBody,
  type CreateBody,
  CREATE_OR_CLONE,
  MAX_MEMBERS,
  UPDATE,
  UPDATE_FIELDS,
  type UpdateBody,
} from './model-group-schema.ts';
import { validated } from './schema.ts';
import { type GroupRecord, type Store, checkIfMatch, copy, touch } from './store.ts';
import type { MemberModel, ModelGroup, ModelGroupDetails, ModelGroupState } from './types.ts';
import { startWork } from './work-requests.ts';

const GROUP_STATES: readonly ModelGroupState[] = [
  'CREATING',
  'ACTIVE',
  'FAILED',
  'INACTIVE',
  'DELETING',
  'DELETED',
];

export function defaultName(prefix: string, ms: number): string {
  return `${prefix}${new Date(ms).toISOString().replace(/[-:T]/g, '').slice(0, 14)}`;
}

/** Catalog, uniqueness and STACKED rules for a group's final member list. */
export function checkMembers(
  store: Store,
  details: ModelGroupDetails,
  members: readonly MemberModel[],
): void {
  if (members.length === 0) throw invalid('A model group needs at least one member model');
  if (members.length > MAX_MEMBERS) {
    throw invalid(`A model group has at most ${MAX_MEMBERS} member models, got ${members.length}`);
  }
  const ids = new Set<string>();
  const keys = new Set<string>();
  for (const m of members) {
    if (!store.models.has(m.modelId)) throw invalid(`Model ${m.modelId} does not exist or is not authorized`);
    if (ids.has(m.modelId)) throw invalid(`Model ${m.modelId} appears more than once in the member models`);
    ids.add(m.modelId);
    if (m.inferenceKey === undefined) {
      if (details.type === 'STACKED') {
        throw invalid(`Every member of a STACKED model group needs an inferenceKey; ${m.modelId} has none`);
      }
      continue;
    }
    if (keys.has(m.inferenceKey))
      throw invalid(`Inference key '${m.inferenceKey}' is used by more than one member`);
    keys.add(m.inferenceKey);
  }
  if (details.type === 'STACKED') {
    const base = details.baseModelId ?? '';
    if (!ids.has(base))
      throw invalid(`The base model ${base} of a STACKED model group must be one of its members`);
  }
}

/** Puts `group` into the version history as its newest version. */
export function attachHistory(store: Store, group: ModelGroup, historyId: string): void {
  const h = store.histories.get(historyId);
  if (!h) throw notFound(`ModelGroupVersionHistory ${historyId} not found or not authorized`);
  if (h.data.lifecycleState !== 'ACTIVE') {
    throw invalid(`Model group version history ${historyId} is ${h.data.lifecycleState}, not ACTIVE`);
  }
  if (h.data.compartmentId !== group.compartmentId || h.data.projectId !== group.projectId) {
    throw invalid(`Model group version history ${historyId} is in another compartment or project`);
  }
  const versions = [...store.groups.values()]
    .filter((g) => g.data.modelGroupVersionHistoryId === historyId && g.data.id !== group.id)
    .map((g) => g.data.versionId ?? 0);
  group.modelGroupVersionHistoryId = historyId;
  group.modelGroupVersionHistoryName = h.data.displayName;
  group.versionId = Math.max(0, ...versions) + 1;
  h.data.latestModelGroupId = group.id;
  touch(h, store.nowIso());
}

interface Draft {
  compartmentId: string;
  projectId: string;
  createType: 'CREATE' | 'CLONE';
  details: ModelGroupDetails;
  members: MemberModel[];
  displayName?: string;
  description?: string;
  freeformTags?: ModelGroup['freeformTags'];
  definedTags?: ModelGroup['definedTags'];
  versionLabel?: string;
  historyId?: string;
  sourceModelGroupId?: string;
}

function fromCreate(b: CreateBody): Draft {
  const d: Draft = {
    compartmentId: b.compartmentId,
    projectId: b.projectId,
    createType: 'CREATE',
    details: b.modelGroupDetails,
    members: b.memberModelEntries.memberModelDetails,
  };
  return Object.assign(d, {
    displayName: b.displayName,
    description: b.description,
    freeformTags: b.freeformTags,
    definedTags: b.definedTags,
    versionLabel: b.versionLabel,
    historyId: b.modelGroupVersionHistoryId,
  });
}

function cloneSource(store: Store, b: CloneBody): { source: GroupRecord; historyId?: string } {
  const src = b.modelGroupCloneSourceDetails;
  if (src.modelGroupCloneSourceType === 'MODEL_GROUP') return { source: store.group(src.sourceId) };
  const h = store.history(src.sourceId);
  const latest = h.data.latestModelGroupId;
  if (h.data.lifecycleState !== 'ACTIVE' || latest === undefined) {
    throw invalid(`Model group version history ${h.data.id} has no ACTIVE latest model group to clone`);
  }
  return { source: store.group(latest), historyId: h.data.id };
}

function fromClone(store: Store, b: CloneBody): Draft {
  const src = b.modelGroupCloneSourceDetails;
  const { source, historyId } = cloneSource(store, b);
  if (source.data.lifecycleState !== 'ACTIVE') {
    throw invalid(
      `The clone source model group ${source.data.id} is ${source.data.lifecycleState}, not ACTIVE`,
    );
  }
  const modify = src.modifyModelGroupDetails ?? {};
  const details = copy(modify.modelGroupDetails ?? source.data.modelGroupDetails);
  const members = copy(source.data.memberModelEntries.memberModelDetails);
  for (const [i, item] of (src.patchModelGroupMemberModelDetails?.items ?? []).entries()) {
    const at = `patchModelGroupMemberModelDetails.items[${i}]`;
    for (const v of item.values) {
      const idx = members.findIndex((m) => m.modelId === v.modelId);
      if (item.operation === 'INSERT') {
        if (idx >= 0) throw invalid(`${at}: model ${v.modelId} is already a member`);
        if (v.inferenceKey !== undefined && members.some((m) => m.inferenceKey === v.inferenceKey)) {
          throw invalid(`${at}: inference key '${v.inferenceKey}' is already used`);
        }
        members.push(copy(v));
        continue;
      }
      const current = members[idx];
      if (!current) throw invalid(`${at}: model ${v.modelId} is not a member, it cannot be removed`);
      if (v.inferenceKey !== undefined && v.inferenceKey !== current.inferenceKey) {
        throw invalid(
          `${at}: model ${v.modelId} has inference key '${current.inferenceKey ?? ''}', not '${v.inferenceKey}'`,
        );
      }
      if (details.type === 'STACKED' && details.baseModelId === v.modelId) {
        throw invalid(`${at}: the base model ${v.modelId} cannot be removed from a STACKED group`);
      }
      members.splice(idx, 1);
    }
  }
  const d: Draft = {
    compartmentId: b.compartmentId,
    projectId: b.projectId,
    createType: 'CLONE',
    details,
    members,
    sourceModelGroupId: source.data.id,
  };
  return Object.assign(d, {
    displayName: modify.displayName ?? source.data.displayName,
    description: modify.description ?? source.data.description,
    freeformTags: modify.freeformTags ?? source.data.freeformTags,
    definedTags: modify.definedTags ?? source.data.definedTags,
    versionLabel: modify.versionLabel,
    historyId: modify.modelGroupVersionHistoryId ?? historyId,
  });
}

export function createModelGroup(store: Store, call: Call): Reply {
  const body = validated<CreateBody | CloneBody>(bodyOf(call), CREATE_OR_CLONE);
  const d = body.createType === 'CREATE' ? fromCreate(body) : fromClone(store, body);
  checkMembers(store, d.details, d.members);
  store.checkLimits('modelGroups', d.compartmentId);
  const now = store.now();
  const group: ModelGroup = {
    id: store.ocid('datasciencemodelgroup'),
    compartmentId: d.compartmentId,
    projectId: d.projectId,
    displayName: d.displayName ?? defaultName('modelgroup', now),
    modelGroupDetails: copy(d.details),
    memberModelEntries: { memberModelDetails: copy(d.members) },
    freeformTags: copy(d.freeformTags ?? {}),
    definedTags: copy(d.definedTags ?? {}),
    systemTags: {},
    lifecycleState: 'CREATING',
    timeCreated: store.nowIso(),
    timeUpdated: store.nowIso(),
    createdBy: call.principal,
    createType: d.createType,
  };
  if (d.description !== undefined) group.description = d.description;
  if (d.versionLabel !== undefined) group.versionLabel = d.versionLabel;
  if (d.sourceModelGroupId !== undefined) group.sourceModelGroupId = d.sourceModelGroupId;
  if (d.historyId !== undefined) attachHistory(store, group, d.historyId);
  const rec: GroupRecord = { data: group, etag: newEtag(), seq: store.nextSeq() };
  store.groups.set(group.id, rec);
  store.created.modelGroups++;
  const work = startWork(store, {
    operationType: 'MODEL_GROUP_CREATE',
    compartmentId: group.compartmentId,
    entityType: 'modelGroup',
    identifier: group.id,
    collection: 'modelGroups',
    actionType: 'CREATED',
    delayMs: store.delays.groupCreateMs,
    finish: () => {
      if (group.lifecycleState !== 'CREATING') return `model group ${group.id} went ${group.lifecycleState}`;
      if (store.failingGroupCreates.count > 0) {
        store.failingGroupCreates.count--;
        group.lifecycleState = 'FAILED';
        group.lifecycleDetails = store.failingGroupCreates.details;
        touch(rec, store.nowIso());
        return store.failingGroupCreates.details;
      }
      group.lifecycleState = 'ACTIVE';
      touch(rec, store.nowIso());
      return undefined;
    },
    cancel: () => {
      group.lifecycleState = 'FAILED';
      group.lifecycleDetails = 'Creation was canceled';
      touch(rec, store.nowIso());
    },
    fail: (message) => {
      group.lifecycleState = 'FAILED';
      group.lifecycleDetails = message;
      touch(rec, store.nowIso());
    },
  });
  return {
    status: 200,
    body: copy(group),
    headers: { etag: rec.etag, 'opc-work-request-id': work.data.id },
  };
}

export function getModelGroup(store: Store, call: Call): Reply {
  const seen = store.read(store.group(call.params.id ?? ''));
  return { status: 200, body: copy(seen.data), headers: { etag: seen.etag } };
}

export function updateModelGroup(store: Store, call: Call): Reply {
  const raw = bodyOf(call);
  const rec = store.group(call.params.id ?? '');
  checkIfMatch(call.ifMatch, rec, `model group ${rec.data.id}`);
  const immutable = Object.keys(raw).filter((k) => !(k in UPDATE_FIELDS));
  if (immutable.length > 0) {
    throw invalid(
      `Model groups are immutable: ${immutable.join(', ')} cannot be updated; create a new group (CREATE or CLONE) instead`,
    );
  }
  const body = validated<UpdateBody>(raw, UPDATE);
  const g = rec.data;
  if (g.lifecycleState !== 'ACTIVE' && g.lifecycleState !== 'INACTIVE') {
    throw incorrectState(
      `Model group ${g.id} is ${g.lifecycleState}; only an ACTIVE or INACTIVE group can be updated`,
    );
  }
  if (
    body.modelGroupVersionHistoryId !== undefined &&
    body.modelGroupVersionHistoryId !== g.modelGroupVersionHistoryId
  ) {
    attachHistory(store, g, body.modelGroupVersionHistoryId);
  }
  if (body.displayName !== undefined) g.displayName = body.displayName;
  if (body.description !== undefined) g.description = body.description;
  if (body.versionLabel !== undefined) g.versionLabel = body.versionLabel;
  if (body.freeformTags !== undefined) g.freeformTags = copy(body.freeformTags);
  if (body.definedTags !== undefined) g.definedTags = copy(body.definedTags);
  touch(rec, store.nowIso());
  return { status: 200, body: copy(g), headers: { etag: rec.etag } };
}

function inUse(store: Store, id: string): void {
  const users = store.deploymentsUsing(id);
  if (users.length > 0) {
    const names = users.map((d) => `${d.data.id} (${d.data.lifecycleState})`).join(', ');
    throw incorrectState(`Model group ${id} is used by model deployment ${names}`);
  }
}

export function deleteModelGroup(store: Store, call: Call): Reply {
  const rec = store.group(call.params.id ?? '');
  const g = rec.data;
  checkIfMatch(call.ifMatch, rec, `model group ${g.id}`);
  if (g.lifecycleState === 'CREATING' || g.lifecycleState === 'DELETING' || g.lifecycleState === 'DELETED') {
    throw incorrectState(`Model group ${g.id} is ${g.lifecycleState} and cannot be deleted`);
  }
  inUse(store, g.id);
  const previous = g.lifecycleState;
  g.lifecycleState = 'DELETING';
  touch(rec, store.nowIso());
  const work = startWork(store, {
    operationType: 'MODEL_GROUP_DELETE',
    compartmentId: g.compartmentId,
    entityType: 'modelGroup',
    identifier: g.id,
    collection: 'modelGroups',
    actionType: 'DELETED',
    delayMs: store.delays.groupDeleteMs,
    finish: () => {
      if (g.lifecycleState !== 'DELETING') return `model group ${g.id} went ${g.lifecycleState}`;
      g.lifecycleState = 'DELETED';
      touch(rec, store.nowIso());
      return undefined;
    },
    cancel: () => {
      g.lifecycleState = previous;
      touch(rec, store.nowIso());
    },
  });
  return { status: 204, headers: { 'opc-work-request-id': work.data.id } };
}

function setActive(store: Store, call: Call, active: boolean): Reply {
  const rec = store.group(call.params.id ?? '');
  const g = rec.data;
  checkIfMatch(call.ifMatch, rec, `model group ${g.id}`);
  const from = active ? 'INACTIVE' : 'ACTIVE';
  if (g.lifecycleState !== from) {
    throw incorrectState(
      `Model group ${g.id} is ${g.lifecycleState}; ${active ? 'activate' : 'deactivate'} needs ${from}`,
    );
  }
  if (!active) inUse(store, g.id);
  g.lifecycleState = active ? 'ACTIVE' : 'INACTIVE';
  touch(rec, store.nowIso());
  return { status: 200, body: copy(g), headers: { etag: rec.etag } };
}

export const activateModelGroup = (store: Store, call: Call): Reply => setActive(store, call, true);
export const deactivateModelGroup = (store: Store, call: Call): Reply => setActive(store, call, false);

function groupSummary(g: ModelGroup): unknown {
  const {
    memberModelEntries: _members,
    description: _description,
    createType: _createType,
    sourceModelGroupId: _source,
    ...summary
  } = g;
  return copy(summary);
}

const GROUP_LIST: ListSpec<ModelGroup> = {
  filters: {
    compartmentId: (g, v) => g.compartmentId === v,
    projectId: (g, v) => g.projectId === v,
    id: (g, v) => g.id === v,
    displayName: (g, v) => g.displayName === v,
    lifecycleState: (g, v) => g.lifecycleState === v,
    createdBy: (g, v) => g.createdBy === v,
    modelGroupVersionHistoryId: (g, v) => g.modelGroupVersionHistoryId === v,
  },
  enums: { lifecycleState: GROUP_STATES },
  sortBy: {
    timeCreated: (g) => g.timeCreated,
    displayName: (g) => g.displayName,
    lifecycleState: (g) => g.lifecycleState,
  },
  defaultSortBy: 'timeCreated',
};

export function listModelGroups(store: Store, call: Call): Reply {
  const items = [...store.groups.values()].flatMap((r) => {
    const item = store.listed(r);
    return item === undefined ? [] : [{ item, seq: r.seq }];
  });
  return listReply(call, items, GROUP_LIST, groupSummary);
}

interface MemberRow {
  group: ModelGroup;
  member: MemberModel;
}

/** The catalog holds only OCIDs: the rest of a model's summary is derived from its group. */
export function modelDisplayName(modelId: string): string {
  return `model-${modelId.slice(-8)}`;
}

const MEMBER_LIST: ListSpec<MemberRow> = {
  filters: {
    compartmentId: (r, v) => r.group.compartmentId === v,
    id: (r, v) => r.member.modelId === v,
    displayName: (r, v) => modelDisplayName(r.member.modelId) === v,
    lifecycleState: (_r, v) => v === 'ACTIVE',
    createdBy: (r, v) => r.group.createdBy === v,
  },
  enums: { lifecycleState: ['ACTIVE', 'DELETED', 'FAILED', 'INACTIVE'] },
  sortBy: {
    timeCreated: () => 0,
    displayName: (r) => modelDisplayName(r.member.modelId),
    lifecycleState: () => 'ACTIVE',
  },
  defaultSortBy: 'timeCreated',
};

export function listModelGroupModels(store: Store, call: Call): Reply {
  const g = store.group(call.params.id ?? '').data;
  const items = g.memberModelEntries.memberModelDetails.map((member, i) => ({
    item: { group: g, member },
    seq: i,
  }));
  return listReply(call, items, MEMBER_LIST, ({ group, member }) => ({
    id: member.modelId,
    modelId: member.modelId,
    ...(member.inferenceKey === undefined ? {} : { inferenceKey: member.inferenceKey }),
    compartmentId: group.compartmentId,
    projectId: group.projectId,
    displayName: modelDisplayName(member.modelId),
    createdBy: group.createdBy,
    timeCreated: group.timeCreated,
    timeUpdated: group.timeCreated,
    lifecycleState: 'ACTIVE',
    lifecycleDetails: '',
    category: 'USER',
    isModelByReference: false,
    freeformTags: {},
    definedTags: {},
  }));
}
