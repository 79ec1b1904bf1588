/**
 * Pure: the one thing a pass does about what it saw. `decide` reads a Snapshot and the spec and
 * returns one Action (at most one OCI call), with what status.oci says whatever that call answers.
 * The next pass sees the call's effect and decides again: a level-triggered loop, one step a pass.
 */
import type * as ds from 'oci-datascience';
import type { StackedDeployment } from '../../api/v1alpha1/deployment.ts';
import type { StackedModelGroup } from '../../api/v1alpha1/modelgroup.ts';
import {
  cloneGroupDetails,
  configDigest,
  configDrift,
  createDeploymentDetails,
  createGroupDetails,
  deployedGroupId,
  desiredGroup,
  liveUpdateDetails,
  ociSpec,
  retryToken,
  versionHistoryDetails,
  versionLabel,
  zdtUpdateDetails,
  type DesiredGroup,
} from './desired.ts';
import { USABLE_GROUP } from './observe.ts';
import { stateOf, type GroupView, type OciStatus, type Snapshot } from './snapshot.ts';

export interface DesiredSpec {
  d: StackedDeployment;
  group: StackedModelGroup;
}

/** Each create carries a deterministic opc-retry-token: a replay after a crash makes nothing twice. */
export type Action =
  | { kind: 'createHistory'; body: ds.models.CreateModelGroupVersionHistoryDetails; token: string }
  | {
      kind: 'createGroup';
      body: ds.models.CreateModelGroupDetails | ds.models.CloneModelGroupDetails;
      token: string;
      /** "CREATE", or "CLONE of <source>". */
      how: string;
      adapters: number;
    }
  | {
      kind: 'createDeployment';
      body: ds.models.CreateModelDeploymentDetails;
      token: string;
      groupId: string;
      /** The config digest recorded once OCI accepted it. */
      digest: string;
    }
  | {
      kind: 'liveUpdate';
      modelDeploymentId: string;
      groupId: string;
      body: ds.models.UpdateModelDeploymentDetails;
      ifMatch?: string | undefined;
    }
  | {
      kind: 'zdtUpdate';
      modelDeploymentId: string;
      groupId: string;
      body: ds.models.UpdateModelDeploymentDetails;
      ifMatch?: string | undefined;
      digest: string;
      /** What changed, for the event and the condition. */
      what: string;
    }
  | { kind: 'activate'; modelDeploymentId: string; ifMatch?: string | undefined }
  /** A group of this spec FAILED: deleted, and the failure reported; the next poll makes a new one. */
  | { kind: 'dropFailedGroup'; groupId: string; reason: 'ModelGroupFailed'; message: string }
  /** Settled, and one superseded group beyond retainModelGroups goes. */
  | { kind: 'collectGarbage'; groupId: string }
  /** OCI is working (or something outside us is): look again at the progress interval. */
  | { kind: 'wait'; reason: string; message: string }
  | { kind: 'settled' }
  | { kind: 'problem'; reason: string; message: string };

export interface Decision {
  action: Action;
  /** status.oci before the action's own answer (a work request id, a new deployment id) is added. */
  oci: OciStatus;
  /** The deployment serves the group the spec wants. */
  onTargetGroup: boolean;
  /** Fields changed in OCI behind our back and brought back now (logged). */
  drift?: readonly string[] | undefined;
}

/** Groups a cleanup may delete now; CREATING and DELETING ones are waited for. */
export const DELETABLE_GROUP = new Set(['ACTIVE', 'FAILED', 'INACTIVE']);
const SERVING_STATES = new Set(['ACTIVE', 'NEEDS_ATTENTION']);
/** status.oci.modelGroupHistory's maxItems in the CRD: a longer list would fail the status write. */
const HISTORY_MAX = 64;

const wait = (reason: string, message: string): Action => ({ kind: 'wait', reason, message });
const problem = (reason: string, message: string): Action => ({ kind: 'problem', reason, message });

export function decide(s: Snapshot, spec: DesiredSpec): Decision {
  const { d, group } = spec;
  const oci = ociSpec(d);
  const observeOnly = oci.driftPolicy === 'Observe';
  const record: OciStatus = { ...s.previous };
  const md = s.deployment?.md;
  if (md !== undefined) {
    record.modelDeploymentId = md.id;
    record.lifecycleState = stateOf(md);
  }
  const out = (action: Action, onTargetGroup = false): Decision => ({ action, oci: record, onTargetGroup });
  // Preflight refuses a model without its OCID before the backend runs.
  const want = desiredGroup(group);
  if (want === undefined)
    return out(problem('ModelIdMissing', 'the oci backend needs modelId on every model'));

  const wr = s.workRequest;
  if (wr !== undefined) {
    if (wr.phase === 'running') {
      return out(
        wait('WorkRequestInProgress', `${wr.operationType} ${String(wr.percentComplete)}% done (${wr.id})`),
      );
    }
    delete record.workRequestId;
    if (wr.phase === 'failed') {
      // What it carried did not happen: the next pass must see a spec not yet applied (and retry
      // it), not an OCI that drifted from what we applied.
      delete record.appliedConfig;
      return out(
        problem(
          'WorkRequestFailed',
          `${wr.operationType} failed: ${wr.errors === '' ? 'no details' : wr.errors}`,
        ),
      );
    }
  }
  if (md === undefined && record.modelDeploymentId !== undefined && observeOnly) {
    return out(
      problem(
        'DeletedInOCI',
        `OCI model deployment ${record.modelDeploymentId} was deleted outside the operator; driftPolicy Observe leaves it so`,
      ),
    );
  }
  if (md !== undefined && stateOf(md) === 'DELETING') {
    return out(
      wait('DeploymentDeleting', `OCI model deployment ${md.id} is being deleted outside the operator`),
    );
  }

  const ours = s.groups.filter((g) => g.ours && g.state !== 'DELETED');
  const sameSet = s.groups.filter((g) => g.ours && g.membersHash === want.hash);
  const target = sameSet.find((g) => USABLE_GROUP.has(g.state));
  if (s.historyId !== undefined) record.modelGroupVersionHistoryId = s.historyId;
  // Every group we made that nothing serves or will serve: recorded, so later passes read them by
  // id, and the settled pass deletes those beyond retainModelGroups. `serving` is the group the
  // deployment serves, or will once this pass's update is accepted.
  const recordHistory = (serving: string | undefined) => {
    if (s.groupsRead !== 'all') return;
    const ids = superseded(ours, [serving, target?.id], want);
    if (ids.length > 0) record.modelGroupHistory = ids;
    else delete record.modelGroupHistory;
  };
  recordHistory(record.modelGroupId ?? (md === undefined ? undefined : deployedGroupId(md)));

  if (target === undefined) {
    const failed = sameSet.find((g) => g.state === 'FAILED');
    if (failed !== undefined) {
      return out({
        kind: 'dropFailedGroup',
        groupId: failed.id,
        reason: 'ModelGroupFailed',
        message: `OCI model group ${failed.id} FAILED (${failed.details ?? 'no details'}); deleted, retried at the next poll`,
      });
    }
    if (s.historyId === undefined) {
      const body = versionHistoryDetails(d);
      return out({
        kind: 'createHistory',
        body,
        token: retryToken(d.metadata.uid ?? '', 'model-group-version-history', body),
      });
    }
    return out(createGroup(s, spec, want, sameSet, s.historyId));
  }
  if (target.state === 'CREATING') {
    return out(wait('CreatingModelGroup', `OCI model group ${target.id} is CREATING`));
  }

  if (md === undefined) {
    const body = createDeploymentDetails(d, group, target.id);
    // The last deployment id salts the token: a deployment deleted in OCI is recreated by a new
    // call, not answered with the replay of the first one.
    const token = retryToken(d.metadata.uid ?? '', 'model-deployment', body, record.modelDeploymentId ?? '');
    return out({ kind: 'createDeployment', body, token, groupId: target.id, digest: configDigest(d, group) });
  }
  const state = stateOf(md);
  const deployedId = deployedGroupId(md);
  const onTarget = deployedId === target.id;
  const outOn = (action: Action): Decision => out(action, onTarget);

  if (state === 'CREATING' || state === 'UPDATING') {
    return outOn(
      wait(`Deployment${state === 'CREATING' ? 'Creating' : 'Updating'}`, `OCI model deployment is ${state}`),
    );
  }
  if (state === 'FAILED') {
    return outOn(problem('DeploymentFailed', md.lifecycleDetails ?? `OCI model deployment ${md.id} FAILED`));
  }
  if (md.compartmentId !== oci.compartmentId || md.projectId !== oci.projectId) {
    return outOn(
      problem(
        'ImmutableFieldChanged',
        `OCI model deployment ${md.id} lives in another compartment or project than the spec names; OCI cannot move it by update: delete and recreate the StackedDeployment`,
      ),
    );
  }
  if (state === 'INACTIVE') {
    if (observeOnly) {
      return outOn(
        problem('DeploymentInactive', `OCI model deployment ${md.id} was deactivated outside the operator`),
      );
    }
    return outOn({ kind: 'activate', modelDeploymentId: md.id, ifMatch: s.deployment?.etag });
  }
  if (!SERVING_STATES.has(state))
    return outOn(wait(`Deployment${state}`, `OCI model deployment is ${state}`));

  const digest = configDigest(d, group);
  const drift = configDrift(md, d, group);
  const groupMoved = !onTarget;
  // The spec is what we last applied, yet OCI differs: someone changed it there.
  const outOfBand =
    record.appliedConfig === digest &&
    (drift.length > 0 || (groupMoved && deployedId !== record.modelGroupId));
  const what = [...drift, ...(groupMoved ? ['modelGroup'] : [])].join(', ');
  if (outOfBand && observeOnly) {
    return outOn(
      problem(
        'DriftDetected',
        `OCI model deployment ${md.id} was changed outside the operator (${what}); driftPolicy Observe leaves it so`,
      ),
    );
  }
  const changed = (action: Action): Decision => {
    // The group served until now is superseded once OCI takes the update.
    recordHistory(target.id);
    return { ...outOn(action), drift: outOfBand ? drift : undefined };
  };
  if (groupMoved) {
    const deployed = s.groups.find((g) => g.id === deployedId);
    if (deployed?.baseModelId === want.baseModelId && drift.length === 0) {
      return changed({
        kind: 'liveUpdate',
        modelDeploymentId: md.id,
        groupId: target.id,
        body: liveUpdateDetails(target.id),
        ifMatch: s.deployment?.etag,
      });
    }
  }
  if (groupMoved || drift.length > 0) {
    // A new base, or infrastructure and container changes: LIVE cannot carry them, ZDT can.
    return changed({
      kind: 'zdtUpdate',
      modelDeploymentId: md.id,
      groupId: target.id,
      body: zdtUpdateDetails(d, group, target.id),
      ifMatch: s.deployment?.etag,
      digest,
      what,
    });
  }

  record.modelGroupId = target.id;
  record.appliedConfig = digest;
  if (s.groupsRead !== 'all') return outOn({ kind: 'settled' });
  // Superseded groups: the newest retainModelGroups stay for rollback, the rest go, one a pass.
  const older = ours.filter((g) => g.id !== target.id);
  const doomed = older.slice(oci.retainModelGroups).find((g) => DELETABLE_GROUP.has(g.state));
  recordHistory(target.id);
  return outOn(doomed === undefined ? { kind: 'settled' } : { kind: 'collectGarbage', groupId: doomed.id });
}

/**
 * Our groups still there that neither serve nor are made for this spec, newest first. DELETING ones
 * are on their way out and need no more care.
 */
function superseded(
  ours: readonly GroupView[],
  current: readonly (string | undefined)[],
  want: DesiredGroup,
): string[] {
  return ours
    .filter((g) => !current.includes(g.id) && g.membersHash !== want.hash && g.state !== 'DELETING')
    .map((g) => g.id)
    .slice(0, HISTORY_MAX);
}

/** CLONE of the deployed group when it has the same base (OCI keeps the lineage), else CREATE. */
function createGroup(
  s: Snapshot,
  spec: DesiredSpec,
  want: DesiredGroup,
  sameSet: readonly GroupView[],
  historyId: string,
): Action {
  const { d, group } = spec;
  const md = s.deployment?.md;
  const sourceId = md === undefined ? undefined : deployedGroupId(md);
  const source = s.groups.find((g) => g.id === sourceId);
  const history = { historyId, versionLabel: versionLabel(group) };
  const clone =
    source?.state === 'ACTIVE' && source.members !== undefined
      ? cloneGroupDetails(
          d,
          group,
          want,
          { id: source.id, baseModelId: source.baseModelId ?? '', members: source.members },
          history,
        )
      : undefined;
  const body = clone ?? createGroupDetails(d, group, want, history);
  // Groups of this set that are gone salt the token: a new attempt is a new create, not the
  // replay of one OCI already answered (tokens live 24 h). So does the StackedModelGroup's uid,
  // for a group deleted and made again with the same generation.
  const salt = [group.metadata.uid ?? '', ...sameSet.map((g) => g.id).sort()].join(',');
  return {
    kind: 'createGroup',
    body,
    token: retryToken(d.metadata.uid ?? '', 'model-group', body, salt),
    how: clone === undefined ? 'CREATE' : `CLONE of ${source?.id ?? ''}`,
    adapters: want.members.length - 1,
  };
}
