// Request bodies of the model deployment operations (reference §3) for schema.ts, and the limits a
// complete configuration must meet (checked again after an update is merged in).

import { invalid } from './errors.ts';
import {
  type Check,
  type Fields,
  TAG_FIELDS,
  arrayOf,
  bool,
  int,
  num,
  object,
  ocid,
  oneOf,
  opt,
  req,
  str,
  stringMap,
  union,
} from './schema.ts';
import type {
  CategoryLogDetails,
  DefinedTags,
  EnvironmentConfiguration,
  FreeformTags,
  InfrastructureConfiguration,
  ModelGroupDeploymentConfiguration,
} from './types.ts';

const RESERVED_PORTS = [24224, 8446, 8447];
// Keys of 2-31 characters (reference §3), with one exception: Oracle's own stacked-inferencing
// payload (the seed) sets VLLM_ALLOW_RUNTIME_LORA_UPDATING, 32 characters, so the service must take
// that key; any other key of 32 or more is refused.
const ENV_KEY = /^[A-Za-z][A-Za-z0-9_]{1,30}$/;
const ENV_KEY_SEED_EXCEPTION = 'VLLM_ALLOW_RUNTIME_LORA_UPDATING';
const ENV_MAX_BYTES = 2048;
// OCIR hosts: <region-key>.ocir.io, <region>.ocir.io or ocir.<region>.oci.oraclecloud.com.
const OCIR_IMAGE =
  /^([a-z0-9-]+\.ocir\.io|ocir\.[a-z0-9-]+\.oci\.oraclecloud\.com)\/[a-z0-9._-]+\/[A-Za-z0-9._/-]+(:[A-Za-z0-9._-]+)?(@sha256:[0-9a-f]{64})?$/;
const SHAPE = /^(VM|BM)\.[A-Za-z0-9]+(\.[A-Za-z0-9]+)*$/;

const port: Check = (v, at) => {
  int({ min: 1024, max: 65535 })(v, at);
  if (RESERVED_PORTS.includes(v as number)) throw invalid(`${at} ${String(v)} is reserved by the service`);
};

const envKey: Check = (v, at) => {
  const k = v as string;
  if ((!ENV_KEY.test(k) && k !== ENV_KEY_SEED_EXCEPTION) || k.endsWith('_')) {
    throw invalid(`${at} '${k}' must match [A-Za-z][A-Za-z0-9_]{1,30} and not end with '_'`);
  }
};

const envVars: Check = (v, at) => {
  stringMap({ key: envKey })(v, at);
  const total = Object.entries(v as Record<string, string>).reduce(
    (n, [k, x]) => n + Buffer.byteLength(k) + Buffer.byteLength(x),
    0,
  );
  if (total >= ENV_MAX_BYTES)
    throw invalid(`${at} take ${total} bytes; they must stay under ${ENV_MAX_BYTES}`);
};

const positive: Check = (v, at) => {
  num()(v, at);
  if ((v as number) <= 0) throw invalid(`${at} must be positive`);
};

const INSTANCE_CONFIGURATION = object({
  instanceShapeName: req(str({ pattern: SHAPE })),
  modelDeploymentInstanceShapeConfigDetails: opt(
    object({
      ocpus: opt(positive),
      memoryInGBs: opt(positive),
      cpuBaseline: opt(oneOf('BASELINE_1_8', 'BASELINE_1_2', 'BASELINE_1_1')),
    }),
  ),
  subnetId: opt(ocid('subnet')),
  privateEndpointId: opt(ocid('datascienceprivateendpoint')),
  networkAccessType: opt(
    oneOf('MANAGED_NETWORKING_NO_INTERNET_ACCESS', 'MANAGED_NETWORKING_INTERNET_ACCESS', 'CUSTOM_NETWORKING'),
  ),
});

const ADJUST: Fields = {
  pendingDuration: opt(str({ pattern: /^PT\d+[MHS]$/ })),
  instanceCountAdjustment: opt(int({ min: 1 })),
};
const THRESHOLD = union('scalingConfigurationType', {
  THRESHOLD: { threshold: req(int({ min: 0, max: 100 })), ...ADJUST },
});
const QUERY = union('scalingConfigurationType', { QUERY: { query: req(str()), ...ADJUST } });

const RULE = union('metricExpressionRuleType', {
  PREDEFINED_EXPRESSION: {
    metricType: req(oneOf('CPU_UTILIZATION', 'MEMORY_UTILIZATION')),
    scaleInConfiguration: req(THRESHOLD),
    scaleOutConfiguration: req(THRESHOLD),
  },
  CUSTOM_EXPRESSION: { scaleInConfiguration: req(QUERY), scaleOutConfiguration: req(QUERY) },
});

const SCALING_POLICY = union('policyType', {
  FIXED_SIZE: { instanceCount: req(int({ min: 1, max: 100 })) },
  AUTOSCALING: {
    autoScalingPolicies: req(
      arrayOf(
        union('autoScalingPolicyType', {
          THRESHOLD: {
            rules: req(arrayOf(RULE, { min: 1 })),
            minimumInstanceCount: req(int({ min: 1, max: 100 })),
            maximumInstanceCount: req(int({ min: 1, max: 100 })),
            initialInstanceCount: req(int({ min: 1, max: 100 })),
          },
        }),
        { min: 1, max: 1 },
      ),
    ),
    coolDownInSeconds: opt(int({ min: 0 })),
    isEnabled: opt(bool),
  },
});

const INFRA_FIELDS = (required: boolean): Fields => {
  const f = required ? req : opt;
  return {
    instanceConfiguration: f(INSTANCE_CONFIGURATION),
    scalingPolicy: f(SCALING_POLICY),
    bandwidthMbps: opt(int({ min: 1 })),
    maximumBandwidthMbps: opt(int({ min: 1 })),
  };
};

const ENVIRONMENT = union('environmentConfigurationType', {
  OCIR_CONTAINER: {
    image: opt(str({ max: 1024, pattern: OCIR_IMAGE })),
    imageDigest: opt(str({ pattern: /^sha256:[0-9a-f]{64}$/ })),
    imageSignatureId: opt(ocid('containerimagesignature')),
    cmd: opt(arrayOf(str({ min: 0 }))),
    entrypoint: opt(arrayOf(str({ min: 0 }))),
    serverPort: opt(port),
    healthCheckPort: opt(port),
    environmentVariables: opt(envVars),
    predictApiSpecification: opt(str()),
    customHttpEndpoints: opt(
      arrayOf(
        object({
          endpointUriSuffix: req(str({ pattern: /^\/[A-Za-z0-9/_-]*$/ })),
          httpMethods: req(arrayOf(oneOf('GET', 'POST'), { min: 1 })),
        }),
      ),
    ),
  },
  DEFAULT: { environmentVariables: opt(envVars) },
});

const LOG = object({ logId: req(ocid('log')), logGroupId: req(ocid('loggroup')) });
const LOGS = object({ access: opt(LOG), predict: opt(LOG) });
const GROUP_REF = object({ modelGroupId: req(ocid('datasciencemodelgroup')) });
const NAME_FIELDS: Fields = {
  displayName: opt(str({ max: 255 })),
  description: opt(str({ min: 0, max: 400 })),
};

export const CREATE_DEPLOYMENT: Check = object({
  ...NAME_FIELDS,
  compartmentId: req(ocid('compartment', 'tenancy')),
  projectId: req(ocid('datascienceproject')),
  // Only MODEL_GROUP deployments are emulated: SINGLE_MODEL and its kin are refused as unknown.
  modelDeploymentConfigurationDetails: req(
    union('deploymentType', {
      MODEL_GROUP: {
        modelGroupConfigurationDetails: req(GROUP_REF),
        infrastructureConfigurationDetails: req(
          union('infrastructureType', { INSTANCE_POOL: INFRA_FIELDS(true) }),
        ),
        environmentConfigurationDetails: opt(ENVIRONMENT),
      },
    }),
  ),
  categoryLogDetails: opt(LOGS),
  ...TAG_FIELDS,
});

export const UPDATE_DEPLOYMENT: Check = object({
  ...NAME_FIELDS,
  modelDeploymentConfigurationDetails: opt(
    union('deploymentType', {
      MODEL_GROUP: {
        updateType: opt(oneOf('LIVE', 'ZDT')),
        modelGroupConfigurationDetails: opt(GROUP_REF),
        infrastructureConfigurationDetails: opt(
          union('infrastructureType', { INSTANCE_POOL: INFRA_FIELDS(false) }),
        ),
        environmentConfigurationDetails: opt(ENVIRONMENT),
      },
    }),
  ),
  categoryLogDetails: opt(LOGS),
  ...TAG_FIELDS,
});

export interface CreateDeploymentBody {
  displayName?: string;
  description?: string;
  compartmentId: string;
  projectId: string;
  modelDeploymentConfigurationDetails: ModelGroupDeploymentConfiguration;
  categoryLogDetails?: CategoryLogDetails;
  freeformTags?: FreeformTags;
  definedTags?: DefinedTags;
}

export interface UpdateDeploymentBody {
  displayName?: string;
  description?: string;
  modelDeploymentConfigurationDetails?: {
    deploymentType: 'MODEL_GROUP';
    updateType?: 'LIVE' | 'ZDT';
    modelGroupConfigurationDetails?: { modelGroupId: string };
    infrastructureConfigurationDetails?: Partial<InfrastructureConfiguration> & {
      infrastructureType: 'INSTANCE_POOL';
    };
    environmentConfigurationDetails?: EnvironmentConfiguration;
  };
  categoryLogDetails?: CategoryLogDetails;
  freeformTags?: FreeformTags;
  definedTags?: DefinedTags;
}

/** Rules that span fields, checked on the complete configuration (after an update is merged). */
export function checkConfiguration(c: ModelGroupDeploymentConfiguration): void {
  const infra = c.infrastructureConfigurationDetails;
  const shape = infra.instanceConfiguration.instanceShapeName;
  const shapeConfig = infra.instanceConfiguration.modelDeploymentInstanceShapeConfigDetails;
  if (shape.endsWith('.Flex')) {
    if (shapeConfig?.ocpus === undefined || shapeConfig.memoryInGBs === undefined) {
      throw invalid(
        `Flex shape ${shape} needs modelDeploymentInstanceShapeConfigDetails with ocpus and memoryInGBs`,
      );
    }
  } else if (shapeConfig !== undefined) {
    throw invalid(`modelDeploymentInstanceShapeConfigDetails applies only to Flex shapes, not ${shape}`);
  }
  if (infra.scalingPolicy.policyType === 'AUTOSCALING') {
    for (const p of infra.scalingPolicy.autoScalingPolicies) {
      const { minimumInstanceCount: min, maximumInstanceCount: max, initialInstanceCount: initial } = p;
      if (!(min <= initial && initial <= max)) {
        throw invalid(
          `Autoscaling needs minimumInstanceCount <= initialInstanceCount <= maximumInstanceCount, got ${min}, ${initial}, ${max}`,
        );
      }
    }
  }
  if (
    infra.bandwidthMbps !== undefined &&
    infra.maximumBandwidthMbps !== undefined &&
    infra.maximumBandwidthMbps < infra.bandwidthMbps
  ) {
    throw invalid('maximumBandwidthMbps must not be below bandwidthMbps');
  }
  const env = c.environmentConfigurationDetails;
  if (env?.environmentConfigurationType === 'OCIR_CONTAINER' && env.image === undefined) {
    throw invalid('An OCIR_CONTAINER environment needs an image');
  }
}

/** Instances the deployment runs once ACTIVE. */
export function targetInstances(infra: InfrastructureConfiguration): number {
  const p = infra.scalingPolicy;
  return p.policyType === 'FIXED_SIZE'
    ? p.instanceCount
    : (p.autoScalingPolicies[0]?.initialInstanceCount ?? 1);
}
