/**
 * StackedDeployment reconciler: resolves the referenced group, checks what spans both objects, then
 * hands over to the backend (vllm now; oci reports BackendNotImplemented until it lands).
 */
import type { CustomObjectsApi } from '@kubernetes/client-node';
import { DEPLOYMENT_PLURAL, type StackedDeployment } from '../../api/v1alpha1/deployment.ts';
import type { StackedModelGroup } from '../../api/v1alpha1/modelgroup.ts';
import { validateDeployment } from '../../api/v1alpha1/validate.ts';
import type { ReconcileFn } from '../../runtime/controller.ts';
import type { EventRecorder } from '../../runtime/events.ts';
import type { Informer } from '../../runtime/informer.ts';
import { writeStatus } from '../status-writer.ts';
import type { VllmBackend } from '../../backends/vllm/backend.ts';
import { desiredDeploymentStatus, notImplemented, preflight } from './status.ts';

export interface DeploymentDeps {
  groups: Informer<StackedModelGroup>;
  deployments: Informer<StackedDeployment>;
  api: CustomObjectsApi;
  events: EventRecorder;
  vllm: VllmBackend;
  clock: () => Date;
}

export function deploymentReconciler(deps: DeploymentDeps): ReconcileFn {
  return async (key, log) => {
    const d = deps.deployments.get(key);
    if (d === undefined) return;
    const group = deps.groups.get(`${d.metadata.namespace ?? ''}/${d.spec.modelGroupRef.name}`);
    const validation = validateDeployment(d);
    const problem = preflight(d, group, validation.valid ? [] : validation.issues);
    let desired;
    let requeueAfterMs: number | undefined;
    if (problem !== undefined || group === undefined) {
      desired = desiredDeploymentStatus(d, problem ?? notImplemented(d), deps.clock());
    } else if (d.spec.backend === 'vllm') {
      const result = await deps.vllm.reconcile(d, group, log);
      desired = desiredDeploymentStatus(d, result.verdict, deps.clock(), result.status);
      requeueAfterMs = result.requeueAfterMs;
    } else {
      desired = desiredDeploymentStatus(d, notImplemented(d), deps.clock());
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
