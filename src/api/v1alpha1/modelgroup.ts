/** StackedModelGroup: a base model plus its fine-tuned LoRA members. Backend-agnostic. */
import Type from 'typebox';
import { API_VERSION, Conditions, InferenceKey, ObjectMeta, Ocid, cel, rules } from './common.ts';

export const MODEL_GROUP_KIND = 'StackedModelGroup';
export const MODEL_GROUP_PLURAL = 'stackedmodelgroups';
export const MAX_MEMBERS = 500;

const HF_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$';
const OCI_URI_PATTERN = '^oci://[^/@]+@[^/@]+(/.*)?$';
const ociUriRegExp = new RegExp(OCI_URI_PATTERN);
const DOTDOT_PATTERN = '(^|/)\\.\\.(/|$)';
const dotDotRegExp = new RegExp(DOTDOT_PATTERN);

interface SourceShape {
  huggingface?: string;
  pvc?: object;
  uri?: string;
  modelCatalog?: object;
  sha256?: string;
  maxBytes?: number;
  secretRef?: object;
}

export const ModelSourceSchema = Type.Object(
  {
    huggingface: Type.Optional(
      Type.String({
        maxLength: 256,
        pattern: HF_PATTERN,
        description: 'A Hugging Face repository id (organisation/name); vLLM downloads it itself.',
      }),
    ),
    pvc: Type.Optional(
      Type.Object(
        {
          claimName: Type.String({
            minLength: 1,
            maxLength: 253,
            pattern: '^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$',
            description: 'Name of a PersistentVolumeClaim in the same namespace; mounted read-only.',
          }),
          path: Type.Optional(
            Type.String({
              maxLength: 1024,
              description: 'Folder inside the volume that holds the weights; relative, without "..".',
              ...rules(
                cel<string>(
                  `!self.startsWith('/') && !self.matches('${DOTDOT_PATTERN.replaceAll('\\', '\\\\')}')`,
                  'path must be relative to the volume and must not contain ".."',
                  (s) => !s.startsWith('/') && !dotDotRegExp.test(s),
                ),
              ),
            }),
          ),
        },
        { description: 'Weights on a PersistentVolumeClaim.', additionalProperties: false },
      ),
    ),
    uri: Type.Optional(
      Type.String({
        maxLength: 2048,
        description:
          'An https:// URL of a .tar.gz or .zip archive, or an OCI Object Storage location ' +
          'oci://bucket@namespace/prefix (one .tar.gz/.tgz/.zip object, or every object under the prefix). ' +
          'The fetch agent downloads it into a shared volume (a base model before vLLM starts); ' +
          "oci:// needs the deployment's spec.vllm.oci.",
        ...rules(
          cel<string>(
            `self.startsWith('https://') || self.matches('${OCI_URI_PATTERN}')`,
            'uri must be an https:// URL or oci://bucket@namespace/prefix',
            (s) => s.startsWith('https://') || ociUriRegExp.test(s),
          ),
        ),
      }),
    ),
    sha256: Type.Optional(
      Type.String({
        pattern: '^[a-f0-9]{64}$',
        description:
          'SHA-256 (hex) of the archive at uri (an https URL or one oci:// archive object) or of the Model Catalog artifact; the download is refused when it differs.',
      }),
    ),
    maxBytes: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 1099511627776,
        description:
          'Largest download the fetch agent accepts, in bytes (default 10 GiB): the archive, the sum of the objects under an oci:// prefix, or the Model Catalog artifact.',
      }),
    ),
    secretRef: Type.Optional(
      Type.Object(
        {
          name: Type.String({
            minLength: 1,
            maxLength: 253,
            pattern: '^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$',
            description: 'Secret in the same namespace.',
          }),
          key: Type.String({
            minLength: 1,
            maxLength: 253,
            default: 'token',
            description: 'Key of the Secret that holds the bearer token.',
          }),
        },
        {
          description:
            'Credentials for uri: a bearer token from a Secret, mounted into the fetch agent only. Never put credentials in the URL.',
          additionalProperties: false,
        },
      ),
    ),
    modelCatalog: Type.Optional(
      Type.Object(
        {},
        {
          description:
            "Download the OCI Model Catalog artifact (a zip) of this model's modelId, which must then be set; " +
            "needs the deployment's spec.vllm.oci.",
          additionalProperties: false,
        },
      ),
    ),
  },
  {
    description: 'Where the weights are. Exactly one of huggingface, pvc, uri or modelCatalog.',
    additionalProperties: false,
    ...rules(
      cel<SourceShape>(
        '[has(self.huggingface), has(self.pvc), has(self.uri), has(self.modelCatalog)].filter(x, x).size() == 1',
        'exactly one of huggingface, pvc, uri or modelCatalog must be set',
        (s) => [s.huggingface, s.pvc, s.uri, s.modelCatalog].filter((x) => x !== undefined).length === 1,
      ),
      cel<SourceShape>(
        '!(has(self.sha256) || has(self.maxBytes)) || has(self.uri) || has(self.modelCatalog)',
        'sha256 and maxBytes apply to a uri or modelCatalog source only',
        (s) =>
          (s.sha256 === undefined && s.maxBytes === undefined) ||
          s.uri !== undefined ||
          s.modelCatalog !== undefined,
      ),
      // A checksum pins one file; the objects under a prefix have no single digest to compare with.
      cel<SourceShape>(
        "!has(self.sha256) || !has(self.uri) || !self.uri.startsWith('oci://') || self.uri.matches('(?i)[.](tar[.]gz|tgz|zip)$')",
        'sha256 with an oci:// uri needs the uri to name one .tar.gz, .tgz or .zip object',
        (s) =>
          s.sha256 === undefined ||
          s.uri === undefined ||
          !s.uri.startsWith('oci://') ||
          /[.](tar[.]gz|tgz|zip)$/i.test(s.uri),
      ),
      // OCI sources authenticate with the deployment's spec.vllm.oci.auth, never with a token.
      cel<SourceShape>(
        "!has(self.secretRef) || (has(self.uri) && self.uri.startsWith('https://'))",
        "secretRef applies to an https:// uri only; oci:// and modelCatalog use the deployment's spec.vllm.oci.auth",
        (s) => s.secretRef === undefined || s.uri?.startsWith('https://') === true,
      ),
      cel<SourceShape>(
        "!has(self.uri) || !self.uri.matches('^https://[^/]*@')",
        'uri must not carry credentials; use secretRef',
        (s) => s.uri === undefined || !/^https:\/\/[^/]*@/.test(s.uri),
      ),
    ),
  },
);

interface ModelShape {
  modelId?: string;
  source?: SourceShape;
}

const modelCatalogNeedsModelId = cel<ModelShape>(
  '!has(self.source) || !has(self.source.modelCatalog) || has(self.modelId)',
  'source.modelCatalog needs modelId: the catalog artifact is looked up by it',
  (m) => m.source?.modelCatalog === undefined || m.modelId !== undefined,
  { fieldPath: '.modelId', reason: 'FieldValueRequired' },
);

export const BaseModelSchema = Type.Object(
  {
    inferenceKey: InferenceKey(
      "The name clients put in a request's model field to reach the base model without an adapter.",
    ),
    modelId: Type.Optional(
      Ocid('datasciencemodel', 'OCI Data Science model OCID of the base model; the oci backend needs it.'),
    ),
    source: Type.Optional(ModelSourceSchema),
  },
  {
    description: 'The base model every member adapts.',
    additionalProperties: false,
    ...rules(modelCatalogNeedsModelId),
  },
);

export const MemberSchema = Type.Object(
  {
    inferenceKey: InferenceKey(
      "The name clients put in a request's model field to reach this adapter; unique in the group.",
    ),
    modelId: Type.Optional(
      Ocid(
        'datasciencemodel',
        'OCI Data Science model OCID of the fine-tuned weights; the oci backend needs it.',
      ),
    ),
    source: Type.Optional(ModelSourceSchema),
    rank: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 512,
        description:
          "LoRA rank of the adapter, if known; checked against each deployment's engine.maxLoraRank before loading.",
      }),
    ),
  },
  {
    description: 'A fine-tuned LoRA adapter served on top of the base model.',
    additionalProperties: false,
    ...rules(modelCatalogNeedsModelId),
  },
);

interface GroupSpecShape {
  baseModel: { inferenceKey: string; modelId?: string };
  members?: { inferenceKey: string; modelId?: string }[];
}

export const ModelGroupSpecSchema = Type.Object(
  {
    displayName: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 255,
        description: 'Human-readable name, used for OCI display names.',
      }),
    ),
    description: Type.Optional(Type.String({ maxLength: 400, description: 'Free text, copied to OCI.' })),
    baseModel: BaseModelSchema,
    members: Type.Optional(
      Type.Array(MemberSchema, {
        maxItems: MAX_MEMBERS,
        description: 'The fine-tuned LoRA adapters, applied at run time on top of the base model.',
        'x-kubernetes-list-type': 'map',
        'x-kubernetes-list-map-keys': ['inferenceKey'],
      }),
    ),
  },
  {
    description: 'The desired group: a base model and its members.',
    additionalProperties: false,
    ...rules(
      cel<GroupSpecShape>(
        '!has(self.members) || self.members.all(m, m.inferenceKey != self.baseModel.inferenceKey)',
        "a member's inferenceKey must differ from baseModel.inferenceKey",
        (s) => (s.members ?? []).every((m) => m.inferenceKey !== s.baseModel.inferenceKey),
        { fieldPath: '.members' },
      ),
      // distinct() (CEL lists extension, Kubernetes >= 1.34) keeps these rules linear: the pairwise
      // exists_one form costs 500 x 500 comparisons and the API server refuses the CRD for it.
      cel<GroupSpecShape>(
        '!has(self.members) || self.members.map(m, m.inferenceKey).distinct().size() == self.members.size()',
        'inferenceKey must be unique among members',
        (s) => new Set((s.members ?? []).map((m) => m.inferenceKey)).size === (s.members ?? []).length,
        { fieldPath: '.members' },
      ),
      cel<GroupSpecShape>(
        '!has(self.members) || (self.members.filter(m, has(m.modelId)).map(m, m.modelId).distinct().size() == ' +
          'self.members.filter(m, has(m.modelId)).size() && (!has(self.baseModel.modelId) || ' +
          'self.members.all(m, !has(m.modelId) || m.modelId != self.baseModel.modelId)))',
        'modelId must be unique in the group: a model can be the base or one member, once',
        (s) => {
          const ids = (s.members ?? []).flatMap((m) => (m.modelId === undefined ? [] : [m.modelId]));
          if (s.baseModel.modelId !== undefined) ids.push(s.baseModel.modelId);
          return new Set(ids).size === ids.length;
        },
        { fieldPath: '.members' },
      ),
    ),
  },
);

export const MemberStatusSchema = Type.Object(
  {
    inferenceKey: Type.String({ description: 'The member this entry reports on.' }),
    modelId: Type.Optional(Type.String({ description: 'The member’s model OCID, if set.' })),
    valid: Type.Boolean({ description: 'Whether the member passed every check the operator can make.' }),
    message: Type.Optional(
      Type.String({ maxLength: 4096, description: 'Why the member is not valid, if so.' }),
    ),
    servedBy: Type.Optional(
      Type.Array(Type.String(), {
        maxItems: 256,
        description: 'StackedDeployments in this namespace that serve the member (it is loaded there).',
      }),
    ),
  },
  { description: 'What the operator found about one member.' },
);

export const ModelGroupStatusSchema = Type.Object(
  {
    observedGeneration: Type.Optional(
      Type.Integer({ format: 'int64', description: 'The generation the status reflects.' }),
    ),
    memberCount: Type.Optional(Type.Integer({ description: 'Number of members (for kubectl get).' })),
    conditions: Type.Optional(Conditions('Ready: whether the group is valid and usable by deployments.')),
    members: Type.Optional(
      Type.Array(MemberStatusSchema, {
        maxItems: MAX_MEMBERS,
        description: 'One entry per member.',
        'x-kubernetes-list-type': 'map',
        'x-kubernetes-list-map-keys': ['inferenceKey'],
      }),
    ),
  },
  { description: 'Observed state of the group, written by the operator.' },
);

export const StackedModelGroupSchema = Type.Object(
  {
    apiVersion: Type.Literal(API_VERSION),
    kind: Type.Literal(MODEL_GROUP_KIND),
    metadata: ObjectMeta,
    spec: ModelGroupSpecSchema,
    status: Type.Optional(ModelGroupStatusSchema),
  },
  {
    description:
      'A base LLM plus fine-tuned LoRA adapters (members), each addressed by an inference key. ' +
      'StackedDeployments serve a group on vLLM in the cluster or on OCI Data Science.',
  },
);

export type StackedModelGroup = Type.Static<typeof StackedModelGroupSchema>;
export type ModelGroupSpec = Type.Static<typeof ModelGroupSpecSchema>;
export type ModelGroupStatus = Type.Static<typeof ModelGroupStatusSchema>;
export type Member = Type.Static<typeof MemberSchema>;
export type BaseModel = Type.Static<typeof BaseModelSchema>;
export type MemberStatus = Type.Static<typeof MemberStatusSchema>;
export type ModelSource = Type.Static<typeof ModelSourceSchema>;
