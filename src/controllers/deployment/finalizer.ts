/**
 * The finalizer that keeps an oci StackedDeployment until its OCI resources are gone. Patched with
 * a JSON patch guarded by a `test` of the list, so a concurrent change of finalizers is a 409
 * retry, never a lost entry.
 */
import { PatchStrategy, setHeaderOptions, type CustomObjectsApi } from '@kubernetes/client-node';
import { GROUP, VERSION } from '../../api/v1alpha1/common.ts';
import { DEPLOYMENT_PLURAL, type StackedDeployment } from '../../api/v1alpha1/deployment.ts';

export const OCI_FINALIZER = 'serving.stacked.dev/oci-resources';

export function hasFinalizer(d: StackedDeployment, name = OCI_FINALIZER): boolean {
  return (d.metadata.finalizers ?? []).includes(name);
}

async function patchFinalizers(api: CustomObjectsApi, d: StackedDeployment, next: string[]): Promise<void> {
  const current = d.metadata.finalizers;
  const ops =
    current === undefined
      ? [{ op: 'add', path: '/metadata/finalizers', value: next }]
      : [
          { op: 'test', path: '/metadata/finalizers', value: current },
          { op: 'replace', path: '/metadata/finalizers', value: next },
        ];
  await api.patchNamespacedCustomObject(
    {
      group: GROUP,
      version: VERSION,
      namespace: d.metadata.namespace ?? '',
      plural: DEPLOYMENT_PLURAL,
      name: d.metadata.name ?? '',
      body: ops,
    },
    setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
  );
}

export async function addFinalizer(api: CustomObjectsApi, d: StackedDeployment): Promise<void> {
  await patchFinalizers(api, d, [...(d.metadata.finalizers ?? []), OCI_FINALIZER]);
}

export async function removeFinalizer(api: CustomObjectsApi, d: StackedDeployment): Promise<void> {
  await patchFinalizers(
    api,
    d,
    (d.metadata.finalizers ?? []).filter((f) => f !== OCI_FINALIZER),
  );
}
