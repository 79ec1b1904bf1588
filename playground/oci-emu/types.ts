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

/**
 * Service limits (tenancy-wide, answered 400 LimitExceeded) and compartment quotas (400
 * QuotaExceeded) on the number of resources that are not DELETED.
 */
export interface OciEmulatorLimits {
  modelGroups?: number;
  modelDeployments?: number;
  compartmentQuotas?: { modelGroups?: number; modelDeployments?: number };
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
  /**
   * Multiplies every delay (default 1): `delays: OCI_TYPICAL_DELAYS_MS, timeScale: 1 / 500` turns
   * OCI's minutes into seconds while keeping their proportions.
   */
  timeScale?: number;
  /**
   * Default 0. Reads lag writes by this long: a GET or LIST answers the state as it was readLagMs
   * ago (a GET right after an update still reads ACTIVE with the old etag; a LIST misses what was
   * created since). Work requests are read consistently.
   */
  readLagMs?: number;
  /** Default: never. DELETED resources answer 404, and leave lists, this long after deletion. */
  deletedRetentionMs?: number;
  /** Default: none. Creates beyond them are refused 400 LimitExceeded or QuotaExceeded. */
  limits?: OciEmulatorLimits;
  /** Instances each shape can host in the region (default: unlimited); see OciEmulator.setCapacity. */
  capacity?: Record<string, number>;
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
  /** UpdateModelDeployment only: the body's updateType (LIVE or ZDT), when it names one. */
  updateType?: string | undefined;
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
  /**
   * The deployment goes FAILED or NEEDS_ATTENTION on its own (an instance lost, a container that
   * crashed), with lifecycleDetails; after `recoverAfterMs`, if given and nothing else changed it,
   * OCI brings it back ACTIVE. A FAILED deployment does not answer predict.
   */
  failDeployment(
    id: string,
    opts: { state: 'FAILED' | 'NEEDS_ATTENTION'; details: string; recoverAfterMs?: number },
  ): void;
  /**
   * The next `count` (default 1) work requests of `operationType` (e.g. MODEL_DEPLOYMENT_UPDATE) end
   * FAILED with this error (code default InternalServerError) in ListWorkRequestErrors; a create's
   * resource ends FAILED, an update, delete or (de)activation is rolled back.
   */
  failNextWork(operationType: string, error: { message: string; code?: string; count?: number }): void;
  /**
   * Someone else's change that lands between the caller's read and its next `operation` call (it runs
   * just before that call): e.g. a console edit that makes an update's if-match etag stale (412).
   */
  beforeNext(operation: string, change: () => void): void;
}

export interface OciEmulator {
  /** http://127.0.0.1:PORT, what a client sets as client.endpoint (the SDK appends /20190101). */
  url: string;
  addKey(keyId: string, publicKeyPem: string): void;
  addModel(modelId: string): void;
  faults: FaultController;
  counts(): OciEmulatorCounts;
  requests(): RequestRecord[];
  /**
   * Calls `listener` with each request once it is answered (a copy, status set); returns the
   * unsubscribe. A crash test uses it to kill the caller right after a given call.
   */
  onRequest(listener: (r: RequestRecord) => void): () => void;
  /** Every group ever made, DELETED included (deep copies). */
  modelGroups(): ModelGroup[];
  modelDeployments(): ModelDeployment[];
  workRequests(): WorkRequest[];
  modelGroupVersionHistories(): ModelGroupVersionHistory[];
  outOfBand: OutOfBand;
  /** Replaces the limits and quotas (an empty object lifts them all). */
  setLimits(limits: OciEmulatorLimits): void;
  /** Instances `shape` can host in the region; undefined: unlimited. Checked as work completes. */
  setCapacity(shape: string, instances: number | undefined): void;
  close(): Promise<void>;
}
