/**
 * The one way our controllers write status: only when it changed, and with an Event when the Ready
 * verdict moves, so `kubectl describe` tells the story without a write at rest.
 */
import type { CustomObjectsApi, KubernetesObject } from '@kubernetes/client-node';
import { GROUP, VERSION } from '../api/v1alpha1/common.ts';
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
    opts.events.record(obj, after.status === 'True' ? 'Normal' : 'Warning', after.reason, after.message);
  }
}
