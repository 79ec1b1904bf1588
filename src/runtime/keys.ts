import type { KubernetesObject } from '@kubernetes/client-node';

/**
 * The work-queue and cache key of an object: "namespace/name", or just "name" when cluster-scoped
 * (the same convention as client-go's MetaNamespaceKeyFunc).
 */
export function objectKey(obj: KubernetesObject): string {
  return keyOf(obj.metadata?.namespace, obj.metadata?.name ?? '');
}

/**
 * The key of the object `name` in `namespace`, for an object known by reference (a modelGroupRef,
 * a claimName, a Lease's options): the same string {@link objectKey} makes of the object itself, so
 * a lookup or an index built from a reference meets the key of the object.
 */
export function keyOf(namespace: string | undefined, name: string): string {
  return namespace ? `${namespace}/${name}` : name;
}

/**
 * Splits a key made by {@link objectKey}. namespace is '' for a cluster-scoped key, so it can be
 * passed straight to namespaced API calls of namespaced kinds without a non-null assertion.
 */
export function splitKey(key: string): { namespace: string; name: string } {
  const i = key.indexOf('/');
  return i < 0 ? { namespace: '', name: key } : { namespace: key.slice(0, i), name: key.slice(i + 1) };
}
