/** What a backend's reconcile step hands back to the StackedDeployment reconciler. */
import type { DeploymentStatus } from '../api/v1alpha1/deployment.ts';
import type { Verdict } from '../runtime/ready.ts';

export interface BackendResult {
  status: Omit<DeploymentStatus, 'observedGeneration'>;
  verdict: Verdict;
  requeueAfterMs: number;
}
