/**
 * The vllm backend's part of a StackedDeployment reconcile: apply the Deployment (carrying the
 * adapters every pod must hold) and the Service when they differ, and compute the status from the
 * pods and the adapter state each one publishes. It never talks to a pod: the adapter-sync
 * controller (pod-reconciler.ts) does, one pod per work-queue key.
 */
import {
  KubernetesObjectApi,
  type KubeConfig,
  type V1Deployment,
  type V1Pod,
  type V1Service,
} from '@kubernetes/client-node';
import type { StackedDeployment } from '../../api/v1alpha1/deployment.ts';
import type { StackedModelGroup } from '../../api/v1alpha1/modelgroup.ts';
import { apiErrorStatus, applyIfChanged, errorMeta } from '../../runtime/apply.ts';
import { errorText } from '../../runtime/errors.ts';
import type { WallClock } from '../../runtime/clock.ts';
import type { Informer } from '../../runtime/informer.ts';
import { keyOf } from '../../runtime/keys.ts';
import type { Verdict } from '../../runtime/ready.ts';
import type { PrincipalAuthAllow } from '../../config.ts';
import type { Backend, BackendContext, BackendResult, FinalizeResult } from '../backend.ts';
import { buildDeployment, buildService, serviceEndpoint } from './desired.ts';
import { vllmPreflight } from './preflight.ts';
import { DEPLOYMENT_LABEL, workloadName } from './names.ts';
import { PODS_BY_DEPLOYMENT } from './pod-reconciler.ts';
import { podView } from './pods.ts';
import { vllmStatus } from './status.ts';

export interface VllmBackendOptions {
  kc: KubeConfig;
  workloads: Informer<V1Deployment>;
  services: Informer<V1Service>;
  pods: Informer<V1Pod>;
  /** The operator's own image, which also runs the fetch agent sidecar. */
  agentImage: string;
  defaultImage: string;
  /** How often the status is recomputed when nothing else wakes it (a safety net: pods are watched). */
  resyncIntervalMs: number;
  /** Where the fetch agent may use principal-based OCI auth (--principal-auth-allow); default: nowhere. */
  principalAuthAllow?: PrincipalAuthAllow;
  clock: WallClock;
}

export function podDeploymentKeys(pod: V1Pod): string[] {
  const name = pod.metadata?.labels?.[DEPLOYMENT_LABEL];
  return name ? [keyOf(pod.metadata?.namespace, name)] : [];
}

const APPLY_RETRY_MS = 30_000;

export class VllmBackend implements Backend {
  private readonly opts: VllmBackendOptions;
  private readonly objects: KubernetesObjectApi;

  constructor(opts: VllmBackendOptions) {
    this.opts = opts;
    this.objects = KubernetesObjectApi.makeApiClient(opts.kc);
  }

  preflight(d: StackedDeployment, group: StackedModelGroup): Verdict | undefined {
    return vllmPreflight(d, group, this.opts.principalAuthAllow ?? new Map());
  }

  async reconcile(
    d: StackedDeployment,
    group: StackedModelGroup,
    ctx: BackendContext,
  ): Promise<BackendResult> {
    const refused = await this.applyWorkload(d, group, ctx);
    if (refused !== undefined) {
      return { status: { ...(d.status ?? {}) }, verdict: refused, requeueAfterMs: APPLY_RETRY_MS };
    }
    const ns = d.metadata.namespace;
    const pods = this.opts.pods.byIndex(PODS_BY_DEPLOYMENT, keyOf(ns, d.metadata.name ?? '')).map(podView);
    const { status, verdict } = vllmStatus(
      {
        members: group.spec.members ?? [],
        desiredReplicas: d.spec.vllm?.replicas ?? 1,
        pods,
        workload: this.opts.workloads.get(keyOf(ns, workloadName(d.metadata.name ?? ''))),
        generation: d.metadata.generation ?? 0,
        endpoint: serviceEndpoint(d),
      },
      d.status?.conditions ?? [],
      this.opts.clock(),
    );
    return { status, verdict, requeueAfterMs: this.opts.resyncIntervalMs };
  }

  /** Owner references let the garbage collector delete the Deployment, Service and pods. */
  finalize(): Promise<FinalizeResult> {
    return Promise.resolve({ done: true });
  }

  /** Applies the Deployment and Service when the cache shows a difference; a refusal is the verdict. */
  private async applyWorkload(
    d: StackedDeployment,
    group: StackedModelGroup,
    ctx: BackendContext,
  ): Promise<Verdict | undefined> {
    const key = keyOf(d.metadata.namespace, workloadName(d.metadata.name ?? ''));
    const deployment = buildDeployment(d, group, {
      defaultImage: this.opts.defaultImage,
      agentImage: this.opts.agentImage,
    });
    try {
      if (await applyIfChanged(this.objects, deployment, this.opts.workloads.get(key))) {
        ctx.log.info('applied Deployment', { deployment: key });
      }
      if (await applyIfChanged(this.objects, buildService(d), this.opts.services.get(key))) {
        ctx.log.info('applied Service', { service: key });
      }
      return undefined;
    } catch (err) {
      // The API server refused what we built from the user's spec (or is unwell): say so on the
      // object, where the user looks, and try again later rather than in a hot loop.
      ctx.log.warn('apply failed', errorMeta(err));
      const reason = apiErrorStatus(err)?.message ?? errorText(err);
      return { ready: false, reason: 'ApplyFailed', message: `applying ${key}: ${reason}` };
    }
  }
}
