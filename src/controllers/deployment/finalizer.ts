/**
 * The finalizer that keeps an oci StackedDeployment until its OCI resources are gone. Patched with
 * a JSON patch guarded by a `test` (of the list, or of the resourceVersion when there is none), so
 * a concurrent change of finalizers fails the patch and is retried, never lost.
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
  // `add` of the whole list would replace one the server has and the cache not yet: with no list to
  // test, the resourceVersion is the precondition.
  const ops =
    current === undefined
      ? [
          { op: 'test', path: '/metadata/resourceVersion', value: d.metadata.resourceVersion },
          { op: 'add', path: '/metadata/finalizers', value: next },
        ]
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
