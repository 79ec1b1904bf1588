// Changes "someone in the console" makes behind the operator's back, for drift tests. They throw a
// plain Error on misuse: they are test set-up, not API calls.

import { beginDelete } from './deployment-lifecycle.ts';
import { DEPLOYMENT_STATES, groupOf } from './model-deployments.ts';
import { memberStates } from './model-states.ts';
import { type DeploymentRecord, type Store, copy, touch } from './store.ts';
import type { MemberState, ModelDeployment, ModelDeploymentState, OutOfBand } from './types.ts';

function deployment(store: Store, id: string): DeploymentRecord {
  const rec = store.deployments.get(id);
  if (!rec) throw new Error(`outOfBand: no model deployment ${id}`);
  return rec;
}

export function outOfBand(store: Store): OutOfBand {
  return {
    deleteDeployment(id: string): void {
      const rec = deployment(store, id);
      const s = rec.data.lifecycleState;
      if (s === 'DELETING' || s === 'DELETED')
        throw new Error(`outOfBand: model deployment ${id} is already ${s}`);
      beginDelete(store, rec);
    },
    updateDeployment(id: string, mutate: (d: ModelDeployment) => void): void {
      const rec = deployment(store, id);
      const next = copy(rec.data);
      mutate(next);
      if (next.id !== id) throw new Error('outOfBand.updateDeployment: the id cannot change');
      if (!store.groups.has(groupOf(next))) throw new Error(`outOfBand: no model group ${groupOf(next)}`);
      rec.data = next;
      if (next.lifecycleState === 'ACTIVE' && rec.pending === undefined) rec.servingGroupId = groupOf(next);
      touch(rec, store.nowIso());
    },
    setDeploymentState(id: string, state: ModelDeploymentState, details?: string): void {
      if (!DEPLOYMENT_STATES.includes(state)) throw new Error(`outOfBand: unknown deployment state ${state}`);
      const rec = deployment(store, id);
      rec.data.lifecycleState = state;
      if (details === undefined) delete rec.data.lifecycleDetails;
      else rec.data.lifecycleDetails = details;
      if (state === 'ACTIVE' && rec.servingGroupId === undefined) rec.servingGroupId = groupOf(rec.data);
      touch(rec, store.nowIso());
    },
    setMemberState(deploymentId: string, modelId: string, state: MemberState): void {
      const rec = deployment(store, deploymentId);
      if (!memberStates(store, rec).some((r) => r.member.modelId === modelId)) {
        throw new Error(`outOfBand: model ${modelId} is not a member of model deployment ${deploymentId}`);
      }
      rec.memberStates.set(modelId, state);
    },
    failNextGroupCreates(count: number, details: string): void {
      store.failingGroupCreates.count = count;
      store.failingGroupCreates.details = details;
    },
  };
}
