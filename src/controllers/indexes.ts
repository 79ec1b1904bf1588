/** Informer indexes that map a changed object to the objects that depend on it. */
import type { StackedDeployment } from '../api/v1alpha1/deployment.ts';
import type { StackedModelGroup } from '../api/v1alpha1/modelgroup.ts';
import { keyOf } from '../runtime/keys.ts';

/** StackedDeployments by "namespace/modelGroupRef.name": a group change re-queues its deployments. */
export const DEPLOYMENTS_BY_GROUP = 'byModelGroup';
export function deploymentGroupKeys(d: StackedDeployment): string[] {
  return [keyOf(d.metadata.namespace, d.spec.modelGroupRef.name)];
}

/** StackedModelGroups by "namespace/claimName" of every PVC source: a PVC appearing re-checks them. */
export const GROUPS_BY_CLAIM = 'byClaim';
export function groupClaimKeys(g: StackedModelGroup): string[] {
  const ns = g.metadata.namespace ?? '';
  const claims = [g.spec.baseModel, ...(g.spec.members ?? [])].flatMap((m) =>
    m.source?.pvc ? [`${ns}/${m.source.pvc.claimName}`] : [],
  );
  return [...new Set(claims)];
}
