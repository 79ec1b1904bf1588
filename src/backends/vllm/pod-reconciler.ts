/**
 * The adapter-sync controller's reconcile, keyed by pod: list the pod's adapters, plan, load or
 * unload, publish what it holds (an annotation on the pod), set its readiness gate. What to hold
 * comes from the Deployment's wanted-adapters annotation, which the StackedDeployment reconciler
 * writes only for a spec that passed its checks: a problem with a new spec never stops the care of
 * the pods that already serve. A failed sync is retried with the work queue's per-key backoff, so
 * one sick pod never delays another pod, nor another StackedDeployment.
 */
import {
  CoreV1Api,
  PatchStrategy,
  setHeaderOptions,
  type KubeConfig,
  type KubernetesObject,
  type V1Deployment,
  type V1Pod,
  V1ObjectMeta,
} from '@kubernetes/client-node';
import { GROUP, VERSION } from '../../api/v1alpha1/common.ts';
import type { Condition } from '../../runtime/conditions.ts';
import type { ReconcileFn } from '../../runtime/controller.ts';
import type { EventRecorder } from '../../runtime/events.ts';
import { isNotFound } from '../../runtime/errors.ts';
import type { WallClock } from '../../runtime/clock.ts';
import type { Informer } from '../../runtime/informer.ts';
import { keyOf } from '../../runtime/keys.ts';
import type { Logger } from '../../runtime/logger.ts';
import { model } from '../../runtime/model.ts';
import type { AgentClient } from './agent-client.ts';
import type { VllmClient } from './client.ts';
import {
  desiredGate,
  gateBeforeLoads,
  gateUpdate,
  servedByOthers,
  staleGate,
  type GateSpec,
} from './gate.ts';
import { workloadName } from './names.ts';
import { ADAPTER_STATE_ANNOTATION, readWanted, writePodState, type PodAdapterState } from './pod-state.ts';
import { podView, type PodView } from './pods.ts';
import { syncPod } from './sync.ts';

/** Pods are indexed by "namespace/StackedDeployment name" (their label). */
export const PODS_BY_DEPLOYMENT = 'byStackedDeployment';

export interface PodAdapterDeps {
  kc: KubeConfig;
  pods: Informer<V1Pod>;
  workloads: Informer<V1Deployment>;
  client: VllmClient;
  agent: AgentClient;
  events: EventRecorder;
  /** How often a settled pod is asked again for its adapters (someone may unload by hand). */
  verifyIntervalMs: number;
  /** How often a pod whose adapter files are still downloading is looked at again. */
  fetchPollMs: number;
  /** Loads in flight on one pod. */
  loadsPerPod: number;
  /** Throws when the operator may no longer write (the lease is lost). */
  beforeWrite?: () => void;
  clock: WallClock;
}

/** A sync that did not finish: thrown so the work queue retries the pod with its per-key backoff. */
export class PodSyncError extends Error {
  constructor(pod: string, message: string) {
    super(`adapter sync of pod ${pod}: ${message}`);
    this.name = 'PodSyncError';
  }
}

/** Refused members are retried sooner than the settled re-verification: their files may appear. */
const REFUSED_RETRY_MS = 15_000;

/** The StackedDeployment that owns the pod's Deployment, as an object Events can name. */
function ownerOf(workload: V1Deployment): KubernetesObject | undefined {
  const ref = workload.metadata?.ownerReferences?.find((r) => r.controller === true);
  if (ref === undefined) return undefined;
  return {
    apiVersion: `${GROUP}/${VERSION}`,
    kind: ref.kind,
    metadata: model(V1ObjectMeta, {
      name: ref.name,
      namespace: workload.metadata?.namespace ?? '',
      uid: ref.uid,
    }),
  };
}

export function podAdapterReconciler(deps: PodAdapterDeps): ReconcileFn {
  const core = deps.kc.makeApiClient(CoreV1Api);

  const patchGate = async (p: PodView, gate: Condition, log: Logger): Promise<void> => {
    deps.beforeWrite?.();
    try {
      // A strategic merge patch merges conditions by type: the kubelet's own are left alone.
      await core.patchNamespacedPodStatus(
        { name: p.name, namespace: p.namespace, body: { status: { conditions: [gate] } } },
        setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
      );
    } catch (err) {
      if (isNotFound(err)) return;
      throw err;
    }
    log.info('set adapter readiness gate', { status: gate.status, reason: gate.reason });
  };

  const publish = async (p: PodView, pod: V1Pod, state: PodAdapterState): Promise<void> => {
    const value = writePodState(state);
    if (pod.metadata?.annotations?.[ADAPTER_STATE_ANNOTATION] === value) return;
    deps.beforeWrite?.();
    try {
      await core.patchNamespacedPod(
        {
          name: p.name,
          namespace: p.namespace,
          body: { metadata: { annotations: { [ADAPTER_STATE_ANNOTATION]: value } } },
        },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  };

  return async (key, log, signal) => {
    const pod = deps.pods.get(key);
    if (pod === undefined) return;
    const p = podView(pod);
    if (p.deployment === undefined || p.terminating) return;
    const workload = deps.workloads.get(keyOf(p.namespace, workloadName(p.deployment)));
    const wanted = readWanted(workload?.metadata?.annotations);
    if (workload === undefined || wanted === undefined) return;
    const owner = ownerOf(workload);
    const now = deps.clock();

    if (!p.containersReady || p.url === undefined) {
      // A vLLM container that stopped being ready (crashed, restarted) has lost its adapters. Close
      // its gate now, before the restarted server passes its probe: otherwise the kubelet would see
      // the old True gate and send it traffic for adapters it no longer holds.
      const gate = gateUpdate(p, staleGate(p), now);
      if (gate !== undefined) {
        if (owner) {
          const message = `pod ${p.name}: vLLM is not ready (restart ${p.restartCount}); its adapters are reloaded once it is`;
          deps.events.record(owner, 'Warning', 'AdaptersReloading', message);
        }
        await patchGate(p, gate, log);
      }
      return;
    }

    const wantedNames = new Set(wanted.map((w) => w.name));
    const siblings = () =>
      deps.pods.byIndex(PODS_BY_DEPLOYMENT, keyOf(p.namespace, p.deployment ?? '')).map(podView);
    // The gate as this reconcile last wrote it: the cache shows our own write only later.
    let view = p;
    const setGate = async (desired: GateSpec | undefined): Promise<void> => {
      const gate = gateUpdate(view, desired, deps.clock());
      if (gate === undefined) return;
      await patchGate(view, gate, log);
      view = { ...view, gate };
    };
    const clients = {
      vllm: deps.client,
      agent: deps.agent,
      ...(deps.beforeWrite ? { beforeWrite: deps.beforeWrite } : {}),
      onListed: (present: readonly string[]) =>
        setGate(gateBeforeLoads(view, present, servedByOthers(siblings(), p, wantedNames))),
    };
    const sync = await syncPod(clients, p, wanted, deps.loadsPerPod, signal);
    if (sync !== undefined) {
      // Lost means held before by this same container and gone now: a hand unload. A member added
      // since was never held, and a restarted container was reported as such when it went down.
      const lost = (p.state?.loaded ?? []).filter((n) => wantedNames.has(n) && !sync.listed.includes(n));
      if (lost.length > 0 && owner) {
        const message = `pod ${p.name} lost adapter ${lost.join(', ')} (unloaded by hand?); reloading`;
        deps.events.record(owner, 'Warning', 'AdaptersReloaded', message);
      }
    }
    const state = sync === undefined ? undefined : { ...sync.state, restartCount: p.restartCount };
    if (state !== undefined) await publish(p, pod, state);

    await setGate(desiredGate(view, state, servedByOthers(siblings(), p, wantedNames), wanted.length));

    if (state === undefined) throw new PodSyncError(p.name, 'vLLM did not answer GET /v1/models');
    if (state.error !== undefined) throw new PodSyncError(p.name, state.error);
    const interval =
      state.fetching.length > 0
        ? deps.fetchPollMs
        : Object.keys(state.failed).length > 0
          ? Math.min(REFUSED_RETRY_MS, deps.verifyIntervalMs)
          : deps.verifyIntervalMs;
    return { requeueAfterMs: interval };
  };
}
