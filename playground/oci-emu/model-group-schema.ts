// Request bodies of the model group operations (reference §2), for schema.ts.

import {
  type Check,
  type Fields,
  TAG_FIELDS,
  arrayOf,
  object,
  ocid,
  opt,
  req,
  str,
  union,
} from './schema.ts';
import type { DefinedTags, FreeformTags, MemberModel, ModelGroupDetails } from './types.ts';

export const MAX_MEMBERS = 500;
/** Emulator's choice: the service documents no format; this one is safe as a vLLM served name. */
export const INFERENCE_KEY = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

const MEMBER = object({
  modelId: req(ocid('datasciencemodel')),
  inferenceKey: opt(str({ max: 64, pattern: INFERENCE_KEY })),
});

const CUSTOM_METADATA = object({
  key: opt(str({ max: 255 })),
  value: opt(str({ min: 0, max: 255 })),
  description: opt(str({ min: 0, max: 255 })),
  category: opt(str({ max: 255 })),
});

export const GROUP_DETAILS: Check = union('type', {
  STACKED: { baseModelId: req(ocid('datasciencemodel')), customMetadataList: opt(arrayOf(CUSTOM_METADATA)) },
  HOMOGENEOUS: { customMetadataList: opt(arrayOf(CUSTOM_METADATA)) },
  HETEROGENEOUS: { customMetadataList: opt(arrayOf(CUSTOM_METADATA)) },
});

const NAME_FIELDS: Fields = {
  displayName: opt(str({ max: 255 })),
  description: opt(str({ min: 0, max: 400 })),
};

const HISTORY_FIELDS: Fields = {
  modelGroupVersionHistoryId: opt(ocid('datasciencemodelgroupversionhistory')),
  versionLabel: opt(str({ max: 255 })),
};

const PATCH_ITEM = union('operation', {
  INSERT: { values: req(arrayOf(MEMBER, { min: 1 })) },
  REMOVE: { values: req(arrayOf(MEMBER, { min: 1 })) },
});

const CLONE_FIELDS = (sourceType: string): Fields => ({
  sourceId: req(ocid(sourceType)),
  modifyModelGroupDetails: opt(
    object({ ...NAME_FIELDS, ...TAG_FIELDS, ...HISTORY_FIELDS, modelGroupDetails: opt(GROUP_DETAILS) }),
  ),
  patchModelGroupMemberModelDetails: opt(object({ items: opt(arrayOf(PATCH_ITEM)) })),
});

const PLACEMENT: Fields = {
  compartmentId: req(ocid('compartment', 'tenancy')),
  projectId: req(ocid('datascienceproject')),
};

export const CREATE_OR_CLONE: Check = union('createType', {
  CREATE: {
    ...PLACEMENT,
    modelGroupDetails: req(GROUP_DETAILS),
    memberModelEntries: req(
      object({ memberModelDetails: req(arrayOf(MEMBER, { min: 1, max: MAX_MEMBERS })) }),
    ),
    ...NAME_FIELDS,
    ...HISTORY_FIELDS,
    ...TAG_FIELDS,
  },
  CLONE: {
    ...PLACEMENT,
    modelGroupCloneSourceDetails: req(
      union('modelGroupCloneSourceType', {
        MODEL_GROUP: CLONE_FIELDS('datasciencemodelgroup'),
        MODEL_GROUP_VERSION_HISTORY: CLONE_FIELDS('datasciencemodelgroupversionhistory'),
      }),
    ),
  },
});

export const UPDATE_FIELDS: Fields = { ...NAME_FIELDS, ...HISTORY_FIELDS, ...TAG_FIELDS };
export const UPDATE: Check = object(UPDATE_FIELDS);

export const HISTORY_CREATE: Check = object({
  ...PLACEMENT,
  ...NAME_FIELDS,
  latestModelGroupId: opt(ocid('datasciencemodelgroup')),
  ...TAG_FIELDS,
});

export const HISTORY_UPDATE: Check = object({
  ...NAME_FIELDS,
  latestModelGroupId: opt(ocid('datasciencemodelgroup')),
  ...TAG_FIELDS,
});

export interface CreateBody {
  createType: 'CREATE';
  compartmentId: string;
  projectId: string;
  modelGroupDetails: ModelGroupDetails;
  memberModelEntries: { memberModelDetails: MemberModel[] };
  displayName?: string;
  description?: string;
  modelGroupVersionHistoryId?: string;
  versionLabel?: string;
  freeformTags?: FreeformTags;
  definedTags?: DefinedTags;
}

export interface ModifyBody {
  displayName?: string;
  description?: string;
  freeformTags?: FreeformTags;
  definedTags?: DefinedTags;
  modelGroupVersionHistoryId?: string;
  versionLabel?: string;
  modelGroupDetails?: ModelGroupDetails;
}

export interface CloneBody {
  createType: 'CLONE';
  compartmentId: string;
  projectId: string;
  modelGroupCloneSourceDetails: {
    modelGroupCloneSourceType: 'MODEL_GROUP' | 'MODEL_GROUP_VERSION_HISTORY';
    sourceId: string;
    modifyModelGroupDetails?: ModifyBody;
    patchModelGroupMemberModelDetails?: {
      items?: { operation: 'INSERT' | 'REMOVE'; values: MemberModel[] }[];
    };
  };
}

export type UpdateBody = Omit<ModifyBody, 'modelGroupDetails'>;
