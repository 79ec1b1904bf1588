/**
 * StackedModelGroup reconciler: gathers the facts (PVCs, deployments) from the informer caches, asks
 * the pure builders for the status, and writes it only when it changed.
 */
import type { CustomObjectsApi, V1PersistentVolumeClaim } from '@kubernetes/client-node';
import type { StackedDeployment } from '../../api/v1alpha1/deployment.ts';
import { MODEL_GROUP_PLURAL, type StackedModelGroup } from '../../api/v1alpha1/modelgroup.ts';
import { validateModelGroup } from '../../api/v1alpha1/validate.ts';
import type { WallClock } from '../../runtime/clock.ts';
import type { ReconcileFn } from '../../runtime/controller.ts';
import type { EventRecorder } from '../../runtime/events.ts';
import type { Informer } from '../../runtime/informer.ts';
import { writeStatus } from '../status-writer.ts';
import { DEPLOYMENTS_BY_GROUP } from '../indexes.ts';
import type { GroupFacts } from './checks.ts';
import { desiredGroupStatus } from './status.ts';

export interface ModelGroupDeps {
  groups: Informer<StackedModelGroup>;
  deployments: Informer<StackedDeployment>;
  claims: Informer<V1PersistentVolumeClaim>;
  api: CustomObjectsApi;
  events: EventRecorder;
  clock: WallClock;
}

export function modelGroupReconciler(deps: ModelGroupDeps): ReconcileFn {
  return async (key, log) => {
    const group = deps.groups.get(key);
    if (group === undefined) return; // deleted: nothing of ours outlives it
    const namespace = group.metadata.namespace ?? '';
    const facts: GroupFacts = {
      claims: new Set(deps.claims.list(namespace).map((c) => c.metadata?.name ?? '')),
      deployments: deps.deployments.byIndex(DEPLOYMENTS_BY_GROUP, key),
    };
    const validation = validateModelGroup(group);
    const issues = validation.valid ? [] : validation.issues;
    const desired = desiredGroupStatus(group, facts, issues, deps.clock());
    await writeStatus({
      api: deps.api,
      plural: MODEL_GROUP_PLURAL,
      obj: group,
      desired,
      events: deps.events,
      log,
    });
  };
}
