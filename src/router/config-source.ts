/**
 * The router's configuration, watched: the one StackedDeployment it routes for, the
 * StackedModelGroup that deployment names, and the deployment's pods. Every event rebuilds the
 * routing snapshot (coalesced to one rebuild per burst, e.g. a relist), so a spec or pod change
 * applies within the watch's latency, with no restart and no ConfigMap.
 *
 * Least privilege: the deployment and the group are each watched by name (fieldSelector
 * metadata.name), which a Role can grant with resourceNames; pods by the deployment's label.
 */
import {
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  type KubernetesListObject,
  type V1Pod,
} from '@kubernetes/client-node';
import { GROUP, VERSION } from '../api/v1alpha1/common.ts';
import { DEPLOYMENT_PLURAL, type StackedDeployment } from '../api/v1alpha1/deployment.ts';
import { MODEL_GROUP_PLURAL, type StackedModelGroup } from '../api/v1alpha1/modelgroup.ts';
import { DEPLOYMENT_LABEL } from '../backends/vllm/names.ts';
import { Informer } from '../runtime/informer.ts';
import type { Logger } from '../runtime/logger.ts';
import type { NameTable } from './names.ts';
import { slimPod } from './pods.ts';
import { EMPTY_STATE, type RoutingSource, type RoutingState, routingState } from './state.ts';

export interface KubeRoutingSourceOptions {
  kc: KubeConfig;
  namespace: string;
  deployment: string;
  log: Logger;
}

/**
 * An informer on one named custom object. The runtime's Informer has no field selector option, but
 * client-node's Watch keeps a query already in the path and adds its own parameters to it.
 */
function namedObjectInformer<T extends StackedDeployment | StackedModelGroup>(
  opts: KubeRoutingSourceOptions,
  api: CustomObjectsApi,
  plural: string,
  name: string,
): Informer<T> {
  const fieldSelector = `metadata.name=${name}`;
  return new Informer<T>({
    kc: opts.kc,
    path: `/apis/${GROUP}/${VERSION}/namespaces/${opts.namespace}/${plural}?fieldSelector=${encodeURIComponent(fieldSelector)}`,
    list: async () =>
      (await api.listNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace: opts.namespace,
        plural,
        fieldSelector,
      })) as KubernetesListObject<T>,
    logger: opts.log.child({ watch: plural, name }),
  });
}

export class KubeRoutingSource implements RoutingSource {
  private readonly opts: KubeRoutingSourceOptions;
  private readonly custom: CustomObjectsApi;
  private readonly deployments: Informer<StackedDeployment>;
  private readonly pods: Informer<V1Pod>;
  /** The group informer follows spec.modelGroupRef.name: replaced when it changes. */
  private groups: { name: string; informer: Informer<StackedModelGroup> } | undefined;
  private state: RoutingState = EMPTY_STATE;
  /** The name table and the object versions it was built from: pod events reuse it. */
  private names: { key: string; table: NameTable } | undefined;
  private readonly listeners = new Set<(state: RoutingState) => void>();
  private rebuildQueued = false;
  private stopped = false;

  constructor(opts: KubeRoutingSourceOptions) {
    this.opts = opts;
    this.custom = opts.kc.makeApiClient(CustomObjectsApi);
    const core = opts.kc.makeApiClient(CoreV1Api);
    this.deployments = namedObjectInformer(opts, this.custom, DEPLOYMENT_PLURAL, opts.deployment);
    const labelSelector = `${DEPLOYMENT_LABEL}=${opts.deployment}`;
    this.pods = new Informer<V1Pod>({
      kc: opts.kc,
      path: `/api/v1/namespaces/${opts.namespace}/pods`,
      labelSelector,
      list: () => core.listNamespacedPod({ namespace: opts.namespace, labelSelector }),
      transform: slimPod,
      apiVersion: 'v1',
      kind: 'Pod',
      logger: opts.log.child({ watch: 'pods' }),
    });
    for (const informer of [this.deployments, this.pods] as const) {
      informer.on('add', () => {
        this.queueRebuild();
      });
      informer.on('update', () => {
        this.queueRebuild();
      });
      informer.on('delete', () => {
        this.queueRebuild();
      });
    }
  }

  current(): RoutingState {
    return this.state;
  }

  subscribe(listener: (state: RoutingState) => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  async start(): Promise<void> {
    await Promise.all([this.deployments.start(), this.pods.start()]);
    this.rebuild();
    const groups = this.groups;
    // Replaced meanwhile (the deployment named another group): the next rebuild follows the new one.
    if (groups !== undefined) await groups.informer.start().catch(() => undefined);
    this.rebuild();
  }

  stop(): void {
    this.stopped = true;
    this.deployments.stop();
    this.pods.stop();
    this.groups?.informer.stop();
    this.listeners.clear();
  }

  private queueRebuild(): void {
    if (this.rebuildQueued || this.stopped) return;
    this.rebuildQueued = true;
    // One rebuild per burst of events delivered together (a relist replays every object).
    queueMicrotask(() => {
      this.rebuildQueued = false;
      if (!this.stopped) this.rebuild();
    });
  }

  /** Starts (or replaces) the group informer when the deployment names another group. */
  private followGroup(deployment: StackedDeployment | undefined): void {
    const name = deployment?.spec.modelGroupRef.name;
    if (this.groups?.name === name) return;
    this.groups?.informer.stop();
    this.groups = undefined;
    if (name === undefined) return;
    const informer = namedObjectInformer<StackedModelGroup>(this.opts, this.custom, MODEL_GROUP_PLURAL, name);
    for (const event of ['add', 'update', 'delete'] as const) {
      informer.on(event, () => {
        this.queueRebuild();
      });
    }
    this.groups = { name, informer };
    informer.start().then(
      () => {
        this.queueRebuild();
      },
      () => undefined, // stopped before it synced: replaced by another group's informer
    );
  }

  private rebuild(): void {
    const deployment = this.deployments.get(`${this.opts.namespace}/${this.opts.deployment}`);
    this.followGroup(deployment);
    const groups = this.groups;
    const group =
      groups === undefined ? undefined : groups.informer.get(`${this.opts.namespace}/${groups.name}`);
    const synced =
      this.deployments.hasSynced() &&
      this.pods.hasSynced() &&
      (groups === undefined || groups.informer.hasSynced());
    const key = `${deployment?.metadata.resourceVersion ?? '-'}/${group?.metadata.resourceVersion ?? '-'}`;
    const reuse = this.names?.key === key ? this.names.table : undefined;
    const state = routingState({
      synced,
      deployment,
      group,
      pods: this.pods.list(),
      ...(reuse !== undefined ? { names: reuse } : {}),
    });
    this.names = { key, table: state.names };
    this.state = state;
    for (const listener of this.listeners) listener(state);
  }
}
