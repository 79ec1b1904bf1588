// The JSON shapes the emulator stores and serves (dates are ISO strings, as on the wire) and its public
// option and result types.

export type FreeformTags = Record<string, string>;
export type DefinedTags = Record<string, Record<string, unknown>>;

export interface MemberModel {
  modelId: string;
  inferenceKey?: string;
}

export interface CustomMetadata {
  key?: string;
  value?: string;
  description?: string;
  category?: string;
}

export interface ModelGroupDetails {
  type: 'STACKED' | 'HOMOGENEOUS' | 'HETEROGENEOUS';
  baseModelId?: string;
  customMetadataList?: CustomMetadata[];
}

export type ModelGroupState = 'CREATING' | 'ACTIVE' | 'FAILED' | 'INACTIVE' | 'DELETING' | 'DELETED';

export interface ModelGroup {
  id: string;
  compartmentId: string;
  projectId: string;
  displayName: string;
  description?: string;
  modelGroupDetails: ModelGroupDetails;
  memberModelEntries: { memberModelDetails: MemberModel[] };
  freeformTags: FreeformTags;
  definedTags: DefinedTags;
  systemTags: DefinedTags;
  lifecycleState: ModelGroupState;
  lifecycleDetails?: string;
  timeCreated: string;
  timeUpdated: string;
  createdBy: string;
  modelGroupVersionHistoryId?: string;
  modelGroupVersionHistoryName?: string;
  versionLabel?: string;
  versionId?: number;
  createType: 'CREATE' | 'CLONE';
  sourceModelGroupId?: string;
}

export type VersionHistoryState = 'ACTIVE' | 'DELETING' | 'DELETED' | 'FAILED';

export interface ModelGroupVersionHistory {
  id: string;
  compartmentId: string;
  projectId: string;
  displayName: string;
  description?: string;
  latestModelGroupId?: string;
  freeformTags: FreeformTags;
  definedTags: DefinedTags;
  systemTags: DefinedTags;
  lifecycleState: VersionHistoryState;
  lifecycleDetails?: string;
  timeCreated: string;
  timeUpdated: string;
  createdBy: string;
}

export interface InstanceConfiguration {
  instanceShapeName: string;
  modelDeploymentInstanceShapeConfigDetails?: { ocpus?: number; memoryInGBs?: number; cpuBaseline?: string };
  subnetId?: string;
  privateEndpointId?: string;
  networkAccessType?: string;
}

export type ScalingPolicy =
  | { policyType: 'FIXED_SIZE'; instanceCount: number }
  | {
      policyType: 'AUTOSCALING';
      autoScalingPolicies: {
        autoScalingPolicyType: 'THRESHOLD';
        minimumInstanceCount: number;
        maximumInstanceCount: number;
        initialInstanceCount: number;
        rules: Record<string, unknown>[];
      }[];
      coolDownInSeconds?: number;
      isEnabled?: boolean;
    };

export interface InfrastructureConfiguration {
  infrastructureType: 'INSTANCE_POOL';
  instanceConfiguration: InstanceConfiguration;
  scalingPolicy: ScalingPolicy;
  bandwidthMbps?: number;
  maximumBandwidthMbps?: number;
}

export interface EnvironmentConfiguration {
  environmentConfigurationType: 'OCIR_CONTAINER' | 'DEFAULT';
  image?: string;
  imageDigest?: string;
  imageSignatureId?: string;
  cmd?: string[];
  entrypoint?: string[];
  serverPort?: number;
  healthCheckPort?: number;
  environmentVariables?: Record<string, string>;
  predictApiSpecification?: string;
  customHttpEndpoints?: { endpointUriSuffix: string; httpMethods: string[] }[];
}

export interface ModelGroupDeploymentConfiguration {
  deploymentType: 'MODEL_GROUP';
  modelGroupConfigurationDetails: { modelGroupId: string };
  infrastructureConfigurationDetails: InfrastructureConfiguration;
  environmentConfigurationDetails?: EnvironmentConfiguration;
}

export interface LogDetails {
  logId: string;
  logGroupId: string;
}

export interface CategoryLogDetails {
  access?: LogDetails;
  predict?: LogDetails;
}

export type ModelDeploymentState =
  'CREATING' | 'ACTIVE' | 'UPDATING' | 'FAILED' | 'NEEDS_ATTENTION' | 'INACTIVE' | 'DELETING' | 'DELETED';

export interface ModelDeployment {
  id: string;
  timeCreated: string;
  displayName: string;
  description?: string;
  projectId: string;
  createdBy: string;
  compartmentId: string;
  modelDeploymentConfigurationDetails: ModelGroupDeploymentConfiguration;
  categoryLogDetails?: CategoryLogDetails;
  modelDeploymentUrl: string;
  modelDeploymentSystemData: { systemInfraType: 'INSTANCE_POOL'; currentInstanceCount: number };
  lifecycleState: ModelDeploymentState;
  lifecycleDetails?: string;
  freeformTags: FreeformTags;
  definedTags: DefinedTags;
}

export type WorkRequestStatus =
  'ACCEPTED' | 'IN_PROGRESS' | 'SUCCEEDED' | 'FAILED' | 'CANCELING' | 'CANCELED';

export interface WorkRequestResource {
  actionType: 'CREATED' | 'UPDATED' | 'DELETED' | 'RELATED' | 'IN_PROGRESS';
  entityType: string;
  identifier: string;
  entityUri?: string;
}

export interface WorkRequest {
  id: string;
  operationType: string;
  status: WorkRequestStatus;
  compartmentId: string;
  percentComplete: number;
  resources: WorkRequestResource[];
  timeAccepted: string;
  timeStarted?: string;
  timeFinished?: string;
}

export interface WorkRequestError {
  code: string;
  message: string;
  timestamp: string;
}

export interface WorkRequestLogEntry {
  message: string;
  timestamp: string;
}

export type MemberState = 'SUCCESS' | 'FAILED' | 'INCONSISTENT';

// ---- public options and results ----------------------------------------------------------------

export interface OciEmulatorDelays {
  groupCreateMs?: number;
  groupDeleteMs?: number;
  deploymentCreateMs?: number;
  deploymentUpdateMs?: number;
  deploymentDeleteMs?: number;
}

export interface OciEmulatorOptions {
  /** keyId "<tenancy>/<user>/<fingerprint>" -> PEM public key; the fingerprint must match the key. */
  keys?: Record<string, string>;
  /** Default true: an unsigned request gets 401 NotAuthenticated. */
  strict?: boolean;
  /** Default 50 each; 0 still transitions asynchronously (next timer tick), never inside the request. */
  delays?: OciEmulatorDelays;
  /** Data Science model OCIDs (ocid1.datasciencemodel....) that exist in the catalog. */
  models?: string[];
  /** Default us-ashburn-1; its airport code goes into OCIDs. */
  region?: string;
}

export interface RequestRecord {
  /** Date.now() when the request arrived */
  at: number;
  method: string;
  /** path and query as received */
  path: string;
  operation: string;
  /** 0 when the socket was destroyed without an answer */
  status: number;
  keyId?: string;
  retryToken?: string;
  ifMatch?: string;
  requestId: string;
  /** Predict only: the body's `model` as received (inferenceKey or model OCID), when it is a string. */
  model?: string;
}

export interface OciEmulatorCounts {
  /** Groups actually created (a replayed retry token does not count). */
  modelGroupsCreated: number;
  modelDeploymentsCreated: number;
  /** Every request received, answered or not. */
  requests: number;
  /** POST, PUT and DELETE requests of the API (predict is not counted), whatever their outcome. */
  mutating: number;
  byOperation: Record<string, number>;
}

export interface FaultSpec {
  /** 0..1: the share of matching calls that fail before the operation runs (no side effect). */
  rate: number;
  /** Default [429, 500, 503]. */
  statuses?: number[];
  /** Operation names as in the reference's table (e.g. 'CreateModelGroup', 'Predict'); default all. */
  operations?: string[];
  /** Added to every matching call, failed or not. */
  latencyMs?: number;
  /** Makes the choice of failing calls and statuses reproducible. */
  seed?: number;
}

export interface OnceOptions {
  count?: number;
  /** The operation IS performed (state, resource, retry token), then the client gets the error. */
  afterCommit?: boolean;
  /** Default: the usual code of the status (see errors.ts). */
  code?: string;
}

export interface FaultController {
  set(f: FaultSpec): void;
  /** The next `count` calls of `operation` fail with `status`; status 0 destroys the socket instead. */
  once(operation: string, status: number, opts?: OnceOptions): void;
  clear(): void;
}

export interface OutOfBand {
  /** Goes DELETING -> DELETED after deploymentDeleteMs, like a delete from the console. */
  deleteDeployment(id: string): void;
  /** Changes fields (not the id) in place; new etag. */
  updateDeployment(id: string, mutate: (d: ModelDeployment) => void): void;
  setDeploymentState(id: string, state: ModelDeploymentState, details?: string): void;
  setMemberState(deploymentId: string, modelId: string, state: MemberState): void;
  /** The next `count` model group creates end FAILED with these lifecycleDetails. */
  failNextGroupCreates(count: number, details: string): void;
}

export interface OciEmulator {
  /** http://127.0.0.1:PORT, what a client sets as client.endpoint (the SDK appends /20190101). */
  url: string;
  addKey(keyId: string, publicKeyPem: string): void;
  addModel(modelId: string): void;
  faults: FaultController;
  counts(): OciEmulatorCounts;
  requests(): RequestRecord[];
  /** Every group ever made, DELETED included (deep copies). */
  modelGroups(): ModelGroup[];
  modelDeployments(): ModelDeployment[];
  workRequests(): WorkRequest[];
  modelGroupVersionHistories(): ModelGroupVersionHistory[];
  outOfBand: OutOfBand;
  close(): Promise<void>;
}
