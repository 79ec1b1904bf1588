import type { KubernetesObject } from '@kubernetes/client-node';

/**
 * The work-queue and cache key of an object: "namespace/name", or just "name" when cluster-scoped
 * (the same convention as client-go's MetaNamespaceKeyFunc).
 */
export function objectKey(obj: KubernetesObject): string {
  const name = obj.metadata?.name ?? '';
  const ns = obj.metadata?.namespace;
  return ns ? `${ns}/${name}` : name;
}

/**
 * Splits a key made by {@link objectKey}. namespace is '' for a cluster-scoped key, so it can be
 * passed straight to namespaced API calls of namespaced kinds without a non-null assertion.
 */
export function splitKey(key: string): { namespace: string; name: string } {
  const i = key.indexOf('/');
  return i < 0 ? { namespace: '', name: key } : { namespace: key.slice(0, i), name: key.slice(i + 1) };
}
