/**
 * Pure checks of a StackedDeployment against its StackedModelGroup: what admission cannot see because
 * it spans two objects (rank above the engine's limit, experiments naming members). What only one
 * backend needs is that backend's preflight.
 */
import type { StackedDeployment } from '../../api/v1alpha1/deployment.ts';
import type { StackedModelGroup } from '../../api/v1alpha1/modelgroup.ts';
import { findCondition } from '../../runtime/conditions.ts';
import { listNames, type Verdict } from '../../runtime/ready.ts';

/**
 * The first problem that keeps the deployment from being served, in the order a user would fix them:
 * the group must exist and be valid, then fit this deployment's engine and experiments.
 */
export function groupProblem(
  d: StackedDeployment,
  group: StackedModelGroup | undefined,
): Verdict | undefined {
  const groupName = d.spec.modelGroupRef.name;
  if (group === undefined) {
    return {
      ready: false,
      reason: 'ModelGroupNotFound',
      message: `StackedModelGroup "${groupName}" not found in namespace ${d.metadata.namespace ?? ''}`,
    };
  }
  const groupReady = findCondition(group.status?.conditions, 'Ready');
  if (groupReady?.status === 'False') {
    return {
      ready: false,
      reason: 'ModelGroupNotReady',
      message: `StackedModelGroup "${groupName}" is not ready: ${groupReady.message}`,
    };
  }
  const members = group.spec.members ?? [];
  const maxRank = d.spec.engine.maxLoraRank;
  const tooHigh = members.filter((m) => m.rank !== undefined && m.rank > maxRank);
  if (tooHigh.length > 0) {
    return {
      ready: false,
      reason: 'RankTooHigh',
      message:
        `member ${listNames(tooHigh.map((m) => `${m.inferenceKey} (rank ${m.rank ?? 0})`))} ` +
        `exceeds engine.maxLoraRank ${maxRank}`,
    };
  }
  const keys = new Set(members.map((m) => m.inferenceKey));
  for (const e of d.spec.experiments ?? []) {
    if (keys.has(e.name) || e.name === group.spec.baseModel.inferenceKey) {
      return {
        ready: false,
        reason: 'ExperimentInvalid',
        message: `experiment ${e.name}: its name is an inference key of group "${groupName}"`,
      };
    }
    const unknown = e.variants.map((v) => v.inferenceKey).filter((k) => !keys.has(k));
    if (unknown.length > 0) {
      return {
        ready: false,
        reason: 'ExperimentInvalid',
        message: `experiment ${e.name}: variant ${listNames(unknown)} is not a member of group "${groupName}"`,
      };
    }
  }
  return undefined;
}
