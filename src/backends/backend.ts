/**
 * What the StackedDeployment reconciler asks of a backend. The reconciler resolves the group, checks
 * what spans both objects and keeps the finalizer; everything that depends on where the deployment
 * runs sits behind this interface, so the reconciler never branches on spec.backend.
 */
import type { DeploymentStatus, StackedDeployment } from '../api/v1alpha1/deployment.ts';
import type { StackedModelGroup } from '../api/v1alpha1/modelgroup.ts';
import type { Logger } from '../runtime/logger.ts';
import type { Verdict } from '../runtime/ready.ts';

export interface BackendResult {
  status: Omit<DeploymentStatus, 'observedGeneration'>;
  verdict: Verdict;
  requeueAfterMs: number;
}

export interface BackendContext {
  log: Logger;
  /** Aborted when the reconcile must stop: shutdown, or the leader lease lost. */
  signal: AbortSignal;
  /**
   * Puts the finalizer on the object. A backend that makes resources outside the cluster calls it
   * before its first create, so an object whose credentials never worked deletes at once.
   */
  protect: () => Promise<void>;
  /**
   * Whether the finalizer is on: it was when the pass began, or protect() put it there. Until it
   * is, this object never sent a create (protect comes first and is awaited), so nothing outside
   * the cluster can be waiting to be adopted and the lists that look for it can be skipped.
   */
  isProtected: () => boolean;
}

export type FinalizeResult =
  | { done: true }
  /** Still deleting (reason Terminating) or blocked (e.g. CleanupBlocked): shown on the object. */
  | { done: false; reason: string; message: string };

export interface Backend {
  /**
   * What this backend needs of the group that admission cannot see (model ids, source kinds). A
   * verdict here keeps the backend from acting on the new spec; what already runs is left as it is.
   */
  preflight(d: StackedDeployment, group: StackedModelGroup): Verdict | undefined;
  /** Makes what runs match the spec, and reports it. Level-triggered and idempotent. */
  reconcile(d: StackedDeployment, group: StackedModelGroup, ctx: BackendContext): Promise<BackendResult>;
  /** Deletes what the owner references cannot: called while the finalizer is on the object. */
  finalize(d: StackedDeployment, ctx: BackendContext): Promise<FinalizeResult>;
  /** The object under this key is gone from the cluster: drop what the backend keeps for it. */
  forget?(key: string): void;
}
