/**
 * metav1.Condition handling with the semantics of apimachinery's meta.SetStatusCondition, so
 * `kubectl wait --for=condition=...`, Argo CD and humans see the same thing they see on core kinds.
 */

/** A metav1.Condition as stored in status.conditions. */
export interface Condition {
  /** CamelCase condition type, e.g. "Ready"; unique within the list. */
  type: string;
  /** Whether the condition holds. */
  status: 'True' | 'False' | 'Unknown';
  /** CamelCase machine-readable reason of the last transition or update. */
  reason: string;
  /** Human-readable detail. */
  message: string;
  /** RFC3339 time (seconds precision) of the last status change. */
  lastTransitionTime: string;
  /** metadata.generation the condition was computed from; lets `kubectl wait` ignore stale ones. */
  observedGeneration?: number;
}

/**
 * Formats a time like the API server does for metav1.Time: RFC3339 in UTC with whole seconds.
 * Millisecond timestamps would make every write differ from what the server hands back.
 */
export function rfc3339(d: Date): string {
  return d.toISOString().replace(/\.\d+Z$/, 'Z');
}

function copyCondition(c: Condition): Condition {
  const out: Condition = {
    type: c.type,
    status: c.status,
    reason: c.reason,
    message: c.message,
    lastTransitionTime: c.lastTransitionTime,
  };
  if (c.observedGeneration !== undefined) out.observedGeneration = c.observedGeneration;
  return out;
}

/**
 * Returns a new list with condition c set. A new type is appended with lastTransitionTime = now; an
 * existing one keeps its position and its lastTransitionTime unless status flips, while reason,
 * message and observedGeneration are always replaced. The input is never mutated, so conditions
 * straight from the (frozen) informer cache can be passed in.
 */
export function setCondition(
  conditions: readonly Condition[],
  c: Omit<Condition, 'lastTransitionTime'>,
  now: Date,
): Condition[] {
  const out = conditions.map(copyCondition);
  const idx = out.findIndex((x) => x.type === c.type);
  const existing = idx >= 0 ? out[idx] : undefined;
  const next: Condition = {
    type: c.type,
    status: c.status,
    reason: c.reason,
    message: c.message,
    lastTransitionTime:
      existing !== undefined && existing.status === c.status && existing.lastTransitionTime !== ''
        ? existing.lastTransitionTime
        : rfc3339(now),
  };
  if (c.observedGeneration !== undefined) next.observedGeneration = c.observedGeneration;
  if (idx >= 0) out[idx] = next;
  else out.push(next);
  return out;
}

/** Returns a new list without the condition of the given type. */
export function removeCondition(conditions: readonly Condition[], type: string): Condition[] {
  return conditions.filter((c) => c.type !== type).map(copyCondition);
}

/** The condition of the given type, if present. */
export function findCondition(
  conditions: readonly Condition[] | undefined,
  type: string,
): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}

/** True only if the condition is present with status "True" (missing means Unknown). */
export function isConditionTrue(conditions: readonly Condition[] | undefined, type: string): boolean {
  return findCondition(conditions, type)?.status === 'True';
}

/** Sets one boolean condition of an object at its generation; what both backends' status builders use. */
export type BoolConditionSetter = (
  conds: Condition[],
  type: string,
  status: boolean,
  reason: string,
  message: string,
) => Condition[];

export function conditionSetter(generation: number, now: Date): BoolConditionSetter {
  return (conds, type, status, reason, message) =>
    setCondition(
      conds,
      { type, status: status ? 'True' : 'False', reason, message, observedGeneration: generation },
      now,
    );
}
