/**
 * Wires the informers, indexes and controllers into a manager. Only the leader runs them; the
 * manager starts them after it wins the lease.
 */
import {
  AppsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  RbacAuthorizationV1Api,
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
  type V1Deployment,
  type V1PersistentVolumeClaim,
  type V1Pod,
  type V1Role,
  type V1RoleBinding,
  type V1Service,
  type V1ServiceAccount,
} from '@kubernetes/client-node';
import { OciBackend } from '../backends/oci/backend.ts';
import { secretClientFactory } from '../backends/oci/credentials.ts';
import type { OciMetrics } from '../backends/oci/metrics.ts';
import { RouterWorkload } from '../backends/router/workload.ts';
import { VllmBackend, podDeploymentKeys } from '../backends/vllm/backend.ts';
import { AgentClient } from '../backends/vllm/agent-client.ts';
import { VllmClient } from '../backends/vllm/client.ts';
import { watchPodAdapters } from '../backends/vllm/pod-controller.ts';
import { PODS_BY_DEPLOYMENT, podAdapterReconciler } from '../backends/vllm/pod-reconciler.ts';
import { selectorLabels } from '../backends/vllm/names.ts';
import type { PrincipalAuthAllow } from '../config.ts';
import { GROUP, VERSION } from '../api/v1alpha1/common.ts';
import { DEPLOYMENT_PLURAL, type StackedDeployment } from '../api/v1alpha1/deployment.ts';
import { MODEL_GROUP_PLURAL, type StackedModelGroup } from '../api/v1alpha1/modelgroup.ts';
import { MANAGED_BY_SELECTOR } from '../runtime/apply.ts';
import { Controller, generationChanged, ownerKeys } from '../runtime/controller.ts';
import { fenceOf } from '../runtime/fence.ts';
import { keyOf } from '../runtime/keys.ts';
import { findCondition } from '../runtime/conditions.ts';
import { READY } from '../runtime/ready.ts';
import type { EventRecorder } from '../runtime/events.ts';
import { Informer } from '../runtime/informer.ts';
import type { Logger } from '../runtime/logger.ts';
import type { Manager } from '../runtime/manager.ts';
import type { ControllerMetrics } from '../runtime/metrics.ts';
import { deploymentReconciler } from './deployment/reconciler.ts';
import {
  DEPLOYMENTS_BY_GROUP,
  DEPLOYMENTS_BY_SECRET,
  GROUPS_BY_CLAIM,
  GROUPS_BY_SECRET,
  deploymentGroupKeys,
  groupsOfChange,
  servedByInputsChanged,
  deploymentSecretKeys,
  deploymentsUsingSecret,
  groupClaimKeys,
  groupSecretKeys,
  resourceVersionChanged,
  secretMetadataInformer,
} from './indexes.ts';
import { modelGroupReconciler } from './modelgroup/reconciler.ts';

const APP_NAME = 'app.kubernetes.io/name';

export interface SetupOptions {
  kc: KubeConfig;
  manager: Manager;
  logger: Logger;
  events: EventRecorder;
  metrics: ControllerMetrics;
  ociMetrics?: OciMetrics;
  /** Watch one namespace, or every namespace when undefined. */
  namespace: string | undefined;
  workers: number;
  /** Concurrent pod syncs: every pod of a member change is loaded at once, up to this many. */
  podWorkers?: number;
  defaultVllmImage: string;
  agentImage: string;
  /** The router's image; default agentImage (both are the operator's own image). */
  routerImage?: string;
  adapterVerifyIntervalMs: number;
  ociPollIntervalMs: number;
  ociProgressIntervalMs: number;
  /** Where principal-based OCI auth may be used (--principal-auth-allow); default: nowhere. */
  principalAuthAllow?: PrincipalAuthAllow;
  clock?: () => Date;
}

/** The list calls of one kind, all namespaces or one, as client-node generates them. */
interface Lists<T extends KubernetesObject> {
  all: (q: { labelSelector: string }) => Promise<KubernetesListObject<T>>;
  namespaced: (q: { namespace: string; labelSelector: string }) => Promise<KubernetesListObject<T>>;
}

/**
 * An informer on objects we made (by label), so the caches hold ours and nothing else; `selector`
 * narrows it further.
 */
function managedInformer<T extends KubernetesObject>(
  opts: SetupOptions,
  apiVersion: string,
  kind: string,
  resource: string,
  lists: Lists<T>,
  selector?: string,
): Informer<T> {
  const ns = opts.namespace;
  const labelSelector = selector === undefined ? MANAGED_BY_SELECTOR : `${MANAGED_BY_SELECTOR},${selector}`;
  const prefix = apiVersion === 'v1' ? '/api/v1' : `/apis/${apiVersion}`;
  return new Informer<T>({
    kc: opts.kc,
    path: ns ? `${prefix}/namespaces/${ns}/${resource}` : `${prefix}/${resource}`,
    labelSelector,
    apiVersion,
    kind,
    list: () => (ns ? lists.namespaced({ namespace: ns, labelSelector }) : lists.all({ labelSelector })),
    logger: opts.logger.child({ informer: resource }),
  });
}

function customObjectInformer<T extends KubernetesObject>(
  opts: SetupOptions,
  api: CustomObjectsApi,
  plural: string,
): Informer<T> {
  const ns = opts.namespace;
  const path = ns
    ? `/apis/${GROUP}/${VERSION}/namespaces/${ns}/${plural}`
    : `/apis/${GROUP}/${VERSION}/${plural}`;
  const list = async () =>
    (ns
      ? await api.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural })
      : await api.listClusterCustomObject({
          group: GROUP,
          version: VERSION,
          plural,
        })) as KubernetesListObject<T>;
  return new Informer<T>({ kc: opts.kc, path, list, logger: opts.logger.child({ informer: plural }) });
}

export function setupControllers(opts: SetupOptions): void {
  const custom = opts.kc.makeApiClient(CustomObjectsApi);
  const core = opts.kc.makeApiClient(CoreV1Api);
  const ns = opts.namespace;
  const clock = opts.clock ?? (() => new Date());

  const groups = customObjectInformer<StackedModelGroup>(opts, custom, MODEL_GROUP_PLURAL);
  const deployments = customObjectInformer<StackedDeployment>(opts, custom, DEPLOYMENT_PLURAL);
  const claims = new Informer<V1PersistentVolumeClaim>({
    kc: opts.kc,
    path: ns ? `/api/v1/namespaces/${ns}/persistentvolumeclaims` : '/api/v1/persistentvolumeclaims',
    list: () =>
      ns
        ? core.listNamespacedPersistentVolumeClaim({ namespace: ns })
        : core.listPersistentVolumeClaimForAllNamespaces(),
    logger: opts.logger.child({ informer: 'persistentvolumeclaims' }),
  });
  deployments.addIndex(DEPLOYMENTS_BY_GROUP, deploymentGroupKeys);
  groups.addIndex(GROUPS_BY_CLAIM, groupClaimKeys);

  // What the vllm backend runs.
  const apps = opts.kc.makeApiClient(AppsV1Api);
  const workloads = managedInformer<V1Deployment>(opts, 'apps/v1', 'Deployment', 'deployments', {
    all: (q) => apps.listDeploymentForAllNamespaces(q),
    namespaced: (q) => apps.listNamespacedDeployment(q),
  });
  const services = managedInformer<V1Service>(opts, 'v1', 'Service', 'services', {
    all: (q) => core.listServiceForAllNamespaces(q),
    namespaced: (q) => core.listNamespacedService(q),
  });
  // The vLLM pods only: the router's pods carry the managed-by label too, and everything that reads
  // this cache (adapter sync, the readiness gates, the vllm status) counts its pods as vLLM replicas.
  const pods = managedInformer<V1Pod>(
    opts,
    'v1',
    'Pod',
    'pods',
    {
      all: (q) => core.listPodForAllNamespaces(q),
      namespaced: (q) => core.listNamespacedPod(q),
    },
    `${APP_NAME}=${selectorLabels('')[APP_NAME] ?? ''}`,
  );
  pods.addIndex(PODS_BY_DEPLOYMENT, podDeploymentKeys);
  // The router's identity; its Deployment and Service share the caches above.
  const rbac = opts.kc.makeApiClient(RbacAuthorizationV1Api);
  const serviceAccounts = managedInformer<V1ServiceAccount>(opts, 'v1', 'ServiceAccount', 'serviceaccounts', {
    all: (q) => core.listServiceAccountForAllNamespaces(q),
    namespaced: (q) => core.listNamespacedServiceAccount(q),
  });
  const rbacVersion = 'rbac.authorization.k8s.io/v1';
  const roles = managedInformer<V1Role>(opts, rbacVersion, 'Role', 'roles', {
    all: (q) => rbac.listRoleForAllNamespaces(q),
    namespaced: (q) => rbac.listNamespacedRole(q),
  });
  const roleBindings = managedInformer<V1RoleBinding>(opts, rbacVersion, 'RoleBinding', 'rolebindings', {
    all: (q) => rbac.listRoleBindingForAllNamespaces(q),
    namespaced: (q) => rbac.listNamespacedRoleBinding(q),
  });
  for (const inf of [
    groups,
    deployments,
    claims,
    workloads,
    services,
    pods,
    serviceAccounts,
    roles,
    roleBindings,
  ])
    opts.manager.addInformer(inf);
  const router = new RouterWorkload({
    kc: opts.kc,
    serviceAccounts,
    roles,
    roleBindings,
    workloads,
    services,
    image: opts.routerImage ?? opts.agentImage,
  });
  const fence = fenceOf(opts.kc);
  const vllm = new VllmBackend({
    kc: opts.kc,
    workloads,
    services,
    pods,
    agentImage: opts.agentImage,
    defaultImage: opts.defaultVllmImage,
    principalAuthAllow: opts.principalAuthAllow ?? new Map(),
    resyncIntervalMs: Math.max(opts.adapterVerifyIntervalMs, 60_000),
    clock,
  });
  const podController = new Controller({
    name: 'podadapters',
    reconcile: podAdapterReconciler({
      kc: opts.kc,
      pods,
      workloads,
      client: new VllmClient(),
      agent: new AgentClient(),
      events: opts.events,
      verifyIntervalMs: opts.adapterVerifyIntervalMs,
      fetchPollMs: 2000,
      loadsPerPod: 4,
      // vLLM loads and unloads are writes too: none once the lease is lost.
      ...(fence
        ? {
            beforeWrite: () => {
              fence.assertHeld();
            },
          }
        : {}),
      clock,
    }),
    workers: opts.podWorkers ?? 32,
    logger: opts.logger,
    metrics: opts.metrics,
    // A pod that cannot be synced is retried from half a second, doubling to a minute: long enough
    // not to hammer a sick server, short enough that a recovered one serves again soon.
    rateLimiter: { baseDelayMs: 500, maxDelayMs: 60_000 },
  });
  watchPodAdapters(podController, pods, workloads);
  opts.manager.addController(podController);

  // Secrets by metadata: what re-runs a deployment whose Secret changed (below), and the version
  // that tells the OCI client factory whether the Secret it read last is still current.
  const secrets = secretMetadataInformer(opts.kc, ns, opts.logger);
  const oci = new OciBackend({
    clients: secretClientFactory(
      core,
      opts.ociMetrics,
      fence,
      (namespace, name) => secrets.get(keyOf(namespace, name))?.metadata?.resourceVersion,
    ),
    events: opts.events,
    pollIntervalMs: opts.ociPollIntervalMs,
    progressIntervalMs: opts.ociProgressIntervalMs,
    principalAuthAllow: opts.principalAuthAllow ?? new Map(),
    clock,
  });

  const groupController = new Controller({
    name: 'stackedmodelgroup',
    reconcile: modelGroupReconciler({ groups, deployments, claims, api: custom, events: opts.events, clock }),
    workers: opts.workers,
    logger: opts.logger,
    metrics: opts.metrics,
  });
  groupController.watch(groups, undefined, generationChanged);
  // servedBy comes from the deployments' status: a change of what a deployment serves counts.
  groupController.watch(deployments, groupsOfChange, servedByInputsChanged);
  groupController.watch(claims, (c) =>
    groups.byIndex(GROUPS_BY_CLAIM, `${c.metadata?.namespace ?? ''}/${c.metadata?.name ?? ''}`).map(key),
  );
  opts.manager.addController(groupController);

  const deploymentController = new Controller({
    name: 'stackeddeployment',
    reconcile: deploymentReconciler({
      groups,
      deployments,
      api: custom,
      events: opts.events,
      backends: { vllm, oci },
      router,
      cleanupPollMs: opts.ociProgressIntervalMs,
      clock,
    }),
    workers: opts.workers,
    logger: opts.logger,
    metrics: opts.metrics,
  });
  deploymentController.watch(deployments, undefined, generationChanged);
  // A group's spec and its Ready verdict matter to its deployments; the rest of its status (which
  // deployments serve each member, written after every deployment status change) does not, and a
  // reconcile would cost pod calls or OCI reads for nothing.
  deploymentController.watch(
    groups,
    (g) => deployments.byIndex(DEPLOYMENTS_BY_GROUP, key(g)).map(key),
    specOrReadyChanged,
  );
  // What the vllm backend and the router own: a changed or deleted child, and every pod transition,
  // re-syncs (the router's Deployment's readyReplicas among them: it decides Ready).
  const ownedBy = ownerKeys('StackedDeployment', GROUP);
  deploymentController.watch(workloads, ownedBy);
  deploymentController.watch(services, ownedBy);
  deploymentController.watch(serviceAccounts, ownedBy);
  deploymentController.watch(roles, ownedBy);
  deploymentController.watch(roleBindings, ownedBy);
  deploymentController.watch(pods, podDeploymentKeys);
  // A fixed or rotated Secret re-runs the deployments that use it at once, not at the next poll
  // (metadata-only watch; why, and the RBAC it needs: secretMetadataInformer in indexes.ts).
  deployments.addIndex(DEPLOYMENTS_BY_SECRET, deploymentSecretKeys);
  groups.addIndex(GROUPS_BY_SECRET, groupSecretKeys);
  opts.manager.addInformer(secrets);
  deploymentController.watch(
    secrets,
    (s) => deploymentsUsingSecret(deployments, groups, key(s)),
    resourceVersionChanged,
  );
  opts.manager.addController(deploymentController);
}

function specOrReadyChanged(oldGroup: StackedModelGroup | undefined, group: StackedModelGroup): boolean {
  if (generationChanged(oldGroup, group)) return true;
  const before = findCondition(oldGroup?.status?.conditions, READY);
  const after = findCondition(group.status?.conditions, READY);
  return (
    before?.status !== after?.status ||
    before?.reason !== after?.reason ||
    before?.message !== after?.message ||
    before?.observedGeneration !== after?.observedGeneration
  );
}

function key(o: KubernetesObject): string {
  return `${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;
}
