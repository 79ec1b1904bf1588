/**
 * Pure builders of what the vllm backend runs for a StackedDeployment: a Deployment of vLLM's OpenAI
 * server with runtime LoRA updates on, and a Service. No I/O here; golden files pin the output.
 */
import type { V1Deployment, V1EnvVar, V1Service } from '@kubernetes/client-node';
import type { StackedDeployment } from '../../api/v1alpha1/deployment.ts';
import type { ModelSource, StackedModelGroup } from '../../api/v1alpha1/modelgroup.ts';
import { controllerOwnerReference } from '../../runtime/apply.ts';
import type { Plain } from '../../runtime/model.ts';
import { createHash } from 'node:crypto';
import type { Member } from '../../api/v1alpha1/modelgroup.ts';
import type { WantedAdapter } from './plan.ts';
import {
  ADAPTERS_LOADED,
  AGENT_CONTAINER,
  AGENT_PORT,
  AGENT_SECRETS_ROOT,
  FETCHED_ROOT,
  FETCHED_VOLUME,
  VLLM_CONTAINER,
  secretVolumeName,
  pvcMountPath,
  pvcVolumeName,
  selectorLabels,
  workloadName,
} from './names.ts';

export interface BuildOptions {
  /** Image when spec.vllm.image is unset (the operator's --default-vllm-image). */
  defaultImage: string;
  /** The operator's own image, which also holds the fetch agent. */
  agentImage: string;
}

/** What the fetch agent is asked to download before vLLM may load an adapter. */
export interface FetchRequest {
  name: string;
  uri: string;
  sha256?: string;
  maxBytes?: number;
  secret?: { name: string; key: string };
}

/** Where vLLM reads a member from, and what must be fetched there first (uri sources). */
export interface AdapterSource {
  path: string;
  fetch?: FetchRequest;
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

export function adapterSource(m: Member): AdapterSource | undefined {
  const direct = directPath(m.source);
  if (direct !== undefined) return { path: direct };
  const uri = m.source?.uri;
  if (uri?.startsWith('https://') !== true) return undefined;
  const name = fetchedName(m.inferenceKey, uri, m.source?.sha256);
  const fetch: FetchRequest = { name, uri };
  if (m.source?.sha256 !== undefined) fetch.sha256 = m.source.sha256;
  if (m.source?.maxBytes !== undefined) fetch.maxBytes = m.source.maxBytes;
  if (m.source?.secretRef !== undefined)
    fetch.secret = { name: m.source.secretRef.name, key: m.source.secretRef.key };
  return { path: `${FETCHED_ROOT}/${name}`, fetch };
}

/** Secrets the fetch agent needs mounted, once each, sorted. */
export function secretsOf(group: StackedModelGroup): string[] {
  return [
    ...new Set(
      (group.spec.members ?? []).flatMap((m) => (m.source?.secretRef ? [m.source.secretRef.name] : [])),
    ),
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

/** The vLLM command line, in the order vLLM documents its flags. */
export function vllmArgs(d: StackedDeployment, group: StackedModelGroup): string[] {
  const e = d.spec.engine;
  const vllm = d.spec.vllm;
  const base = group.spec.baseModel;
  const servedNames = base.modelId ? [base.inferenceKey, base.modelId] : [base.inferenceKey];
  const args = [
    '--model',
    directPath(base.source) ?? base.inferenceKey,
    '--served-model-name',
    ...servedNames,
    '--port',
    String(vllm?.port ?? 8000),
    '--enable-lora',
    '--max-loras',
    String(e.maxLoras),
    '--max-cpu-loras',
    String(e.maxCpuLoras ?? e.maxLoras),
    '--max-lora-rank',
    String(e.maxLoraRank),
    '--tensor-parallel-size',
    String(vllm?.gpusPerReplica ?? 1),
  ];
  if (e.maxModelLen !== undefined) args.push('--max-model-len', String(e.maxModelLen));
  return [...args, ...(e.extraArgs ?? [])];
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
  const secrets = secretsOf(group);
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
              volumeMounts: [
                ...claims.map((c) => ({
                  name: pvcVolumeName(c),
                  mountPath: pvcMountPath(c),
                  readOnly: true,
                })),
                { name: FETCHED_VOLUME, mountPath: FETCHED_ROOT, readOnly: true },
              ],
            },
            agentContainer(opts.agentImage, secrets),
          ],
          volumes: [
            ...claims.map((c) => ({
              name: pvcVolumeName(c),
              persistentVolumeClaim: { claimName: c, readOnly: true },
            })),
            { name: FETCHED_VOLUME, emptyDir: {} },
            ...secrets.map((name) => ({ name: secretVolumeName(name), secret: { secretName: name } })),
          ],
          ...(vllm?.nodeSelector ? { nodeSelector: vllm.nodeSelector } : {}),
          ...(vllm?.tolerations ? { tolerations: vllm.tolerations } : {}),
          ...(vllm?.affinity ? { affinity: vllm.affinity } : {}),
        },
      },
    },
  };
}

/**
 * The fetch agent runs in every pod, whether or not a member needs it yet, so that adding the first
 * uri member is a live update rather than a rolling restart. (A member naming a new Secret still
 * rolls the pods: a Secret volume is part of the pod template.)
 */
function agentContainer(image: string, secrets: readonly string[]) {
  return {
    name: AGENT_CONTAINER,
    image,
    command: ['node', 'src/agent/main.ts'],
    args: [`--root=${FETCHED_ROOT}`, `--port=${AGENT_PORT}`, `--secrets-dir=${AGENT_SECRETS_ROOT}`],
    ports: [{ name: 'fetcher', containerPort: AGENT_PORT, protocol: 'TCP' }],
    readinessProbe: { httpGet: { path: '/healthz', port: 'fetcher' }, periodSeconds: 10 },
    resources: { requests: { cpu: '50m', memory: '64Mi' }, limits: { memory: '512Mi' } },
    securityContext: {
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
    },
    volumeMounts: [
      { name: FETCHED_VOLUME, mountPath: FETCHED_ROOT },
      ...secrets.map((name) => ({
        name: secretVolumeName(name),
        mountPath: `${AGENT_SECRETS_ROOT}/${name}`,
        readOnly: true,
      })),
    ],
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
