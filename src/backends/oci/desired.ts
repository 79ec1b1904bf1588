/**
 * Pure builders of the OCI request bodies a StackedDeployment stands for: the STACKED model group,
 * the MODEL_GROUP model deployment, their updates, and the deterministic retry tokens and tags that
 * make creates exactly-once. No I/O here: the backend decides when to send them.
 */
import { createHash } from 'node:crypto';
import * as ds from 'oci-datascience';

const UpdateType = ds.models.UpdateModelGroupDeploymentConfigurationDetails.UpdateType;
import type { DeploymentSpec, StackedDeployment } from '../../api/v1alpha1/deployment.ts';
import type { StackedModelGroup } from '../../api/v1alpha1/modelgroup.ts';
import { MANAGER_NAME, isSubset } from '../../runtime/apply.ts';
import { objectKey } from '../../runtime/keys.ts';
import { engineArgs } from '../engine-args.ts';

export type OciSpec = NonNullable<DeploymentSpec['oci']>;

/**
 * Freeform tags on everything we create. OCI tag keys allow neither '.' nor spaces, so these are
 * plain words; the uid tag is what adoption after a crash searches for.
 */
export const TAG_UID = 'k8s-uid';
export const TAG_OBJECT = 'k8s-object';
export const TAG_MANAGED_BY = 'managed-by';
export const TAG_MEMBERS = 'stacked-members';

export interface GroupMember {
  modelId: string;
  inferenceKey: string;
}

/** The OCI model group a deployment needs: the base first, then the members in spec order. */
export interface DesiredGroup {
  baseModelId: string;
  members: GroupMember[];
  /** Digest of the base and the member set; the tag that tells which group holds which set. */
  hash: string;
}

/** Undefined when a model lacks its OCID (preflight reports ModelIdMissing before this runs). */
export function desiredGroup(group: StackedModelGroup): DesiredGroup | undefined {
  const base = group.spec.baseModel;
  if (base.modelId === undefined) return undefined;
  const members: GroupMember[] = [{ modelId: base.modelId, inferenceKey: base.inferenceKey }];
  for (const m of group.spec.members ?? []) {
    if (m.modelId === undefined) return undefined;
    members.push({ modelId: m.modelId, inferenceKey: m.inferenceKey });
  }
  return { baseModelId: base.modelId, members, hash: membersHash(base.modelId, members) };
}

/** Order-independent, so reordering members in the spec does not make a new OCI group. */
export function membersHash(baseModelId: string, members: readonly GroupMember[]): string {
  const lines = members.map((m) => `${m.inferenceKey}=${m.modelId}`).sort();
  return sha256(`${baseModelId}\n${lines.join('\n')}`).slice(0, 32);
}

export function ownerTags(d: StackedDeployment): Record<string, string> {
  return {
    [TAG_UID]: d.metadata.uid ?? '',
    [TAG_OBJECT]: objectKey(d),
    [TAG_MANAGED_BY]: MANAGER_NAME,
  };
}

function displayName(d: StackedDeployment): string {
  return d.spec.oci?.displayName ?? objectKey(d);
}

function groupDisplayName(group: StackedModelGroup): string {
  return group.spec.displayName ?? objectKey(group);
}

/** CREATE with the whole member list, the base first with its key, as the seed does. */
/** Where a new group goes in the deployment's version history, and the label it carries there. */
export interface HistoryPlacement {
  historyId: string;
  versionLabel: string;
}

/** The label a group version carries: which StackedModelGroup generation it was made from. */
export function versionLabel(group: StackedModelGroup): string {
  return `${group.metadata.name ?? ''} generation ${String(group.metadata.generation ?? 0)}`;
}

/**
 * One version history per StackedDeployment: OCI then shows the groups it went through in order,
 * and its latest group is where a rollback starts.
 */
export function versionHistoryDetails(d: StackedDeployment): ds.models.CreateModelGroupVersionHistoryDetails {
  const oci = ociSpec(d);
  const name = objectKey(d);
  return {
    compartmentId: oci.compartmentId,
    projectId: oci.projectId,
    displayName: name,
    description: `Model groups served by StackedDeployment ${name}`,
    freeformTags: ownerTags(d),
  };
}

export function createGroupDetails(
  d: StackedDeployment,
  group: StackedModelGroup,
  want: DesiredGroup,
  history?: HistoryPlacement,
): ds.models.CreateModelGroupDetails {
  const oci = ociSpec(d);
  const details: ds.models.CreateModelGroupDetails = {
    createType: 'CREATE',
    compartmentId: oci.compartmentId,
    projectId: oci.projectId,
    displayName: groupDisplayName(group),
    modelGroupDetails: {
      type: 'STACKED',
      baseModelId: want.baseModelId,
    },
    memberModelEntries: { memberModelDetails: want.members.map((m) => ({ ...m })) },
    freeformTags: { ...ownerTags(d), [TAG_MEMBERS]: want.hash },
  };
  if (group.spec.description !== undefined) details.description = group.spec.description;
  if (history !== undefined) {
    details.modelGroupVersionHistoryId = history.historyId;
    details.versionLabel = history.versionLabel;
  }
  return details;
}

/** What turns one member list into another: removals first, so a key can move to a new model. */
export function memberPatch(
  current: readonly GroupMember[],
  want: readonly GroupMember[],
): { remove: GroupMember[]; insert: GroupMember[] } {
  const same = (a: GroupMember, b: GroupMember) =>
    a.modelId === b.modelId && a.inferenceKey === b.inferenceKey;
  return {
    remove: current.filter((c) => !want.some((w) => same(c, w))),
    insert: want.filter((w) => !current.some((c) => same(c, w))),
  };
}

/**
 * CLONE of the group now deployed with INSERT/REMOVE patches, so OCI records the lineage
 * (sourceModelGroupId). Undefined when the base differs: a clone cannot change it, so that is a CREATE.
 */
export function cloneGroupDetails(
  d: StackedDeployment,
  group: StackedModelGroup,
  want: DesiredGroup,
  source: { id: string; baseModelId: string; members: readonly GroupMember[] },
  history?: HistoryPlacement,
): ds.models.CloneModelGroupDetails | undefined {
  if (source.baseModelId !== want.baseModelId) return undefined;
  const { remove, insert } = memberPatch(source.members, want.members);
  if (remove.some((m) => m.modelId === want.baseModelId)) return undefined;
  const items: ds.models.PatchInstruction[] = [];
  if (remove.length > 0) items.push({ operation: 'REMOVE', values: remove } as ds.models.PatchInstruction);
  if (insert.length > 0) items.push({ operation: 'INSERT', values: insert } as ds.models.PatchInstruction);
  const oci = ociSpec(d);
  const modify: ds.models.ModifyModelGroupDetails = {
    displayName: groupDisplayName(group),
    freeformTags: { ...ownerTags(d), [TAG_MEMBERS]: want.hash },
  };
  if (group.spec.description !== undefined) modify.description = group.spec.description;
  if (history !== undefined) {
    modify.modelGroupVersionHistoryId = history.historyId;
    modify.versionLabel = history.versionLabel;
  }
  const cloneSource: ds.models.CloneCreateFromModelGroupDetails = {
    modelGroupCloneSourceType: 'MODEL_GROUP',
    sourceId: source.id,
    modifyModelGroupDetails: modify,
  };
  if (items.length > 0) cloneSource.patchModelGroupMemberModelDetails = { items };
  return {
    createType: 'CLONE',
    compartmentId: oci.compartmentId,
    projectId: oci.projectId,
    modelGroupCloneSourceDetails: cloneSource,
  };
}

/** vLLM's flags in PARAMS: the engine flags both backends share (OCI's container owns the rest). */
export function params(d: StackedDeployment, group: StackedModelGroup): string {
  return engineArgs(d.spec.engine, group.spec.baseModel).join(' ');
}

export function environment(
  d: StackedDeployment,
  group: StackedModelGroup,
): ds.models.OcirModelDeploymentEnvironmentConfigurationDetails {
  const c = ociSpec(d).container;
  const env: Record<string, string> = {
    MODEL_DEPLOY_PREDICT_ENDPOINT: '/v1/completions',
    PORT: String(c.serverPort),
    ...(c.environmentVariables ?? {}),
    PARAMS: params(d, group),
    VLLM_ALLOW_RUNTIME_LORA_UPDATING: 'true',
  };
  const out: ds.models.OcirModelDeploymentEnvironmentConfigurationDetails = {
    environmentConfigurationType: 'OCIR_CONTAINER',
    image: c.image,
    serverPort: c.serverPort,
    environmentVariables: env,
  };
  if (c.healthCheckPort !== undefined) out.healthCheckPort = c.healthCheckPort;
  return out;
}

/** Scale out above the CPU threshold, in below half of it, so the pool does not flap. */
function scalingPolicy(
  infra: OciSpec['infrastructure'],
): ds.models.FixedSizeScalingPolicy | ds.models.AutoScalingPolicy {
  const a = infra.autoscaling;
  if (a === undefined) {
    return {
      policyType: 'FIXED_SIZE',
      instanceCount: infra.instanceCount ?? 1,
    };
  }
  const threshold = (t: number) => ({ scalingConfigurationType: 'THRESHOLD', threshold: t });
  return {
    policyType: 'AUTOSCALING',
    isEnabled: true,
    autoScalingPolicies: [
      {
        autoScalingPolicyType: 'THRESHOLD',
        minimumInstanceCount: a.minimumInstanceCount,
        maximumInstanceCount: a.maximumInstanceCount,
        initialInstanceCount: a.minimumInstanceCount,
        rules: [
          {
            metricExpressionRuleType: 'PREDEFINED_EXPRESSION',
            metricType: 'CPU_UTILIZATION',
            scaleInConfiguration: threshold(Math.max(1, Math.floor(a.cpuUtilizationPercent / 2))),
            scaleOutConfiguration: threshold(a.cpuUtilizationPercent),
          },
        ],
      },
    ],
    // The typings declare the policy list as the abstract base type; the subtype's fields are what
    // the service reads, so the literal goes through unknown.
  } as unknown as ds.models.AutoScalingPolicy;
}

export function infrastructure(
  d: StackedDeployment,
): ds.models.InstancePoolInfrastructureConfigurationDetails {
  const infra = ociSpec(d).infrastructure;
  const out: ds.models.InstancePoolInfrastructureConfigurationDetails = {
    infrastructureType: 'INSTANCE_POOL',
    instanceConfiguration: { instanceShapeName: infra.shape },
    scalingPolicy: scalingPolicy(infra),
  };
  if (infra.bandwidthMbps !== undefined) out.bandwidthMbps = infra.bandwidthMbps;
  return out;
}

function logDetails(d: StackedDeployment): ds.models.CategoryLogDetails | undefined {
  const l = ociSpec(d).logging;
  if (l === undefined || (l.access === undefined && l.predict === undefined)) return undefined;
  const out: ds.models.CategoryLogDetails = {};
  if (l.access !== undefined) out.access = { ...l.access };
  if (l.predict !== undefined) out.predict = { ...l.predict };
  return out;
}

export function createDeploymentDetails(
  d: StackedDeployment,
  group: StackedModelGroup,
  modelGroupId: string,
): ds.models.CreateModelDeploymentDetails {
  const oci = ociSpec(d);
  const details: ds.models.CreateModelDeploymentDetails = {
    displayName: displayName(d),
    compartmentId: oci.compartmentId,
    projectId: oci.projectId,
    modelDeploymentConfigurationDetails: {
      deploymentType: 'MODEL_GROUP',
      modelGroupConfigurationDetails: { modelGroupId },
      infrastructureConfigurationDetails: infrastructure(d),
      environmentConfigurationDetails: environment(d, group),
    },
    freeformTags: ownerTags(d),
  };
  if (oci.description !== undefined) details.description = oci.description;
  const logs = logDetails(d);
  if (logs !== undefined) details.categoryLogDetails = logs;
  return details;
}

/** LIVE: only the group id changes, which OCI swaps in without a rebuild (ADS's rule). */
export function liveUpdateDetails(modelGroupId: string): ds.models.UpdateModelDeploymentDetails {
  return {
    modelDeploymentConfigurationDetails: {
      deploymentType: 'MODEL_GROUP',
      updateType: UpdateType.Live,
      modelGroupConfigurationDetails: { modelGroupId },
    },
  };
}

/** ZDT: infrastructure, container and names, and the group when its base changed (LIVE refuses that). */
export function zdtUpdateDetails(
  d: StackedDeployment,
  group: StackedModelGroup,
  modelGroupId: string,
): ds.models.UpdateModelDeploymentDetails {
  const oci = ociSpec(d);
  const out: ds.models.UpdateModelDeploymentDetails = {
    displayName: displayName(d),
    description: oci.description ?? '',
    modelDeploymentConfigurationDetails: {
      deploymentType: 'MODEL_GROUP',
      updateType: UpdateType.Zdt,
      modelGroupConfigurationDetails: { modelGroupId },
      infrastructureConfigurationDetails: infrastructure(d),
      environmentConfigurationDetails: environment(d, group),
    },
  };
  const logs = logDetails(d);
  if (logs !== undefined) out.categoryLogDetails = logs;
  return out;
}

/**
 * Names the fields where the live deployment differs from the spec (the group id aside: that is a
 * LIVE update of its own). Empty means in sync. Compares what we set, so service defaults the
 * response adds (defaultEnvironmentVariables, system data, infrastructure defaults) never count as
 * drift; the environment variables are compared whole, since an extra one changes the container.
 */
export function configDrift(
  live: ds.models.ModelDeployment,
  d: StackedDeployment,
  group: StackedModelGroup,
): string[] {
  const want = createDeploymentDetails(d, group, '');
  const drift: string[] = [];
  if (live.displayName !== want.displayName) drift.push('displayName');
  if ((live.description ?? '') !== (want.description ?? '')) drift.push('description');
  const cfg = live.modelDeploymentConfigurationDetails as
    ds.models.ModelGroupDeploymentConfigurationDetails | undefined;
  const wantCfg =
    want.modelDeploymentConfigurationDetails as ds.models.ModelGroupDeploymentConfigurationDetails;
  // A subset test: the service may fill in what we leave out (bandwidth, cool-down, shape config);
  // counting those as drift would update the deployment on every poll.
  if (!isSubset(wantCfg.infrastructureConfigurationDetails, cfg?.infrastructureConfigurationDetails)) {
    drift.push('infrastructure');
  }
  const env = ocirEnvironment(cfg?.environmentConfigurationDetails);
  const wantEnv = ocirEnvironment(wantCfg.environmentConfigurationDetails) ?? environment(d, group);
  if (
    env === undefined ||
    env.image !== wantEnv.image ||
    env.serverPort !== wantEnv.serverPort ||
    env.healthCheckPort !== wantEnv.healthCheckPort ||
    !sameJson(env.environmentVariables ?? {}, wantEnv.environmentVariables ?? {})
  ) {
    drift.push('container');
  }
  if (!sameJson(live.categoryLogDetails ?? {}, want.categoryLogDetails ?? {})) drift.push('logging');
  return drift;
}

function ocirEnvironment(
  e: ds.models.ModelGroupDeploymentConfigurationDetails['environmentConfigurationDetails'],
): ds.models.OcirModelDeploymentEnvironmentConfigurationDetails | undefined {
  return e?.environmentConfigurationType === 'OCIR_CONTAINER' ? e : undefined;
}

/** The group id a live deployment serves. */
export function deployedGroupId(live: ds.models.ModelDeployment): string | undefined {
  // Read defensively: a deployment changed in OCI to another deployment type has no group block.
  const cfg = live.modelDeploymentConfigurationDetails as
    Partial<ds.models.ModelGroupDeploymentConfigurationDetails> | undefined;
  return cfg?.modelGroupConfigurationDetails?.modelGroupId;
}

/**
 * A create's opc-retry-token: the object's uid, what it creates and the exact body, so a retry after
 * a crash replays the first call (OCI keeps tokens 24 h) while any different request gets a new one.
 * `salt` separates creates of the same body, e.g. a deployment recreated after an OCI-side deletion.
 */
export function retryToken(uid: string, what: string, body: unknown, salt = ''): string {
  return sha256(`${uid}\n${what}\n${salt}\n${stableJson(body)}`);
}

/** Digest of the deployment configuration the spec asks for (the group id aside). */
export function configDigest(d: StackedDeployment, group: StackedModelGroup): string {
  return sha256(stableJson(createDeploymentDetails(d, group, ''))).slice(0, 32);
}

/** JSON with sorted keys, so equal objects hash equally whatever order they were built in. */
export function stableJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableJson).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const entries = Object.entries(v as Record<string, unknown>)
      .filter(([, x]) => x !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${stableJson(x)}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

function sameJson(a: unknown, b: unknown): boolean {
  return stableJson(a) === stableJson(b);
}

function sha256(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}

export function ociSpec(d: StackedDeployment): OciSpec {
  const oci = d.spec.oci;
  // The schema's CEL makes spec.oci required with backend oci; reaching here without it is a bug.
  if (oci === undefined) throw new Error('spec.oci is required for the oci backend');
  return oci;
}
