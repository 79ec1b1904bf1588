/**
 * The vllm backend's reconcile step for one StackedDeployment: apply the Deployment and Service when
 * they differ, sync adapters on every serving pod, set each pod's readiness gate, and compute the
 * status. Level-triggered: everything is derived from the caches and the pods' own model lists.
 */
import {
  CoreV1Api,
  KubernetesObjectApi,
  PatchStrategy,
  setHeaderOptions,
  type KubeConfig,
  type V1Deployment,
  type V1Pod,
  type V1Service,
} from '@kubernetes/client-node';
import type { DeploymentStatus, StackedDeployment } from '../../api/v1alpha1/deployment.ts';
import type { StackedModelGroup } from '../../api/v1alpha1/modelgroup.ts';
import type { Verdict } from '../../controllers/ready.ts';
import { apiErrorStatus, applyIfChanged, errorMeta } from '../../runtime/apply.ts';
import type { Condition } from '../../runtime/conditions.ts';
import type { EventRecorder } from '../../runtime/events.ts';
import type { Informer } from '../../runtime/informer.ts';
import type { Logger } from '../../runtime/logger.ts';
import type { AgentClient } from './agent-client.ts';
import type { VllmClient } from './client.ts';
import { adapterSource, buildDeployment, buildService, serviceEndpoint } from './desired.ts';
import { DEPLOYMENT_LABEL, workloadName } from './names.ts';
import type { WantedAdapter } from './plan.ts';
import { podView, servingCandidates, type PodView } from './pods.ts';
import { desiredGate, gateUpdate, staleGate, vllmStatus } from './status.ts';
import { PodBackoff } from './backoff.ts';
import { mapLimit, syncPod } from './sync.ts';

export interface VllmBackendOptions {
  kc: KubeConfig;
  workloads: Informer<V1Deployment>;
  services: Informer<V1Service>;
  pods: Informer<V1Pod>;
  client: VllmClient;
  agent: AgentClient;
  /** The operator's own image, which also runs the fetch agent sidecar. */
  agentImage: string;
  events: EventRecorder;
  defaultImage: string;
  /** How often settled pods are asked again for their adapters (someone may unload by hand). */
  verifyIntervalMs: number;
  /** Pods synced at once, and loads in flight on one pod. */
  podConcurrency?: number;
  loadsPerPod?: number;
  clock?: () => Date;
}

export interface BackendResult {
  status: Omit<DeploymentStatus, 'observedGeneration'>;
  verdict: Verdict;
  requeueAfterMs: number;
}

/** Pods are indexed by "namespace/StackedDeployment name" (their label). */
export const PODS_BY_DEPLOYMENT = 'byStackedDeployment';
export function podDeploymentKeys(pod: V1Pod): string[] {
  const name = pod.metadata?.labels?.[DEPLOYMENT_LABEL];
  return name ? [`${pod.metadata?.namespace ?? ''}/${name}`] : [];
}

/**
 * Backoff is per container incarnation: a restarted vLLM is a new server, and the failures of the one
 * before it (often just "connection refused" while it went down) must not delay its reload.
 */
function backoffKey(p: PodView): string {
  return `${p.uid}/${p.restartCount}`;
}

export class VllmBackend {
  private readonly opts: VllmBackendOptions;
  private readonly objects: KubernetesObjectApi;
  private readonly core: CoreV1Api;
  private readonly clock: () => Date;
  private readonly backoff = new PodBackoff();

  constructor(opts: VllmBackendOptions) {
    this.opts = opts;
    this.objects = KubernetesObjectApi.makeApiClient(opts.kc);
    this.core = opts.kc.makeApiClient(CoreV1Api);
    this.clock = opts.clock ?? (() => new Date());
  }

  async reconcile(d: StackedDeployment, group: StackedModelGroup, log: Logger): Promise<BackendResult> {
    const ns = d.metadata.namespace ?? '';
    const name = d.metadata.name ?? '';
    const desired = buildDeployment(d, group, {
      defaultImage: this.opts.defaultImage,
      agentImage: this.opts.agentImage,
    });
    const service = buildService(d);
    const live = this.opts.workloads.get(`${ns}/${workloadName(name)}`);
    try {
      if (await applyIfChanged(this.objects, desired, live)) {
        log.info('applied Deployment', { deployment: workloadName(name) });
      }
      if (
        await applyIfChanged(this.objects, service, this.opts.services.get(`${ns}/${workloadName(name)}`))
      ) {
        log.info('applied Service', { service: workloadName(name) });
      }
    } catch (err) {
      // The API server refused what we built from the user's spec (or is unwell): say so on the
      // object, where the user looks, and try again later rather than in a hot loop.
      const reason = apiErrorStatus(err)?.message ?? (err instanceof Error ? err.message : String(err));
      log.warn('apply failed', errorMeta(err));
      return {
        status: { ...(d.status ?? {}) },
        verdict: {
          ready: false,
          reason: 'ApplyFailed',
          message: `applying ${workloadName(name)}: ${reason}`,
        },
        requeueAfterMs: Math.max(this.opts.verifyIntervalMs, 30_000),
      };
    }

    const port = d.spec.vllm?.port ?? 8000;
    const members = group.spec.members ?? [];
    // Preflight refused every member without a usable source, so each has one here.
    const wanted: WantedAdapter[] = members.map((m) => {
      const src = adapterSource(m);
      return {
        name: m.inferenceKey,
        path: src?.path ?? m.inferenceKey,
        ...(src?.fetch ? { fetch: src.fetch } : {}),
      };
    });
    const pods = this.opts.pods.byIndex(PODS_BY_DEPLOYMENT, `${ns}/${name}`).map((p) => podView(p, port));
    const nowMs = this.clock().getTime();
    const candidates = servingCandidates(pods).filter((p) => this.backoff.ready(backoffKey(p), nowMs));
    const syncs = await mapLimit(candidates, this.opts.podConcurrency ?? 8, (p) =>
      syncPod({ vllm: this.opts.client, agent: this.opts.agent }, p, wanted, this.opts.loadsPerPod ?? 4),
    );
    for (const s of syncs) {
      if (s.error === undefined) this.backoff.forget(backoffKey(s.pod));
      else
        log.warn('adapter sync failed; backing off', {
          pod: s.pod.name,
          error: s.error,
          retryInMs: this.backoff.fail(backoffKey(s.pod), nowMs),
        });
    }
    this.backoff.retain(new Set(pods.map(backoffKey)));

    const now = this.clock();
    for (const s of syncs) {
      if (s.lost.length > 0) {
        this.opts.events.record(
          d,
          'Warning',
          'AdaptersReloaded',
          `pod ${s.pod.name} had lost ${s.lost.join(', ')} (container restart or unloaded by hand); reloading`,
        );
      }
      const gate = gateUpdate(s.pod, desiredGate(s, members.length), now);
      if (gate) await this.patchGate(ns, s.pod.name, gate, log);
    }
    // A vLLM container that stopped being ready (crashed, restarted) has lost its adapters. Close
    // its gate now, before the restarted server passes its probe: otherwise the kubelet would see
    // the old True gate and send it traffic for adapters it no longer holds.
    for (const p of pods) {
      const gate = gateUpdate(p, staleGate(p), now);
      if (gate === undefined) continue;
      this.opts.events.record(
        d,
        'Warning',
        'AdaptersReloading',
        `pod ${p.name}: vLLM is not ready (restart ${p.restartCount}); its adapters are reloaded once it is`,
      );
      await this.patchGate(ns, p.name, gate, log);
    }

    const { status, verdict } = vllmStatus(
      {
        members,
        desiredReplicas: d.spec.vllm?.replicas ?? 1,
        pods,
        syncs,
        workload: live,
        generation: d.metadata.generation ?? 0,
        endpoint: serviceEndpoint(d),
      },
      d.status?.conditions ?? [],
      now,
    );
    // Pod events wake us for everything the kubelet does; the timers are for what no event reports:
    // a backed-off pod's retry, a refused member's files appearing, an adapter unloaded by hand.
    const retry = this.backoff.nextRetryMs(nowMs);
    const refused = status.adapters?.some((a) => a.state === 'Failed') ?? false;
    const interval = refused ? Math.min(15_000, this.opts.verifyIntervalMs) : this.opts.verifyIntervalMs;
    return { status, verdict, requeueAfterMs: retry === undefined ? interval : Math.min(retry, interval) };
  }

  /**
   * Sets our readiness-gate condition on the pod. A strategic merge patch merges conditions by type,
   * so the kubelet's own conditions are left alone.
   */
  private async patchGate(namespace: string, pod: string, gate: Condition, log: Logger): Promise<void> {
    await this.core.patchNamespacedPodStatus(
      { name: pod, namespace, body: { status: { conditions: [gate] } } },
      setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
    );
    log.info('set adapter readiness gate', { pod, status: gate.status, reason: gate.reason });
  }
}
