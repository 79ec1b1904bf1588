// Changes "someone in the console" makes behind the operator's back, for drift tests. They throw a
// plain Error on misuse: they are test set-up, not API calls.

import { beginDelete } from './deployment-lifecycle.ts';
import { DEPLOYMENT_STATES, groupOf } from './model-deployments.ts';
import { OPERATIONS } from './routes.ts';
import { OPERATION_TYPES } from './work-requests.ts';
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
    failDeployment(id, { state, details, recoverAfterMs }): void {
      const rec = deployment(store, id);
      const s = rec.data.lifecycleState;
      if (s !== 'ACTIVE' && s !== 'NEEDS_ATTENTION' && s !== 'FAILED') {
        throw new Error(`outOfBand.failDeployment: model deployment ${id} is ${s}, not serving`);
      }
      rec.data.lifecycleState = state;
      rec.data.lifecycleDetails = details;
      touch(rec, store.nowIso());
      if (recoverAfterMs === undefined) return;
      const etag = rec.etag;
      store.schedule(recoverAfterMs, () => {
        // Only if nothing (an update, a delete, the caller) moved it meanwhile.
        if (rec.etag !== etag) return;
        rec.data.lifecycleState = 'ACTIVE';
        delete rec.data.lifecycleDetails;
        touch(rec, store.nowIso());
      });
    },
    failNextWork(operationType, { message, code = 'InternalServerError', count = 1 }): void {
      if (!(OPERATION_TYPES as readonly string[]).includes(operationType)) {
        throw new Error(`outOfBand.failNextWork: unknown operation type ${operationType}`);
      }
      if (!Number.isInteger(count) || count < 1) throw new Error(`outOfBand.failNextWork: count ${count}`);
      store.failingWork.push({ operationType, remaining: count, code, message });
    },
    beforeNext(operation, change): void {
      // A misspelt operation would make a race test pass vacuously.
      if (!OPERATIONS.has(operation)) throw new Error(`outOfBand.beforeNext: unknown operation ${operation}`);
      store.races.push({ operation, change });
    },
  };
}
