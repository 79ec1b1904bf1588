// Model deployment delete, activate and deactivate: asynchronous, each with a work request. The
// delete is shared with the out-of-band (console) delete.

import { targetInstances } from './deployment-schema.ts';
import { incorrectState } from './errors.ts';
import type { Call, Reply } from './http.ts';
import { groupOf, relatedGroup } from './model-deployments.ts';
import { type DeploymentRecord, type Store, checkIfMatch, touch } from './store.ts';
import type { WorkRecord } from './store.ts';
import { startWork } from './work-requests.ts';

/** DELETING now, DELETED after deploymentDeleteMs; an update in progress is abandoned. */
export function beginDelete(store: Store, rec: DeploymentRecord): WorkRecord {
  const previous = rec.data.lifecycleState;
  rec.data.lifecycleState = 'DELETING';
  rec.pending = undefined;
  touch(rec, store.nowIso());
  return startWork(store, {
    operationType: 'MODEL_DEPLOYMENT_DELETE',
    compartmentId: rec.data.compartmentId,
    entityType: 'modelDeployment',
    identifier: rec.data.id,
    collection: 'modelDeployments',
    actionType: 'DELETED',
    delayMs: store.delays.deploymentDeleteMs,
    finish: () => {
      const d = rec.data;
      if (d.lifecycleState !== 'DELETING') return `model deployment ${d.id} went ${d.lifecycleState}`;
      d.lifecycleState = 'DELETED';
      d.modelDeploymentSystemData.currentInstanceCount = 0;
      rec.servingGroupId = undefined;
      touch(rec, store.nowIso());
      return undefined;
    },
    cancel: () => {
      rec.data.lifecycleState = previous;
      touch(rec, store.nowIso());
    },
  });
}

export function deleteModelDeployment(store: Store, call: Call): Reply {
  const rec = store.deployment(call.params.id ?? '');
  const d = rec.data;
  checkIfMatch(call.ifMatch, rec, `model deployment ${d.id}`);
  const s = d.lifecycleState;
  if (s === 'CREATING' || s === 'UPDATING' || s === 'DELETING' || s === 'DELETED') {
    throw incorrectState(`Model deployment ${d.id} is ${s} and cannot be deleted now`);
  }
  const work = beginDelete(store, rec);
  return { status: 202, headers: { 'opc-work-request-id': work.data.id } };
}

function toggle(store: Store, call: Call, activate: boolean): Reply {
  const rec = store.deployment(call.params.id ?? '');
  const d = rec.data;
  checkIfMatch(call.ifMatch, rec, `model deployment ${d.id}`);
  const from = d.lifecycleState;
  const allowed = activate ? from === 'INACTIVE' : from === 'ACTIVE' || from === 'NEEDS_ATTENTION';
  if (!allowed) {
    throw incorrectState(
      `Model deployment ${d.id} is ${from}; ${activate ? 'activate needs INACTIVE' : 'deactivate needs ACTIVE or NEEDS_ATTENTION'}`,
    );
  }
  d.lifecycleState = 'UPDATING';
  touch(rec, store.nowIso());
  const work = startWork(store, {
    operationType: activate ? 'MODEL_DEPLOYMENT_ACTIVATE' : 'MODEL_DEPLOYMENT_DEACTIVATE',
    compartmentId: d.compartmentId,
    entityType: 'modelDeployment',
    identifier: d.id,
    collection: 'modelDeployments',
    actionType: 'UPDATED',
    related: [relatedGroup(groupOf(d))],
    delayMs: store.delays.deploymentUpdateMs,
    finish: () => {
      const now = rec.data;
      if (now.lifecycleState !== 'UPDATING') return `model deployment ${now.id} went ${now.lifecycleState}`;
      now.lifecycleState = activate ? 'ACTIVE' : 'INACTIVE';
      delete now.lifecycleDetails;
      now.modelDeploymentSystemData.currentInstanceCount = activate
        ? targetInstances(now.modelDeploymentConfigurationDetails.infrastructureConfigurationDetails)
        : 0;
      rec.servingGroupId = activate ? groupOf(now) : rec.servingGroupId;
      touch(rec, store.nowIso());
      return undefined;
    },
    cancel: () => {
      rec.data.lifecycleState = from;
      touch(rec, store.nowIso());
    },
  });
  return { status: 202, headers: { 'opc-work-request-id': work.data.id } };
}

export const activateModelDeployment = (store: Store, call: Call): Reply => toggle(store, call, true);
export const deactivateModelDeployment = (store: Store, call: Call): Reply => toggle(store, call, false);
