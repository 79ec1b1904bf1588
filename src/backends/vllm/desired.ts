/**
 * Pure builders of what the vllm backend runs for a StackedDeployment: a Deployment of vLLM's OpenAI
 * server with runtime LoRA updates on, and a Service. No I/O here; golden files pin the output.
 */
import type { V1Deployment, V1EnvVar, V1Service } from '@kubernetes/client-node';
import type { StackedDeployment } from '../../api/v1alpha1/deployment.ts';
import type { BaseModel, ModelSource, StackedModelGroup } from '../../api/v1alpha1/modelgroup.ts';
import { controllerOwnerReference } from '../../runtime/apply.ts';
import type { Plain } from '../../runtime/model.ts';
import { createHash } from 'node:crypto';
import type { Member } from '../../api/v1alpha1/modelgroup.ts';
import { WANTED_ADAPTERS_ANNOTATION, type WantedAdapter } from './pod-state.ts';
import type { FetchRequestBody } from '../../api/agent/v1.ts';
import { engineArgs } from '../engine-args.ts';
import {
  ADAPTERS_LOADED,
  AGENT_CONTAINER,
  AGENT_COMMAND,
  AGENT_PORT,
  AGENT_SECRETS_ROOT,
  FETCHED_ROOT,
  FETCHED_VOLUME,
  MODEL_FETCH_CONTAINER,
  MODEL_ROOT,
  MODEL_VOLUME,
  VLLM_CONTAINER,
  secretVolumeName,
  pvcMountPath,
  pvcVolumeName,
  selectorLabels,
  workloadName,
} from './names.ts';

/** How long a deleted vLLM pod keeps serving before SIGTERM (its routers need milliseconds). */
export const PRE_STOP_SLEEP_SECONDS = 5;

export interface BuildOptions {
  /** Image when spec.vllm.image is unset (the operator's --default-vllm-image). */
  defaultImage: string;
  /** The operator's own image, which also holds the fetch agent. */
  agentImage: string;
}

/**
 * What the fetch agent is asked to download before vLLM may use it (src/agent/request.ts parses it):
 * an https or oci:// uri, or a Model Catalog modelId. Never a credential: the agent reads those from
 * the Secrets mounted into it.
 */

/** Where vLLM reads a model from, and what must be fetched there first (uri and modelCatalog sources). */
export interface AdapterSource {
  path: string;
  fetch?: FetchRequestBody;
}

/**
 * The folder name is the key plus a digest of the source, so a changed uri or checksum is a new
 * folder: vLLM reloads from it in place and the old one is removed after.
 */
export function fetchedName(key: string, uri: string, sha256?: string): string {
  return `${key}-${createHash('sha256')
    .update(`${uri}\n${sha256 ?? ''}`)
    .digest('hex')
    .slice(0, 10)}`;
}

interface Model {
  inferenceKey: string;
  modelId?: string | undefined;
  source?: ModelSource | undefined;
}

/** Sources read from OCI (Object Storage or the Model Catalog): the fetch agent needs spec.vllm.oci. */
export function readsFromOci(source: ModelSource | undefined): boolean {
  return source?.uri?.startsWith('oci://') === true || source?.modelCatalog !== undefined;
}

/** The agent's request for a model whose files must be fetched, or undefined for direct sources. */
function fetchRequest(m: Model): FetchRequestBody | undefined {
  const s = m.source;
  let from: { uri: string } | { modelId: string };
  if (s?.uri?.startsWith('https://') === true || s?.uri?.startsWith('oci://') === true) from = { uri: s.uri };
  else if (s?.modelCatalog !== undefined && m.modelId !== undefined) from = { modelId: m.modelId };
  else return undefined;
  const name = fetchedName(m.inferenceKey, 'uri' in from ? from.uri : from.modelId, s.sha256);
  const fetch: FetchRequestBody = { name, ...from };
  if (s.sha256 !== undefined) fetch.sha256 = s.sha256;
  if (s.maxBytes !== undefined) fetch.maxBytes = s.maxBytes;
  if (s.secretRef !== undefined) fetch.secret = { name: s.secretRef.name, key: s.secretRef.key };
  return fetch;
}

export function adapterSource(m: Member): AdapterSource | undefined {
  const direct = directPath(m.source);
  if (direct !== undefined) return { path: direct };
  const fetch = fetchRequest(m);
  return fetch === undefined ? undefined : { path: `${FETCHED_ROOT}/${fetch.name}`, fetch };
}

/** The base model: read in place, or fetched by an init container into its own volume. */
export function baseSource(base: BaseModel): AdapterSource | undefined {
  const direct = directPath(base.source);
  if (direct !== undefined) return { path: direct };
  const fetch = fetchRequest(base);
  return fetch === undefined
    ? undefined
    : { path: `${MODEL_ROOT}/${fetch.name}`, fetch: { ...fetch, content: 'model' } };
}

/** Secrets the fetch agent needs mounted (source tokens and the OCI api key), once each, sorted. */
export function secretsOf(d: StackedDeployment, group: StackedModelGroup): string[] {
  const models = [group.spec.baseModel, ...(group.spec.members ?? [])];
  const ociKey = d.spec.vllm?.oci?.auth.secretRef?.name;
  return [
    ...new Set([
      ...models.flatMap((m) => (m.source?.secretRef ? [m.source.secretRef.name] : [])),
      ...(ociKey !== undefined ? [ociKey] : []),
    ]),
  ].sort();
}

/** Sources the vllm backend can hand to vLLM directly; the others need the fetch agent. */
export function directPath(source: ModelSource | undefined): string | undefined {
  if (source?.huggingface !== undefined) return source.huggingface;
  if (source?.pvc !== undefined) {
    const sub = source.pvc.path?.replace(/^\/+|\/+$/g, '');
    return sub ? `${pvcMountPath(source.pvc.claimName)}/${sub}` : pvcMountPath(source.pvc.claimName);
  }
  return undefined;
}

/**
 * The vLLM command line: where the model is and how it is placed (flags only this backend sets; on
 * OCI the service owns them), then the engine flags both backends share.
 */
export function vllmArgs(d: StackedDeployment, group: StackedModelGroup): string[] {
  const vllm = d.spec.vllm;
  const base = group.spec.baseModel;
  return [
    '--model',
    baseSource(base)?.path ?? base.inferenceKey,
    '--port',
    String(vllm?.port ?? 8000),
    '--tensor-parallel-size',
    String(vllm?.gpusPerReplica ?? 1),
    ...engineArgs(d.spec.engine, base),
  ];
}

/** Every PVC that the base or a member reads from, once, in a stable order. */
export function claimsOf(group: StackedModelGroup): string[] {
  const claims = [group.spec.baseModel, ...(group.spec.members ?? [])].flatMap((m) =>
    m.source?.pvc ? [m.source.pvc.claimName] : [],
  );
  return [...new Set(claims)].sort();
}

type EnvVar = Plain<V1EnvVar>;

/**
 * Ours first, then the user's; a user entry of the same name replaces ours in place. Env is a list
 * map keyed by name, so server-side apply refuses duplicates outright.
 */
export function mergeEnv(ours: readonly EnvVar[], theirs: readonly EnvVar[]): EnvVar[] {
  const byName = new Map(theirs.map((e) => [e.name, e]));
  const merged = ours.map((e) => byName.get(e.name) ?? e);
  const taken = new Set(ours.map((e) => e.name));
  return [...merged, ...theirs.filter((e) => !taken.has(e.name))];
}

type Deployment = Plain<V1Deployment> & { apiVersion: string; kind: string };
type Service = Plain<V1Service> & { apiVersion: string; kind: string };

export function buildDeployment(
  d: StackedDeployment,
  group: StackedModelGroup,
  opts: BuildOptions,
): Deployment {
  const name = d.metadata.name ?? '';
  const vllm = d.spec.vllm;
  const port = vllm?.port ?? 8000;
  const gpus = String(vllm?.gpusPerReplica ?? 1);
  const labels = selectorLabels(name);
  const claims = claimsOf(group);
  const secrets = secretsOf(d, group);
  const base = baseSource(group.spec.baseModel);
  const baseFetch = base?.fetch;
  const oci = ociFlags(d);
  const resources = vllm?.resources ?? {};
  const probe = (periodSeconds: number, failureThreshold: number) => ({
    httpGet: { path: '/health', port: 'http' },
    periodSeconds,
    failureThreshold,
    timeoutSeconds: 5,
  });
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: {
      name: workloadName(name),
      namespace: d.metadata.namespace,
      labels,
      // The adapter-sync controller reads what every pod must hold from here: written only for a
      // spec that passed its checks, on the object itself (not the pod template, whose change
      // would replace every pod).
      annotations: { [WANTED_ADAPTERS_ANNOTATION]: JSON.stringify(wantedAdapters(group)) },
      ownerReferences: [controllerOwnerReference(d)],
    },
    spec: {
      replicas: vllm?.replicas ?? 1,
      selector: { matchLabels: labels },
      // A new pod counts only once its adapters are loaded (readiness gate), and no old pod goes
      // before then: a rollout never leaves fewer pods that hold every adapter.
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
      template: {
        metadata: { labels },
        spec: {
          readinessGates: [{ conditionType: ADAPTERS_LOADED }],
          // vLLM needs time to drain in-flight generations on a rolling update.
          terminationGracePeriodSeconds: 60,
          ...(baseFetch !== undefined
            ? {
                initContainers: [modelFetchContainer(opts.agentImage, baseFetch, baseSecrets(d, group), oci)],
              }
            : {}),
          containers: [
            {
              name: VLLM_CONTAINER,
              image: vllm?.image ?? opts.defaultImage,
              args: vllmArgs(d, group),
              env: mergeEnv([{ name: 'VLLM_ALLOW_RUNTIME_LORA_UPDATING', value: 'true' }], vllm?.env ?? []),
              ports: [{ name: 'http', containerPort: port, protocol: 'TCP' }],
              resources: {
                ...resources,
                limits: { ...(resources.limits ?? {}), 'nvidia.com/gpu': gpus },
                requests: { ...(resources.requests ?? {}), 'nvidia.com/gpu': gpus },
              },
              // Loading a large model can take many minutes; only the startup probe waits for it.
              startupProbe: probe(10, 180),
              readinessProbe: probe(5, 3),
              livenessProbe: probe(10, 6),
              // Keeps serving for a moment after the pod is deleted: the routers and the Service's
              // endpoints drop it first, so no new request meets a closed port or a connection the
              // server closes under it. vLLM then finishes what is in flight on SIGTERM.
              lifecycle: { preStop: { sleep: { seconds: PRE_STOP_SLEEP_SECONDS } } },
              volumeMounts: [
                ...claims.map((c) => ({
                  name: pvcVolumeName(c),
                  mountPath: pvcMountPath(c),
                  readOnly: true,
                })),
                { name: FETCHED_VOLUME, mountPath: FETCHED_ROOT, readOnly: true },
                ...(baseFetch !== undefined
                  ? [{ name: MODEL_VOLUME, mountPath: MODEL_ROOT, readOnly: true }]
                  : []),
              ],
            },
            agentContainer(opts.agentImage, secrets, oci),
          ],
          volumes: [
            ...claims.map((c) => ({
              name: pvcVolumeName(c),
              persistentVolumeClaim: { claimName: c, readOnly: true },
            })),
            { name: FETCHED_VOLUME, emptyDir: {} },
            ...(baseFetch !== undefined ? [{ name: MODEL_VOLUME, emptyDir: {} }] : []),
            ...secrets.map((name) => ({ name: secretVolumeName(name), secret: { secretName: name } })),
          ],
          ...(vllm?.nodeSelector ? { nodeSelector: vllm.nodeSelector } : {}),
          ...(vllm?.tolerations ? { tolerations: vllm.tolerations } : {}),
          ...(vllm?.affinity ? { affinity: vllm.affinity } : {}),
          // The fetch agent's workload identity is the pod's ServiceAccount: one of the namespace's
          // own, named here, rather than the shared `default`.
          ...(vllm?.serviceAccountName !== undefined ? { serviceAccountName: vllm.serviceAccountName } : {}),
        },
      },
    },
  };
}

/** How the agent reaches OCI (spec.vllm.oci), as its flags; the api key stays in its Secret. */
function ociFlags(d: StackedDeployment): string[] {
  const oci = d.spec.vllm?.oci;
  if (oci === undefined) return [];
  const secret = oci.auth.secretRef?.name;
  return [
    `--oci-region=${oci.region}`,
    ...(oci.endpoint !== undefined ? [`--oci-endpoint=${oci.endpoint}`] : []),
    `--oci-auth=${oci.auth.type}`,
    ...(secret !== undefined ? [`--oci-secret=${secret}`] : []),
  ];
}

/** The Secrets the base model's fetch reads: its token, or the OCI api key. */
function baseSecrets(d: StackedDeployment, group: StackedModelGroup): string[] {
  const source = group.spec.baseModel.source;
  const ociKey = d.spec.vllm?.oci?.auth.secretRef?.name;
  if (source?.secretRef !== undefined) return [source.secretRef.name];
  return readsFromOci(source) && ociKey !== undefined ? [ociKey] : [];
}

/** Both agent containers are small and hold no privilege; Secrets are mounted read-only. */
const agentResources = () => ({ requests: { cpu: '50m', memory: '64Mi' }, limits: { memory: '512Mi' } });
const agentSecurity = () => ({
  allowPrivilegeEscalation: false,
  readOnlyRootFilesystem: true,
  capabilities: { drop: ['ALL'] },
});

function secretMounts(secrets: readonly string[]) {
  return secrets.map((name) => ({
    name: secretVolumeName(name),
    mountPath: `${AGENT_SECRETS_ROOT}/${name}`,
    readOnly: true,
  }));
}

/**
 * The fetch agent runs in every pod, whether or not a member needs it yet, so that adding the first
 * uri member is a live update rather than a rolling restart. (A member naming a new Secret still
 * rolls the pods: a Secret volume is part of the pod template.)
 */
function agentContainer(image: string, secrets: readonly string[], oci: readonly string[]) {
  return {
    name: AGENT_CONTAINER,
    image,
    command: [...AGENT_COMMAND],
    args: [`--root=${FETCHED_ROOT}`, `--port=${AGENT_PORT}`, `--secrets-dir=${AGENT_SECRETS_ROOT}`, ...oci],
    ports: [{ name: 'fetcher', containerPort: AGENT_PORT, protocol: 'TCP' }],
    readinessProbe: { httpGet: { path: '/healthz', port: 'fetcher' }, periodSeconds: 10 },
    resources: agentResources(),
    securityContext: agentSecurity(),
    volumeMounts: [{ name: FETCHED_VOLUME, mountPath: FETCHED_ROOT }, ...secretMounts(secrets)],
  };
}

/**
 * A base model from a uri or the Model Catalog: the agent in one-shot mode fetches it before vLLM
 * starts (vLLM cannot load its base at run time). It fails, and is retried by the kubelet with
 * back-off, until the files are there; its last log line is the container's termination message.
 */
function modelFetchContainer(
  image: string,
  fetch: FetchRequestBody,
  secrets: readonly string[],
  oci: readonly string[],
) {
  return {
    name: MODEL_FETCH_CONTAINER,
    image,
    command: [...AGENT_COMMAND],
    args: [
      `--root=${MODEL_ROOT}`,
      `--secrets-dir=${AGENT_SECRETS_ROOT}`,
      ...oci,
      `--fetch=${JSON.stringify(fetch)}`,
    ],
    resources: agentResources(),
    securityContext: agentSecurity(),
    terminationMessagePolicy: 'FallbackToLogsOnError',
    volumeMounts: [{ name: MODEL_VOLUME, mountPath: MODEL_ROOT }, ...secretMounts(secrets)],
  };
}

export function buildService(d: StackedDeployment): Service {
  const name = d.metadata.name ?? '';
  const port = d.spec.vllm?.port ?? 8000;
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name: workloadName(name),
      namespace: d.metadata.namespace,
      labels: selectorLabels(name),
      ownerReferences: [controllerOwnerReference(d)],
    },
    spec: {
      selector: selectorLabels(name),
      ports: [{ name: 'http', port, targetPort: 'http', protocol: 'TCP' }],
    },
  };
}

/** Where clients reach the deployment inside the cluster. */
export function serviceEndpoint(d: StackedDeployment): string {
  return `http://${workloadName(d.metadata.name ?? '')}.${d.metadata.namespace ?? ''}.svc:${d.spec.vllm?.port ?? 8000}`;
}

/** What every pod must hold: each member's name and the path vLLM loads it from. */
export function wantedAdapters(group: StackedModelGroup): WantedAdapter[] {
  // Preflight refused every member without a usable source, so each has one here.
  return (group.spec.members ?? []).map((m) => {
    const src = adapterSource(m);
    return {
      name: m.inferenceKey,
      path: src?.path ?? m.inferenceKey,
      ...(src?.fetch ? { fetch: src.fetch } : {}),
    };
  });
}
