/**
 * The one way our controllers write status: only when it changed, and with an Event when the Ready
 * verdict turns to a problem or recovers from one, so `kubectl describe` tells the story without a
 * write at rest.
 */
import type { CustomObjectsApi, KubernetesObject } from '@kubernetes/client-node';
import { GROUP, VERSION } from '../api/v1alpha1/common.ts';
import { REASONS } from '../api/v1alpha1/reasons.ts';
import { FIELD_MANAGER } from '../runtime/apply.ts';
import { findCondition, type Condition } from '../runtime/conditions.ts';
import type { EventRecorder } from '../runtime/events.ts';
import type { Logger } from '../runtime/logger.ts';
import { patchStatusIfChanged } from '../runtime/status.ts';
import { READY } from '../runtime/ready.ts';

interface WithStatus extends KubernetesObject {
  status?: { conditions?: readonly Condition[] } | undefined;
}

export async function writeStatus(opts: {
  api: CustomObjectsApi;
  plural: string;
  obj: WithStatus;
  desired: { conditions?: readonly Condition[] };
  events: EventRecorder;
  log: Logger;
}): Promise<void> {
  const { obj, desired } = opts;
  const written = await patchStatusIfChanged({
    api: opts.api,
    group: GROUP,
    version: VERSION,
    plural: opts.plural,
    namespace: obj.metadata?.namespace ?? '',
    name: obj.metadata?.name ?? '',
    current: obj.status,
    desired,
    fieldManager: FIELD_MANAGER,
  });
  if (!written) return;
  const before = findCondition(obj.status?.conditions, READY);
  const after = findCondition(desired.conditions, READY);
  opts.log.info('status updated', { ready: after?.status, reason: after?.reason });
  if (after && (before?.status !== after.status || before.reason !== after.reason)) {
    const type = eventType(before, after);
    if (type !== undefined) opts.events.record(obj, type, after.reason, after.message);
  }
}

const HEALTH_BY_REASON = new Map(REASONS.map((r) => [r.reason, r.health]));

/**
 * The Event a move of the Ready verdict is worth: a Warning when it turns to a problem a user must
 * act on, Normal when it turns True after such a problem (the problem is over), and none otherwise.
 * No Event for a step of progress (creating, loading, rolling out) that passes by itself: a Warning
 * would alarm for nothing. None either for the normal course, an object turning Ready the first
 * time or after progress: the Ready condition says so, and the creates of what it made outside the
 * cluster have Events of their own. An Event per step or per first Ready would double the writes
 * of every object's creation (issue 8's scale benchmark counted 2.02, then 1.50 Events per object,
 * for an API server that takes about 300 writes a second here). A reason missing from the list (a
 * test forbids that) is taken as a problem.
 */
export function eventType(before: Condition | undefined, after: Condition): 'Normal' | 'Warning' | undefined {
  if (after.status === 'True') return before !== undefined && isProblem(before) ? 'Normal' : undefined;
  return isProblem(after) ? 'Warning' : undefined;
}

function isProblem(ready: Condition): boolean {
  if (ready.status === 'True') return false;
  const health = HEALTH_BY_REASON.get(ready.reason);
  return health !== 'Progressing' && health !== 'Suspended';
}
