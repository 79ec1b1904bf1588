/** Pure: the status a StackedDeployment should have in this version of the operator. */
import type { DeploymentStatus, StackedDeployment } from '../../api/v1alpha1/deployment.ts';
import type { StackedModelGroup } from '../../api/v1alpha1/modelgroup.ts';
import { formatIssues, type ValidationIssue } from '../../api/v1alpha1/validate.ts';
import { withReady, type Verdict } from '../ready.ts';
import { groupProblem } from './checks.ts';

/**
 * Until the backends land, a deployment whose inputs are all valid still reports Ready=False with
 * reason BackendNotImplemented: honest about what this operator does, and `kubectl wait` never
 * believes a model is served when it is not.
 */
export function deploymentVerdict(
  d: StackedDeployment,
  group: StackedModelGroup | undefined,
  issues: readonly ValidationIssue[],
): Verdict {
  if (issues.length > 0) return { ready: false, reason: 'InvalidSpec', message: formatIssues(issues) };
  return (
    groupProblem(d, group) ?? {
      ready: false,
      reason: 'BackendNotImplemented',
      message: `the ${d.spec.backend} backend is not implemented in this version of the operator; nothing is deployed`,
    }
  );
}

export function desiredDeploymentStatus(d: StackedDeployment, verdict: Verdict, now: Date): DeploymentStatus {
  const generation = d.metadata.generation ?? 0;
  return {
    ...(d.status ?? {}),
    observedGeneration: generation,
    conditions: withReady(d.status?.conditions ?? [], verdict, generation, now),
  };
}
