// Model deployments of model groups (reference §3): create, get, list, and update with the LIVE and
// ZDT rules. An update goes UPDATING -> ACTIVE (or back to INACTIVE); the new configuration becomes
// visible, and starts answering predict, only when it completes.

import { isDeepStrictEqual } from 'node:util';
import {
  type CreateDeploymentBody,
  CREATE_DEPLOYMENT,
  UPDATE_DEPLOYMENT,
  type UpdateDeploymentBody,
  checkConfiguration,
  targetInstances,
} from './deployment-schema.ts';
import { incorrectState, invalid } from './errors.ts';
import { type Call, type Reply, bodyOf } from './http.ts';
import { newEtag } from './ids.ts';
import { type ListSpec, listReply } from './lists.ts';
import { defaultName } from './model-groups.ts';
import { validated } from './schema.ts';
import { type DeploymentRecord, type Store, checkIfMatch, copy, touch } from './store.ts';
import type {
  EnvironmentConfiguration,
  InfrastructureConfiguration,
  ModelDeployment,
  ModelDeploymentState,
  ModelGroup,
  ModelGroupDeploymentConfiguration,
  WorkRequestResource,
} from './types.ts';
import { startWork } from './work-requests.ts';

export const DEPLOYMENT_STATES: readonly ModelDeploymentState[] = [
  'CREATING',
  'ACTIVE',
  'UPDATING',
  'FAILED',
  'NEEDS_ATTENTION',
  'INACTIVE',
  'DELETING',
  'DELETED',
];

export function groupOf(d: ModelDeployment): string {
  return d.modelDeploymentConfigurationDetails.modelGroupConfigurationDetails.modelGroupId;
}

export function relatedGroup(groupId: string): WorkRequestResource {
  return {
    actionType: 'RELATED',
    entityType: 'modelGroup',
    identifier: groupId,
    entityUri: `/20190101/modelGroups/${groupId}`,
  };
}

/** The group a deployment may use: it exists (else 404) and is ACTIVE (else 400). */
function usableGroup(store: Store, id: string): ModelGroup {
  const g = store.group(id).data;
  if (g.lifecycleState !== 'ACTIVE') throw invalid(`Model group ${id} is ${g.lifecycleState}, not ACTIVE`);
  return g;
}

export function createModelDeployment(store: Store, call: Call): Reply {
  const b = validated<CreateDeploymentBody>(bodyOf(call), CREATE_DEPLOYMENT);
  const config = copy(b.modelDeploymentConfigurationDetails);
  checkConfiguration(config);
  const groupId = config.modelGroupConfigurationDetails.modelGroupId;
  usableGroup(store, groupId);
  store.checkLimits('modelDeployments', b.compartmentId);
  const id = store.ocid('datasciencemodeldeployment');
  const d: ModelDeployment = {
    id,
    timeCreated: store.nowIso(),
    displayName: b.displayName ?? defaultName('modeldeployment', store.now()),
    projectId: b.projectId,
    createdBy: call.principal,
    compartmentId: b.compartmentId,
    modelDeploymentConfigurationDetails: config,
    modelDeploymentUrl: `${store.url}/md/${id}`,
    modelDeploymentSystemData: { systemInfraType: 'INSTANCE_POOL', currentInstanceCount: 0 },
    lifecycleState: 'CREATING',
    freeformTags: copy(b.freeformTags ?? {}),
    definedTags: copy(b.definedTags ?? {}),
  };
  if (b.description !== undefined) d.description = b.description;
  if (b.categoryLogDetails !== undefined) d.categoryLogDetails = copy(b.categoryLogDetails);
  const rec: DeploymentRecord = {
    data: d,
    etag: newEtag(),
    seq: store.nextSeq(),
    servingGroupId: undefined,
    pending: undefined,
    memberStates: new Map(),
  };
  store.deployments.set(id, rec);
  store.created.modelDeployments++;
  const work = startWork(store, {
    operationType: 'MODEL_DEPLOYMENT_CREATE',
    compartmentId: d.compartmentId,
    entityType: 'modelDeployment',
    identifier: id,
    collection: 'modelDeployments',
    actionType: 'CREATED',
    related: [relatedGroup(groupId)],
    delayMs: store.delays.deploymentCreateMs,
    finish: () => {
      const now = rec.data;
      if (now.lifecycleState !== 'CREATING') return `model deployment ${id} went ${now.lifecycleState}`;
      now.lifecycleState = 'ACTIVE';
      now.modelDeploymentSystemData.currentInstanceCount = targetInstances(
        now.modelDeploymentConfigurationDetails.infrastructureConfigurationDetails,
      );
      rec.servingGroupId = groupOf(now);
      touch(rec, store.nowIso());
      return undefined;
    },
    cancel: () => {
      rec.data.lifecycleState = 'FAILED';
      rec.data.lifecycleDetails = 'Creation was canceled';
      touch(rec, store.nowIso());
    },
    fail: (message) => {
      rec.data.lifecycleState = 'FAILED';
      rec.data.lifecycleDetails = message;
      touch(rec, store.nowIso());
    },
    refuse: () => capacityShortage(store, rec.data.modelDeploymentConfigurationDetails),
  });
  return {
    status: 200,
    body: copy(d),
    headers: {
      etag: rec.etag,
      location: `${store.url}/20190101/modelDeployments/${id}`,
      'opc-work-request-id': work.data.id,
    },
  };
}

/**
 * Out of host capacity for the shape: the instances `config` needs do not fit beside those every
 * deployment runs now (an updated deployment's own among them: a ZDT update keeps them until the new
 * ones serve). Undefined when they fit or the shape has no capacity set.
 */
export function capacityShortage(
  store: Store,
  config: ModelGroupDeploymentConfiguration,
): { code: string; message: string } | undefined {
  const infra = config.infrastructureConfigurationDetails;
  const shape = infra.instanceConfiguration.instanceShapeName;
  const capacity = store.capacity.get(shape);
  if (capacity === undefined) return undefined;
  let used = 0;
  for (const d of store.deployments.values()) {
    const c = d.data.modelDeploymentConfigurationDetails.infrastructureConfigurationDetails;
    if (c.instanceConfiguration.instanceShapeName === shape)
      used += d.data.modelDeploymentSystemData.currentInstanceCount;
  }
  const need = targetInstances(infra);
  if (used + need <= capacity) return undefined;
  return {
    code: 'InternalError',
    message: `Out of host capacity. ${String(need)} instances of shape ${shape} were needed, ${String(Math.max(0, capacity - used))} are available`,
  };
}

export function getModelDeployment(store: Store, call: Call): Reply {
  const seen = store.read(store.deployment(call.params.id ?? ''));
  return { status: 200, body: copy(seen.data), headers: { etag: seen.etag } };
}

type ConfigUpdate = NonNullable<UpdateDeploymentBody['modelDeploymentConfigurationDetails']>;

function mergeInfra(
  cur: InfrastructureConfiguration,
  u: ConfigUpdate['infrastructureConfigurationDetails'],
): InfrastructureConfiguration {
  return u === undefined ? cur : { ...cur, ...copy(u) };
}

function mergeEnv(
  cur: EnvironmentConfiguration | undefined,
  u: EnvironmentConfiguration | undefined,
): EnvironmentConfiguration | undefined {
  if (u === undefined) return cur;
  if (cur?.environmentConfigurationType !== u.environmentConfigurationType) return copy(u);
  return { ...cur, ...copy(u) };
}

/** The configuration after `u`, with the LIVE rules (ADS's, made service-side here). */
function nextConfiguration(
  store: Store,
  cur: ModelGroupDeploymentConfiguration,
  u: ConfigUpdate,
): ModelGroupDeploymentConfiguration {
  const curGroupId = cur.modelGroupConfigurationDetails.modelGroupId;
  const newGroupId = u.modelGroupConfigurationDetails?.modelGroupId ?? curGroupId;
  const infra = mergeInfra(cur.infrastructureConfigurationDetails, u.infrastructureConfigurationDetails);
  const env = mergeEnv(cur.environmentConfigurationDetails, u.environmentConfigurationDetails);
  if (u.updateType === 'LIVE') {
    if (newGroupId === curGroupId) {
      throw invalid("A 'LIVE' update can only be used if the model group id has been changed");
    }
    const changed = [
      isDeepStrictEqual(infra, cur.infrastructureConfigurationDetails)
        ? ''
        : 'infrastructureConfigurationDetails',
      isDeepStrictEqual(env, cur.environmentConfigurationDetails) ? '' : 'environmentConfigurationDetails',
    ].filter((s) => s !== '');
    if (changed.length > 0) {
      throw invalid(
        `A 'LIVE' update swaps only the model group; it cannot change ${changed.join(' or ')} (use ZDT)`,
      );
    }
    const from = store.group(curGroupId).data.modelGroupDetails;
    const to = usableGroup(store, newGroupId).modelGroupDetails;
    if (from.type !== 'STACKED' || to.type !== 'STACKED') {
      throw invalid(
        `A 'LIVE' update needs STACKED model groups on both sides, got ${from.type} -> ${to.type}`,
      );
    }
    if (from.baseModelId !== to.baseModelId) {
      throw invalid(
        `A 'LIVE' update cannot change the base model (${from.baseModelId ?? ''} -> ${to.baseModelId ?? ''})`,
      );
    }
  } else if (newGroupId !== curGroupId) {
    usableGroup(store, newGroupId);
  }
  const next: ModelGroupDeploymentConfiguration = {
    deploymentType: 'MODEL_GROUP',
    modelGroupConfigurationDetails: { modelGroupId: newGroupId },
    infrastructureConfigurationDetails: infra,
  };
  if (env !== undefined) next.environmentConfigurationDetails = env;
  checkConfiguration(next);
  return next;
}

export function updateModelDeployment(store: Store, call: Call): Reply {
  const raw = bodyOf(call);
  const rec = store.deployment(call.params.id ?? '');
  const d = rec.data;
  checkIfMatch(call.ifMatch, rec, `model deployment ${d.id}`);
  for (const k of ['compartmentId', 'projectId']) {
    if (k in raw) {
      throw invalid(
        `UpdateModelDeploymentDetails has no ${k}: the compartment changes only through ChangeModelDeploymentCompartment, the project never`,
      );
    }
  }
  const b = validated<UpdateDeploymentBody>(raw, UPDATE_DEPLOYMENT);
  const from = d.lifecycleState;
  if (from !== 'ACTIVE' && from !== 'NEEDS_ATTENTION' && from !== 'INACTIVE') {
    throw incorrectState(
      `Model deployment ${d.id} is ${from}; it can be updated only when ACTIVE, NEEDS_ATTENTION or INACTIVE`,
    );
  }
  const next = copy(d);
  if (b.displayName !== undefined) next.displayName = b.displayName;
  if (b.description !== undefined) next.description = b.description;
  if (b.freeformTags !== undefined) next.freeformTags = copy(b.freeformTags);
  if (b.definedTags !== undefined) next.definedTags = copy(b.definedTags);
  if (b.categoryLogDetails !== undefined) next.categoryLogDetails = copy(b.categoryLogDetails);
  const u = b.modelDeploymentConfigurationDetails;
  if (u !== undefined) {
    next.modelDeploymentConfigurationDetails = nextConfiguration(
      store,
      d.modelDeploymentConfigurationDetails,
      u,
    );
  }
  const resting: ModelDeploymentState = from === 'INACTIVE' ? 'INACTIVE' : 'ACTIVE';
  d.lifecycleState = 'UPDATING';
  rec.pending = next;
  touch(rec, store.nowIso());
  const newGroupId = groupOf(next);
  const work = startWork(store, {
    operationType: 'MODEL_DEPLOYMENT_UPDATE',
    compartmentId: d.compartmentId,
    entityType: 'modelDeployment',
    identifier: d.id,
    collection: 'modelDeployments',
    actionType: 'UPDATED',
    related: [relatedGroup(newGroupId)],
    delayMs: store.delays.deploymentUpdateMs,
    finish: () => {
      if (rec.pending !== next || rec.data.lifecycleState !== 'UPDATING') {
        return `model deployment ${d.id} went ${rec.data.lifecycleState} during the update`;
      }
      next.lifecycleState = resting;
      delete next.lifecycleDetails;
      next.modelDeploymentSystemData.currentInstanceCount =
        resting === 'ACTIVE'
          ? targetInstances(next.modelDeploymentConfigurationDetails.infrastructureConfigurationDetails)
          : 0;
      rec.data = next;
      rec.pending = undefined;
      if (resting === 'ACTIVE') rec.servingGroupId = newGroupId;
      rec.memberStates.clear();
      touch(rec, store.nowIso());
      return undefined;
    },
    cancel: () => {
      rec.pending = undefined;
      rec.data.lifecycleState = from;
      touch(rec, store.nowIso());
    },
    // The old configuration keeps serving (zero downtime); lifecycleDetails says what failed.
    fail: (message) => {
      rec.pending = undefined;
      rec.data.lifecycleState = from;
      rec.data.lifecycleDetails = message;
      touch(rec, store.nowIso());
    },
    // A LIVE update swaps the group on the running instances; ZDT brings up new ones first.
    refuse: () =>
      u?.updateType === 'LIVE' || resting !== 'ACTIVE'
        ? undefined
        : capacityShortage(store, next.modelDeploymentConfigurationDetails),
  });
  return { status: 202, headers: { 'opc-work-request-id': work.data.id } };
}

const DEPLOYMENT_LIST: ListSpec<ModelDeployment> = {
  filters: {
    compartmentId: (d, v) => d.compartmentId === v,
    id: (d, v) => d.id === v,
    projectId: (d, v) => d.projectId === v,
    displayName: (d, v) => d.displayName === v,
    lifecycleState: (d, v) => d.lifecycleState === v,
    createdBy: (d, v) => d.createdBy === v,
  },
  enums: { lifecycleState: DEPLOYMENT_STATES },
  sortBy: { timeCreated: (d) => d.timeCreated, displayName: (d) => d.displayName },
  defaultSortBy: 'timeCreated',
};

export function listModelDeployments(store: Store, call: Call): Reply {
  const items = [...store.deployments.values()].flatMap((r) => {
    const item = store.listed(r);
    return item === undefined ? [] : [{ item, seq: r.seq }];
  });
  return listReply(call, items, DEPLOYMENT_LIST, (d) => {
    const { lifecycleDetails: _details, ...summary } = d;
    return copy(summary);
  });
}
