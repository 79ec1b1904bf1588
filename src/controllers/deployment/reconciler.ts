/**
 * StackedDeployment reconciler. It resolves the referenced group and checks what spans both objects;
 * the backends (vllm, oci) plug in here in later versions.
 */
import type { CustomObjectsApi } from '@kubernetes/client-node';
import { DEPLOYMENT_PLURAL, type StackedDeployment } from '../../api/v1alpha1/deployment.ts';
import type { StackedModelGroup } from '../../api/v1alpha1/modelgroup.ts';
import { validateDeployment } from '../../api/v1alpha1/validate.ts';
import type { ReconcileFn } from '../../runtime/controller.ts';
import type { EventRecorder } from '../../runtime/events.ts';
import type { Informer } from '../../runtime/informer.ts';
import { writeStatus } from '../status-writer.ts';
import { desiredDeploymentStatus, deploymentVerdict } from './status.ts';

export interface DeploymentDeps {
  groups: Informer<StackedModelGroup>;
  deployments: Informer<StackedDeployment>;
  api: CustomObjectsApi;
  events: EventRecorder;
  clock: () => Date;
}

export function deploymentReconciler(deps: DeploymentDeps): ReconcileFn {
  return async (key, log) => {
    const d = deps.deployments.get(key);
    if (d === undefined) return;
    const group = deps.groups.get(`${d.metadata.namespace ?? ''}/${d.spec.modelGroupRef.name}`);
    const validation = validateDeployment(d);
    const verdict = deploymentVerdict(d, group, validation.valid ? [] : validation.issues);
    const desired = desiredDeploymentStatus(d, verdict, deps.clock());
    await writeStatus({
      api: deps.api,
      plural: DEPLOYMENT_PLURAL,
      obj: d,
      desired,
      events: deps.events,
      log,
    });
  };
}
