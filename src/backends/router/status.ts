/**
 * Pure: how the router changes a StackedDeployment's status. While it is enabled, clients go through
 * it, so status.endpoint names it and Ready waits for one of its replicas: a Ready deployment whose
 * endpoint refuses every request would mislead `kubectl wait` and Argo CD.
 */
import type { DeploymentStatus } from '../../api/v1alpha1/deployment.ts';
import { setCondition } from '../../runtime/conditions.ts';
import type { Verdict } from '../../runtime/ready.ts';

/** What the router reconcile found: off (its objects deleted), or on with its Deployment's counts. */
export type RouterState =
  | {
      enabled: false;
      /** The router Service's URL, so a status still naming it can be corrected. */
      endpoint: string;
      /** The API server refused to delete a router object. */
      problem?: Verdict;
    }
  | {
      enabled: true;
      /** The router Service's URL. */
      endpoint: string;
      /** "namespace/name" of the router's Deployment, for messages. */
      deployment: string;
      replicas: number;
      readyReplicas: number;
      /** The API server refused a router object: what to say instead of Ready. */
      problem?: Verdict;
    };

export interface StatusAndVerdict {
  status: Omit<DeploymentStatus, 'observedGeneration'>;
  verdict: Verdict;
}

/**
 * The backend's status and verdict with the router folded in. The backend's own not-ready reason
 * wins (it is the deeper cause); a ready backend behind a router that cannot answer is not Ready.
 * A router scaled to 0 by the user is as asked, as spec.vllm.replicas 0 is: Ready, with a reason
 * that says so, and Available False, since its endpoint refuses every request.
 */
export function withRouter(backend: StatusAndVerdict, router: RouterState, now: Date): StatusAndVerdict {
  const status = { ...backend.status };
  if (!router.enabled) {
    // The oci backend keeps the last endpoint while OCI cannot be read: never the deleted router's.
    if (status.endpoint === router.endpoint) delete status.endpoint;
    const verdict = backend.verdict.ready && router.problem !== undefined ? router.problem : backend.verdict;
    return { status, verdict };
  }
  status.endpoint = router.endpoint;
  if (!backend.verdict.ready) return { status, verdict: backend.verdict };
  if (router.problem !== undefined) return { status, verdict: router.problem };
  if (router.replicas === 0) {
    const message = `the router (Deployment ${router.deployment}) is scaled to 0: ${router.endpoint} refuses every request until it is scaled up`;
    status.conditions = setCondition(
      status.conditions ?? [],
      { type: 'Available', status: 'False', reason: 'RouterScaledToZero', message },
      now,
    );
    return { status, verdict: { ready: true, reason: 'RouterScaledToZero', message } };
  }
  if (router.readyReplicas === 0) {
    return {
      status,
      verdict: {
        ready: false,
        reason: 'RouterNotReady',
        message: `the backend serves, but no replica of the router (Deployment ${router.deployment}) is ready to take requests at ${router.endpoint}`,
      },
    };
  }
  return { status, verdict: backend.verdict };
}
