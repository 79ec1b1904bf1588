/**
 * The oci backend's reconcile step for one StackedDeployment. Each pass observes OCI (the model
 * deployment, the model groups tagged with this object's uid, the work request in flight), takes at
 * most one mutating step towards the spec, and reports. Creates carry deterministic retry tokens and
 * the uid tag, so a crash anywhere adopts what the last run made instead of making it twice.
 */
import type * as ds from 'oci-datascience';
import type { DeploymentStatus, StackedDeployment } from '../../api/v1alpha1/deployment.ts';
import type { StackedModelGroup } from '../../api/v1alpha1/modelgroup.ts';
import { systemWallClock, type WallClock } from '../../runtime/clock.ts';
import type { EventRecorder } from '../../runtime/events.ts';
import type { Logger } from '../../runtime/logger.ts';
import { OciAuthError } from '../../oci/auth.ts';
import type { Backend, BackendContext, BackendResult, FinalizeResult } from '../backend.ts';
import type { Verdict } from '../../runtime/ready.ts';
import { ociPreflight } from './preflight.ts';
import type { ClientFactory } from './credentials.ts';
import {
  TAG_MEMBERS,
  TAG_UID,
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
  type GroupMember,
} from './desired.ts';
import { OciTransientError, isOciNotFound, ociFailure } from './errors.ts';
import { ociStatus, type Step } from './status.ts';

export interface OciBackendOptions {
  clients: ClientFactory;
  events: EventRecorder;
  /** How often a settled deployment is read again (drift, model states). */
  pollIntervalMs: number;
  /** How often OCI is polled while it works (CREATING, UPDATING, a work request). */
  progressIntervalMs: number;
  clock?: WallClock;
}

type OciStatus = NonNullable<DeploymentStatus['oci']>;

/** What one pass learned; kept when a later call fails, so the status still says what runs. */
interface Pass {
  oci: OciStatus;
  md?: ds.models.ModelDeployment;
  etag?: string;
  onTargetGroup: boolean;
  modelStates?: Map<string, string>;
  /** The deployment was looked for in OCI this pass (found or not). */
  observed: boolean;
  protect: () => Promise<void>;
}

/**
 * The largest page OCI's lists allow: the records are filtered by our uid tag on this side (the list
 * APIs cannot filter by tag), so fewer, larger pages cost the least per reconcile.
 */
const LIST_PAGE = 100;

const SERVING_STATES = new Set(['ACTIVE', 'NEEDS_ATTENTION']);
/** Groups that can still be (or become) the one deployed. */
const USABLE_GROUP = new Set(['CREATING', 'ACTIVE']);
/** Groups a cleanup may delete now; CREATING and DELETING ones are waited for. */
const DELETABLE_GROUP = new Set(['ACTIVE', 'FAILED', 'INACTIVE']);

const progressing = (reason: string, message: string): Step => ({ kind: 'progressing', reason, message });
const problem = (reason: string, message: string): Step => ({ kind: 'problem', reason, message });

export class OciBackend implements Backend {
  private readonly opts: OciBackendOptions;
  private readonly clock: WallClock;

  constructor(opts: OciBackendOptions) {
    this.opts = opts;
    this.clock = opts.clock ?? systemWallClock;
  }

  /**
   * `protect` puts the finalizer on the object; it runs before the first create, so an object whose
   * credentials never worked (nothing can exist in OCI) deletes without waiting on OCI.
   */
  preflight(_d: StackedDeployment, group: StackedModelGroup): Verdict | undefined {
    return ociPreflight(group);
  }

  async reconcile(
    d: StackedDeployment,
    group: StackedModelGroup,
    ctx: BackendContext,
  ): Promise<BackendResult> {
    const { log, protect } = ctx;
    const pass: Pass = { oci: { ...(d.status?.oci ?? {}) }, onTargetGroup: false, observed: false, protect };
    let step: Step;
    try {
      const client = await this.opts.clients(d);
      step = await this.step(client, d, group, pass, log);
    } catch (err) {
      step = this.failureStep(err);
    }
    const { status, verdict } = ociStatus(
      {
        generation: d.metadata.generation ?? 0,
        members: group.spec.members ?? [],
        deployment:
          pass.md === undefined
            ? undefined
            : {
                lifecycleState: stateOf(pass.md),
                lifecycleDetails: pass.md.lifecycleDetails,
                url: pass.md.modelDeploymentUrl,
                instances: instanceCount(pass.md),
                onTargetGroup: pass.onTargetGroup,
              },
        modelStates: pass.modelStates,
        observed: pass.observed,
        previous: d.status,
        step,
        oci: pass.oci,
      },
      this.clock(),
    );
    const requeueAfterMs =
      step.kind === 'progressing' ? this.opts.progressIntervalMs : this.opts.pollIntervalMs;
    return { status, verdict, requeueAfterMs };
  }

  /**
   * Credentials and refusals become a condition and wait for the poll interval (a spec or Secret
   * fix comes sooner through the watch); throttling and outages go back to the work queue's backoff.
   */
  private failureStep(err: unknown): Step {
    if (err instanceof OciAuthError) return problem('CredentialsInvalid', err.message);
    const f = ociFailure(err);
    if (f.transient) throw new OciTransientError('OCI call failed', f);
    if (f.status === 401) {
      return problem('NotAuthenticated', `OCI rejected the credentials (401 ${f.code}): ${f.message}`);
    }
    if (f.status === 404) {
      return problem('NotAuthorizedOrNotFound', `OCI answered 404 ${f.code}: ${f.message}`);
    }
    if (f.status === 412)
      return progressing('Conflict', 'the OCI resource changed while we updated it; re-reading');
    return problem('OciRejected', `OCI refused the request (${String(f.status)} ${f.code}): ${f.message}`);
  }

  private async step(
    client: ds.DataScienceClient,
    d: StackedDeployment,
    group: StackedModelGroup,
    pass: Pass,
    log: Logger,
  ): Promise<Step> {
    const oci = ociSpec(d);
    const want = desiredGroup(group);
    // Preflight refuses a model without its OCID before the backend runs.
    if (want === undefined) return problem('ModelIdMissing', 'the oci backend needs modelId on every model');

    // The deployment first: while a work request runs, status must still say what serves.
    await this.observeDeployment(client, d, pass);
    pass.observed = true;
    const md = pass.md;
    if (md !== undefined) pass.oci.lifecycleState = stateOf(md);
    const tracked = await this.trackWorkRequest(client, pass);
    if (tracked !== undefined) return tracked;
    const observeOnly = oci.driftPolicy === 'Observe';
    if (md === undefined && pass.oci.modelDeploymentId !== undefined && observeOnly) {
      return problem(
        'DeletedInOCI',
        `OCI model deployment ${pass.oci.modelDeploymentId} was deleted outside the operator; driftPolicy Observe leaves it so`,
      );
    }
    if (md !== undefined && stateOf(md) === 'DELETING') {
      return progressing(
        'DeploymentDeleting',
        `OCI model deployment ${md.id} is being deleted outside the operator`,
      );
    }

    const all = await this.ourGroups(client, d, true);
    const ours = all.filter((g) => stateOf(g) !== 'DELETED');
    const sameSet = all.filter((g) => g.freeformTags?.[TAG_MEMBERS] === want.hash);
    const target = sameSet.find((g) => USABLE_GROUP.has(stateOf(g)));
    if (target === undefined) {
      const failed = sameSet.filter((g) => stateOf(g) === 'FAILED');
      if (failed.length > 0) return this.dropFailedGroups(client, failed, log);
      // Groups of this set that are gone salt the token: a new attempt is a new create, not the
      // replay of one OCI already answered (tokens live 24 h). So does the StackedModelGroup's uid,
      // for a group deleted and made again with the same generation.
      const salt = [group.metadata.uid ?? '', ...sameSet.map((g) => g.id).sort()].join(',');
      return this.createGroup(client, d, group, want, md, salt, pass, log);
    }
    if (stateOf(target) === 'CREATING') {
      return progressing('CreatingModelGroup', `OCI model group ${target.id} is CREATING`);
    }

    if (md === undefined) return this.createDeployment(client, d, group, target.id, pass, log);
    pass.oci.modelDeploymentId = md.id;
    pass.oci.lifecycleState = stateOf(md);
    const deployedId = deployedGroupId(md);
    pass.onTargetGroup = deployedId === target.id;

    if (stateOf(md) === 'CREATING' || stateOf(md) === 'UPDATING') {
      return progressing(
        `Deployment${stateOf(md) === 'CREATING' ? 'Creating' : 'Updating'}`,
        `OCI model deployment is ${stateOf(md)}`,
      );
    }
    if (stateOf(md) === 'FAILED') {
      return problem('DeploymentFailed', md.lifecycleDetails ?? `OCI model deployment ${md.id} FAILED`);
    }
    if (md.compartmentId !== oci.compartmentId || md.projectId !== oci.projectId) {
      return problem(
        'ImmutableFieldChanged',
        `OCI model deployment ${md.id} lives in another compartment or project than the spec names; OCI cannot move it by update: delete and recreate the StackedDeployment`,
      );
    }
    if (stateOf(md) === 'INACTIVE') {
      if (observeOnly)
        return problem(
          'DeploymentInactive',
          `OCI model deployment ${md.id} was deactivated outside the operator`,
        );
      const res = await client.activateModelDeployment({ modelDeploymentId: md.id, ifMatch: pass.etag });
      pass.oci.workRequestId = res.opcWorkRequestId;
      this.opts.events.record(
        d,
        'Normal',
        'Activating',
        `activating OCI model deployment ${md.id}, found INACTIVE`,
      );
      return progressing('Activating', `activating OCI model deployment ${md.id}`);
    }
    if (!SERVING_STATES.has(stateOf(md))) {
      return progressing(`Deployment${stateOf(md)}`, `OCI model deployment is ${stateOf(md)}`);
    }

    const digest = configDigest(d, group);
    const drift = configDrift(md, d, group);
    const groupMoved = deployedId !== target.id;
    // The spec is what we last applied, yet OCI differs: someone changed it there.
    const outOfBand =
      pass.oci.appliedConfig === digest &&
      (drift.length > 0 || (groupMoved && deployedId !== pass.oci.modelGroupId));
    if (outOfBand && observeOnly) {
      const what = [...drift, ...(groupMoved ? ['modelGroup'] : [])].join(', ');
      return problem(
        'DriftDetected',
        `OCI model deployment ${md.id} was changed outside the operator (${what}); driftPolicy Observe leaves it so`,
      );
    }
    if (outOfBand) {
      log.info('OCI deployment drifted; bringing it back', { modelDeploymentId: md.id, drift });
    }
    if (groupMoved) {
      const deployed =
        ours.find((g) => g.id === deployedId) ??
        (deployedId === undefined ? undefined : await getGroup(client, deployedId));
      const deployedBase = baseModelId(deployed);
      if (deployedBase === want.baseModelId && drift.length === 0) {
        const res = await client.updateModelDeployment({
          modelDeploymentId: md.id,
          updateModelDeploymentDetails: liveUpdateDetails(target.id),
          ifMatch: pass.etag,
        });
        pass.oci.workRequestId = res.opcWorkRequestId;
        pass.oci.modelGroupId = target.id;
        this.opts.events.record(
          d,
          'Normal',
          'LiveUpdate',
          `LIVE update of OCI model deployment ${md.id} to model group ${target.id}`,
        );
        return progressing('LiveUpdating', `LIVE update to OCI model group ${target.id}`);
      }
    }
    if (groupMoved || drift.length > 0) {
      // A new base, or infrastructure and container changes: LIVE cannot carry them, ZDT can.
      const res = await client.updateModelDeployment({
        modelDeploymentId: md.id,
        updateModelDeploymentDetails: zdtUpdateDetails(d, group, target.id),
        ifMatch: pass.etag,
      });
      pass.oci.workRequestId = res.opcWorkRequestId;
      pass.oci.modelGroupId = target.id;
      pass.oci.appliedConfig = digest;
      const what = [...drift, ...(groupMoved ? ['modelGroup'] : [])].join(', ');
      this.opts.events.record(
        d,
        'Normal',
        'Updating',
        `ZDT update of OCI model deployment ${md.id}: ${what}`,
      );
      return progressing('Updating', `ZDT update of ${what}`);
    }

    pass.oci.modelGroupId = target.id;
    pass.oci.appliedConfig = digest;
    await this.collectGroups(client, d, ours, target.id, pass, log);
    pass.modelStates = await modelStates(client, md);
    return { kind: 'settled', reason: 'Serving', message: 'the OCI resources match the spec' };
  }

  /**
   * The deployment's version history: by the id in status, else by the uid tag (a create whose
   * answer was lost), else created with a deterministic retry token.
   */
  private async ensureHistory(
    client: ds.DataScienceClient,
    d: StackedDeployment,
    pass: Pass,
  ): Promise<string> {
    const known = pass.oci.modelGroupVersionHistoryId;
    if (known !== undefined) return known;
    const found = (await this.ourHistories(client, d)).find((h) => stateOf(h) === 'ACTIVE');
    if (found !== undefined) {
      pass.oci.modelGroupVersionHistoryId = found.id;
      return found.id;
    }
    const body = versionHistoryDetails(d);
    const res = await client.createModelGroupVersionHistory({
      createModelGroupVersionHistoryDetails: body,
      opcRetryToken: retryToken(d.metadata.uid ?? '', 'model-group-version-history', body),
    });
    pass.oci.modelGroupVersionHistoryId = res.modelGroupVersionHistory.id;
    return res.modelGroupVersionHistory.id;
  }

  private async ourHistories(
    client: ds.DataScienceClient,
    d: StackedDeployment,
  ): Promise<ds.models.ModelGroupVersionHistorySummary[]> {
    const oci = ociSpec(d);
    return madeBy(
      client.listModelGroupVersionHistoriesRecordIterator({
        compartmentId: oci.compartmentId,
        projectId: oci.projectId,
        limit: LIST_PAGE,
      }),
      d,
    );
  }

  /**
   * A work request in flight is polled until OCI sets timeFinished (the SDK waiter's own test). Not
   * the SDK's waiter itself: it blocks for up to 20 minutes, and a reconcile worker must not.
   */
  private async trackWorkRequest(client: ds.DataScienceClient, pass: Pass): Promise<Step | undefined> {
    const id = pass.oci.workRequestId;
    if (id === undefined) return undefined;
    let wr: ds.models.WorkRequest;
    try {
      wr = (await client.getWorkRequest({ workRequestId: id })).workRequest;
    } catch (err) {
      if (isOciNotFound(err)) {
        delete pass.oci.workRequestId;
        return undefined;
      }
      throw err;
    }
    // JSON null and absent both mean "not finished".
    if (wr.timeFinished == null) {
      return progressing(
        'WorkRequestInProgress',
        `${wr.operationType} ${String(wr.percentComplete)}% done (${id})`,
      );
    }
    delete pass.oci.workRequestId;
    const outcome: string = wr.status;
    if (outcome === 'FAILED') {
      // What it carried did not happen: the next pass must see a spec not yet applied (and retry
      // it), not an OCI that drifted from what we applied.
      delete pass.oci.appliedConfig;
      const errors = await client.listWorkRequestErrors({ workRequestId: id });
      const text = errors.items.map((e) => `${e.code}: ${e.message}`).join('; ');
      return problem('WorkRequestFailed', `${wr.operationType} failed: ${text === '' ? 'no details' : text}`);
    }
    return undefined;
  }

  /** By the id in status, else by the uid tag: a deployment made just before a crash is adopted. */
  private async observeDeployment(
    client: ds.DataScienceClient,
    d: StackedDeployment,
    pass: Pass,
  ): Promise<void> {
    const id = pass.oci.modelDeploymentId;
    if (id !== undefined) {
      try {
        const res = await client.getModelDeployment({ modelDeploymentId: id });
        if (stateOf(res.modelDeployment) !== 'DELETED') {
          pass.md = res.modelDeployment;
          pass.etag = res.etag;
          return;
        }
      } catch (err) {
        if (!isOciNotFound(err)) throw err;
      }
    }
    const oci = ociSpec(d);
    const [found] = await madeBy(
      client.listModelDeploymentsRecordIterator({
        compartmentId: oci.compartmentId,
        projectId: oci.projectId,
        limit: LIST_PAGE,
      }),
      d,
    );
    if (found === undefined) return;
    const res = await client.getModelDeployment({ modelDeploymentId: found.id });
    pass.md = res.modelDeployment;
    pass.etag = res.etag;
  }

  private async ourGroups(
    client: ds.DataScienceClient,
    d: StackedDeployment,
    includeDeleted = false,
  ): Promise<ds.models.ModelGroupSummary[]> {
    const oci = ociSpec(d);
    const out = await madeBy(
      client.listModelGroupsRecordIterator({
        compartmentId: oci.compartmentId,
        projectId: oci.projectId,
        limit: LIST_PAGE,
      }),
      d,
      includeDeleted,
    );
    return out.sort((a, b) => timeOf(b.timeCreated) - timeOf(a.timeCreated));
  }

  /**
   * A group that FAILED is deleted and the failure reported; the next poll (not this pass: no hot
   * loop on a model OCI cannot load) makes a fresh one.
   */
  private async dropFailedGroups(
    client: ds.DataScienceClient,
    failed: readonly ds.models.ModelGroupSummary[],
    log: Logger,
  ): Promise<Step> {
    for (const g of failed) {
      try {
        await client.deleteModelGroup({ modelGroupId: g.id });
        log.info('deleted FAILED OCI model group', { modelGroupId: g.id });
      } catch (err) {
        if (!isOciNotFound(err) && ociFailure(err).status !== 409) throw err;
      }
    }
    const first = failed[0];
    return problem(
      'ModelGroupFailed',
      `OCI model group ${first?.id ?? ''} FAILED (${first?.lifecycleDetails ?? 'no details'}); deleted, retried at the next poll`,
    );
  }

  /** CLONE of the deployed group when it has the same base (OCI keeps the lineage), else CREATE. */
  private async createGroup(
    client: ds.DataScienceClient,
    d: StackedDeployment,
    group: StackedModelGroup,
    want: DesiredGroup,
    md: ds.models.ModelDeployment | undefined,
    salt: string,
    pass: Pass,
    log: Logger,
  ): Promise<Step> {
    const sourceId = md === undefined ? undefined : deployedGroupId(md);
    let body: ds.models.CreateModelGroupDetails | ds.models.CloneModelGroupDetails | undefined;
    await pass.protect();
    const history = {
      historyId: await this.ensureHistory(client, d, pass),
      versionLabel: versionLabel(group),
    };
    if (sourceId !== undefined) {
      const source = await getGroup(client, sourceId);
      if (source !== undefined && stateOf(source) === 'ACTIVE') {
        body = cloneGroupDetails(
          d,
          group,
          want,
          { id: source.id, baseModelId: baseModelId(source) ?? '', members: groupMembers(source) },
          history,
        );
      }
    }
    body ??= createGroupDetails(d, group, want, history);
    const res = await client.createModelGroup({
      createBaseModelGroupDetails: body,
      opcRetryToken: retryToken(d.metadata.uid ?? '', 'model-group', body, salt),
    });
    pass.oci.workRequestId = res.opcWorkRequestId;
    const how = body.createType === 'CLONE' ? `CLONE of ${sourceId ?? ''}` : 'CREATE';
    log.info('created OCI model group', { modelGroupId: res.modelGroup.id, how });
    this.opts.events.record(
      d,
      'Normal',
      'ModelGroupCreated',
      `OCI model group ${res.modelGroup.id} (${how}) for ${String(want.members.length - 1)} adapters`,
    );
    return progressing('CreatingModelGroup', `OCI model group ${res.modelGroup.id} is CREATING`);
  }

  private async createDeployment(
    client: ds.DataScienceClient,
    d: StackedDeployment,
    group: StackedModelGroup,
    groupId: string,
    pass: Pass,
    log: Logger,
  ): Promise<Step> {
    const body = createDeploymentDetails(d, group, groupId);
    // The last deployment id salts the token: a deployment deleted in OCI is recreated by a new
    // call, not answered with the replay of the first one.
    const token = retryToken(
      d.metadata.uid ?? '',
      'model-deployment',
      body,
      pass.oci.modelDeploymentId ?? '',
    );
    await pass.protect();
    const res = await client.createModelDeployment({
      createModelDeploymentDetails: body,
      opcRetryToken: token,
    });
    const recreated =
      pass.oci.modelDeploymentId !== undefined && pass.oci.modelDeploymentId !== res.modelDeployment.id;
    pass.oci.modelDeploymentId = res.modelDeployment.id;
    pass.oci.lifecycleState = stateOf(res.modelDeployment);
    pass.oci.modelGroupId = groupId;
    pass.oci.appliedConfig = configDigest(d, group);
    pass.oci.workRequestId = res.opcWorkRequestId;
    pass.md = res.modelDeployment;
    log.info('created OCI model deployment', { modelDeploymentId: res.modelDeployment.id, recreated });
    this.opts.events.record(
      d,
      recreated ? 'Warning' : 'Normal',
      recreated ? 'DeploymentRecreated' : 'DeploymentCreated',
      `OCI model deployment ${res.modelDeployment.id} on model group ${groupId}`,
    );
    return progressing('DeploymentCreating', `OCI model deployment ${res.modelDeployment.id} is CREATING`);
  }

  /** Superseded groups: the newest `retainModelGroups` stay for rollback, the rest go. */
  private async collectGroups(
    client: ds.DataScienceClient,
    d: StackedDeployment,
    ours: readonly ds.models.ModelGroupSummary[],
    targetId: string,
    pass: Pass,
    log: Logger,
  ): Promise<void> {
    const superseded = ours.filter((g) => g.id !== targetId);
    const retain = ociSpec(d).retainModelGroups;
    const kept = superseded.slice(0, retain);
    for (const g of superseded.slice(retain)) {
      if (!DELETABLE_GROUP.has(stateOf(g))) continue;
      try {
        await client.deleteModelGroup({ modelGroupId: g.id });
        log.info('deleted superseded OCI model group', { modelGroupId: g.id });
        this.opts.events.record(
          d,
          'Normal',
          'ModelGroupDeleted',
          `deleted superseded OCI model group ${g.id}`,
        );
      } catch (err) {
        // In use by a deployment (ours mid-update, or someone else's): next pass.
        if (ociFailure(err).status !== 409 && !isOciNotFound(err)) throw err;
      }
    }
    const history = kept.map((g) => g.id);
    if (history.length > 0) pass.oci.modelGroupHistory = history;
    else delete pass.oci.modelGroupHistory;
  }

  /**
   * The finalizer's work: the deployment first (a group in use cannot go), then every group this
   * object made. True when nothing is left; OCI trouble throws and the work queue retries.
   */
  async finalize(d: StackedDeployment, ctx: BackendContext): Promise<FinalizeResult> {
    try {
      const r = await this.deleteAll(d, ctx.log);
      return r.done ? { done: true } : { done: false, reason: 'Terminating', message: r.message };
    } catch (err) {
      // Credentials that no longer work keep the finalizer and say so: leaving GPUs running in a
      // cloud account unseen is worse than an object stuck in Terminating.
      if (!(err instanceof OciAuthError)) throw err;
      return {
        done: false,
        reason: 'CleanupBlocked',
        message: `cannot delete the OCI resources: ${err.message}`,
      };
    }
  }

  private async deleteAll(d: StackedDeployment, log: Logger): Promise<{ done: boolean; message: string }> {
    const client = await this.opts.clients(d);
    const pass: Pass = {
      oci: { ...(d.status?.oci ?? {}) },
      onTargetGroup: false,
      observed: false,
      protect: () => Promise.resolve(),
    };
    await this.observeDeployment(client, d, pass);
    const md = pass.md;
    if (md !== undefined) {
      if (stateOf(md) === 'DELETING' || stateOf(md) === 'CREATING' || stateOf(md) === 'UPDATING') {
        return { done: false, message: `waiting for OCI model deployment ${md.id} (${stateOf(md)})` };
      }
      await client.deleteModelDeployment({ modelDeploymentId: md.id, ifMatch: pass.etag });
      log.info('deleting OCI model deployment', { modelDeploymentId: md.id });
      this.opts.events.record(d, 'Normal', 'DeletingDeployment', `deleting OCI model deployment ${md.id}`);
      return { done: false, message: `deleting OCI model deployment ${md.id}` };
    }
    const ours = await this.ourGroups(client, d);
    for (const g of ours) {
      if (!DELETABLE_GROUP.has(stateOf(g))) continue;
      try {
        await client.deleteModelGroup({ modelGroupId: g.id });
        log.info('deleting OCI model group', { modelGroupId: g.id });
      } catch (err) {
        if (!isOciNotFound(err)) throw err;
      }
    }
    if (ours.length > 0) return { done: false, message: `deleting ${String(ours.length)} OCI model groups` };
    // The history goes last: OCI keeps it while any of its groups still exists.
    const histories = await this.ourHistories(client, d);
    for (const h of histories) {
      if (stateOf(h) === 'DELETING') continue;
      try {
        await client.deleteModelGroupVersionHistory({ modelGroupVersionHistoryId: h.id });
        log.info('deleting OCI model group version history', { modelGroupVersionHistoryId: h.id });
      } catch (err) {
        if (!isOciNotFound(err)) throw err;
      }
    }
    if (histories.length > 0) return { done: false, message: 'deleting the OCI model group version history' };
    return { done: true, message: 'no OCI resources left' };
  }
}

/** OCI's enums are open (unknown values pass through the SDK), so states are compared as strings. */
function stateOf(o: { lifecycleState?: unknown } | undefined): string {
  return typeof o?.lifecycleState === 'string' ? o.lifecycleState : '';
}

/** The records of a list that this object made (its uid tag); DELETED ones only when asked. */
async function madeBy<T extends { freeformTags?: Record<string, string>; lifecycleState?: unknown }>(
  records: AsyncIterable<T>,
  d: StackedDeployment,
  includeDeleted = false,
): Promise<T[]> {
  const out: T[] = [];
  for await (const r of records) {
    if (r.freeformTags?.[TAG_UID] !== d.metadata.uid) continue;
    if (includeDeleted || stateOf(r) !== 'DELETED') out.push(r);
  }
  return out;
}

async function getGroup(client: ds.DataScienceClient, id: string): Promise<ds.models.ModelGroup | undefined> {
  try {
    return (await client.getModelGroup({ modelGroupId: id })).modelGroup;
  } catch (err) {
    if (isOciNotFound(err)) return undefined;
    throw err;
  }
}

function baseModelId(g: { modelGroupDetails?: ds.models.ModelGroupDetails } | undefined): string | undefined {
  const details = g?.modelGroupDetails as ds.models.StackedModelGroupDetails | undefined;
  return details?.type === 'STACKED' ? details.baseModelId : undefined;
}

function groupMembers(g: ds.models.ModelGroup): GroupMember[] {
  return (g.memberModelEntries.memberModelDetails ?? []).map((m) => ({
    modelId: m.modelId,
    inferenceKey: m.inferenceKey ?? '',
  }));
}

async function modelStates(
  client: ds.DataScienceClient,
  md: ds.models.ModelDeployment,
): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for await (const s of client.listModelDeploymentModelStatesRecordIterator({
    modelDeploymentId: md.id,
    compartmentId: md.compartmentId,
    projectId: md.projectId,
    limit: LIST_PAGE,
  })) {
    out.set(s.modelId, s.state);
  }
  return out;
}

function instanceCount(md: ds.models.ModelDeployment): number {
  const sys = md.modelDeploymentSystemData as { currentInstanceCount?: number } | undefined;
  return sys?.currentInstanceCount ?? 0;
}

function timeOf(t: Date | string | undefined): number {
  return t === undefined ? 0 : new Date(t).getTime();
}
