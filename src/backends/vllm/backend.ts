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
import type { StackedDeployment } from '../../api/v1alpha1/deployment.ts';
import type { StackedModelGroup } from '../../api/v1alpha1/modelgroup.ts';
import type { Verdict } from '../../runtime/ready.ts';
import type { BackendResult } from '../result.ts';
import { apiErrorStatus, applyIfChanged, errorMeta, isNotFound } from '../../runtime/apply.ts';
import type { Condition } from '../../runtime/conditions.ts';
import type { EventRecorder } from '../../runtime/events.ts';
import type { Informer } from '../../runtime/informer.ts';
import { errorText } from '../../runtime/errors.ts';
import type { Logger } from '../../runtime/logger.ts';
import type { AgentClient } from './agent-client.ts';
import { PodBackoff } from './backoff.ts';
import type { VllmClient } from './client.ts';
import { buildDeployment, buildService, serviceEndpoint, wantedAdapters } from './desired.ts';
import { DEPLOYMENT_LABEL, workloadName } from './names.ts';
import type { WantedAdapter } from './plan.ts';
import { podView, servingCandidates, type PodView } from './pods.ts';
import { desiredGate, gateUpdate, staleGate, vllmStatus } from './status.ts';
import { mapLimit, syncPod, type PodSync } from './sync.ts';

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

/** Refused members are retried sooner than the settled re-verification: their files may appear. */
const REFUSED_RETRY_MS = 15_000;
const APPLY_RETRY_MS = 30_000;

export class VllmBackend {
  private readonly opts: VllmBackendOptions;
  private readonly objects: KubernetesObjectApi;
  private readonly core: CoreV1Api;
  private readonly clock: () => Date;
  private readonly backoff = new PodBackoff();
  /** The last sync of each pod incarnation, reported again while the pod backs off. */
  private readonly lastSync = new Map<string, PodSync>();

  constructor(opts: VllmBackendOptions) {
    this.opts = opts;
    this.objects = KubernetesObjectApi.makeApiClient(opts.kc);
    this.core = opts.kc.makeApiClient(CoreV1Api);
    this.clock = opts.clock ?? (() => new Date());
  }

  async reconcile(d: StackedDeployment, group: StackedModelGroup, log: Logger): Promise<BackendResult> {
    const refused = await this.applyWorkload(d, group, log);
    if (refused !== undefined) {
      return {
        status: { ...(d.status ?? {}) },
        verdict: refused,
        requeueAfterMs: Math.max(this.opts.verifyIntervalMs, APPLY_RETRY_MS),
      };
    }
    const ns = d.metadata.namespace ?? '';
    const members = group.spec.members ?? [];
    const port = d.spec.vllm?.port ?? 8000;
    const pods = this.opts.pods
      .byIndex(PODS_BY_DEPLOYMENT, `${ns}/${d.metadata.name ?? ''}`)
      .map((p) => podView(p, port));
    const nowMs = this.clock().getTime();
    const { synced, waiting } = await this.syncAdapters(pods, wantedAdapters(group), nowMs, log);
    const now = this.clock();
    // Gates and Events from this pass's syncs only: a backed-off pod's last result is old news.
    await this.updateGates(d, pods, synced, members.length, now, log);
    const syncs = [...synced, ...waiting];

    const { status, verdict } = vllmStatus(
      {
        members,
        desiredReplicas: d.spec.vllm?.replicas ?? 1,
        pods,
        syncs,
        workload: this.opts.workloads.get(`${ns}/${workloadName(d.metadata.name ?? '')}`),
        generation: d.metadata.generation ?? 0,
        endpoint: serviceEndpoint(d),
      },
      d.status?.conditions ?? [],
      now,
    );
    // Pod events wake us for everything the kubelet does; the timers are for what no event reports:
    // a backed-off pod's retry, a refused member's files appearing, an adapter unloaded by hand.
    const retry = this.backoff.nextRetryMs(nowMs);
    const anyRefused = status.adapters?.some((a) => a.state === 'Failed') ?? false;
    const interval = anyRefused
      ? Math.min(REFUSED_RETRY_MS, this.opts.verifyIntervalMs)
      : this.opts.verifyIntervalMs;
    return { status, verdict, requeueAfterMs: retry === undefined ? interval : Math.min(retry, interval) };
  }

  /** Applies the Deployment and Service when the cache shows a difference; a refusal is the verdict. */
  private async applyWorkload(
    d: StackedDeployment,
    group: StackedModelGroup,
    log: Logger,
  ): Promise<Verdict | undefined> {
    const key = `${d.metadata.namespace ?? ''}/${workloadName(d.metadata.name ?? '')}`;
    const deployment = buildDeployment(d, group, {
      defaultImage: this.opts.defaultImage,
      agentImage: this.opts.agentImage,
    });
    try {
      if (await applyIfChanged(this.objects, deployment, this.opts.workloads.get(key))) {
        log.info('applied Deployment', { deployment: key });
      }
      if (await applyIfChanged(this.objects, buildService(d), this.opts.services.get(key))) {
        log.info('applied Service', { service: key });
      }
      return undefined;
    } catch (err) {
      // The API server refused what we built from the user's spec (or is unwell): say so on the
      // object, where the user looks, and try again later rather than in a hot loop.
      log.warn('apply failed', errorMeta(err));
      const reason = apiErrorStatus(err)?.message ?? errorText(err);
      return { ready: false, reason: 'ApplyFailed', message: `applying ${key}: ${reason}` };
    }
  }

  /**
   * Syncs every serving pod that is not backing off and records failures for the backoff; for the
   * pods that are, hands back their last result.
   */
  private async syncAdapters(
    pods: readonly PodView[],
    wanted: readonly WantedAdapter[],
    nowMs: number,
    log: Logger,
  ): Promise<{ synced: PodSync[]; waiting: PodSync[] }> {
    const serving = servingCandidates(pods);
    const candidates = serving.filter((p) => this.backoff.ready(backoffKey(p), nowMs));
    const clients = { vllm: this.opts.client, agent: this.opts.agent };
    const syncs = await mapLimit(candidates, this.opts.podConcurrency ?? 8, (p) =>
      syncPod(clients, p, wanted, this.opts.loadsPerPod ?? 4),
    );
    for (const s of syncs) {
      this.lastSync.set(backoffKey(s.pod), s);
      if (s.error === undefined) {
        this.backoff.forget(backoffKey(s.pod));
        continue;
      }
      const retryInMs = this.backoff.fail(backoffKey(s.pod), nowMs);
      log.warn('adapter sync failed; backing off', { pod: s.pod.name, error: s.error, retryInMs });
    }
    const live = new Set(pods.map(backoffKey));
    this.backoff.retain(live);
    for (const k of this.lastSync.keys()) if (!live.has(k)) this.lastSync.delete(k);
    // A pod that backs off keeps its last result in status (and its gate as it was) until the
    // retry, rather than dropping out of the replica counts and flapping them.
    const waiting = serving
      .filter((p) => !candidates.includes(p))
      .map((p) => this.lastSync.get(backoffKey(p)))
      .filter((s): s is PodSync => s !== undefined);
    return { synced: syncs, waiting };
  }

  /** Opens and closes the pods' readiness gates, and tells the user about lost adapters. */
  private async updateGates(
    d: StackedDeployment,
    pods: readonly PodView[],
    syncs: readonly PodSync[],
    memberCount: number,
    now: Date,
    log: Logger,
  ): Promise<void> {
    const ns = d.metadata.namespace ?? '';
    for (const s of syncs) {
      if (s.lost.length > 0) {
        const lost = s.lost.join(', ');
        const message = `pod ${s.pod.name} had lost ${lost} (container restart or unloaded by hand); reloading`;
        this.opts.events.record(d, 'Warning', 'AdaptersReloaded', message);
      }
      const gate = gateUpdate(s.pod, desiredGate(s, memberCount), now);
      if (gate) await this.patchGate(ns, s.pod.name, gate, log);
    }
    // A vLLM container that stopped being ready (crashed, restarted) has lost its adapters. Close
    // its gate now, before the restarted server passes its probe: otherwise the kubelet would see
    // the old True gate and send it traffic for adapters it no longer holds.
    for (const p of pods) {
      const gate = gateUpdate(p, staleGate(p), now);
      if (gate === undefined) continue;
      const message = `pod ${p.name}: vLLM is not ready (restart ${p.restartCount}); its adapters are reloaded once it is`;
      this.opts.events.record(d, 'Warning', 'AdaptersReloading', message);
      await this.patchGate(ns, p.name, gate, log);
    }
  }

  /**
   * Sets our readiness-gate condition on the pod. A strategic merge patch merges conditions by type,
   * so the kubelet's own conditions are left alone. A pod deleted meanwhile needs no gate.
   */
  private async patchGate(namespace: string, pod: string, gate: Condition, log: Logger): Promise<void> {
    try {
      await this.core.patchNamespacedPodStatus(
        { name: pod, namespace, body: { status: { conditions: [gate] } } },
        setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
      );
    } catch (err) {
      if (isNotFound(err)) return;
      throw err;
    }
    log.info('set adapter readiness gate', { pod, status: gate.status, reason: gate.reason });
  }
}
