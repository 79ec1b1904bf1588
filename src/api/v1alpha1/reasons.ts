/**
 * Every condition reason the operator can write, in one list: what it means, what a user does about
 * it, and how Argo CD should read it. Argo CD's health script (deploy/argocd/health.lua) and the
 * troubleshooting table (docs/troubleshooting.md) are generated from it (`npm run generate`), and
 * test/unit/api/reasons.test.ts scans src/ so that a reason the code emits and this list lacks (or
 * one listed that no code emits) fails the build: a reason nobody documents shows up as "Progressing
 * forever" in Argo CD and as a mystery in `kubectl describe`.
 */

/** Argo CD's health codes (gitops-engine's HealthStatusCode), as a health script returns them. */
export type ArgoHealth = 'Healthy' | 'Progressing' | 'Degraded' | 'Suspended' | 'Missing';

/** The pod readiness gate the vllm backend sets (src/backends/vllm/names.ts ADAPTERS_LOADED). */
export const ADAPTERS_LOADED_GATE = 'serving.stacked.dev/adapters-loaded';

/** Condition types that carry these reasons; the gate is a condition of the vLLM pods, not of a CR. */
export type ConditionType =
  'Ready' | 'Available' | 'AdaptersReady' | 'Degraded' | 'Progressing' | typeof ADAPTERS_LOADED_GATE;

/** Where the reason can come from: the controllers (any backend), or one backend. */
export type ReasonSource = 'StackedModelGroup' | 'StackedDeployment' | 'vllm' | 'oci' | 'router';

export interface ReasonInfo {
  reason: string;
  /** The condition types it appears on (with the status it has there when that is fixed). */
  conditions: readonly ConditionType[];
  /** True when the condition it names holds (Ready True, Available True, ...). */
  positive?: true;
  from: ReasonSource;
  /**
   * Argo CD's health of the object while this is the reason of its Ready condition (or, during
   * deletion, of Progressing). Degraded means a user must act: waiting will not fix it.
   */
  health: ArgoHealth;
  /** What the operator saw. */
  meaning: string;
  /** What to do about it ("nothing" when it passes by itself). */
  action: string;
}

export const REASONS: readonly ReasonInfo[] = [
  // --- Both kinds, from the controllers -------------------------------------------------------
  {
    reason: 'InvalidSpec',
    conditions: ['Ready'],
    from: 'StackedDeployment',
    health: 'Degraded',
    meaning:
      'The stored spec breaks a rule of the schema (an object admitted before a CRD upgrade, or through a path that skipped validation); the operator does nothing with it.',
    action:
      'Fix the fields the message names; `kubectl apply --dry-run=server` shows what the API server says.',
  },
  {
    reason: 'Valid',
    conditions: ['Ready'],
    positive: true,
    from: 'StackedModelGroup',
    health: 'Healthy',
    meaning: 'The group (base model and every member) is valid and its sources resolve.',
    action: 'Nothing.',
  },
  {
    reason: 'SourceNotFound',
    conditions: ['Ready'],
    from: 'StackedModelGroup',
    health: 'Degraded',
    meaning: "The base model's source (a PersistentVolumeClaim, say) does not exist in the namespace.",
    action: 'Create the source the message names, or point spec.baseModel.source at one that exists.',
  },
  {
    reason: 'MemberInvalid',
    conditions: ['Ready'],
    from: 'StackedModelGroup',
    health: 'Degraded',
    meaning: 'One or more members cannot be served as written (status.members[].message says why).',
    action: 'Fix the members the message names.',
  },
  {
    reason: 'ModelGroupNotFound',
    conditions: ['Ready'],
    from: 'StackedDeployment',
    health: 'Degraded',
    meaning: 'spec.modelGroupRef names a StackedModelGroup that does not exist in the namespace.',
    action: 'Create the group, or fix spec.modelGroupRef.name. The deployment picks it up within seconds.',
  },
  {
    reason: 'ModelGroupNotReady',
    conditions: ['Ready'],
    from: 'StackedDeployment',
    health: 'Degraded',
    meaning: 'The referenced StackedModelGroup is not Ready; its own Ready message is repeated here.',
    action:
      "Fix the group first (`kubectl describe stackedmodelgroup`): this reason clears with the group's.",
  },
  {
    reason: 'RankTooHigh',
    conditions: ['Ready'],
    from: 'StackedDeployment',
    health: 'Degraded',
    meaning: "A member's LoRA rank exceeds spec.engine.maxLoraRank: the engine would refuse it.",
    action: 'Raise spec.engine.maxLoraRank (costs GPU memory), or drop or retrain the member.',
  },
  {
    reason: 'ExperimentInvalid',
    conditions: ['Ready'],
    from: 'StackedDeployment',
    health: 'Degraded',
    meaning:
      "An experiment's name collides with an inference key of the group, or a variant names no member of it.",
    action: 'Rename the experiment, or make its variants name members of the group.',
  },
  {
    reason: 'Serving',
    conditions: ['Ready'],
    positive: true,
    from: 'StackedDeployment',
    health: 'Healthy',
    meaning: 'The base model and every adapter are served at status.endpoint.',
    action: 'Nothing.',
  },
  // --- The router -------------------------------------------------------------------------------
  {
    reason: 'RouterNotReady',
    conditions: ['Ready'],
    from: 'router',
    health: 'Progressing',
    meaning: 'The backend serves, but no replica of the router (which status.endpoint names) is ready yet.',
    action:
      'Usually nothing: it clears once a router pod is Ready. If it stays, look at the router Deployment `<name>-router` and its pods.',
  },
  {
    reason: 'RouterScaledToZero',
    conditions: ['Ready', 'Available'],
    positive: true,
    from: 'router',
    health: 'Healthy',
    meaning:
      'The router is enabled with 0 replicas: status.endpoint names its Service, which has no endpoints, so requests are refused, as asked (Ready is True, Available is False).',
    action:
      "Nothing; raise the router's replicas to serve through it again, or disable the router to serve from the backend directly.",
  },
  {
    reason: 'RouterApplyFailed',
    conditions: ['Ready'],
    from: 'router',
    health: 'Degraded',
    meaning: 'The API server refused the router Deployment, Service or ConfigMap the operator applied.',
    action:
      "Read the API server's message; a quota, a LimitRange or an admission policy in the namespace is the usual cause.",
  },
  {
    reason: 'RouterDeleteFailed',
    conditions: ['Ready'],
    from: 'router',
    health: 'Degraded',
    meaning: 'The router was switched off, but the API server refused to delete one of its objects.',
    action:
      "Read the API server's message (RBAC or an admission webhook); delete the object by hand if needed.",
  },
  // --- vllm backend -----------------------------------------------------------------------------
  {
    reason: 'OciAccessMissing',
    conditions: ['Ready'],
    from: 'vllm',
    health: 'Degraded',
    meaning:
      'A model reads from OCI (oci:// or modelCatalog) but spec.vllm.oci gives the fetch agent no region and auth.',
    action: 'Set spec.vllm.oci (region and auth), or move the models to a source the pods can read.',
  },
  {
    reason: 'SourceNotSupported',
    conditions: ['Ready'],
    from: 'vllm',
    health: 'Degraded',
    meaning: 'A model has a source kind the vllm backend cannot read.',
    action:
      "Use one of the sources listed in the API reference for spec.baseModel.source and members' source.",
  },
  {
    reason: 'ApplyFailed',
    conditions: ['Ready'],
    from: 'vllm',
    health: 'Degraded',
    meaning: 'The API server refused the vLLM Deployment or Service the operator applied.',
    action:
      "Read the API server's message: a quota, a LimitRange, a Pod Security level or an admission webhook in the namespace.",
  },
  {
    reason: 'ScaledToZero',
    conditions: ['Ready', 'Available'],
    positive: true,
    from: 'vllm',
    health: 'Healthy',
    meaning: 'spec.vllm.replicas is 0: nothing is served, as asked (Ready is True, Available is False).',
    action: 'Nothing; raise spec.vllm.replicas to serve again.',
  },
  {
    reason: 'MinimumReplicasAvailable',
    conditions: ['Available'],
    positive: true,
    from: 'vllm',
    health: 'Healthy',
    meaning: 'At least one vLLM replica takes requests.',
    action: 'Nothing.',
  },
  {
    reason: 'NoReplicaReady',
    conditions: ['Ready', 'Available'],
    from: 'vllm',
    health: 'Progressing',
    meaning:
      'No vLLM replica serves yet: pods are starting, the base model is being fetched or loaded, or the pods cannot be scheduled.',
    action:
      'Wait for the first start (model download and load take minutes). If it stays, `kubectl get pods -l serving.stacked.dev/deployment=<name>` and their events.',
  },
  {
    reason: 'AllLoaded',
    conditions: ['AdaptersReady'],
    positive: true,
    from: 'StackedDeployment',
    health: 'Healthy',
    meaning: 'Every adapter is loaded on every serving replica (vllm) or served by the deployment (oci).',
    action: 'Nothing.',
  },
  {
    reason: 'Loading',
    conditions: ['Ready', 'AdaptersReady'],
    from: 'StackedDeployment',
    health: 'Progressing',
    meaning: 'Some adapters are not loaded everywhere yet (oci: OCI has not reported them served).',
    action: 'Nothing: it clears as the loads finish. status.adapters shows each one.',
  },
  {
    reason: 'LoadingAdapters',
    conditions: ['Ready', 'Progressing', ADAPTERS_LOADED_GATE],
    from: 'vllm',
    health: 'Progressing',
    meaning:
      "Adapters are being fetched and loaded into vLLM; on a pod's gate, the pod lacks an adapter that other ready replicas serve, so it takes no traffic until it has it.",
    action: 'Nothing: it clears as the loads finish. status.adapters shows each one.',
  },
  {
    reason: 'AdapterFailed',
    conditions: ['Ready', 'AdaptersReady', 'Degraded'],
    from: 'StackedDeployment',
    health: 'Degraded',
    meaning:
      'The engine refused an adapter (a wrong base model, a bad file, a rank it cannot take), or OCI reports the model FAILED.',
    action: 'Read status.adapters[].message; fix or remove the member. The other adapters keep serving.',
  },
  {
    reason: 'AdapterUnavailable',
    conditions: ['Ready', 'Degraded'],
    from: 'vllm',
    health: 'Progressing',
    meaning:
      'No replica could load some adapters because of a passing error (the engine or the fetch agent did not answer); the operator retries with backoff.',
    action:
      'Usually nothing. If it stays, read the message and the fetch agent container logs of a vLLM pod.',
  },
  {
    reason: 'RuntimeLoraUpdatesDisabled',
    conditions: ['Ready', 'Degraded', ADAPTERS_LOADED_GATE],
    from: 'vllm',
    health: 'Degraded',
    meaning:
      'vLLM answers 404 on /v1/load_lora_adapter: VLLM_ALLOW_RUNTIME_LORA_UPDATING is off in the container.',
    action:
      'Do not override VLLM_ALLOW_RUNTIME_LORA_UPDATING in spec.vllm (the operator sets it); use an image whose vLLM supports runtime LoRA loading.',
  },
  {
    reason: 'Unschedulable',
    conditions: ['Ready', 'Degraded'],
    from: 'vllm',
    health: 'Degraded',
    meaning: 'The scheduler cannot place a vLLM pod (no node with enough GPUs, a taint, a nodeSelector).',
    action:
      "Read the message (the scheduler's); add GPU nodes, or change spec.vllm resources, nodeSelector or tolerations.",
  },
  {
    reason: 'BaseModelFetchFailed',
    conditions: ['Ready', 'Degraded'],
    from: 'vllm',
    health: 'Degraded',
    meaning: 'The fetch agent cannot download the base model into a pod (its init step failed).',
    action: "Check the source (URL, bucket, PVC) and its credentials; the message carries the agent's error.",
  },
  {
    reason: 'AsExpected',
    conditions: ['Degraded'],
    from: 'StackedDeployment',
    health: 'Healthy',
    meaning: 'Degraded is False: nothing is failing.',
    action: 'Nothing.',
  },
  {
    reason: 'RollingOut',
    conditions: ['Progressing'],
    from: 'vllm',
    health: 'Progressing',
    meaning: 'The vLLM Deployment is rolling out a new pod template.',
    action: 'Nothing: it clears when the rollout completes.',
  },
  {
    reason: 'Complete',
    conditions: ['Progressing'],
    from: 'StackedDeployment',
    health: 'Healthy',
    meaning: 'Progressing is False: what runs matches the spec.',
    action: 'Nothing.',
  },
  // The readiness gate of each vLLM pod.
  {
    reason: 'AdaptersLoaded',
    conditions: [ADAPTERS_LOADED_GATE],
    positive: true,
    from: 'vllm',
    health: 'Healthy',
    meaning: 'The pod holds every adapter of the group and takes traffic.',
    action: 'Nothing.',
  },
  {
    reason: 'ServingWhatOthersServe',
    conditions: [ADAPTERS_LOADED_GATE],
    positive: true,
    from: 'vllm',
    health: 'Healthy',
    meaning:
      'The pod takes traffic: it holds every adapter another ready replica serves; the rest are served by no replica yet (see AdapterFailed or AdapterUnavailable on the deployment).',
    action: 'Look at the StackedDeployment for the adapters no replica holds.',
  },
  {
    reason: 'Unreachable',
    conditions: [ADAPTERS_LOADED_GATE],
    from: 'vllm',
    health: 'Progressing',
    meaning: 'vLLM did not answer GET /v1/models, so the pod leaves the Service until it does.',
    action: "Usually a restart in progress; if it stays, read the vllm container's logs.",
  },
  {
    reason: 'ContainerNotReady',
    conditions: [ADAPTERS_LOADED_GATE],
    from: 'vllm',
    health: 'Progressing',
    meaning: 'The vllm container is not ready (restarted?): its adapters are reloaded once it is.',
    action: "Nothing; if it repeats, read the container's restart reason (`kubectl describe pod`).",
  },
  // --- oci backend ------------------------------------------------------------------------------
  {
    reason: 'PrincipalAuthNotAllowed',
    conditions: ['Ready', 'Progressing'],
    from: 'StackedDeployment',
    health: 'Degraded',
    meaning:
      "spec.oci.auth or spec.vllm.oci.auth is instancePrincipal, resourcePrincipal or workloadIdentity, which spend the operator's (or the node's) OCI rights, and the operator's --principal-auth-allow does not allow it for this namespace and compartment. Nothing is called in OCI; during deletion the finalizer stays.",
    action:
      'Use auth type apiKey with a Secret of the namespace, or ask the cluster admin to add `<namespace>=<compartment-ocid>` (or `<namespace>=*`) to --principal-auth-allow (Helm value principalAuth.allow).',
  },
  {
    reason: 'ModelIdMissing',
    conditions: ['Ready', 'Degraded'],
    from: 'oci',
    health: 'Degraded',
    meaning: 'OCI addresses every model by its OCID, and a model of the group has no modelId.',
    action: "Set modelId (the model's OCID) on the base model and every member of the group.",
  },
  {
    reason: 'CredentialsInvalid',
    conditions: ['Ready', 'Degraded'],
    from: 'oci',
    health: 'Degraded',
    meaning:
      'The operator cannot build OCI credentials from spec.oci.auth: the Secret is missing, lacks a key, or holds a key it cannot parse.',
    action:
      'Fix the Secret the message names (tenancy, user, fingerprint, region, private key) or spec.oci.auth.',
  },
  {
    reason: 'NotAuthenticated',
    conditions: ['Ready', 'Degraded'],
    from: 'oci',
    health: 'Degraded',
    meaning:
      'OCI answered 401: it does not accept the credentials (wrong fingerprint, revoked or rotated key, clock skew).',
    action:
      'Upload the public key to the OCI user, or put the current key in the Secret; check the node clock.',
  },
  {
    reason: 'NotAuthorizedOrNotFound',
    conditions: ['Ready', 'Degraded'],
    from: 'oci',
    health: 'Degraded',
    meaning:
      'OCI answered 404 NotAuthorizedOrNotFound: the resource does not exist, or a policy does not let these credentials see it.',
    action: 'Check the OCIDs in the spec and the IAM policies of the compartment for the user or principal.',
  },
  {
    reason: 'OciRejected',
    conditions: ['Ready', 'Degraded'],
    from: 'oci',
    health: 'Degraded',
    meaning:
      'OCI refused a request for another reason (400 invalid parameter, a limit or capacity error, 409).',
    action:
      'Read the OCI code and message; fix the spec (shape, instance count) or ask for a limit increase.',
  },
  {
    reason: 'Conflict',
    conditions: ['Ready', 'Progressing'],
    from: 'oci',
    health: 'Progressing',
    meaning: 'OCI answered 412: the resource changed between our read and our update (etag).',
    action: 'Nothing: the operator reads it again and retries.',
  },
  {
    reason: 'DeletedInOCI',
    conditions: ['Ready', 'Degraded'],
    from: 'oci',
    health: 'Degraded',
    meaning:
      'The model deployment was deleted in OCI outside the operator, and driftPolicy Observe leaves it so.',
    action: 'Set spec.oci.driftPolicy to Reconcile to have it recreated, or delete the StackedDeployment.',
  },
  {
    reason: 'DriftDetected',
    conditions: ['Ready', 'Degraded'],
    from: 'oci',
    health: 'Degraded',
    meaning:
      'The model deployment was changed in OCI outside the operator (the message names what), and driftPolicy Observe leaves it so.',
    action:
      'Undo the change in OCI, or set spec.oci.driftPolicy to Reconcile to have the spec applied again.',
  },
  {
    reason: 'DeploymentInactive',
    conditions: ['Ready', 'Available', 'Degraded'],
    from: 'oci',
    health: 'Suspended',
    meaning:
      'The model deployment is INACTIVE: deactivated outside the operator, and driftPolicy Observe leaves it so (under Reconcile the operator activates it).',
    action: 'Activate it in OCI, or set spec.oci.driftPolicy to Reconcile.',
  },
  {
    reason: 'ImmutableFieldChanged',
    conditions: ['Ready', 'Degraded'],
    from: 'oci',
    health: 'Degraded',
    meaning:
      'spec.oci names another compartment or project than the model deployment lives in; OCI cannot move it by update.',
    action: 'Put the old compartment and project back, or delete and recreate the StackedDeployment.',
  },
  {
    reason: 'WorkRequestFailed',
    conditions: ['Ready', 'Degraded'],
    from: 'oci',
    health: 'Degraded',
    meaning: "An OCI work request (create, update, activate) ended FAILED; the message carries OCI's errors.",
    action:
      "Fix what OCI's errors name (image, shape, capacity, model files); the operator tries again at the next poll.",
  },
  {
    reason: 'WorkRequestInProgress',
    conditions: ['Ready', 'Progressing'],
    from: 'oci',
    health: 'Progressing',
    meaning: 'An OCI work request the operator started is still running (the message shows its percentage).',
    action: 'Nothing: OCI takes minutes to create or update a model deployment.',
  },
  {
    reason: 'ModelGroupFailed',
    conditions: ['Ready', 'Degraded'],
    from: 'oci',
    health: 'Degraded',
    meaning:
      'The OCI model group ended FAILED (a model OCI cannot load); it is deleted and retried at the next poll.',
    action:
      "Read OCI's lifecycle details in the message; check the models' OCIDs, their files and their base model.",
  },
  {
    reason: 'CreatingVersionHistory',
    conditions: ['Ready', 'Progressing'],
    from: 'oci',
    health: 'Progressing',
    meaning: "The operator created the OCI model group version history that tracks this deployment's groups.",
    action: 'Nothing.',
  },
  {
    reason: 'CreatingModelGroup',
    conditions: ['Ready', 'Progressing'],
    from: 'oci',
    health: 'Progressing',
    meaning: 'An OCI model group for the current members is CREATING.',
    action: 'Nothing.',
  },
  {
    reason: 'DeploymentCreating',
    conditions: ['Ready', 'Available', 'Progressing'],
    from: 'oci',
    health: 'Progressing',
    meaning: 'The OCI model deployment is CREATING (OCI takes several minutes).',
    action: 'Nothing.',
  },
  {
    reason: 'DeploymentUpdating',
    conditions: ['Ready', 'Progressing'],
    from: 'oci',
    health: 'Progressing',
    meaning: 'The OCI model deployment is UPDATING; a LIVE update keeps serving meanwhile.',
    action: 'Nothing.',
  },
  {
    reason: 'DeploymentDeleting',
    conditions: ['Ready', 'Available', 'Progressing'],
    from: 'oci',
    health: 'Progressing',
    meaning:
      'The OCI model deployment is being deleted outside the operator; under Reconcile it is recreated once gone.',
    action: 'Nothing, unless the deletion was a mistake on the OCI side.',
  },
  {
    reason: 'DeploymentActive',
    conditions: ['Available'],
    positive: true,
    from: 'oci',
    health: 'Healthy',
    meaning: 'The OCI model deployment answers predict calls (ACTIVE, UPDATING or NEEDS_ATTENTION).',
    action: 'Nothing.',
  },
  {
    reason: 'NoDeployment',
    conditions: ['Available'],
    from: 'oci',
    health: 'Progressing',
    meaning: 'No OCI model deployment serves this object yet.',
    action: 'Nothing while it is being created; otherwise read Ready.',
  },
  {
    reason: 'DeploymentFailed',
    conditions: ['Ready', 'Available', 'Degraded'],
    from: 'oci',
    health: 'Degraded',
    meaning: "The OCI model deployment is FAILED; the message carries OCI's lifecycle details.",
    action:
      'Fix what the details name (image, shape, capacity); then delete the OCI deployment or the StackedDeployment to start again.',
  },
  {
    reason: 'DeploymentNeedsAttention',
    conditions: ['Ready', 'Degraded'],
    from: 'oci',
    health: 'Degraded',
    meaning: "OCI reports NEEDS_ATTENTION (it still serves); the message carries OCI's lifecycle details.",
    action: 'Read the details in the OCI console; usually an instance that OCI could not replace or scale.',
  },
  {
    reason: 'Activating',
    conditions: ['Ready', 'Progressing'],
    from: 'oci',
    health: 'Progressing',
    meaning: 'The model deployment was found INACTIVE; the operator activates it (driftPolicy Reconcile).',
    action: 'Nothing.',
  },
  {
    reason: 'LiveUpdating',
    conditions: ['Ready', 'Progressing'],
    from: 'oci',
    health: 'Progressing',
    meaning:
      'The members changed: a LIVE update moves the deployment to the new model group without downtime.',
    action: 'Nothing.',
  },
  {
    reason: 'Updating',
    conditions: ['Ready', 'Progressing'],
    from: 'oci',
    health: 'Progressing',
    meaning: 'The base model, infrastructure or container changed: a zero-downtime (ZDT) update is running.',
    action: 'Nothing.',
  },
  {
    reason: 'Terminating',
    conditions: ['Progressing'],
    from: 'oci',
    health: 'Progressing',
    meaning: 'The object is being deleted; the operator deletes the OCI deployment and groups first.',
    action: 'Nothing: the finalizer goes once OCI reports them gone.',
  },
  {
    reason: 'CleanupBlocked',
    conditions: ['Progressing'],
    from: 'oci',
    health: 'Degraded',
    meaning:
      'The object is being deleted but the OCI credentials no longer work: its OCI resources would be left running unseen, so the finalizer stays.',
    action:
      'Restore the credentials (the Secret) so the operator can delete them; or delete them in OCI and remove the finalizer by hand.',
  },
];

/** The entry of a reason, if listed. */
export function reasonInfo(reason: string): ReasonInfo | undefined {
  return REASONS.find((r) => r.reason === reason);
}
