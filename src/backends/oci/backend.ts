/**
 * The oci backend's reconcile pass for one StackedDeployment, in three parts:
 * - observe (observe.ts): the reads, as an immutable Snapshot;
 * - decide (decide.ts): pure, one Action towards the spec;
 * - execute (execute.ts): that action's one OCI call.
 * Creates carry deterministic retry tokens and the uid tag, so a crash anywhere adopts what the last
 * run made instead of making it twice. A 412 (the resource changed between our read and our write)
 * reads again and decides anew, once.
 */
import type * as ds from 'oci-datascience';
import type { StackedDeployment } from '../../api/v1alpha1/deployment.ts';
import type { StackedModelGroup } from '../../api/v1alpha1/modelgroup.ts';
import { systemWallClock, type WallClock } from '../../runtime/clock.ts';
import type { EventRecorder } from '../../runtime/events.ts';
import { OciAuthError } from '../../oci/auth.ts';
import type { Backend, BackendContext, BackendResult, FinalizeResult } from '../backend.ts';
import type { Verdict } from '../../runtime/ready.ts';
import type { PrincipalAuthAllow } from '../../config.ts';
import { ociAuthPreflight, ociPreflight } from './preflight.ts';
import type { ClientFactory } from './credentials.ts';
import { decide, type Action } from './decide.ts';
import { desiredGroup } from './desired.ts';
import { ociFailure } from './errors.ts';
import { failureStep } from './failure.ts';
import { execute, type Outcome } from './execute.ts';
import { deleteAll } from './finalize.ts';
import { CreateJournal } from './journal.ts';
import { observeDeployment, observeRest } from './observe.ts';
import { instanceCount, stateOf, type OciStatus } from './snapshot.ts';
import { ociStatus, type Step } from './status.ts';

export interface OciBackendOptions {
  clients: ClientFactory;
  events: EventRecorder;
  /** How often a settled deployment is read again (drift, model states). */
  pollIntervalMs: number;
  /** How often OCI is polled while it works (CREATING, UPDATING, a work request). */
  progressIntervalMs: number;
  /** Where principal-based auth may be used (--principal-auth-allow); default: nowhere. */
  principalAuthAllow?: PrincipalAuthAllow;
  clock?: WallClock;
}

/** What a pass reports: as much as it learned before it ended, failed or not. */
interface Report {
  step: Step;
  oci: OciStatus;
  /** Undefined when not observed, or observed absent; `observed` tells which. */
  md?: ds.models.ModelDeployment | undefined;
  observed: boolean;
  onTargetGroup: boolean;
  modelStates?: ReadonlyMap<string, string> | undefined;
  soon: boolean;
}

const problem = (reason: string, message: string): Step => ({ kind: 'problem', reason, message });

/**
 * Actions that make something in OCI. The finalizer goes on the object before them (ctx.protect),
 * and only before them: an object whose credentials never worked has nothing in OCI, and deletes
 * without waiting on it.
 */
function createsInOci(action: Action): boolean {
  return (
    action.kind === 'createHistory' || action.kind === 'createGroup' || action.kind === 'createDeployment'
  );
}

/** Model states are shown once settled; meanwhile each member keeps the state it had (status.ts). */
function showsModelStates(action: Action): boolean {
  return action.kind === 'settled' || action.kind === 'collectGarbage';
}

/** A create that failed with OCI's refusal (4xx) made nothing; any other failure may have. */
function answeredNo(err: unknown): boolean {
  const { status } = ociFailure(err);
  return status >= 400 && status < 500;
}

export class OciBackend implements Backend {
  private readonly opts: OciBackendOptions;
  private readonly clock: WallClock;
  private readonly journal = new CreateJournal();

  constructor(opts: OciBackendOptions) {
    this.opts = opts;
    this.clock = opts.clock ?? systemWallClock;
  }

  preflight(d: StackedDeployment, group: StackedModelGroup): Verdict | undefined {
    return ociPreflight(d, group, this.opts.principalAuthAllow ?? new Map());
  }

  async reconcile(
    d: StackedDeployment,
    group: StackedModelGroup,
    ctx: BackendContext,
  ): Promise<BackendResult> {
    const r = await this.pass(d, group, ctx);
    const { status, verdict } = ociStatus(
      {
        generation: d.metadata.generation ?? 0,
        members: group.spec.members ?? [],
        deployment:
          r.md === undefined
            ? undefined
            : {
                lifecycleState: stateOf(r.md),
                lifecycleDetails: r.md.lifecycleDetails,
                url: r.md.modelDeploymentUrl,
                instances: instanceCount(r.md),
                onTargetGroup: r.onTargetGroup,
              },
        modelStates: r.modelStates,
        observed: r.observed,
        previous: d.status,
        step: r.step,
        oci: r.oci,
      },
      this.clock(),
    );
    const soon = r.soon || r.step.kind === 'progressing';
    return {
      status,
      verdict,
      requeueAfterMs: soon ? this.opts.progressIntervalMs : this.opts.pollIntervalMs,
    };
  }

  private async pass(d: StackedDeployment, group: StackedModelGroup, ctx: BackendContext): Promise<Report> {
    const { log } = ctx;
    // What status.oci holds as this pass goes: a version history made in it is in it at once.
    let previous: OciStatus = { ...(d.status?.oci ?? {}) };
    let current = d;
    let report: Report = {
      step: problem('ModelIdMissing', 'the oci backend needs modelId on every model'),
      oci: previous,
      observed: false,
      onTargetGroup: false,
      soon: false,
    };
    // Preflight refuses a model without its OCID before the backend runs.
    const want = desiredGroup(group);
    if (want === undefined) return report;
    const adoption = this.journal.begin(d, ctx.isProtected());
    try {
      const client = await this.opts.clients(d);
      for (let attempt = 1; ;) {
        // The deployment first: if a later read fails, status still says what serves.
        const deployment = await observeDeployment(client, current, adoption);
        const md = deployment?.md;
        report = {
          ...report,
          md,
          observed: true,
          oci: md === undefined ? previous : { ...previous, lifecycleState: stateOf(md) },
        };
        const snapshot = await observeRest(client, current, want, deployment, adoption);
        const decision = decide(snapshot, { d: current, group });
        report = { ...report, oci: decision.oci, onTargetGroup: decision.onTargetGroup };
        if (decision.drift !== undefined) {
          log.info('OCI deployment drifted; bringing it back', {
            modelDeploymentId: md?.id,
            drift: decision.drift,
          });
        }
        if (createsInOci(decision.action)) await ctx.protect();
        let outcome: Outcome;
        try {
          outcome = await this.execute(decision.action, current, log, client, previous);
        } catch (err) {
          if (attempt > 1 || ociFailure(err).status !== 412) throw err;
          log.info('OCI resource changed under an update (412); reading it again', {
            action: decision.action.kind,
          });
          attempt++;
          continue;
        }
        const oci = { ...decision.oci, ...outcome.oci };
        if (decision.action.kind === 'createHistory' && current === d) {
          // The history only names the lineage of the groups to come: the first group is made in
          // the same pass, one status write where there were two. Looking again costs an object
          // born under this process no call (nothing else of it is in OCI), and a failure of the
          // group's create still records the history. Once only: `current` is no longer `d`.
          previous = oci;
          current = { ...current, status: { ...current.status, oci } };
          report = { ...report, oci };
          continue;
        }
        return {
          ...report,
          step: outcome.step,
          oci,
          md: outcome.created ?? md,
          modelStates: showsModelStates(decision.action) ? snapshot.modelStates : undefined,
          soon: outcome.soon,
        };
      }
    } catch (err) {
      return { ...report, step: failureStep(err) };
    }
  }

  /** The action's call, and what a create tells the journal. */
  private async execute(
    action: Action,
    d: StackedDeployment,
    log: BackendContext['log'],
    client: ds.DataScienceClient,
    previous: OciStatus,
  ): Promise<Outcome> {
    const creates = createsInOci(action);
    try {
      const outcome = await execute(action, { client, d, events: this.opts.events, log, previous });
      if (creates) {
        this.journal.created(d, {
          historyId: outcome.oci.modelGroupVersionHistoryId,
          deploymentId: action.kind === 'createDeployment' ? outcome.oci.modelDeploymentId : undefined,
          group: action.kind === 'createGroup' ? true : undefined,
        });
      }
      return outcome;
    } catch (err) {
      if (creates && !answeredNo(err)) this.journal.unanswered(d);
      throw err;
    }
  }

  forget(key: string): void {
    this.journal.forget(key);
  }

  async finalize(d: StackedDeployment, ctx: BackendContext): Promise<FinalizeResult> {
    // An entry removed since the resources were made: deleting them would spend the operator's
    // rights as well, so the finalizer stays and says why, like CleanupBlocked.
    const refused = ociAuthPreflight(d, this.opts.principalAuthAllow ?? new Map());
    if (refused !== undefined) return { done: false, reason: refused.reason, message: refused.message };
    try {
      const client = await this.opts.clients(d);
      const r = await deleteAll(client, d, this.opts.events, ctx.log);
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
}
