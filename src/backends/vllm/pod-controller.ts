/**
 * What wakes the adapter-sync controller: a pod whose vLLM came up, restarted or got a new IP; a
 * sibling whose serving set changed (the gate rule compares each pod with the others); a Deployment
 * whose wanted adapters changed. Our own annotation writes wake the siblings, never the pod itself.
 */
import type { V1Deployment, V1Pod } from '@kubernetes/client-node';
import type { Controller } from '../../runtime/controller.ts';
import { keyOf, objectKey } from '../../runtime/keys.ts';
import type { Informer } from '../../runtime/informer.ts';
import { ADAPTERS_LOADED, DEPLOYMENT_LABEL } from './names.ts';
import { ADAPTER_STATE_ANNOTATION, WANTED_ADAPTERS_ANNOTATION } from './pod-state.ts';
import { PODS_BY_DEPLOYMENT } from './pod-reconciler.ts';

function condition(pod: V1Pod | undefined, type: string): string | undefined {
  return pod?.status?.conditions?.find((c) => c.type === type)?.status;
}

/** The facts a pod's own sync depends on. */
function syncFacts(pod: V1Pod | undefined): string {
  return JSON.stringify([
    pod?.status?.podIP,
    condition(pod, 'ContainersReady'),
    pod?.status?.containerStatuses?.map((c) => c.restartCount),
    pod?.metadata?.deletionTimestamp !== undefined,
  ]);
}

/** The facts the other pods' gates depend on: whether it serves, and what it holds. */
function servingFacts(pod: V1Pod | undefined): string {
  return JSON.stringify([
    condition(pod, ADAPTERS_LOADED),
    condition(pod, 'ContainersReady'),
    pod?.metadata?.deletionTimestamp !== undefined,
    pod?.metadata?.annotations?.[ADAPTER_STATE_ANNOTATION],
  ]);
}

export function watchPodAdapters(
  controller: Controller,
  pods: Informer<V1Pod>,
  workloads: Informer<V1Deployment>,
): void {
  const podsOf = (namespace: string | undefined, sdep: string | undefined): string[] =>
    sdep === undefined ? [] : pods.byIndex(PODS_BY_DEPLOYMENT, keyOf(namespace, sdep)).map(objectKey);
  const siblings = (pod: V1Pod): string[] =>
    podsOf(pod.metadata?.namespace, pod.metadata?.labels?.[DEPLOYMENT_LABEL]).filter(
      (k) => k !== objectKey(pod),
    );

  pods.on('add', (pod) => {
    controller.enqueue(objectKey(pod));
  });
  pods.on('update', (pod, old) => {
    if (syncFacts(old) !== syncFacts(pod)) controller.enqueue(objectKey(pod));
    if (servingFacts(old) !== servingFacts(pod)) for (const k of siblings(pod)) controller.enqueue(k);
  });
  pods.on('delete', (pod) => {
    // A pod gone may have been the only one serving an adapter: the others' gates may open.
    for (const k of siblings(pod)) controller.enqueue(k);
  });
  const onWorkload = (w: V1Deployment, old?: V1Deployment): void => {
    const wanted = w.metadata?.annotations?.[WANTED_ADAPTERS_ANNOTATION];
    if (old !== undefined && old.metadata?.annotations?.[WANTED_ADAPTERS_ANNOTATION] === wanted) return;
    for (const k of podsOf(w.metadata?.namespace, w.metadata?.labels?.[DEPLOYMENT_LABEL]))
      controller.enqueue(k);
  };
  workloads.on('add', (w) => {
    onWorkload(w);
  });
  workloads.on('update', (w, old) => {
    onWorkload(w, old);
  });
}
