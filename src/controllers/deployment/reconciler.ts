/**
 * StackedDeployment reconciler: resolves the referenced group, checks what spans both objects, then
 * hands over to the deployment's backend. A backend that makes resources outside the cluster gets
 * the finalizer put on the object before its first create, and takes it off only once it has
 * deleted them. The router sits in front of either backend, so it is reconciled here, after the
 * backend, rather than inside each one.
 */
import type { CustomObjectsApi } from '@kubernetes/client-node';
import { DEPLOYMENT_PLURAL, type StackedDeployment } from '../../api/v1alpha1/deployment.ts';
import type { StackedModelGroup } from '../../api/v1alpha1/modelgroup.ts';
import { validateDeployment } from '../../api/v1alpha1/validate.ts';
import type { Backend, BackendContext } from '../../backends/backend.ts';
import { withRouter, type RouterState } from '../../backends/router/status.ts';
import { setCondition } from '../../runtime/conditions.ts';
import type { ReconcileFn, ReconcileResult } from '../../runtime/controller.ts';
import type { EventRecorder } from '../../runtime/events.ts';
import type { WallClock } from '../../runtime/clock.ts';
import type { Informer } from '../../runtime/informer.ts';
import { keyOf } from '../../runtime/keys.ts';
import type { Logger } from '../../runtime/logger.ts';
import { writeStatus } from '../status-writer.ts';
import { addFinalizer, hasFinalizer, removeFinalizer } from './finalizer.ts';
import { desiredDeploymentStatus, preflight } from './status.ts';
import { PRINCIPAL_AUTH_NOT_ALLOWED } from '../../oci/principals.ts';

export interface DeploymentDeps {
  groups: Informer<StackedModelGroup>;
  deployments: Informer<StackedDeployment>;
  api: CustomObjectsApi;
  events: EventRecorder;
  backends: Readonly<Record<StackedDeployment['spec']['backend'], Backend>>;
  /** How soon a deletion waiting on the backend looks again. */
  cleanupPollMs: number;
  /** Applies or deletes the router's objects (src/backends/router/workload.ts); none in some tests. */
  router?: {
    reconcile(d: StackedDeployment, log: Logger): Promise<RouterState>;
    remove(d: StackedDeployment, log: Logger): Promise<void>;
  };
  clock: WallClock;
}

const ROUTER_RETRY_MS = 30_000;

export function deploymentReconciler(deps: DeploymentDeps): ReconcileFn {
  return async (key, log, signal) => {
    const d = deps.deployments.get(key);
    if (d === undefined) {
      for (const b of Object.values(deps.backends)) b.forget?.(key);
      return;
    }
    const backend = deps.backends[d.spec.backend];
    const ctx: BackendContext = { log, signal, ...protectOnce(deps.api, d, log) };
    if (d.metadata.deletionTimestamp !== undefined) return finalize(deps, backend, d, ctx);
    const group = deps.groups.get(keyOf(d.metadata.namespace, d.spec.modelGroupRef.name));
    const validation = validateDeployment(d);
    const problem =
      preflight(d, group, validation.valid ? [] : validation.issues) ??
      (group === undefined ? undefined : backend.preflight(d, group));
    let desired;
    let requeueAfterMs: number | undefined;
    if (problem !== undefined || group === undefined) {
      // What already runs keeps running (and its pods keep their adapters): only the new spec waits.
      desired = desiredDeploymentStatus(d, problem ?? groupMissing(), deps.clock());
      // The one exception: a router signs with the deployment's credentials, and those are refused.
      if (problem?.reason === PRINCIPAL_AUTH_NOT_ALLOWED) await deps.router?.remove(d, log);
    } else {
      const result = await backend.reconcile(d, group, ctx);
      const router = deps.router === undefined ? undefined : await deps.router.reconcile(d, log);
      const served = router === undefined ? result : withRouter(result, router, deps.clock());
      desired = desiredDeploymentStatus(d, served.verdict, deps.clock(), served.status);
      // A refused router object is tried again as soon as a refused vLLM workload would be.
      requeueAfterMs =
        router?.problem === undefined
          ? result.requeueAfterMs
          : Math.min(result.requeueAfterMs, ROUTER_RETRY_MS);
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

/** Lets the backend delete what it made, then lets the object go; progress shows on the object. */
async function finalize(
  deps: DeploymentDeps,
  backend: Backend,
  d: StackedDeployment,
  ctx: BackendContext,
): Promise<ReconcileResult | undefined> {
  if (!hasFinalizer(d)) return undefined;
  const r = await backend.finalize(d, ctx);
  if (r.done) {
    await removeFinalizer(deps.api, d);
    ctx.log.info('backend resources deleted; finalizer removed');
    return undefined;
  }
  const generation = d.metadata.generation ?? 0;
  const conditions = setCondition(
    d.status?.conditions ?? [],
    {
      type: 'Progressing',
      status: 'True',
      reason: r.reason,
      message: r.message,
      observedGeneration: generation,
    },
    deps.clock(),
  );
  await writeStatus({
    api: deps.api,
    plural: DEPLOYMENT_PLURAL,
    obj: d,
    desired: { ...(d.status ?? {}), conditions },
    events: deps.events,
    log: ctx.log,
  });
  return { requeueAfterMs: deps.cleanupPollMs };
}

/** Adds the finalizer before the first create of this pass, once (the cached object is frozen). */
function protectOnce(
  api: CustomObjectsApi,
  d: StackedDeployment,
  log: Logger,
): Pick<BackendContext, 'protect' | 'isProtected'> {
  let done = hasFinalizer(d);
  return {
    protect: async () => {
      if (done) return;
      await addFinalizer(api, d);
      done = true;
      log.info('added finalizer');
    },
    isProtected: () => done,
  };
}

function groupMissing() {
  return {
    ready: false,
    reason: 'ModelGroupNotFound',
    message: 'the referenced StackedModelGroup does not exist',
  };
}
