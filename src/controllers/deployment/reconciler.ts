/**
 * StackedDeployment reconciler: resolves the referenced group, checks what spans both objects, then
 * hands over to the backend. An oci deployment carries a finalizer from before its first OCI call
 * until the backend has deleted what it made.
 */
import type { CustomObjectsApi } from '@kubernetes/client-node';
import { DEPLOYMENT_PLURAL, type StackedDeployment } from '../../api/v1alpha1/deployment.ts';
import type { StackedModelGroup } from '../../api/v1alpha1/modelgroup.ts';
import { validateDeployment } from '../../api/v1alpha1/validate.ts';
import type { OciBackend } from '../../backends/oci/backend.ts';
import type { BackendResult } from '../../backends/result.ts';
import type { VllmBackend } from '../../backends/vllm/backend.ts';
import { OciAuthError } from '../../oci/auth.ts';
import type { ReconcileFn, ReconcileResult } from '../../runtime/controller.ts';
import { setCondition } from '../../runtime/conditions.ts';
import type { EventRecorder } from '../../runtime/events.ts';
import type { Informer } from '../../runtime/informer.ts';
import type { Logger } from '../../runtime/logger.ts';
import { writeStatus } from '../status-writer.ts';
import { addFinalizer, hasFinalizer, removeFinalizer } from './finalizer.ts';
import { desiredDeploymentStatus, preflight } from './status.ts';

export interface DeploymentDeps {
  groups: Informer<StackedModelGroup>;
  deployments: Informer<StackedDeployment>;
  api: CustomObjectsApi;
  events: EventRecorder;
  vllm: VllmBackend;
  oci: OciBackend;
  /** How soon a deletion waiting on OCI looks again. */
  cleanupPollMs: number;
  clock: () => Date;
}

export function deploymentReconciler(deps: DeploymentDeps): ReconcileFn {
  return async (key, log) => {
    const d = deps.deployments.get(key);
    if (d === undefined) return;
    if (d.metadata.deletionTimestamp !== undefined) return finalize(deps, d, log);
    const group = deps.groups.get(`${d.metadata.namespace ?? ''}/${d.spec.modelGroupRef.name}`);
    const validation = validateDeployment(d);
    const problem = preflight(d, group, validation.valid ? [] : validation.issues);
    let desired;
    let requeueAfterMs: number | undefined;
    if (problem !== undefined || group === undefined) {
      desired = desiredDeploymentStatus(d, problem ?? groupMissing(), deps.clock());
    } else {
      const result: BackendResult =
        d.spec.backend === 'vllm'
          ? await deps.vllm.reconcile(d, group, log)
          : await deps.oci.reconcile(d, group, log, protectOnce(deps.api, d, log));
      desired = desiredDeploymentStatus(d, result.verdict, deps.clock(), result.status);
      requeueAfterMs = result.requeueAfterMs;
    }
    await writeStatus({
      api: deps.api,
      plural: DEPLOYMENT_PLURAL,
      obj: d,
      desired,
      events: deps.events,
      log,
    });
    return requeueAfterMs === undefined ? undefined : { requeueAfterMs };
  };
}

/**
 * Deletes the OCI resources, then lets the object go. Progress shows as Progressing=False/Terminating
 * on the object; credentials that no longer work keep the finalizer and say so, since leaving GPUs
 * running in a cloud account unseen is worse than an object stuck in Terminating.
 */
async function finalize(
  deps: DeploymentDeps,
  d: StackedDeployment,
  log: Logger,
): Promise<ReconcileResult | undefined> {
  if (!hasFinalizer(d)) return undefined;
  let message: string;
  let reason = 'Terminating';
  try {
    const r = await deps.oci.finalize(d, log);
    if (r.done) {
      await removeFinalizer(deps.api, d);
      log.info('OCI resources deleted; finalizer removed');
      return undefined;
    }
    message = r.message;
  } catch (err) {
    if (!(err instanceof OciAuthError)) throw err;
    reason = 'CleanupBlocked';
    message = `cannot delete the OCI resources: ${err.message}`;
  }
  const now = deps.clock();
  const generation = d.metadata.generation ?? 0;
  const conditions = setCondition(
    d.status?.conditions ?? [],
    { type: 'Progressing', status: 'True', reason, message, observedGeneration: generation },
    now,
  );
  await writeStatus({
    api: deps.api,
    plural: DEPLOYMENT_PLURAL,
    obj: d,
    desired: { ...(d.status ?? {}), conditions },
    events: deps.events,
    log,
  });
  return { requeueAfterMs: deps.cleanupPollMs };
}

/** Adds the finalizer before the first create of this pass, once (the cached object is frozen). */
function protectOnce(api: CustomObjectsApi, d: StackedDeployment, log: Logger): () => Promise<void> {
  let done = hasFinalizer(d);
  return async () => {
    if (done) return;
    await addFinalizer(api, d);
    done = true;
    log.info('added finalizer');
  };
}

function groupMissing() {
  return {
    ready: false,
    reason: 'ModelGroupNotFound',
    message: 'the referenced StackedModelGroup does not exist',
  };
}
