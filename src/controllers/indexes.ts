/**
 * Informer indexes that map a changed object to the objects that depend on it, and the
 * metadata-only Secret informer whose changes they map.
 */
import {
  CoreV1Api,
  type KubeConfig,
  type KubernetesObject,
  V1ObjectMeta,
  setHeaderOptions,
} from '@kubernetes/client-node';
import type { StackedDeployment } from '../api/v1alpha1/deployment.ts';
import type { StackedModelGroup } from '../api/v1alpha1/modelgroup.ts';
import { Informer, METADATA_LIST_ACCEPT, METADATA_WATCH_ACCEPT } from '../runtime/informer.ts';
import { keyOf, objectKey } from '../runtime/keys.ts';
import type { Logger } from '../runtime/logger.ts';
import { model } from '../runtime/model.ts';

/** StackedDeployments by "namespace/modelGroupRef.name": a group change re-queues its deployments. */
export const DEPLOYMENTS_BY_GROUP = 'byModelGroup';
export function deploymentGroupKeys(d: StackedDeployment): string[] {
  return [keyOf(d.metadata.namespace, d.spec.modelGroupRef.name)];
}

/** The groups a deployment's change concerns: a deployment moved to another group leaves the first. */
export function groupsOfChange(d: StackedDeployment, old?: StackedDeployment): string[] {
  return [...new Set([...deploymentGroupKeys(d), ...(old === undefined ? [] : deploymentGroupKeys(old))])];
}

/**
 * Whether a deployment's change can change a group's status: what the group shows of its
 * deployments is which members each serves (servedBy). Other status changes (progress, OCI ids,
 * conditions) would each cost every group a reconcile for nothing: 2.6 per object in issue 8's
 * scale benchmark.
 */
export function servedByInputsChanged(old: StackedDeployment | undefined, d: StackedDeployment): boolean {
  if (old === undefined) return true;
  return old.spec.modelGroupRef.name !== d.spec.modelGroupRef.name || loadedKeys(old) !== loadedKeys(d);
}

function loadedKeys(d: StackedDeployment): string {
  return (d.status?.adapters ?? [])
    .filter((a) => a.state === 'Loaded')
    .map((a) => a.inferenceKey)
    .sort()
    .join('\n');
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

/*
 * Secrets (issue 8, bug 7). A fixed or rotated Secret must reach the reconcile of every
 * StackedDeployment that uses it within seconds, not at the next poll. The operator watches
 * Secrets by metadata only and maps a change to those deployments through the two indexes below:
 * the Secrets a deployment names itself, and the bearer-token Secrets of its group's sources (the
 * vllm backend mounts them into the fetch agent, so a fixed token retries the download).
 */

/** StackedDeployments by "namespace/secretName" of spec.oci.auth's and spec.vllm.oci.auth's Secret. */
export const DEPLOYMENTS_BY_SECRET = 'bySecret';
export function deploymentSecretKeys(d: StackedDeployment): string[] {
  const ns = d.metadata.namespace ?? '';
  const names = [d.spec.oci?.auth.secretRef?.name, d.spec.vllm?.oci?.auth.secretRef?.name];
  return [...new Set(names.flatMap((n) => (n === undefined ? [] : [`${ns}/${n}`])))];
}

/** StackedModelGroups by "namespace/secretName" of each source's bearer-token Secret (https uris). */
export const GROUPS_BY_SECRET = 'bySecret';
export function groupSecretKeys(g: StackedModelGroup): string[] {
  const ns = g.metadata.namespace ?? '';
  const names = [g.spec.baseModel, ...(g.spec.members ?? [])].flatMap((m) =>
    m.source?.secretRef ? [`${ns}/${m.source.secretRef.name}`] : [],
  );
  return [...new Set(names)];
}

/**
 * Keys of the StackedDeployments a change of the Secret "namespace/name" concerns: those that name
 * it, and those serving a group whose sources name it. Sorted and without duplicates.
 */
export function deploymentsUsingSecret(
  deployments: Informer<StackedDeployment>,
  groups: Informer<StackedModelGroup>,
  secretKey: string,
): string[] {
  const keys = new Set(deployments.byIndex(DEPLOYMENTS_BY_SECRET, secretKey).map(objectKey));
  for (const g of groups.byIndex(GROUPS_BY_SECRET, secretKey)) {
    for (const d of deployments.byIndex(DEPLOYMENTS_BY_GROUP, objectKey(g))) keys.add(objectKey(d));
  }
  return [...keys].sort();
}

/**
 * Event predicate for Secrets: adds and deletes pass (a Secret that appears or goes changes the
 * verdict), updates only with a new resourceVersion. The metadata-only informer drops everything
 * else already, and it never delivers a same-version replay, so this keeps a resync or a future
 * richer transform from re-running reconciles that would read an unchanged Secret.
 */
export function resourceVersionChanged(oldObj: KubernetesObject | undefined, obj: KubernetesObject): boolean {
  return oldObj === undefined || oldObj.metadata?.resourceVersion !== obj.metadata?.resourceVersion;
}

/**
 * Only what identifies a Secret's version: name, namespace, uid, resourceVersion. The API server
 * already leaves out data, but metadata alone can carry it: `kubectl apply` copies the whole
 * manifest, data included, into the last-applied-configuration annotation, and managedFields are
 * large. Dropping them keeps every other Secret's content out of the operator's memory.
 */
export function secretIdentity(s: KubernetesObject): KubernetesObject {
  const m = s.metadata;
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: model(V1ObjectMeta, {
      name: m?.name,
      namespace: m?.namespace,
      uid: m?.uid,
      resourceVersion: m?.resourceVersion,
    }),
  };
}

/**
 * An informer on the Secrets of the watched namespace (or of all namespaces), by metadata only: the
 * list asks for PartialObjectMetadataList and the watch for PartialObjectMetadata, so no Secret's
 * data ever reaches the operator through it, and {@link secretIdentity} keeps only the version.
 * Data is read only for a Secret a reconcile needs, by GET (src/backends/oci/credentials.ts).
 *
 * Why a watch and not a label selector or per-Secret reads: the Secrets are the user's, named in
 * specs, so no label of ours is on them; a GET per referenced Secret per few seconds would cost
 * requests in proportion to the deployments and still lag. RBAC cannot narrow list/watch to
 * metadata nor to names not known in advance, so the grant is list/watch on secrets in the
 * namespaces the operator watches (see deploy/rbac.yaml).
 */
export function secretMetadataInformer(
  kc: KubeConfig,
  namespace: string | undefined,
  logger: Logger,
): Informer<KubernetesObject> {
  const core = kc.makeApiClient(CoreV1Api);
  const accept = setHeaderOptions('Accept', METADATA_LIST_ACCEPT);
  return new Informer<KubernetesObject>({
    kc,
    path: namespace ? `/api/v1/namespaces/${namespace}/secrets` : '/api/v1/secrets',
    list: async () => {
      const list = namespace
        ? await core.listNamespacedSecret({ namespace }, accept)
        : await core.listSecretForAllNamespaces({}, accept);
      // Typed as V1SecretList by the generated client; the items are PartialObjectMetadata, and
      // null rather than [] when there are none (the server sends a Go nil slice as null).
      const items = list.items as readonly KubernetesObject[] | null;
      return { metadata: list.metadata, items: (items ?? []).map(secretIdentity) };
    },
    watchAccept: METADATA_WATCH_ACCEPT,
    transform: secretIdentity,
    logger: logger.child({ informer: 'secrets' }),
  });
}
