// ListModelDeploymentModelStates: one row per member of the deployed group. Members that an update in
// progress adds are INCONSISTENT until it completes; states set out of band win.

import type { Call, Reply } from './http.ts';
import { type ListSpec, listReply } from './lists.ts';
import { groupOf } from './model-deployments.ts';
import { modelDisplayName } from './model-groups.ts';
import type { DeploymentRecord, Store } from './store.ts';
import type { MemberModel, MemberState, ModelDeployment } from './types.ts';

export interface MemberStateRow {
  deployment: ModelDeployment;
  projectId: string;
  member: MemberModel;
  state: MemberState;
}

function restingState(d: ModelDeployment): MemberState {
  switch (d.lifecycleState) {
    case 'ACTIVE':
    case 'UPDATING':
    case 'NEEDS_ATTENTION':
      return 'SUCCESS';
    case 'FAILED':
      return 'FAILED';
    default:
      return 'INCONSISTENT';
  }
}

export function memberStates(store: Store, rec: DeploymentRecord): MemberStateRow[] {
  const d = rec.data;
  const serving = store.group(rec.servingGroupId ?? groupOf(d)).data;
  const rows: MemberStateRow[] = [];
  const add = (member: MemberModel, projectId: string, state: MemberState): void => {
    rows.push({ deployment: d, projectId, member, state: rec.memberStates.get(member.modelId) ?? state });
  };
  for (const m of serving.memberModelEntries.memberModelDetails) add(m, serving.projectId, restingState(d));
  if (rec.pending !== undefined && groupOf(rec.pending) !== serving.id) {
    const next = store.group(groupOf(rec.pending)).data;
    const have = new Set(serving.memberModelEntries.memberModelDetails.map((m) => m.modelId));
    for (const m of next.memberModelEntries.memberModelDetails) {
      if (!have.has(m.modelId)) add(m, next.projectId, 'INCONSISTENT');
    }
  }
  return rows;
}

const STATE_LIST: ListSpec<MemberStateRow> = {
  filters: {
    compartmentId: (r, v) => r.deployment.compartmentId === v,
    projectId: (r, v) => r.projectId === v,
    displayName: (r, v) => modelDisplayName(r.member.modelId) === v,
    inferenceKey: (r, v) => r.member.inferenceKey === v,
    modelId: (r, v) => r.member.modelId === v,
  },
  sortBy: { timeCreated: () => 0, displayName: (r) => modelDisplayName(r.member.modelId) },
  defaultSortBy: 'timeCreated',
};

export function listModelDeploymentModelStates(store: Store, call: Call): Reply {
  const rec = store.deployment(call.params.id ?? '');
  const items = memberStates(store, rec).map((item, seq) => ({ item, seq }));
  return listReply(call, items, STATE_LIST, (r) => ({
    modelId: r.member.modelId,
    projectId: r.projectId,
    displayName: modelDisplayName(r.member.modelId),
    inferenceKey: r.member.inferenceKey ?? '',
    state: r.state,
    freeformTags: {},
    definedTags: {},
  }));
}
