/** StackedDeployment: serves one StackedModelGroup on a backend (vllm in the cluster, or OCI). */
import type { V1Affinity, V1EnvVar, V1ResourceRequirements, V1Toleration } from '@kubernetes/client-node';
import Type from 'typebox';
import type { Plain } from '../../runtime/model.ts';
import { OciAuth, OciEndpoint, OciRegion, OciSchema, OciStatusSchema } from './oci.ts';
import { routerSchema } from './router.ts';
import {
  API_VERSION,
  cel,
  Conditions,
  immutable,
  InferenceKey,
  IntegerEnum,
  KubeObject,
  LocalObjectReference,
  ObjectMeta,
  rules,
  StringEnum,
  StringMap,
} from './common.ts';

export const DEPLOYMENT_KIND = 'StackedDeployment';
export const DEPLOYMENT_PLURAL = 'stackeddeployments';
export const BACKENDS = ['vllm', 'oci'] as const;
export type Backend = (typeof BACKENDS)[number];

/** vLLM accepts these values of --max-lora-rank and no others. */
export const LORA_RANKS = [1, 8, 16, 32, 64, 128, 256, 320, 512] as const;

/** Flags the operator derives from the spec; setting them in extraArgs would fight the operator. */
export const MANAGED_VLLM_FLAGS = [
  '--model',
  '--served-model-name',
  '--port',
  '--enable-lora',
  '--max-loras',
  '--max-cpu-loras',
  '--max-lora-rank',
  '--max-model-len',
  '--tensor-parallel-size',
] as const;

const managedFlagsCel = `[${MANAGED_VLLM_FLAGS.map((f) => `'${f}'`).join(', ')}]`;

interface EngineShape {
  maxLoras: number;
  maxCpuLoras?: number;
}

export const EngineSchema = Type.Object(
  {
    maxModelLen: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 10_000_000,
        description: 'vLLM --max-model-len: the context length.',
      }),
    ),
    maxLoraRank: IntegerEnum(LORA_RANKS, {
      default: 16,
      description:
        'vLLM --max-lora-rank: the largest adapter rank the engine accepts. One of 1, 8, 16, 32, 64, 128, 256, 320, 512.',
    }),
    maxLoras: Type.Integer({
      minimum: 1,
      maximum: 256,
      default: 4,
      description: 'vLLM --max-loras: adapters that can run in one batch on the GPU.',
    }),
    maxCpuLoras: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 4096,
        description:
          'vLLM --max-cpu-loras: adapters cached in CPU memory; at least maxLoras. Defaults to maxLoras.',
      }),
    ),
    extraArgs: Type.Optional(
      Type.Array(Type.String({ maxLength: 1024 }), {
        maxItems: 64,
        description:
          'More vLLM arguments, passed through unchanged. Flags the operator sets are refused here.',
        ...rules(
          cel<string[]>(
            `self.all(a, !${managedFlagsCel}.exists(f, a == f || a.startsWith(f + '=')))`,
            `extraArgs must not set flags the operator manages (${MANAGED_VLLM_FLAGS.join(', ')}); use the engine fields`,
            (args) => args.every((a) => !MANAGED_VLLM_FLAGS.some((f) => a === f || a.startsWith(`${f}=`))),
          ),
        ),
      }),
    ),
  },
  {
    description: 'vLLM engine settings shared by both backends (the oci backend passes them in PARAMS).',
    default: {},
    additionalProperties: false,
    ...rules(
      cel<EngineShape>(
        '!has(self.maxCpuLoras) || self.maxCpuLoras >= self.maxLoras',
        'maxCpuLoras must be at least maxLoras',
        (e) => e.maxCpuLoras === undefined || e.maxCpuLoras >= e.maxLoras,
        { fieldPath: '.maxCpuLoras' },
      ),
    ),
  },
);

export const RouterSchema = routerSchema(
  true,
  'The router in front of the vLLM pods: besides what it does on either backend, it sends each request ' +
    'only to a ready pod holding its adapter, preferring one already running it in a GPU slot. Without ' +
    'it, clients reach the vLLM Service and must name the served inference keys.',
);

/**
 * How the vllm backend's fetch agent reaches OCI for oci:// and modelCatalog sources. Only the agent
 * in each pod uses it; the operator itself never calls OCI for the vllm backend.
 */
export const VllmOciSchema = Type.Object(
  {
    region: OciRegion,
    endpoint: Type.Optional(
      OciEndpoint(
        'Override of the Object Storage and Data Science endpoints the fetch agent calls (private realms, tests).',
      ),
    ),
    auth: OciAuth(
      'How the fetch agent authenticates to OCI. The apiKey Secret is mounted read-only into the fetch agent only.',
    ),
  },
  {
    description:
      'OCI access for members (or the base model) read from oci://bucket@namespace/prefix or the Model Catalog.',
    additionalProperties: false,
  },
);

export const VllmSchema = Type.Object(
  {
    image: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 512,
        description: "vLLM OpenAI server image. Defaults to the operator's --default-vllm-image.",
      }),
    ),
    replicas: Type.Integer({ minimum: 0, maximum: 1000, default: 1, description: 'vLLM pods; may be 0.' }),
    gpusPerReplica: Type.Integer({
      minimum: 1,
      maximum: 16,
      default: 1,
      description: 'nvidia.com/gpu per pod; the tensor parallel size defaults to it.',
    }),
    port: Type.Integer({ minimum: 1, maximum: 65535, default: 8000, description: 'Port vLLM listens on.' }),
    env: Type.Optional(
      Type.Array(
        Type.Unsafe<Plain<V1EnvVar>>({
          type: 'object',
          required: ['name'],
          properties: {
            name: { type: 'string', minLength: 1, maxLength: 256, description: 'Variable name.' },
          },
          'x-kubernetes-preserve-unknown-fields': true,
          description: 'A core/v1 EnvVar (name with value or valueFrom).',
        }),
        {
          maxItems: 128,
          description:
            'Environment variables of the vLLM container (core/v1 EnvVar); one of ours of the same name is replaced.',
          'x-kubernetes-list-type': 'map',
          'x-kubernetes-list-map-keys': ['name'],
        },
      ),
    ),
    resources: Type.Optional(
      KubeObject<Plain<V1ResourceRequirements>>(
        'core/v1 ResourceRequirements of the vLLM container; nvidia.com/gpu is set from gpusPerReplica.',
      ),
    ),
    nodeSelector: Type.Optional(StringMap({ description: 'Node labels the vLLM pods must run on.' })),
    tolerations: Type.Optional(
      Type.Array(KubeObject<Plain<V1Toleration>>('A core/v1 Toleration.'), {
        maxItems: 64,
        description: 'Tolerations of the vLLM pods (core/v1 Toleration), e.g. for GPU node taints.',
      }),
    ),
    affinity: Type.Optional(KubeObject<Plain<V1Affinity>>('core/v1 Affinity of the vLLM pods.')),
    serviceAccountName: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 253,
        pattern: '^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$',
        description:
          "ServiceAccount of the vLLM pods (default: the namespace's default). With spec.vllm.oci.auth.type workloadIdentity, the fetch agent authenticates to OCI as this ServiceAccount of the namespace.",
      }),
    ),
    router: RouterSchema,
    oci: Type.Optional(VllmOciSchema),
  },
  { description: 'The in-cluster vLLM backend.', additionalProperties: false },
);

interface VariantShape {
  inferenceKey: string;
  weight: number;
}
interface ExperimentShape {
  name: string;
  variants: VariantShape[];
}
interface RouterShape {
  enabled: boolean;
}
interface DeploymentSpecShape {
  backend: Backend;
  vllm?: { router?: RouterShape };
  oci?: { router?: RouterShape };
  experiments?: ExperimentShape[];
}

export const ExperimentSchema = Type.Object(
  {
    name: InferenceKey(
      'The model name clients request to join the experiment; must not be an inference key.',
    ),
    stickyHeader: Type.Optional(
      Type.String({
        maxLength: 128,
        pattern: "^[A-Za-z0-9!#$%&'*+.^_`|~-]+$",
        description: 'Request header whose value pins a client to one variant (e.g. x-user-id).',
      }),
    ),
    variants: Type.Array(
      Type.Object(
        {
          inferenceKey: InferenceKey('A member of the group that receives a share of the traffic.'),
          weight: Type.Integer({
            maximum: 1000,
            description: 'Relative share of the traffic; positive.',
            ...rules(cel<number>('self > 0', 'A/B weights must be positive', (w) => w > 0)),
          }),
        },
        { description: 'One arm of the experiment.', additionalProperties: false },
      ),
      {
        minItems: 2,
        maxItems: 16,
        description: 'The arms; a request goes to one of them in proportion to its weight.',
        ...rules(
          cel<VariantShape[]>(
            'self.all(v, self.exists_one(w, w.inferenceKey == v.inferenceKey))',
            'each variant of an experiment must name a different inferenceKey',
            (vs) => new Set(vs.map((v) => v.inferenceKey)).size === vs.length,
          ),
        ),
      },
    ),
  },
  { description: 'An A/B experiment across adapters.', additionalProperties: false },
);

export const DeploymentSpecSchema = Type.Object(
  {
    modelGroupRef: LocalObjectReference('The StackedModelGroup to serve, in the same namespace.'),
    backend: StringEnum(BACKENDS, {
      description: 'vllm: pods in this cluster; oci: an OCI Data Science model deployment.',
      ...rules(immutable('backend')),
    }),
    engine: EngineSchema,
    vllm: Type.Optional(VllmSchema),
    oci: Type.Optional(OciSchema),
    experiments: Type.Optional(
      Type.Array(ExperimentSchema, {
        maxItems: 32,
        description:
          "A/B experiments: a request for an experiment's name goes to one variant, chosen by weight. The " +
          "router does this, so the backend's router must be enabled.",
        'x-kubernetes-list-type': 'map',
        'x-kubernetes-list-map-keys': ['name'],
      }),
    ),
  },
  {
    description: 'How and where to serve a StackedModelGroup.',
    additionalProperties: false,
    ...rules(
      cel<DeploymentSpecShape>(
        "self.backend != 'vllm' || (has(self.vllm) && !has(self.oci))",
        "backend 'vllm' requires spec.vllm and forbids spec.oci",
        (s) => s.backend !== 'vllm' || (s.vllm !== undefined && s.oci === undefined),
      ),
      cel<DeploymentSpecShape>(
        "self.backend != 'oci' || (has(self.oci) && !has(self.vllm))",
        "backend 'oci' requires spec.oci and forbids spec.vllm",
        (s) => s.backend !== 'oci' || (s.oci !== undefined && s.vllm === undefined),
      ),
      cel<DeploymentSpecShape>(
        '!has(self.experiments) || self.experiments.all(e, self.experiments.exists_one(f, f.name == e.name))',
        'experiment names must be unique',
        (s) => new Set((s.experiments ?? []).map((e) => e.name)).size === (s.experiments ?? []).length,
        { fieldPath: '.experiments' },
      ),
      cel<DeploymentSpecShape>(
        '!has(self.experiments) || self.experiments.all(e, self.experiments.all(f, f.variants.all(v, v.inferenceKey != e.name)))',
        'an experiment name must not be an inference key used by a variant',
        (s) => {
          const names = new Set((s.experiments ?? []).map((e) => e.name));
          return (s.experiments ?? []).every((e) => e.variants.every((v) => !names.has(v.inferenceKey)));
        },
        { fieldPath: '.experiments' },
      ),
      // Only the router reads spec.experiments; without it they would be accepted and do nothing.
      // Defaults are applied before CEL runs, so router.enabled is there whenever its block is; the
      // has() guards only keep the rule from erroring on an object the other rules refuse anyway.
      cel<DeploymentSpecShape>(
        "!has(self.experiments) || size(self.experiments) == 0 || (self.backend == 'vllm' ? (has(self.vllm) && has(self.vllm.router) && self.vllm.router.enabled) : (has(self.oci) && has(self.oci.router) && self.oci.router.enabled))",
        'spec.experiments need the router: set spec.<backend>.router.enabled (spec.vllm.router.enabled or spec.oci.router.enabled) to true',
        (s) =>
          (s.experiments ?? []).length === 0 ||
          (s.backend === 'vllm' ? s.vllm?.router?.enabled : s.oci?.router?.enabled) === true,
        { fieldPath: '.experiments' },
      ),
    ),
  },
);

export const AdapterStatusSchema = Type.Object(
  {
    inferenceKey: Type.String({ description: 'The member this entry reports on.' }),
    modelId: Type.Optional(Type.String({ description: 'Its model OCID, if set.' })),
    state: StringEnum(['Pending', 'Loading', 'Loaded', 'Failed', 'Unloading'], {
      description: 'Pending: not yet tried; Loaded: on every ready replica; Failed: see message.',
    }),
    loadedReplicas: Type.Optional(
      Type.Integer({ description: 'Replicas whose vLLM is up and that hold the adapter.' }),
    ),
    readyReplicas: Type.Optional(
      Type.Integer({ description: 'Replicas whose vLLM is up and has been synced, in all.' }),
    ),
    message: Type.Optional(
      Type.String({
        maxLength: 4096,
        description:
          "Why it is not Loaded: the engine's, the fetch agent's or the cloud's last error, or that its files are still downloading.",
      }),
    ),
  },
  { description: 'Where one adapter stands on this deployment.' },
);

export const DeploymentStatusSchema = Type.Object(
  {
    observedGeneration: Type.Optional(
      Type.Integer({ format: 'int64', description: 'Generation the status reflects.' }),
    ),
    endpoint: Type.Optional(Type.String({ description: 'Where clients send requests.' })),
    replicas: Type.Optional(Type.Integer({ description: 'Serving replicas (pods or OCI instances).' })),
    readyReplicas: Type.Optional(
      Type.Integer({ description: 'Replicas that hold every adapter and serve.' }),
    ),
    conditions: Type.Optional(Conditions('Ready, Available, AdaptersReady, Progressing, Degraded.')),
    adapters: Type.Optional(
      Type.Array(AdapterStatusSchema, {
        maxItems: 500,
        description: 'One entry per member of the group.',
        'x-kubernetes-list-type': 'map',
        'x-kubernetes-list-map-keys': ['inferenceKey'],
      }),
    ),
    oci: Type.Optional(OciStatusSchema),
  },
  { description: 'Observed state, written by the operator.' },
);

export const StackedDeploymentSchema = Type.Object(
  {
    apiVersion: Type.Literal(API_VERSION),
    kind: Type.Literal(DEPLOYMENT_KIND),
    metadata: ObjectMeta,
    spec: DeploymentSpecSchema,
    status: Type.Optional(DeploymentStatusSchema),
  },
  {
    description:
      'Serves a StackedModelGroup: vLLM pods with every adapter loaded at run time, or an OCI Data Science ' +
      'model deployment of a stacked model group, with live updates when members change.',
  },
);

export type StackedDeployment = Type.Static<typeof StackedDeploymentSchema>;
export type DeploymentSpec = Type.Static<typeof DeploymentSpecSchema>;
export type DeploymentStatus = Type.Static<typeof DeploymentStatusSchema>;
export type AdapterStatus = Type.Static<typeof AdapterStatusSchema>;
export type Experiment = Type.Static<typeof ExperimentSchema>;
export type VllmOci = Type.Static<typeof VllmOciSchema>;
