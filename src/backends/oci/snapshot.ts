/**
 * What one reconcile pass saw in OCI, frozen: `observe` builds it, `decide` reads it. Plain data, so
 * the decision can be tested from a literal without a client.
 */
import type * as ds from 'oci-datascience';
import type { DeploymentStatus } from '../../api/v1alpha1/deployment.ts';
import type { GroupMember } from './desired.ts';

export type OciStatus = NonNullable<DeploymentStatus['oci']>;

/** A model group as the decision needs it, from a GET (with members) or a list summary (without). */
export interface GroupView {
  readonly id: string;
  readonly state: string;
  /** Carries this object's uid tag: made by it, so it may delete it. */
  readonly ours: boolean;
  /** The member-set digest tag (TAG_MEMBERS): which spec the group was made for. */
  readonly membersHash?: string | undefined;
  readonly baseModelId?: string | undefined;
  /** Only a GET returns the members; a list summary has none. */
  readonly members?: readonly GroupMember[] | undefined;
  /** Milliseconds since the epoch; 0 when OCI gave no time. */
  readonly created: number;
  readonly details?: string | undefined;
}

export interface DeploymentView {
  readonly md: ds.models.ModelDeployment;
  /** For if-match on update, activate and delete. */
  readonly etag?: string | undefined;
}

export type WorkRequestView =
  /** OCI no longer knows it (work requests expire): nothing to wait for. */
  | { readonly id: string; readonly phase: 'gone' }
  | {
      readonly id: string;
      readonly phase: 'running';
      readonly operationType: string;
      readonly percentComplete: number;
    }
  /** groupIds: the model groups it made or changed, so a group just created needs no list. */
  | { readonly id: string; readonly phase: 'succeeded'; readonly groupIds: readonly string[] }
  | {
      readonly id: string;
      readonly phase: 'failed';
      readonly operationType: string;
      readonly errors: string;
    };

/**
 * How much of our groups this pass read:
 * - none: a work request runs, so nothing but the deployment and the work request was read;
 * - serving: at rest (the deployment serves the recorded group, which matches the spec, and no more
 *   superseded groups are recorded than are kept), so only that group was read;
 * - all: every group recorded in status, and the whole list when no usable group matched the spec.
 */
export type GroupsRead = 'none' | 'serving' | 'all';

export interface Snapshot {
  /** status.oci before this pass. */
  readonly previous: Readonly<OciStatus>;
  /** The live model deployment (never a DELETED record). */
  readonly deployment?: DeploymentView | undefined;
  readonly workRequest?: WorkRequestView | undefined;
  readonly groupsRead: GroupsRead;
  /** Newest first; DELETED records included (they salt the next create's retry token). */
  readonly groups: readonly GroupView[];
  /** The version history groups join: from status, else found by our uid tag. */
  readonly historyId?: string | undefined;
  /** ListModelDeploymentModelStates by modelId; read while the deployment serves. */
  readonly modelStates?: ReadonlyMap<string, string> | undefined;
}

/** OCI's enums are open (unknown values pass through the SDK), so states are compared as strings. */
export function stateOf(o: { lifecycleState?: unknown } | undefined): string {
  return typeof o?.lifecycleState === 'string' ? o.lifecycleState : '';
}

export function timeOf(t: Date | string | undefined): number {
  return t === undefined ? 0 : new Date(t).getTime();
}

export function instanceCount(md: ds.models.ModelDeployment): number {
  const sys = md.modelDeploymentSystemData as { currentInstanceCount?: number } | undefined;
  return sys?.currentInstanceCount ?? 0;
}
