/** Pure: the status a StackedDeployment should have in this version of the operator. */
import type { DeploymentStatus, StackedDeployment } from '../../api/v1alpha1/deployment.ts';
import type { StackedModelGroup } from '../../api/v1alpha1/modelgroup.ts';
import { formatIssues, type ValidationIssue } from '../../api/v1alpha1/validate.ts';
import { withReady, type Verdict } from '../../runtime/ready.ts';
import { groupProblem } from './checks.ts';

/**
 * What must hold before a backend touches anything: a valid spec and a group that fits this
 * deployment. Undefined when the backend may act.
 */
export function preflight(
  d: StackedDeployment,
  group: StackedModelGroup | undefined,
  issues: readonly ValidationIssue[],
): Verdict | undefined {
  if (issues.length > 0) return { ready: false, reason: 'InvalidSpec', message: formatIssues(issues) };
  return groupProblem(d, group);
}

/**
 * The whole status: the backend's fields when it ran (otherwise the last ones, which still describe
 * what runs), the generation, and Ready from the verdict.
 */
export function desiredDeploymentStatus(
  d: StackedDeployment,
  verdict: Verdict,
  now: Date,
  backend?: Omit<DeploymentStatus, 'observedGeneration'>,
): DeploymentStatus {
  const generation = d.metadata.generation ?? 0;
  const base = backend ?? d.status ?? {};
  return {
    ...base,
    observedGeneration: generation,
    conditions: withReady(base.conditions ?? [], verdict, generation, now),
  };
}
