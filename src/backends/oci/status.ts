/** Pure: the status and Ready verdict of an oci StackedDeployment from what OCI reported. */
import type { AdapterStatus, DeploymentStatus } from '../../api/v1alpha1/deployment.ts';
import type { Member } from '../../api/v1alpha1/modelgroup.ts';
import type { Verdict } from '../../runtime/ready.ts';
import { conditionSetter, type BoolConditionSetter, type Condition } from '../../runtime/conditions.ts';

/** Where the reconcile step stands: still moving, settled, or stuck on something a user must fix. */
export interface Step {
  kind: 'progressing' | 'settled' | 'problem';
  reason: string;
  message: string;
}

export interface OciFacts {
  generation: number;
  members: readonly Member[];
  /** The live model deployment, if any. */
  deployment?: {
    lifecycleState: string;
    lifecycleDetails?: string | undefined;
    url: string;
    instances: number;
    /** The group it serves is the one the spec wants. */
    onTargetGroup: boolean;
  };
  /** ListModelDeploymentModelStates by modelId; undefined when not read. */
  modelStates?: ReadonlyMap<string, string> | undefined;
  /**
   * Whether this pass read the deployment. When an error came first (credentials, an outage), what
   * the last status said about the deployment still holds and is kept, not replaced by "none".
   */
  observed: boolean;
  /** The status before this pass. */
  previous?: Omit<DeploymentStatus, 'observedGeneration'> | undefined;
  step: Step;
  oci: NonNullable<DeploymentStatus['oci']>;
}

/** States in which the deployment answers predict calls (UPDATING: a LIVE update keeps serving). */
const SERVING = new Set(['ACTIVE', 'UPDATING', 'NEEDS_ATTENTION']);

function adapterStatuses(f: OciFacts): AdapterStatus[] {
  const instances = f.deployment?.instances ?? 0;
  const before = new Map((f.previous?.adapters ?? []).map((a) => [a.inferenceKey, a]));
  const serving = f.deployment !== undefined && SERVING.has(f.deployment.lifecycleState);
  return f.members.map((m) => {
    const raw = m.modelId === undefined ? undefined : f.modelStates?.get(m.modelId);
    const last = before.get(m.inferenceKey);
    // Model states are read only once settled; meanwhile (a LIVE or ZDT update) a member keeps the
    // state it had, and only a new one is Loading.
    const kept = f.modelStates === undefined && serving && last !== undefined ? last.state : undefined;
    const state: AdapterStatus['state'] =
      f.deployment === undefined
        ? 'Pending'
        : (kept ??
          (raw === 'SUCCESS' && f.deployment.onTargetGroup
            ? 'Loaded'
            : raw === 'FAILED'
              ? 'Failed'
              : 'Loading'));
    const entry: AdapterStatus = {
      inferenceKey: m.inferenceKey,
      state,
      loadedReplicas: state === 'Loaded' ? instances : 0,
      readyReplicas: instances,
    };
    if (m.modelId !== undefined) entry.modelId = m.modelId;
    if (state === 'Failed') entry.message = last?.message ?? 'OCI reports the model FAILED on the deployment';
    return entry;
  });
}

export function ociStatus(
  f: OciFacts,
  now: Date,
): { status: Omit<DeploymentStatus, 'observedGeneration'>; verdict: Verdict } {
  const set = conditionSetter(f.generation, now);
  const current = f.previous?.conditions ?? [];
  if (!f.observed && current.some((c) => c.type === 'Available')) return unobserved(f, current, set);
  const md = f.deployment;
  const adapters = adapterStatuses(f);
  const serving = md !== undefined && SERVING.has(md.lifecycleState);

  let conds = [...current];
  conds = serving
    ? set(conds, 'Available', true, 'DeploymentActive', `the OCI model deployment is ${md.lifecycleState}`)
    : set(
        conds,
        'Available',
        false,
        md === undefined ? 'NoDeployment' : `Deployment${titleCase(md.lifecycleState)}`,
        md === undefined
          ? 'no OCI model deployment serves this object yet'
          : `the OCI model deployment is ${md.lifecycleState}`,
      );

  const failed = adapters.filter((a) => a.state === 'Failed');
  const pending = adapters.filter((a) => a.state !== 'Loaded').map((a) => a.inferenceKey);
  conds =
    pending.length === 0 && serving
      ? set(
          conds,
          'AdaptersReady',
          true,
          'AllLoaded',
          `${String(adapters.length)} adapters served by the deployment`,
        )
      : set(
          conds,
          'AdaptersReady',
          false,
          failed.length > 0 ? 'AdapterFailed' : 'Loading',
          pending.length > 0 ? `not served yet: ${pending.join(', ')}` : 'the deployment does not serve yet',
        );

  const degraded: [string, string] | undefined =
    f.step.kind === 'problem'
      ? [f.step.reason, f.step.message]
      : md?.lifecycleState === 'FAILED' || md?.lifecycleState === 'NEEDS_ATTENTION'
        ? [
            `Deployment${titleCase(md.lifecycleState)}`,
            md.lifecycleDetails ?? `the OCI model deployment is ${md.lifecycleState}`,
          ]
        : failed.length > 0
          ? ['AdapterFailed', `OCI reports FAILED for ${failed.map((a) => a.inferenceKey).join(', ')}`]
          : undefined;
  conds = degraded
    ? set(conds, 'Degraded', true, degraded[0], degraded[1])
    : set(conds, 'Degraded', false, 'AsExpected', 'nothing is failing');

  conds =
    f.step.kind === 'progressing'
      ? set(conds, 'Progressing', true, f.step.reason, f.step.message)
      : set(conds, 'Progressing', false, 'Complete', 'the OCI resources match the spec');

  const ready = serving && pending.length === 0 && f.step.kind === 'settled' && degraded === undefined;
  const verdict: Verdict = ready
    ? {
        ready: true,
        reason: 'Serving',
        message: `OCI model deployment serves ${String(adapters.length)} adapters`,
      }
    : degraded
      ? { ready: false, reason: degraded[0], message: degraded[1] }
      : {
          ready: false,
          reason: f.step.kind === 'settled' ? 'Loading' : f.step.reason,
          message: f.step.kind === 'settled' ? `not served yet: ${pending.join(', ')}` : f.step.message,
        };

  const oci = { ...f.oci };
  // Where signed predict calls go: the router forwards there once enabled, while status.endpoint
  // then names the router itself. Read and gone, the deployment answers at no URL any more.
  if (md === undefined) {
    if (f.observed) delete oci.predictUrl;
  } else oci.predictUrl = `${md.url.replace(/\/+$/, '')}/predict`;
  const status: Omit<DeploymentStatus, 'observedGeneration'> = {
    conditions: conds,
    adapters,
    replicas: md?.instances ?? 0,
    readyReplicas: serving ? md.instances : 0,
    oci,
  };
  if (oci.predictUrl !== undefined) status.endpoint = oci.predictUrl;
  return { status, verdict };
}

/**
 * An error came before the deployment was read: what the last status said it serves still holds
 * (Available, the adapters, the endpoint); only the step's own news is new.
 */
function unobserved(
  f: OciFacts,
  current: readonly Condition[],
  set: BoolConditionSetter,
): { status: Omit<DeploymentStatus, 'observedGeneration'>; verdict: Verdict } {
  let conds = [...current];
  conds =
    f.step.kind === 'problem'
      ? set(conds, 'Degraded', true, f.step.reason, f.step.message)
      : set(conds, 'Degraded', false, 'AsExpected', 'nothing is failing');
  conds =
    f.step.kind === 'progressing'
      ? set(conds, 'Progressing', true, f.step.reason, f.step.message)
      : set(conds, 'Progressing', false, 'Complete', 'the OCI resources match the spec');
  const kept = f.previous?.oci?.predictUrl;
  const status: Omit<DeploymentStatus, 'observedGeneration'> = {
    ...(f.previous ?? {}),
    conditions: conds,
    // The predict URL still answers, like the endpoint kept above.
    oci: { ...(kept === undefined ? {} : { predictUrl: kept }), ...f.oci },
  };
  return { status, verdict: { ready: false, reason: f.step.reason, message: f.step.message } };
}

function titleCase(state: string): string {
  return state
    .toLowerCase()
    .split('_')
    .map((w) => w.charAt(0).toUpperCase() + w.slice(1))
    .join('');
}
