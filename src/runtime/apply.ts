import {
  type KubernetesObject,
  type KubernetesObjectApi,
  PatchStrategy,
  V1OwnerReference,
} from '@kubernetes/client-node';
import { model } from './model.ts';

/** Error helpers live in errors.ts; re-exported here where callers of the API expect them. */
export { apiErrorCode, apiErrorStatus, errorMeta, isConflict, isNotFound } from './errors.ts';

/**
 * The operator's name, one source for every place that says who made or changed something: the
 * field manager of its writes, the managed-by label and OCI tag of what it creates, its Events'
 * reporting component and its User-Agent.
 */
export const MANAGER_NAME = 'stacked-operator';
/** The recommended Kubernetes label that marks what the operator created; its value is MANAGER_NAME. */
export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
/** A label selector for every Kubernetes object the operator created. */
export const MANAGED_BY_SELECTOR = `${MANAGED_BY_LABEL}=${MANAGER_NAME}`;

/** The field manager of every write this operator makes, so managedFields show one owner. */
export const FIELD_MANAGER = MANAGER_NAME;

/**
 * Server-side applies obj (the complete desired state of the fields we own) and returns the object
 * the server now has. force: true because we are the controller of these objects: a field someone
 * else took over is taken back rather than failing with a conflict (the k8s SSA guidance for
 * controllers). obj must be built fresh, not read from the server: managedFields in the body are
 * rejected and a resourceVersion would turn the apply into a precondition.
 */
export async function serverSideApply<T extends KubernetesObject>(
  api: Pick<KubernetesObjectApi, 'patch'>,
  obj: T,
  fieldManager: string = FIELD_MANAGER,
): Promise<T> {
  // KubernetesObjectApi.patch is positional: pretty, dryRun, fieldManager, force, patch strategy.
  return api.patch(obj, undefined, undefined, fieldManager, true, PatchStrategy.ServerSideApply);
}

/**
 * The ownerReference that makes owner the controller of a child: the garbage collector deletes the
 * child with its owner, foreground deletion waits for it, and our informers map child events back
 * to the owner through it. Throws if the owner has no uid yet (the server would reject the
 * reference anyway, and an ownerReference by name alone would be wrong after a re-create).
 */
export function controllerOwnerReference(owner: {
  apiVersion: string;
  kind: string;
  metadata: { name?: string; uid?: string };
}): V1OwnerReference {
  const { name, uid } = owner.metadata;
  if (!name || !uid) {
    throw new Error(`cannot reference ${owner.kind} ${name ?? '<unnamed>'} as owner: it has no name or uid`);
  }
  return model(V1OwnerReference, {
    apiVersion: owner.apiVersion,
    kind: owner.kind,
    name,
    uid,
    controller: true,
    blockOwnerDeletion: true,
  });
}

/**
 * Whether every field of `desired` has the same value in `live` (lists element by element, same
 * length). Fields the server or other managers added are ignored. This is how a controller tells
 * "already as wanted" from the informer cache without sending an apply: an unchanged apply is still
 * a write request, and a cluster at rest must see none.
 */
export function isSubset(desired: unknown, live: unknown): boolean {
  // The API server omits empty lists and maps (Go's omitempty), so [] and {} match an absent field.
  if (live === undefined && isEmpty(desired)) return true;
  if (Array.isArray(desired)) {
    return (
      Array.isArray(live) && live.length === desired.length && desired.every((d, i) => isSubset(d, live[i]))
    );
  }
  if (desired !== null && typeof desired === 'object') {
    if (live === null || typeof live !== 'object' || Array.isArray(live)) return false;
    const l = live as Record<string, unknown>;
    return Object.entries(desired).every(([k, v]) => v === undefined || isSubset(v, l[k]));
  }
  return desired === live;
}

function isEmpty(v: unknown): boolean {
  if (Array.isArray(v)) return v.length === 0;
  return v !== null && typeof v === 'object' && Object.keys(v).length === 0;
}

/** Applies `desired` unless `live` (from the cache) already has every field; returns whether it wrote. */
export async function applyIfChanged(
  api: Pick<KubernetesObjectApi, 'patch'>,
  desired: KubernetesObject,
  live: KubernetesObject | undefined,
): Promise<boolean> {
  if (live !== undefined && isSubset(desired, live)) return false;
  await serverSideApply(api, desired);
  return true;
}
