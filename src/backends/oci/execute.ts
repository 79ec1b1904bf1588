/**
 * The one OCI call an Action stands for, through the client the backend was given (fenced by the
 * lease and counted by the metrics wrapper), and what its answer adds to status. Errors other than
 * those an action expects (a 404 or 409 on a delete) are thrown for the backend to classify.
 */
import type * as ds from 'oci-datascience';
import type { StackedDeployment } from '../../api/v1alpha1/deployment.ts';
import type { EventRecorder } from '../../runtime/events.ts';
import type { Logger } from '../../runtime/logger.ts';
import type { Action } from './decide.ts';
import { isOciNotFound, ociFailure } from './errors.ts';
import { stateOf, type OciStatus } from './snapshot.ts';
import type { Step } from './status.ts';

export interface Outcome {
  step: Step;
  /** Fields the call's answer sets in status.oci. */
  oci: Partial<OciStatus>;
  /** A deployment the call just created, shown at once. */
  created?: ds.models.ModelDeployment | undefined;
  /** Look again soon (OCI works, or more cleanup is due) rather than at the poll interval. */
  soon: boolean;
}

export interface ExecuteContext {
  client: ds.DataScienceClient;
  d: StackedDeployment;
  events: EventRecorder;
  log: Logger;
  /** status.oci before this pass: a create that replaces a deployment says so. */
  previous: Readonly<OciStatus>;
}

const SERVING_MESSAGE = 'the OCI resources match the spec';

const progressing = (reason: string, message: string, oci: Partial<OciStatus> = {}): Outcome => ({
  step: { kind: 'progressing', reason, message },
  oci,
  soon: true,
});

export async function execute(action: Action, ctx: ExecuteContext): Promise<Outcome> {
  const { client, d, events, log } = ctx;
  switch (action.kind) {
    case 'wait':
      return progressing(action.reason, action.message);
    case 'problem':
      return {
        step: { kind: 'problem', reason: action.reason, message: action.message },
        oci: {},
        soon: false,
      };
    case 'settled':
      return { step: { kind: 'settled', reason: 'Serving', message: SERVING_MESSAGE }, oci: {}, soon: false };
    case 'createHistory': {
      const res = await client.createModelGroupVersionHistory({
        createModelGroupVersionHistoryDetails: action.body,
        opcRetryToken: action.token,
      });
      const id = res.modelGroupVersionHistory.id;
      log.info('created OCI model group version history', { modelGroupVersionHistoryId: id });
      return progressing('CreatingVersionHistory', `OCI model group version history ${id} created`, {
        modelGroupVersionHistoryId: id,
      });
    }
    case 'createGroup': {
      const res = await client.createModelGroup({
        createBaseModelGroupDetails: action.body,
        opcRetryToken: action.token,
      });
      const id = res.modelGroup.id;
      log.info('created OCI model group', { modelGroupId: id, how: action.how });
      events.record(
        d,
        'Normal',
        'ModelGroupCreated',
        `OCI model group ${id} (${action.how}) for ${String(action.adapters)} adapters`,
      );
      return progressing('CreatingModelGroup', `OCI model group ${id} is CREATING`, {
        workRequestId: res.opcWorkRequestId,
      });
    }
    case 'createDeployment': {
      const res = await client.createModelDeployment({
        createModelDeploymentDetails: action.body,
        opcRetryToken: action.token,
      });
      const md = res.modelDeployment;
      const before = ctx.previous.modelDeploymentId;
      const recreated = before !== undefined && before !== md.id;
      log.info('created OCI model deployment', { modelDeploymentId: md.id, recreated });
      events.record(
        d,
        recreated ? 'Warning' : 'Normal',
        recreated ? 'DeploymentRecreated' : 'DeploymentCreated',
        `OCI model deployment ${md.id} on model group ${action.groupId}`,
      );
      return {
        ...progressing('DeploymentCreating', `OCI model deployment ${md.id} is CREATING`, {
          modelDeploymentId: md.id,
          lifecycleState: stateOf(md),
          modelGroupId: action.groupId,
          appliedConfig: action.digest,
          workRequestId: res.opcWorkRequestId,
        }),
        created: md,
      };
    }
    case 'liveUpdate': {
      const res = await client.updateModelDeployment({
        modelDeploymentId: action.modelDeploymentId,
        updateModelDeploymentDetails: action.body,
        ifMatch: action.ifMatch,
      });
      events.record(
        d,
        'Normal',
        'LiveUpdate',
        `LIVE update of OCI model deployment ${action.modelDeploymentId} to model group ${action.groupId}`,
      );
      return progressing('LiveUpdating', `LIVE update to OCI model group ${action.groupId}`, {
        workRequestId: res.opcWorkRequestId,
        modelGroupId: action.groupId,
      });
    }
    case 'zdtUpdate': {
      const res = await client.updateModelDeployment({
        modelDeploymentId: action.modelDeploymentId,
        updateModelDeploymentDetails: action.body,
        ifMatch: action.ifMatch,
      });
      events.record(
        d,
        'Normal',
        'Updating',
        `ZDT update of OCI model deployment ${action.modelDeploymentId}: ${action.what}`,
      );
      return progressing('Updating', `ZDT update of ${action.what}`, {
        workRequestId: res.opcWorkRequestId,
        modelGroupId: action.groupId,
        appliedConfig: action.digest,
      });
    }
    case 'activate': {
      const res = await client.activateModelDeployment({
        modelDeploymentId: action.modelDeploymentId,
        ifMatch: action.ifMatch,
      });
      events.record(
        d,
        'Normal',
        'Activating',
        `activating OCI model deployment ${action.modelDeploymentId}, found INACTIVE`,
      );
      return progressing('Activating', `activating OCI model deployment ${action.modelDeploymentId}`, {
        workRequestId: res.opcWorkRequestId,
      });
    }
    case 'dropFailedGroup': {
      if (await deleteGroup(client, action.groupId)) {
        log.info('deleted FAILED OCI model group', { modelGroupId: action.groupId });
      }
      // Reported, and retried at the poll interval: no hot loop on a model OCI cannot load.
      return {
        step: { kind: 'problem', reason: action.reason, message: action.message },
        oci: {},
        soon: false,
      };
    }
    case 'collectGarbage': {
      const deleted = await deleteGroup(client, action.groupId);
      if (deleted) {
        log.info('deleted superseded OCI model group', { modelGroupId: action.groupId });
        events.record(
          d,
          'Normal',
          'ModelGroupDeleted',
          `deleted superseded OCI model group ${action.groupId}`,
        );
      }
      // The deployment serves what the spec asks: the cleanup does not hold Ready back. More of it
      // comes soon; a group still in use waits for the poll.
      return {
        step: { kind: 'settled', reason: 'Serving', message: SERVING_MESSAGE },
        oci: {},
        soon: deleted,
      };
    }
  }
}

/** False when the group was gone already or is in use (ours mid-update, or someone else's). */
async function deleteGroup(client: ds.DataScienceClient, modelGroupId: string): Promise<boolean> {
  try {
    await client.deleteModelGroup({ modelGroupId });
    return true;
  } catch (err) {
    if (isOciNotFound(err) || ociFailure(err).status === 409) return false;
    throw err;
  }
}
