/** The oci backend's part of a StackedDeployment: where and how OCI Data Science serves the group. */
import Type from 'typebox';
import { LocalObjectReference, Ocid, StringEnum, StringMap, cel, rules } from './common.ts';
import { routerSchema } from './router.ts';

const LogRefSchema = Type.Object(
  {
    logGroupId: Ocid('loggroup', 'OCI Logging log group OCID.'),
    logId: Ocid('log', 'OCI Logging log OCID.'),
  },
  { description: 'An OCI Logging log.', additionalProperties: false },
);

interface AuthShape {
  type: string;
  secretRef?: object;
}

interface InfraShape {
  instanceCount?: number;
  autoscaling?: { minimumInstanceCount: number; maximumInstanceCount: number };
}

/** OCI region, shared by every block that talks to OCI. */
export const OciRegion = Type.String({
  minLength: 1,
  maxLength: 64,
  pattern: '^[a-z]+-[a-z]+-[0-9]+$',
  description: 'OCI region, e.g. us-ashburn-1.',
});

/** An endpoint override; `description` says which services it replaces. */
export function OciEndpoint(description: string) {
  return Type.String({
    maxLength: 2048,
    description,
    ...rules(
      cel<string>(
        "self.startsWith('https://') || self.startsWith('http://127.') || self.startsWith('http://localhost')",
        'endpoint must be an https:// URL (plain http only on loopback, for tests)',
        (s) => s.startsWith('https://') || s.startsWith('http://127.') || s.startsWith('http://localhost'),
      ),
    ),
  });
}

/** OCI credentials by reference; `typeDescription` says who authenticates with them. */
export function OciAuth(typeDescription: string) {
  return Type.Object(
    {
      type: StringEnum(['apiKey', 'workloadIdentity', 'instancePrincipal', 'resourcePrincipal'], {
        default: 'apiKey',
        description: typeDescription,
      }),
      secretRef: Type.Optional(
        LocalObjectReference(
          'Secret with tenancy, user, fingerprint, privateKey, optional passphrase and region (apiKey only).',
        ),
      ),
    },
    {
      description: 'Credentials, by reference only: no secret ever sits in this object.',
      additionalProperties: false,
      ...rules(
        cel<AuthShape>(
          "(self.type == 'apiKey') == has(self.secretRef)",
          'auth.secretRef is required for type apiKey and not allowed for the other types',
          (a) => (a.type === 'apiKey') === (a.secretRef !== undefined),
        ),
      ),
    },
  );
}

export const OciSchema = Type.Object(
  {
    region: OciRegion,
    endpoint: Type.Optional(OciEndpoint('Override of the Data Science endpoint (private realms, tests).')),
    compartmentId: Ocid('compartment', 'Compartment of the model group and the model deployment.'),
    projectId: Ocid('datascienceproject', 'Data Science project of the model group and the deployment.'),
    auth: OciAuth('How the operator authenticates to OCI.'),
    displayName: Type.Optional(
      Type.String({ minLength: 1, maxLength: 255, description: 'OCI display name.' }),
    ),
    description: Type.Optional(Type.String({ maxLength: 400, description: 'OCI description.' })),
    infrastructure: Type.Object(
      {
        shape: Type.String({ minLength: 1, maxLength: 64, description: 'Compute shape, e.g. VM.GPU.A10.1.' }),
        instanceCount: Type.Optional(
          Type.Integer({ minimum: 1, maximum: 100, description: 'Fixed number of instances (default 1).' }),
        ),
        bandwidthMbps: Type.Optional(
          Type.Integer({ minimum: 10, maximum: 8000, description: 'Load balancer bandwidth in Mbps.' }),
        ),
        autoscaling: Type.Optional(
          Type.Object(
            {
              minimumInstanceCount: Type.Integer({
                minimum: 1,
                maximum: 100,
                description: 'Fewest instances.',
              }),
              maximumInstanceCount: Type.Integer({
                minimum: 1,
                maximum: 100,
                description: 'Most instances.',
              }),
              cpuUtilizationPercent: Type.Integer({
                minimum: 1,
                maximum: 100,
                default: 70,
                description: 'Scale out above this CPU use.',
              }),
            },
            {
              description: 'Autoscaling instead of a fixed count.',
              additionalProperties: false,
              ...rules(
                cel<{ minimumInstanceCount: number; maximumInstanceCount: number }>(
                  'self.minimumInstanceCount <= self.maximumInstanceCount',
                  'autoscaling.minimumInstanceCount must not exceed maximumInstanceCount',
                  (a) => a.minimumInstanceCount <= a.maximumInstanceCount,
                ),
              ),
            },
          ),
        ),
      },
      {
        description: 'The instance pool behind the model deployment.',
        additionalProperties: false,
        ...rules(
          cel<InfraShape>(
            '!(has(self.instanceCount) && has(self.autoscaling))',
            'set instanceCount or autoscaling, not both',
            (i) => !(i.instanceCount !== undefined && i.autoscaling !== undefined),
          ),
        ),
      },
    ),
    container: Type.Object(
      {
        image: Type.String({
          minLength: 1,
          maxLength: 512,
          description: 'OCIR image of the vLLM serving container.',
        }),
        serverPort: Type.Integer({
          minimum: 1024,
          maximum: 65535,
          default: 8080,
          description: 'Container port.',
        }),
        healthCheckPort: Type.Optional(
          Type.Integer({
            minimum: 1024,
            maximum: 65535,
            description: 'Health check port (default serverPort).',
          }),
        ),
        environmentVariables: Type.Optional(
          StringMap({
            description:
              'Extra container environment; PARAMS and VLLM_ALLOW_RUNTIME_LORA_UPDATING are set by the operator.',
            ...rules(
              cel<Record<string, string>>(
                "!('PARAMS' in self) && !('VLLM_ALLOW_RUNTIME_LORA_UPDATING' in self)",
                'environmentVariables must not set PARAMS or VLLM_ALLOW_RUNTIME_LORA_UPDATING; use spec.engine',
                (e) => !('PARAMS' in e) && !('VLLM_ALLOW_RUNTIME_LORA_UPDATING' in e),
              ),
            ),
          }),
        ),
      },
      { description: 'The serving container (BYOC).', additionalProperties: false },
    ),
    logging: Type.Optional(
      Type.Object(
        { access: Type.Optional(LogRefSchema), predict: Type.Optional(LogRefSchema) },
        { description: 'Where OCI sends access and predict logs.', additionalProperties: false },
      ),
    ),
    retainModelGroups: Type.Integer({
      minimum: 0,
      maximum: 20,
      default: 2,
      description: 'Superseded OCI model groups kept for rollback.',
    }),
    router: routerSchema(
      false,
      'A router in this cluster in front of the OCI model deployment, off by default: the deployment ' +
        'already answers by inference key and model OCID. Enable it for spec.experiments and per-key ' +
        "metrics; it forwards to status.oci.predictUrl, signing each request with spec.oci.auth's " +
        'credentials, so clients call it unsigned: only those who can reach its Service can use it.',
    ),
    driftPolicy: StringEnum(['Reconcile', 'Observe'], {
      default: 'Reconcile',
      description:
        'What to do when the OCI deployment changes behind our back: bring it back, or only report it.',
    }),
  },
  {
    description: 'The OCI Data Science backend.',
    additionalProperties: false,
    // Where the resources live cannot change under them: OCI would need a move the operator does not do.
    ...rules(
      cel<unknown>(
        'self.region == oldSelf.region && self.compartmentId == oldSelf.compartmentId && self.projectId == oldSelf.projectId',
        'oci.region, oci.compartmentId and oci.projectId are immutable; delete and recreate the StackedDeployment instead',
        () => true,
      ),
    ),
  },
);

export const OciStatusSchema = Type.Object(
  {
    modelDeploymentId: Type.Optional(Type.String({ description: 'OCID of the model deployment.' })),
    modelGroupId: Type.Optional(Type.String({ description: 'OCID of the OCI model group now deployed.' })),
    modelGroupVersionHistoryId: Type.Optional(
      Type.String({
        description: 'OCID of the OCI model group version history that lists every group made.',
      }),
    ),
    modelGroupHistory: Type.Optional(
      Type.Array(Type.String(), {
        maxItems: 64,
        description: 'Superseded OCI model groups still kept, newest first.',
      }),
    ),
    predictUrl: Type.Optional(
      Type.String({
        description:
          "The model deployment's predict URL (<modelDeploymentUrl>/predict): where signed predict calls go, the router's among them.",
      }),
    ),
    lifecycleState: Type.Optional(Type.String({ description: 'Lifecycle state of the model deployment.' })),
    workRequestId: Type.Optional(Type.String({ description: 'The work request being tracked, if any.' })),
    appliedConfig: Type.Optional(
      Type.String({
        description:
          'Digest of the deployment configuration last applied; a live deployment that differs while this still matches the spec was changed in OCI.',
      }),
    ),
  },
  { description: 'What the oci backend created.' },
);
