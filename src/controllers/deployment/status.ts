/** Pure: the status a StackedDeployment should have in this version of the operator. */
import type { DeploymentStatus, StackedDeployment } from '../../api/v1alpha1/deployment.ts';
import type { StackedModelGroup } from '../../api/v1alpha1/modelgroup.ts';
import { formatIssues, type ValidationIssue } from '../../api/v1alpha1/validate.ts';
import { setCondition } from '../../runtime/conditions.ts';
import { groupProblem, type Verdict } from './checks.ts';

export const READY = 'Ready';

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
  const status: DeploymentStatus = {
    ...(d.status ?? {}),
    observedGeneration: generation,
    conditions: setCondition(
      d.status?.conditions ?? [],
      {
        type: READY,
        status: verdict.ready ? 'True' : 'False',
        reason: verdict.reason,
        message: verdict.message,
        observedGeneration: generation,
      },
      now,
    ),
  };
  return status;
}
