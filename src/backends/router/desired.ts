/**
 * Pure builders of what the operator runs for a StackedDeployment's router (src/router/, the same
 * image as the operator): its identity (ServiceAccount, Role, RoleBinding), a Deployment and a
 * Service. The router is backend-independent, so one set of builders serves both backends; no I/O
 * here (apply.ts does it), golden files pin the output.
 */
import type {
  V1Deployment,
  V1PolicyRule,
  V1Role,
  V1RoleBinding,
  V1Service,
  V1ServiceAccount,
} from '@kubernetes/client-node';
import {
  DEFAULT_AFFINITY_MARGIN,
  ROUTER_COMMAND,
  ROUTER_CONTAINER,
  ROUTER_PORT,
  routerArgs,
} from '../../api/router/v1.ts';
import { GROUP } from '../../api/v1alpha1/common.ts';
import type { StackedDeployment } from '../../api/v1alpha1/deployment.ts';
import { DEPLOYMENT_PLURAL } from '../../api/v1alpha1/deployment.ts';
import { MODEL_GROUP_PLURAL } from '../../api/v1alpha1/modelgroup.ts';
import { MANAGED_BY_LABEL, MANAGER_NAME, controllerOwnerReference } from '../../runtime/apply.ts';
import type { Plain } from '../../runtime/model.ts';
import { dnsLabel } from '../vllm/names.ts';

/** The app name of the router's objects and pods; the vLLM pods are `vllm`. */
export const ROUTER_APP = 'stacked-router';
/**
 * The router's pods carry the StackedDeployment's name in this label, not in
 * `serving.stacked.dev/deployment`: that one selects the vLLM pods (their Service, the adapter-sync
 * controller's index, the router's own pod watch), and a router pod found there would be counted
 * as a vLLM replica.
 */
export const ROUTER_LABEL = 'serving.stacked.dev/router';

/** What the spec asks of the router. */
export interface RouterSettings {
  enabled: boolean;
  replicas: number;
  affinityMargin: number;
}

/**
 * Whether the router runs, how many, and how it weighs LoRA affinity. The API server fills the
 * defaults (on for vllm, off for oci); these fallbacks only matter for an object read before its
 * CRD had the fields.
 */
export function routerSettings(d: StackedDeployment): RouterSettings {
  const vllm = d.spec.backend === 'vllm';
  const r: Partial<RouterSettings> | undefined = vllm ? d.spec.vllm?.router : d.spec.oci?.router;
  return {
    enabled: r?.enabled ?? vllm,
    replicas: r?.replicas ?? 1,
    affinityMargin: r?.affinityMargin ?? DEFAULT_AFFINITY_MARGIN,
  };
}

/** The name of all five router objects of a StackedDeployment. */
export function routerName(sdepName: string): string {
  return dnsLabel(`${sdepName}-router`);
}

/** Labels of the router's objects, and the selector of its pods. */
export function routerLabels(sdepName: string): Record<string, string> {
  return {
    'app.kubernetes.io/name': ROUTER_APP,
    [MANAGED_BY_LABEL]: MANAGER_NAME,
    [ROUTER_LABEL]: sdepName,
  };
}

/** Where clients reach the router inside the cluster: status.endpoint while it is enabled. */
export function routerEndpoint(d: StackedDeployment): string {
  return `http://${routerName(d.metadata.name ?? '')}.${d.metadata.namespace ?? ''}.svc:${ROUTER_PORT}`;
}

type Typed<T> = Plain<T> & { apiVersion: string; kind: string };
export type ServiceAccount = Typed<V1ServiceAccount>;
export type Role = Typed<V1Role>;
export type RoleBinding = Typed<V1RoleBinding>;
export type Deployment = Typed<V1Deployment>;
export type Service = Typed<V1Service>;

function meta(d: StackedDeployment) {
  const sdep = d.metadata.name ?? '';
  return {
    name: routerName(sdep),
    namespace: d.metadata.namespace,
    labels: routerLabels(sdep),
    ownerReferences: [controllerOwnerReference(d)],
  };
}

export function buildServiceAccount(d: StackedDeployment): ServiceAccount {
  return { apiVersion: 'v1', kind: 'ServiceAccount', metadata: meta(d) };
}

/**
 * Read-only, in the namespace, and only what the router watches: the StackedDeployment and its
 * group (names, experiments), the pods (which ones are Ready and what each holds), and for an oci
 * deployment signing with an API key, that one Secret by name. The operator can create this Role
 * only because it holds every one of these permissions itself (RBAC's escalation check).
 */
export function routerRules(d: StackedDeployment): Plain<V1PolicyRule>[] {
  const read = ['get', 'list', 'watch'];
  const rules: Plain<V1PolicyRule>[] = [
    { apiGroups: [GROUP], resources: [DEPLOYMENT_PLURAL, MODEL_GROUP_PLURAL], verbs: read },
    { apiGroups: [''], resources: ['pods'], verbs: read },
  ];
  const auth = d.spec.backend === 'oci' ? d.spec.oci?.auth : undefined;
  const secret = auth?.type === 'apiKey' ? auth.secretRef?.name : undefined;
  if (secret !== undefined) {
    rules.push({ apiGroups: [''], resources: ['secrets'], resourceNames: [secret], verbs: ['get'] });
  }
  return rules;
}

export function buildRole(d: StackedDeployment): Role {
  return {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'Role',
    metadata: meta(d),
    rules: routerRules(d),
  };
}

export function buildRoleBinding(d: StackedDeployment): RoleBinding {
  const name = routerName(d.metadata.name ?? '');
  return {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata: meta(d),
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name },
    // No apiGroup on the subject: the server stores a ServiceAccount's as absent, and an empty string
    // here would then differ from the cache on every reconcile (a write at rest).
    subjects: [{ kind: 'ServiceAccount', name, namespace: d.metadata.namespace }],
  };
}

export interface RouterBuildOptions {
  /** The router's image: the operator's own (--router-image, default --agent-image). */
  image: string;
}

export function buildRouterDeployment(d: StackedDeployment, opts: RouterBuildOptions): Deployment {
  const sdep = d.metadata.name ?? '';
  const labels = routerLabels(sdep);
  const probe = (path: string, periodSeconds: number, failureThreshold: number) => ({
    httpGet: { path, port: 'http' },
    periodSeconds,
    failureThreshold,
    timeoutSeconds: 2,
  });
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: meta(d),
    spec: {
      replicas: routerSettings(d).replicas,
      selector: { matchLabels: labels },
      // A new router replica takes traffic before an old one goes: a rollout never lowers capacity.
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
      template: {
        metadata: { labels },
        spec: {
          serviceAccountName: routerName(sdep),
          // The router watches the API server with this identity's token.
          automountServiceAccountToken: true,
          securityContext: {
            runAsNonRoot: true,
            // Numeric, so the kubelet can check runAsNonRoot without reading the image's user.
            runAsUser: 1000,
            runAsGroup: 1000,
            seccompProfile: { type: 'RuntimeDefault' },
          },
          containers: [
            {
              name: ROUTER_CONTAINER,
              image: opts.image,
              command: [...ROUTER_COMMAND],
              args: routerArgs({
                namespace: d.metadata.namespace ?? '',
                deployment: sdep,
                port: ROUTER_PORT,
                affinityMargin: routerSettings(d).affinityMargin,
              }),
              ports: [{ name: 'http', containerPort: ROUTER_PORT, protocol: 'TCP' }],
              readinessProbe: probe('/readyz', 2, 3),
              livenessProbe: probe('/healthz', 10, 3),
              // A proxy: little CPU per request, memory for in-flight bodies and its watch caches.
              resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '512Mi' } },
              securityContext: {
                allowPrivilegeEscalation: false,
                readOnlyRootFilesystem: true,
                capabilities: { drop: ['ALL'] },
              },
            },
          ],
        },
      },
    },
  };
}

export function buildRouterService(d: StackedDeployment): Service {
  const sdep = d.metadata.name ?? '';
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: meta(d),
    spec: {
      selector: routerLabels(sdep),
      ports: [{ name: 'http', port: ROUTER_PORT, targetPort: 'http', protocol: 'TCP' }],
    },
  };
}

/** Every object of an enabled router, in the order they are applied (identity before its users). */
export function routerObjects(
  d: StackedDeployment,
  opts: RouterBuildOptions,
): [ServiceAccount, Role, RoleBinding, Deployment, Service] {
  return [
    buildServiceAccount(d),
    buildRole(d),
    buildRoleBinding(d),
    buildRouterDeployment(d, opts),
    buildRouterService(d),
  ];
}
