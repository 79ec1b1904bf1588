import { type CustomObjectsApi, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** What JSON.stringify would send for v: Dates (and anything with toJSON) compare by their JSON form. */
function jsonValue(v: unknown): unknown {
  if (typeof v === 'object' && v !== null && typeof (v as { toJSON?: unknown }).toJSON === 'function') {
    return (v as { toJSON: () => unknown }).toJSON();
  }
  return v;
}

/** null and undefined both mean "absent" in a merge patch and in what the server returns. */
function isAbsent(v: unknown): boolean {
  return v === undefined || v === null;
}

/**
 * Deep equality of two status values as the API server would store them: object key order is
 * ignored, a field set to undefined or null equals a missing field, arrays compare in order, and
 * Dates compare by their JSON form. Used to skip writes that would change nothing, which would
 * otherwise bump resourceVersion and wake every watcher on each reconcile.
 */
export function statusEqual(a: unknown, b: unknown): boolean {
  a = jsonValue(a);
  b = jsonValue(b);
  if (isAbsent(a) || isAbsent(b)) return isAbsent(a) && isAbsent(b);
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((x, i) => statusEqual(x, b[i]));
  }
  if (isPlainObject(a) || isPlainObject(b)) {
    if (!isPlainObject(a) || !isPlainObject(b)) return false;
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    for (const k of keys) {
      if (!statusEqual(a[k], b[k])) return false;
    }
    return true;
  }
  return a === b;
}

/**
 * The JSON merge patch (RFC 7386) that turns current into desired: desired itself, plus null for
 * every key current has and desired lacks. Without the nulls a field dropped from the desired
 * status would survive on the server and the next comparison would want to write again.
 */
export function mergePatchFor(current: unknown, desired: unknown): unknown {
  desired = jsonValue(desired);
  current = jsonValue(current);
  if (!isPlainObject(desired)) return desired === undefined ? null : desired;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(desired)) {
    if (v === undefined) continue;
    out[k] = isPlainObject(current) ? mergePatchFor(current[k], v) : mergePatchFor(undefined, v);
  }
  if (isPlainObject(current)) {
    for (const [k, v] of Object.entries(current)) {
      if (!isAbsent(v) && isAbsent(desired[k])) out[k] = null;
    }
  }
  return out;
}

/** Options for {@link patchStatusIfChanged}. */
export interface PatchStatusOptions {
  /** The client; only patchNamespacedCustomObjectStatus is used. */
  api: Pick<CustomObjectsApi, 'patchNamespacedCustomObjectStatus'>;
  /** API group of the custom resource. */
  group: string;
  /** API version of the custom resource. */
  version: string;
  /** Plural resource name. */
  plural: string;
  /** Namespace of the object. */
  namespace: string;
  /** Name of the object. */
  name: string;
  /** The status as last read (from the informer cache), possibly undefined. */
  current: unknown;
  /** The complete status the object should have. */
  desired: object;
  /** Field manager recorded for the write. */
  fieldManager: string;
}

/**
 * Writes desired to the /status subresource with a JSON merge patch, only when it differs from
 * current; returns whether it wrote. The patch carries no resourceVersion: the controller is the
 * only writer of status and the desired status is recomputed from scratch on every reconcile, so
 * last-writer-wins is what we want (a conflict retry would just compute the same thing).
 */
export async function patchStatusIfChanged(opts: PatchStatusOptions): Promise<boolean> {
  if (statusEqual(opts.current, opts.desired)) return false;
  await opts.api.patchNamespacedCustomObjectStatus(
    {
      group: opts.group,
      version: opts.version,
      namespace: opts.namespace,
      plural: opts.plural,
      name: opts.name,
      body: { status: mergePatchFor(opts.current, opts.desired) },
      fieldManager: opts.fieldManager,
    },
    // The generated client would otherwise send application/json-patch+json and expect an op list.
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  );
  return true;
}
