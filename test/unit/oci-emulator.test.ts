// The OCI Data Science emulator driven by the real oci-sdk client (DataScienceClient with API-key
// signing), so that what it accepts and refuses is what the operator's client will send.

import assert from 'node:assert/strict';
import * as common from 'oci-common';
import * as ds from 'oci-datascience';
import {
  OCI_TYPICAL_DELAYS_MS,
  type OciEmulator,
  type OciEmulatorOptions,
  REALISTIC,
  startOciEmulator,
} from '../../playground/oci-emulator.ts';
import { apiKeyProvider, makeApiKey, type ApiKey } from '../../playground/oci-keys.ts';

const USER = 'ocid1.user.oc1..aaaaaaaatester';
const COMPARTMENT = 'ocid1.compartment.oc1..aaaaaaaacompartment';
const PROJECT = 'ocid1.datascienceproject.oc1.iad.aaaaaaaaproject';
const BASE = 'ocid1.datasciencemodel.oc1.iad.aaaaaaaabase';
const OTHER_BASE = 'ocid1.datasciencemodel.oc1.iad.aaaaaaaaotherbase';
const LORA1 = 'ocid1.datasciencemodel.oc1.iad.aaaaaaaalora1';
const LORA2 = 'ocid1.datasciencemodel.oc1.iad.aaaaaaaalora2';
const LORA3 = 'ocid1.datasciencemodel.oc1.iad.aaaaaaaalora3';
const MODELS = [BASE, OTHER_BASE, LORA1, LORA2, LORA3];
const LOG = { logGroupId: 'ocid1.loggroup.oc1.iad.aaaaaaaaloggroup', logId: 'ocid1.log.oc1.iad.aaaaaaaalog' };
const IMAGE = 'iad.ocir.io/ociodscdev/dsmc/inferencing/odsc-vllm-serving:0.6.4.post1.1';
const UpdateType = ds.models.UpdateModelGroupDeploymentConfigurationDetails.UpdateType;

/** Keys of users of the test tenancy; the emulator's callers are tester unless a test says. */
const makeKey = (name = 'tester'): ApiKey => makeApiKey(name);
const provider = (key: ApiKey) => apiKeyProvider(key, common.Region.US_ASHBURN_1);

// Fast retries for the tests that let the SDK retry: its default waits 1, 2, 4 ... seconds.
const QUICK_RETRY: common.RetryConfiguration = {
  terminationStrategy: new common.MaxAttemptsTerminationStrategy(8),
  delayStrategy: { delay: () => 0.01 },
};

function makeClient(emu: OciEmulator, key: ApiKey, retry?: common.RetryConfiguration): ds.DataScienceClient {
  const client = new ds.DataScienceClient(
    { authenticationDetailsProvider: provider(key) },
    {
      // No retries unless asked, so that every injected fault reaches the test.
      retryConfiguration: retry ?? common.NoRetryConfigurationDetails,
      // Each client gets its own breaker by default; injected 5xx must not open it for later tests.
      circuitBreaker: new common.CircuitBreaker({ disableClientCircuitBreaker: true }),
    },
  );
  client.endpoint = emu.url; // after the region the provider set, which would replace it
  client.createWaiters({
    terminationStrategy: new common.MaxTimeTerminationStrategy(10),
    delayStrategy: { delay: () => 0.02 },
  });
  return client;
}

interface Answer {
  status: number;
  headers: Headers;
  /** The parsed JSON body, undefined when empty. */
  json: unknown;
}

interface ErrorBody {
  code: string;
  message: string;
}

interface Completion {
  object: string;
  model: string;
  choices: { index: number; text: string; finish_reason: string }[];
  usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
}

const errorOf = (a: Answer): ErrorBody => a.json as ErrorBody;
const completionOf = (a: Answer): Completion => a.json as Completion;

/** A request signed by the SDK's own signer, for what the SDK has no method for (predict, bad queries). */
async function signedFetch(
  key: ApiKey,
  url: string,
  method: 'GET' | 'POST' | 'PUT' | 'DELETE',
  opts: { body?: unknown; sendBody?: string; headers?: Record<string, string> } = {},
): Promise<Answer> {
  const headers = new Headers({ 'content-type': 'application/json', ...opts.headers });
  const text = opts.body === undefined ? undefined : JSON.stringify(opts.body);
  await new common.DefaultRequestSigner(provider(key)).signHttpRequest({
    method,
    uri: url,
    headers,
    body: text,
  });
  const res = await fetch(url, { method, headers, body: opts.sendBody ?? text });
  const raw = await res.text();
  return {
    status: res.status,
    headers: res.headers,
    json: raw === '' ? undefined : (JSON.parse(raw) as unknown),
  };
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  return assert.fail('expected the call to fail');
}

async function ociError(p: Promise<unknown>): Promise<common.OciError> {
  const e = await rejection(p);
  assert.ok(e instanceof common.OciError, `expected an OciError, got ${JSON.stringify(e)}`);
  return e;
}

async function until<T>(probe: () => Promise<T | undefined> | T | undefined, what: string): Promise<T> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function member(modelId: string, inferenceKey: string): ds.models.MemberModelDetails {
  return { modelId, inferenceKey };
}

/** The seed's "create payload with updated weights", base first with key `basemodel`. */
function stackedGroup(
  members: ds.models.MemberModelDetails[] = [
    member(BASE, 'basemodel'),
    member(LORA1, 'sql-lora-1'),
    member(LORA2, 'sql-lora-2'),
  ],
  base = BASE,
): ds.models.CreateModelGroupDetails {
  const details: ds.models.StackedModelGroupDetails = { type: 'STACKED', baseModelId: base };
  return {
    createType: 'CREATE',
    compartmentId: COMPARTMENT,
    projectId: PROJECT,
    displayName: 'Model Group - Stacked ',
    description: 'Test stacked model group',
    modelGroupDetails: details,
    memberModelEntries: { memberModelDetails: members },
  };
}

function cloneOf(
  sourceId: string,
  items: { operation: 'INSERT' | 'REMOVE'; values: ds.models.MemberModelDetails[] }[],
): ds.models.CloneModelGroupDetails {
  const source: ds.models.CloneCreateFromModelGroupDetails = {
    modelGroupCloneSourceType: 'MODEL_GROUP',
    sourceId,
    patchModelGroupMemberModelDetails: { items },
  };
  return {
    createType: 'CLONE',
    compartmentId: COMPARTMENT,
    projectId: PROJECT,
    modelGroupCloneSourceDetails: source,
  };
}

/**
 * The seed's stacked deployment payload (VLLM_ALLOW_RUNTIME_LORA_UPDATING is passed in by the tests
 * that need it: at 32 characters it is the longest key the emulator takes, see deployment-schema.ts).
 */
function seedDeployment(
  modelGroupId: string,
  env: Record<string, string> = {},
  environmentChange: Partial<ds.models.OcirModelDeploymentEnvironmentConfigurationDetails> = {},
): ds.models.CreateModelDeploymentDetails {
  const scaling: ds.models.FixedSizeScalingPolicy = { policyType: 'FIXED_SIZE', instanceCount: 1 };
  const environment: ds.models.OcirModelDeploymentEnvironmentConfigurationDetails = {
    environmentConfigurationType: 'OCIR_CONTAINER',
    serverPort: 8080,
    image: IMAGE,
    environmentVariables: {
      MODEL_DEPLOY_PREDICT_ENDPOINT: '/v1/completions',
      PARAMS: `--served-model-name ${BASE} --max-lora-rank 64 --max-model-len 4096 --enable_lora`,
      PORT: '8080',
      TENSOR_PARALLELISM: '1',
      ...env,
    },
    ...environmentChange,
  };
  const config: ds.models.ModelGroupDeploymentConfigurationDetails = {
    deploymentType: 'MODEL_GROUP',
    modelGroupConfigurationDetails: { modelGroupId },
    infrastructureConfigurationDetails: {
      infrastructureType: 'INSTANCE_POOL',
      instanceConfiguration: { instanceShapeName: 'VM.GPU.A10.1' },
      scalingPolicy: scaling,
    },
    environmentConfigurationDetails: environment,
  };
  return {
    displayName: 'MMS Model Group Deployment - Stacked',
    description: 'mms',
    compartmentId: COMPARTMENT,
    projectId: PROJECT,
    modelDeploymentConfigurationDetails: config,
    categoryLogDetails: { access: LOG, predict: LOG },
  };
}

function liveUpdate(
  modelGroupId: string,
  extra: Partial<ds.models.UpdateModelGroupDeploymentConfigurationDetails> = {},
): ds.models.UpdateModelDeploymentDetails {
  const config: ds.models.UpdateModelGroupDeploymentConfigurationDetails = {
    deploymentType: 'MODEL_GROUP',
    updateType: UpdateType.Live,
    modelGroupConfigurationDetails: { modelGroupId },
    ...extra,
  };
  return {
    displayName: 'MMS Model Group Deployment - Stacked',
    description: 'mms',
    modelDeploymentConfigurationDetails: config,
  };
}

async function emulator(
  opts: OciEmulatorOptions = {},
): Promise<{ emu: OciEmulator; key: ApiKey; client: ds.DataScienceClient }> {
  const key = makeKey();
  const emu = await startOciEmulator({
    keys: { [key.keyId]: key.publicKeyPem },
    models: MODELS,
    delays: {
      groupCreateMs: 30,
      groupDeleteMs: 30,
      deploymentCreateMs: 30,
      deploymentUpdateMs: 120,
      deploymentDeleteMs: 30,
    },
    ...opts,
  });
  return { emu, key, client: makeClient(emu, key) };
}

async function activeGroup(
  client: ds.DataScienceClient,
  details: ds.models.CreateModelGroupDetails | ds.models.CloneModelGroupDetails,
): Promise<string> {
  const created = await client.createModelGroup({ createBaseModelGroupDetails: details });
  await client
    .getWaiters()
    .forModelGroup({ modelGroupId: created.modelGroup.id }, ds.models.ModelGroupLifecycleState.Active);
  return created.modelGroup.id;
}

async function activeDeployment(
  client: ds.DataScienceClient,
  groupId: string,
): Promise<ds.models.ModelDeployment> {
  const created = await client.createModelDeployment({
    createModelDeploymentDetails: seedDeployment(groupId),
  });
  const done = await client
    .getWaiters()
    .forModelDeployment(
      { modelDeploymentId: created.modelDeployment.id },
      ds.models.ModelDeploymentLifecycleState.Active,
    );
  return done!.modelDeployment;
}

const members = (g: { memberModelEntries: ds.models.MemberModelEntries }): string[] =>
  (g.memberModelEntries.memberModelDetails ?? []).map((m) => `${m.inferenceKey ?? ''}=${m.modelId}`);

// The SDK console.warn()s every failed call; here failures are the point, so keep the output readable.
const sdkWarn = console.warn;
before(() => {
  console.warn = (...args: unknown[]) => {
    const first = typeof args[0] === 'string' ? args[0] : '';
    if (/^(Request cannot be retried|Request failed with Exception|All retry attempts)/.test(first)) return;
    sdkWarn(...args);
  };
});
after(() => {
  console.warn = sdkWarn;
});

describe('OCI Data Science emulator: model groups', () => {
  let emu: OciEmulator;
  let key: ApiKey;
  let client: ds.DataScienceClient;
  let groupId = '';

  before(async () => {
    ({ emu, key, client } = await emulator());
  });
  after(async () => {
    client.close();
    await emu.close();
  });

  it('creates a STACKED group from the seed payload: CREATING, then ACTIVE with a finished work request', async () => {
    const created = await client.createModelGroup({ createBaseModelGroupDetails: stackedGroup() });
    const g = created.modelGroup;
    groupId = g.id;
    assert.equal(g.lifecycleState, 'CREATING');
    assert.match(g.id, /^ocid1\.datasciencemodelgroup\.oc1\.iad\.[a-z0-9]{60}$/);
    assert.equal(g.createType, 'CREATE');
    assert.equal(g.createdBy, USER);
    assert.ok(created.etag, 'etag header');
    assert.deepEqual(members(g), [`basemodel=${BASE}`, `sql-lora-1=${LORA1}`, `sql-lora-2=${LORA2}`]);

    const active = await client
      .getWaiters()
      .forModelGroup({ modelGroupId: g.id }, ds.models.ModelGroupLifecycleState.Active);
    assert.equal(active!.modelGroup.lifecycleState, 'ACTIVE');
    assert.notEqual(active!.etag, created.etag, 'the transition changed the etag');

    const wr = await client.getWaiters().forWorkRequest({ workRequestId: created.opcWorkRequestId });
    assert.equal(wr.workRequest.operationType, 'MODEL_GROUP_CREATE');
    assert.equal(wr.workRequest.status, 'SUCCEEDED');
    assert.equal(wr.workRequest.percentComplete, 100);
    assert.ok(wr.workRequest.timeStarted && wr.workRequest.timeFinished);
    assert.deepEqual(
      wr.workRequest.resources.map((r) => [r.actionType, r.entityType, r.identifier]),
      [['CREATED', 'modelGroup', g.id]],
    );
  });

  it('CLONE with INSERT sql-lora-3 and REMOVE sql-lora-1 makes a new group; the source stays ACTIVE', async () => {
    const cloned = await client.createModelGroup({
      createBaseModelGroupDetails: cloneOf(groupId, [
        { operation: 'INSERT', values: [member(LORA3, 'sql-lora-3')] },
        { operation: 'REMOVE', values: [member(LORA1, 'sql-lora-1')] },
      ]),
    });
    const c = cloned.modelGroup;
    assert.notEqual(c.id, groupId);
    assert.equal(c.createType, 'CLONE');
    assert.equal(c.sourceModelGroupId, groupId);
    // The SDK's deserialiser adds absent optional fields as undefined (customMetadataList).
    assert.deepEqual(JSON.parse(JSON.stringify(c.modelGroupDetails)), { type: 'STACKED', baseModelId: BASE });
    assert.deepEqual(members(c), [`basemodel=${BASE}`, `sql-lora-2=${LORA2}`, `sql-lora-3=${LORA3}`]);
    const source = await client.getModelGroup({ modelGroupId: groupId });
    assert.equal(source.modelGroup.lifecycleState, 'ACTIVE');
    assert.equal(members(source.modelGroup).length, 3);
  });

  it('refuses clone patches that insert a member twice, remove an absent one, or remove the base', async () => {
    const cases: [
      string,
      { operation: 'INSERT' | 'REMOVE'; values: ds.models.MemberModelDetails[] }[],
      RegExp,
    ][] = [
      [
        'insert existing model',
        [{ operation: 'INSERT', values: [member(LORA1, 'other')] }],
        /already a member/,
      ],
      [
        'insert existing key',
        [{ operation: 'INSERT', values: [member(LORA3, 'sql-lora-1')] }],
        /already used/,
      ],
      ['remove absent', [{ operation: 'REMOVE', values: [member(LORA3, 'sql-lora-3')] }], /not a member/],
      [
        'remove base',
        [{ operation: 'REMOVE', values: [member(BASE, 'basemodel')] }],
        /base model .* cannot be removed/,
      ],
    ];
    for (const [what, items, message] of cases) {
      const e = await ociError(
        client.createModelGroup({ createBaseModelGroupDetails: cloneOf(groupId, items) }),
      );
      assert.equal(e.statusCode, 400, what);
      assert.equal(e.serviceCode, 'InvalidParameter', what);
      assert.match(e.message, message, what);
    }
    assert.equal(emu.counts().modelGroupsCreated, 2, 'no group was made by a refused clone');
  });

  it('refuses CREATE bodies that break the stacked rules, naming the problem', async () => {
    const unknown = 'ocid1.datasciencemodel.oc1.iad.aaaaaaaanotincatalog';
    const cases: [string, ds.models.CreateModelGroupDetails, string, RegExp][] = [
      [
        'unknown model',
        stackedGroup([member(BASE, 'basemodel'), member(unknown, 'x')]),
        'InvalidParameter',
        /aaaaaaaanotincatalog/,
      ],
      [
        'base not a member',
        stackedGroup([member(LORA1, 'a')]),
        'InvalidParameter',
        /base model .* must be one of its members/,
      ],
      [
        'member without key',
        stackedGroup([member(BASE, 'basemodel'), { modelId: LORA1 }]),
        'InvalidParameter',
        /needs an inferenceKey/,
      ],
      [
        'duplicate key',
        stackedGroup([member(BASE, 'k'), member(LORA1, 'k')]),
        'InvalidParameter',
        /'k' is used by more than one/,
      ],
      [
        'duplicate model',
        stackedGroup([member(BASE, 'a'), member(BASE, 'b')]),
        'InvalidParameter',
        /more than once/,
      ],
      [
        'no baseModelId',
        { ...stackedGroup(), modelGroupDetails: { type: 'STACKED' } },
        'MissingParameter',
        /modelGroupDetails\.baseModelId/,
      ],
      ['bad compartment', { ...stackedGroup(), compartmentId: PROJECT }, 'InvalidParameter', /compartmentId/],
    ];
    for (const [what, body, code, message] of cases) {
      const e = await ociError(client.createModelGroup({ createBaseModelGroupDetails: body }));
      assert.equal(e.statusCode, 400, what);
      assert.equal(e.serviceCode, code, what);
      assert.match(e.message, message, what);
    }
    const noType = {
      ...stackedGroup(),
      createType: undefined,
    } as unknown as ds.models.CreateModelGroupDetails;
    const e = await ociError(client.createModelGroup({ createBaseModelGroupDetails: noType }));
    assert.equal(e.serviceCode, 'MissingParameter');
  });

  it("refuses the seed's create URL with ?compartmentId= (creates carry no query)", async () => {
    const r = await signedFetch(key, `${emu.url}/20190101/modelGroups?compartmentId=${COMPARTMENT}`, 'POST', {
      body: stackedGroup(),
    });
    assert.equal(r.status, 400);
    assert.equal(errorOf(r).code, 'InvalidParameter');
    assert.match(errorOf(r).message, /no query parameters/);
  });

  it('UpdateModelGroup refuses memberModelEntries (groups are immutable) and takes a new displayName', async () => {
    const before = await client.getModelGroup({ modelGroupId: groupId });
    const bad = {
      memberModelEntries: { memberModelDetails: [member(BASE, 'basemodel')] },
    } as unknown as ds.models.UpdateModelGroupDetails;
    const e = await ociError(
      client.updateModelGroup({ modelGroupId: groupId, updateModelGroupDetails: bad }),
    );
    assert.equal(e.statusCode, 400);
    assert.equal(e.serviceCode, 'InvalidParameter');
    assert.match(e.message, /immutable: memberModelEntries/);

    const stale = await ociError(
      client.updateModelGroup({
        modelGroupId: groupId,
        updateModelGroupDetails: { displayName: 'x' },
        ifMatch: 'stale',
      }),
    );
    assert.equal(stale.statusCode, 412);
    assert.equal(stale.serviceCode, 'NoEtagMatch');

    const ok = await client.updateModelGroup({
      modelGroupId: groupId,
      updateModelGroupDetails: { displayName: 'renamed', freeformTags: { team: 'ml' } },
      ifMatch: before.etag,
    });
    assert.equal(ok.modelGroup.displayName, 'renamed');
    assert.deepEqual(ok.modelGroup.freeformTags, { team: 'ml' });
    assert.notEqual(ok.etag, before.etag);
    assert.equal(members(ok.modelGroup).length, 3, 'members unchanged');
  });

  it('version histories number their groups; a clone from a history becomes its latest version', async () => {
    const h = await client.createModelGroupVersionHistory({
      createModelGroupVersionHistoryDetails: {
        compartmentId: COMPARTMENT,
        projectId: PROJECT,
        displayName: 'sql',
      },
    });
    const historyId = h.modelGroupVersionHistory.id;
    const v1 = await activeGroup(client, {
      ...stackedGroup(),
      modelGroupVersionHistoryId: historyId,
      versionLabel: 'v1',
    });
    const first = (await client.getModelGroup({ modelGroupId: v1 })).modelGroup;
    assert.equal(first.versionId, 1);
    assert.equal(first.modelGroupVersionHistoryName, 'sql');
    const insert: ds.models.PatchInsertNewMemberModels = {
      operation: 'INSERT',
      values: [member(LORA3, 'sql-lora-3')],
    };
    const source: ds.models.CloneCreateFromModelGroupVersionHistoryDetails = {
      modelGroupCloneSourceType: 'MODEL_GROUP_VERSION_HISTORY',
      sourceId: historyId,
      patchModelGroupMemberModelDetails: { items: [insert] },
    };
    const v2 = await client.createModelGroup({
      createBaseModelGroupDetails: {
        createType: 'CLONE',
        compartmentId: COMPARTMENT,
        projectId: PROJECT,
        modelGroupCloneSourceDetails: source,
      },
    });
    assert.equal(v2.modelGroup.sourceModelGroupId, v1);
    assert.equal(v2.modelGroup.versionId, 2);
    const after = await client.getModelGroupVersionHistory({ modelGroupVersionHistoryId: historyId });
    assert.equal(after.modelGroupVersionHistory.latestModelGroupId, v2.modelGroup.id);
    assert.notEqual(after.etag, h.etag);
    const e = await ociError(
      client.deleteModelGroupVersionHistory({ modelGroupVersionHistoryId: historyId }),
    );
    assert.equal(e.statusCode, 409, 'a history that still holds groups');
  });

  it('work requests list by resource and type; a finished one cannot be canceled', async () => {
    const all = await client.listWorkRequests({
      compartmentId: COMPARTMENT,
      resourceId: groupId,
      limit: 100,
    });
    assert.equal(all.items.length, 1);
    const wr = all.items[0]!;
    assert.equal(wr.operationType, 'MODEL_GROUP_CREATE');
    const creates = await client.listWorkRequests({
      compartmentId: COMPARTMENT,
      operationType: ds.requests.ListWorkRequestsRequest.OperationType.ModelGroupCreate,
      limit: 100,
    });
    assert.equal(
      creates.items.length,
      emu.workRequests().filter((w) => w.operationType === 'MODEL_GROUP_CREATE').length,
    );
    const logs = await client.listWorkRequestLogs({ workRequestId: wr.id });
    assert.ok(logs.items.length >= 3);
    assert.deepEqual((await client.listWorkRequestErrors({ workRequestId: wr.id })).items, []);
    const e = await ociError(client.cancelWorkRequest({ workRequestId: wr.id }));
    assert.equal(e.statusCode, 409);
  });

  it('lists are bare arrays of summaries with opc-next-page paging, and need compartmentId', async () => {
    for (let i = 0; i < 3; i++) await activeGroup(client, stackedGroup());
    const seen: string[] = [];
    let page: string | undefined;
    let pages = 0;
    do {
      const r = await client.listModelGroups({
        compartmentId: COMPARTMENT,
        limit: 2,
        page,
        sortOrder: ds.requests.ListModelGroupsRequest.SortOrder.Asc,
      });
      assert.ok(Array.isArray(r.items));
      assert.ok(r.items.length <= 2);
      for (const s of r.items) {
        seen.push(s.id);
        assert.ok(!('memberModelEntries' in s), 'a summary has no members');
        assert.ok(s.freeformTags, 'summaries carry tags');
      }
      // opcNextPage is typed string, yet undefined on the last page.
      page = r.opcNextPage || undefined;
      pages++;
    } while (page !== undefined);
    const all = emu.modelGroups().map((g) => g.id);
    assert.deepEqual(seen, all, 'every group once, oldest first');
    assert.equal(pages, Math.ceil(all.length / 2));

    const raw = await signedFetch(
      key,
      `${emu.url}/20190101/modelGroups?compartmentId=${COMPARTMENT}&limit=1`,
      'GET',
    );
    assert.ok(Array.isArray(raw.json), 'the wire answer is a bare JSON array');
    assert.ok(raw.headers.get('opc-next-page'));

    const missing = await signedFetch(key, `${emu.url}/20190101/modelGroups`, 'GET');
    assert.equal(missing.status, 400);
    assert.equal(errorOf(missing).code, 'MissingParameter');
    const tooMany = await ociError(client.listModelGroups({ compartmentId: COMPARTMENT, limit: 101 }));
    assert.equal(tooMany.statusCode, 400);

    const models = await client.listModelGroupModels({ modelGroupId: groupId, compartmentId: COMPARTMENT });
    assert.deepEqual(
      models.items.map((m) => `${m.inferenceKey ?? ''}=${m.modelId}`),
      [`basemodel=${BASE}`, `sql-lora-1=${LORA1}`, `sql-lora-2=${LORA2}`],
    );
  });
});

describe('OCI Data Science emulator: model deployments', () => {
  let emu: OciEmulator;
  let key: ApiKey;
  let client: ds.DataScienceClient;
  let groupId = '';
  let cloneId = '';
  let otherBaseId = '';
  let md: ds.models.ModelDeployment;

  const predict = (model: string, id = md.id): ReturnType<typeof signedFetch> =>
    signedFetch(key, `${emu.url}/md/${id}/predict`, 'POST', {
      body: { model, prompt: '[user] Write a SQL query [/user] [assistant]', max_tokens: 5, temperature: 0 },
    });

  before(async () => {
    ({ emu, key, client } = await emulator());
    groupId = await activeGroup(client, stackedGroup());
    cloneId = await activeGroup(
      client,
      cloneOf(groupId, [
        { operation: 'INSERT', values: [member(LORA3, 'sql-lora-3')] },
        { operation: 'REMOVE', values: [member(LORA1, 'sql-lora-1')] },
      ]),
    );
    otherBaseId = await activeGroup(
      client,
      stackedGroup([member(OTHER_BASE, 'basemodel'), member(LORA1, 'a')], OTHER_BASE),
    );
  });
  after(async () => {
    client.close();
    await emu.close();
  });

  it("takes the seed's 32-character VLLM_ALLOW_RUNTIME_LORA_UPDATING but no longer key, and enforces the env limits", async () => {
    // Its own emulator: the deployment this makes must not count in the shared one's totals.
    const own = await emulator();
    try {
      const ownGroup = await activeGroup(own.client, stackedGroup());
      const seed = await own.client.createModelDeployment({
        createModelDeploymentDetails: seedDeployment(ownGroup, { VLLM_ALLOW_RUNTIME_LORA_UPDATING: 'true' }),
      });
      assert.equal(seed.modelDeployment.lifecycleState, 'CREATING');
    } finally {
      own.client.close();
      await own.emu.close();
    }
    const e = await ociError(
      client.createModelDeployment({
        createModelDeploymentDetails: seedDeployment(groupId, { VLLM_ALLOW_RUNTIME_LORA_UPDATING_X: 'true' }),
      }),
    );
    assert.equal(e.statusCode, 400);
    assert.equal(e.serviceCode, 'InvalidParameter');
    assert.match(e.message, /VLLM_ALLOW_RUNTIME_LORA_UPDATING_X/);
    const other32 = await ociError(
      client.createModelDeployment({
        createModelDeploymentDetails: seedDeployment(groupId, { ABCDEFGHIJKLMNOPQRSTUVWXYZ_ABCDE: 'x' }),
      }),
    );
    assert.equal(other32.statusCode, 400, 'only the seed key may have 32 characters');
    const big = await ociError(
      client.createModelDeployment({
        createModelDeploymentDetails: seedDeployment(groupId, { BIG: 'x'.repeat(2000) }),
      }),
    );
    assert.match(big.message, /under 2048/);
    const port = seedDeployment(groupId, {}, { serverPort: 8446 });
    assert.match(
      (await ociError(client.createModelDeployment({ createModelDeploymentDetails: port }))).message,
      /reserved/,
    );
    assert.equal(emu.counts().modelDeploymentsCreated, 0);
  });

  it('creates a deployment from the seed payload: CREATING, then ACTIVE at its URL', async () => {
    const created = await client.createModelDeployment({
      createModelDeploymentDetails: seedDeployment(groupId),
    });
    const d = created.modelDeployment;
    assert.equal(d.lifecycleState, 'CREATING');
    assert.equal(d.modelDeploymentUrl, `${emu.url}/md/${d.id}`);
    assert.match(d.id, /^ocid1\.datasciencemodeldeployment\.oc1\.iad\./);
    assert.ok(created.etag);
    assert.equal(created.location, `${emu.url}/20190101/modelDeployments/${d.id}`);
    assert.ok(created.opcWorkRequestId);
    md = await activeDeployment(client, groupId);
    assert.notEqual(md.id, d.id, 'a second deployment of the same group');
    const first = await client
      .getWaiters()
      .forModelDeployment({ modelDeploymentId: d.id }, ds.models.ModelDeploymentLifecycleState.Active);
    assert.deepEqual(first!.modelDeployment.modelDeploymentSystemData, {
      systemInfraType: 'INSTANCE_POOL',
      currentInstanceCount: 1,
    });
    assert.equal(emu.counts().modelDeploymentsCreated, 2);
  });

  it('predict answers by inference key, by member OCID and by base OCID; an unknown model is 404', async () => {
    for (const model of ['sql-lora-1', LORA2, BASE, 'basemodel']) {
      const r = await predict(model);
      assert.equal(r.status, 200, model);
      assert.equal(completionOf(r).object, 'text_completion');
      assert.equal(completionOf(r).model, model);
      assert.equal(completionOf(r).choices[0]!.finish_reason, 'length');
      assert.equal(completionOf(r).usage.completion_tokens, 5);
      assert.ok(r.headers.get('opc-request-id'));
    }
    assert.match(completionOf(await predict('sql-lora-1')).choices[0]!.text, /^\[sql-lora-1\]/);
    const unknown = await predict('sql-lora-3');
    assert.equal(unknown.status, 404);
    assert.equal(errorOf(unknown).code, 'NotAuthorizedOrNotFound');
    assert.match(errorOf(unknown).message, /sql-lora-3/);
    const states = await client.listModelDeploymentModelStates({
      modelDeploymentId: md.id,
      compartmentId: COMPARTMENT,
    });
    assert.deepEqual(
      states.items.map((s) => `${s.inferenceKey}:${s.state}`),
      ['basemodel:SUCCESS', 'sql-lora-1:SUCCESS', 'sql-lora-2:SUCCESS'],
    );
  });

  it("refuses the seed's LIVE-update body, which carries compartmentId and projectId", async () => {
    const seedBody = { ...liveUpdate(cloneId), compartmentId: COMPARTMENT, projectId: PROJECT };
    const e = await ociError(
      client.updateModelDeployment({
        modelDeploymentId: md.id,
        updateModelDeploymentDetails: seedBody,
      }),
    );
    assert.equal(e.statusCode, 400);
    assert.match(e.message, /no compartmentId/);
  });

  it('refuses LIVE updates that change the environment, the base model, or not the group', async () => {
    const env: ds.models.UpdateOcirModelDeploymentEnvironmentConfigurationDetails = {
      environmentConfigurationType: 'OCIR_CONTAINER',
      environmentVariables: { PARAMS: '--max-model-len 2048' },
    };
    const cases: [string, ds.models.UpdateModelDeploymentDetails, RegExp][] = [
      [
        'env change',
        liveUpdate(cloneId, { environmentConfigurationDetails: env }),
        /cannot change environmentConfigurationDetails/,
      ],
      ['other base', liveUpdate(otherBaseId), /cannot change the base model/],
      ['same group', liveUpdate(groupId), /model group id has been changed/],
    ];
    for (const [what, body, message] of cases) {
      const e = await ociError(
        client.updateModelDeployment({ modelDeploymentId: md.id, updateModelDeploymentDetails: body }),
      );
      assert.equal(e.statusCode, 400, what);
      assert.equal(e.serviceCode, 'InvalidParameter', what);
      assert.match(e.message, message, what);
    }
    const stale = await ociError(
      client.updateModelDeployment({
        modelDeploymentId: md.id,
        updateModelDeploymentDetails: liveUpdate(cloneId),
        ifMatch: 'stale',
      }),
    );
    assert.equal(stale.statusCode, 412);
    assert.equal(stale.serviceCode, 'NoEtagMatch');
    const unchanged = await client.getModelDeployment({ modelDeploymentId: md.id });
    assert.equal(unchanged.modelDeployment.lifecycleState, 'ACTIVE');
  });

  it('a LIVE update to the clone goes UPDATING then ACTIVE; the old group serves until it completes', async () => {
    const before = await client.getModelDeployment({ modelDeploymentId: md.id });
    const res = await client.updateModelDeployment({
      modelDeploymentId: md.id,
      updateModelDeploymentDetails: liveUpdate(cloneId),
      ifMatch: before.etag,
    });
    assert.ok(res.opcWorkRequestId);
    const during = await client.getModelDeployment({ modelDeploymentId: md.id });
    assert.equal(during.modelDeployment.lifecycleState, 'UPDATING');
    assert.equal(
      (
        during.modelDeployment
          .modelDeploymentConfigurationDetails as ds.models.ModelGroupDeploymentConfigurationDetails
      ).modelGroupConfigurationDetails.modelGroupId,
      groupId,
      'the new configuration is visible only when the update completes',
    );
    assert.equal((await predict('sql-lora-3')).status, 404, 'not served yet');
    assert.equal((await predict('sql-lora-1')).status, 200, 'the old group still serves');
    const states = await client.listModelDeploymentModelStates({
      modelDeploymentId: md.id,
      compartmentId: COMPARTMENT,
    });
    assert.deepEqual(
      states.items.map((s) => `${s.inferenceKey}:${s.state}`),
      ['basemodel:SUCCESS', 'sql-lora-1:SUCCESS', 'sql-lora-2:SUCCESS', 'sql-lora-3:INCONSISTENT'],
    );
    const again = await ociError(
      client.updateModelDeployment({
        modelDeploymentId: md.id,
        updateModelDeploymentDetails: liveUpdate(groupId),
      }),
    );
    assert.equal(again.statusCode, 409);
    assert.equal(again.serviceCode, 'IncorrectState');

    const wr = await client.getWaiters().forWorkRequest({ workRequestId: res.opcWorkRequestId });
    assert.equal(wr.workRequest.operationType, 'MODEL_DEPLOYMENT_UPDATE');
    assert.equal(wr.workRequest.status, 'SUCCEEDED');
    assert.ok(wr.workRequest.timeFinished, 'timeFinished is set');
    const after = await client.getModelDeployment({ modelDeploymentId: md.id });
    const config = after.modelDeployment
      .modelDeploymentConfigurationDetails as ds.models.ModelGroupDeploymentConfigurationDetails;
    assert.equal(after.modelDeployment.lifecycleState, 'ACTIVE');
    assert.equal(config.modelGroupConfigurationDetails.modelGroupId, cloneId);
    assert.equal(after.modelDeployment.modelDeploymentUrl, md.modelDeploymentUrl, 'URL unchanged');
    assert.equal((await predict('sql-lora-3')).status, 200, 'the new member answers');
    assert.equal((await predict('sql-lora-1')).status, 404, 'the removed member is gone');
  });

  it('refuses to delete a group a deployment uses (409 naming it)', async () => {
    const e = await ociError(client.deleteModelGroup({ modelGroupId: cloneId }));
    assert.equal(e.statusCode, 409);
    assert.equal(e.serviceCode, 'IncorrectState');
    assert.ok(e.message.includes(md.id), e.message);
    const stale = await ociError(
      client.deleteModelDeployment({ modelDeploymentId: md.id, ifMatch: 'stale' }),
    );
    assert.equal(stale.statusCode, 412);
  });

  it('out-of-band changes: NEEDS_ATTENTION and a FAILED member show up, predict of that member fails', async () => {
    emu.outOfBand.setDeploymentState(md.id, 'NEEDS_ATTENTION', 'one instance is unhealthy');
    emu.outOfBand.setMemberState(md.id, LORA3, 'FAILED');
    const got = await client.getModelDeployment({ modelDeploymentId: md.id });
    assert.equal(got.modelDeployment.lifecycleState, 'NEEDS_ATTENTION');
    assert.equal(got.modelDeployment.lifecycleDetails, 'one instance is unhealthy');
    const states = await client.listModelDeploymentModelStates({
      modelDeploymentId: md.id,
      compartmentId: COMPARTMENT,
    });
    assert.equal(states.items.find((s) => s.modelId === LORA3)?.state, 'FAILED');
    assert.equal((await predict('sql-lora-3')).status, 409, 'NEEDS_ATTENTION does not serve');
    emu.outOfBand.setDeploymentState(md.id, 'ACTIVE');
    assert.equal((await predict('sql-lora-3')).status, 500);
    assert.equal((await predict('sql-lora-2')).status, 200);
  });

  it('deleting a deployment goes DELETING then DELETED; then its group can be deleted', async () => {
    const others = emu.modelDeployments().filter((d) => d.id !== md.id);
    for (const d of [md, ...others]) {
      const del = await client.deleteModelDeployment({ modelDeploymentId: d.id });
      assert.ok(del.opcWorkRequestId);
    }
    const deleting = await client.getModelDeployment({ modelDeploymentId: md.id });
    assert.equal(deleting.modelDeployment.lifecycleState, 'DELETING');
    assert.equal((await predict('basemodel')).status, 409);
    await until(
      () => (emu.modelDeployments().every((d) => d.lifecycleState === 'DELETED') ? true : undefined),
      'deployments DELETED',
    );
    const gone = await client.getModelDeployment({ modelDeploymentId: md.id });
    assert.equal(gone.modelDeployment.lifecycleState, 'DELETED', 'a DELETED resource stays readable');
    const del = await client.deleteModelGroup({ modelGroupId: cloneId });
    const wr = await client.getWaiters().forWorkRequest({ workRequestId: del.opcWorkRequestId });
    assert.equal(wr.workRequest.status, 'SUCCEEDED');
    assert.equal(
      (await client.getModelGroup({ modelGroupId: cloneId })).modelGroup.lifecycleState,
      'DELETED',
    );
    const listed = await client.listModelDeployments({
      compartmentId: COMPARTMENT,
      lifecycleState: ds.models.ModelDeploymentLifecycleState.Deleted,
    });
    assert.equal(listed.items.length, 2);
  });
});

describe('OCI Data Science emulator: retry tokens and faults', () => {
  let emu: OciEmulator;
  let key: ApiKey;
  let client: ds.DataScienceClient;

  beforeEach(async () => {
    ({ emu, key, client } = await emulator());
  });
  afterEach(async () => {
    client.close();
    await emu.close();
  });

  it('the same retry token and body replay the first answer; another body is 409 InvalidatedRetryToken', async () => {
    const first = await client.createModelGroup({
      createBaseModelGroupDetails: stackedGroup(),
      opcRetryToken: 'token-1',
    });
    const again = await client.createModelGroup({
      createBaseModelGroupDetails: stackedGroup(),
      opcRetryToken: 'token-1',
    });
    assert.equal(again.modelGroup.id, first.modelGroup.id);
    assert.equal(again.etag, first.etag);
    assert.equal(again.opcWorkRequestId, first.opcWorkRequestId);
    assert.equal(emu.counts().modelGroupsCreated, 1);
    const other = stackedGroup([member(BASE, 'basemodel')]);
    const e = await ociError(
      client.createModelGroup({ createBaseModelGroupDetails: other, opcRetryToken: 'token-1' }),
    );
    assert.equal(e.statusCode, 409);
    assert.equal(e.serviceCode, 'InvalidatedRetryToken');
    assert.equal(emu.modelGroups().length, 1);
  });

  it('a lost response (afterCommit) fails the call; retrying with its token returns the group it made', async () => {
    emu.faults.once('CreateModelGroup', 500, { afterCommit: true });
    const e = await ociError(
      client.createModelGroup({ createBaseModelGroupDetails: stackedGroup(), opcRetryToken: 'lost-1' }),
    );
    assert.equal(e.statusCode, 500);
    assert.equal(e.serviceCode, 'InternalServerError');
    assert.equal(emu.counts().modelGroupsCreated, 1, 'the group was made anyway');
    const retried = await client.createModelGroup({
      createBaseModelGroupDetails: stackedGroup(),
      opcRetryToken: 'lost-1',
    });
    assert.equal(retried.modelGroup.id, emu.modelGroups()[0]!.id);
    assert.equal(emu.counts().modelGroupsCreated, 1);

    emu.faults.once('CreateModelDeployment', 0, { afterCommit: true });
    await client
      .getWaiters()
      .forModelGroup({ modelGroupId: retried.modelGroup.id }, ds.models.ModelGroupLifecycleState.Active);
    const dropped = await rejection(
      client.createModelDeployment({
        createModelDeploymentDetails: seedDeployment(retried.modelGroup.id),
        opcRetryToken: 'lost-2',
      }),
    );
    assert.ok(!(dropped instanceof common.OciError), 'no answer at all: a network error');
    const md = await client.createModelDeployment({
      createModelDeploymentDetails: seedDeployment(retried.modelGroup.id),
      opcRetryToken: 'lost-2',
    });
    assert.equal(md.modelDeployment.id, emu.modelDeployments()[0]!.id);
    assert.equal(emu.counts().modelDeploymentsCreated, 1);
  });

  it("the SDK's own retry keeps its generated token, so a lost create is not duplicated", async () => {
    const retrying = makeClient(emu, key, QUICK_RETRY);
    emu.faults.once('CreateModelGroup', 503, { afterCommit: true });
    const r = await retrying.createModelGroup({ createBaseModelGroupDetails: stackedGroup() });
    retrying.close();
    const calls = emu.requests().filter((x) => x.operation === 'CreateModelGroup');
    assert.deepEqual(
      calls.map((c) => c.status),
      [503, 200],
    );
    assert.ok(calls[0]!.retryToken);
    assert.equal(calls[1]!.retryToken, calls[0]!.retryToken);
    assert.equal(calls[1]!.requestId, calls[0]!.requestId, 'opc-request-id is kept across retries');
    assert.equal(r.modelGroup.id, emu.modelGroups()[0]!.id);
    assert.equal(emu.counts().modelGroupsCreated, 1);
  });

  it('a 30% fault rate shows 429s and 5xx with the right codes, and no side effects', async () => {
    const groupId = await activeGroup(client, stackedGroup());
    const statuses = [429, 500, 502, 503, 504];
    const codes: Record<number, string> = {
      429: 'TooManyRequests',
      500: 'InternalServerError',
      502: 'InternalServerError',
      503: 'ServiceUnavailable',
      504: 'InternalServerError',
    };
    emu.faults.set({ rate: 0.3, statuses, seed: 7 });
    const seen = new Set<number>();
    let failures = 0;
    for (let i = 0; i < 60; i++) {
      try {
        await client.getModelGroup({ modelGroupId: groupId });
      } catch (e) {
        assert.ok(e instanceof common.OciError);
        assert.ok(statuses.includes(e.statusCode), String(e.statusCode));
        assert.equal(e.serviceCode, codes[e.statusCode]);
        assert.ok(e.opcRequestId);
        seen.add(e.statusCode);
        failures++;
      }
    }
    assert.ok(failures > 5 && failures < 35, `${failures} failures out of 60`);
    assert.ok(seen.has(429) && seen.size >= 3, [...seen].join(','));

    const retrying = makeClient(emu, key, QUICK_RETRY);
    for (let i = 0; i < 5; i++)
      await retrying.createModelGroup({ createBaseModelGroupDetails: stackedGroup() });
    retrying.close();
    assert.equal(emu.counts().modelGroupsCreated, 6, 'failed attempts created nothing');
    emu.faults.clear();

    emu.faults.once('DeleteModelGroup', 409);
    const e = await ociError(client.deleteModelGroup({ modelGroupId: groupId }));
    assert.equal(e.serviceCode, 'IncorrectState');
    assert.equal((await client.getModelGroup({ modelGroupId: groupId })).modelGroup.lifecycleState, 'ACTIVE');
    assert.throws(() => {
      emu.faults.once('CreateModelGroups', 500);
    }, /unknown operation/);
  });
});

describe('OCI Data Science emulator: as unkind as OCI (each switch)', () => {
  const opened: { emu: OciEmulator; client: ds.DataScienceClient }[] = [];
  /** An emulator of its own per test: each switch is tried alone, with nothing else on. */
  const own = async (opts: OciEmulatorOptions = {}) => {
    const e = await emulator(opts);
    opened.push(e);
    return e;
  };
  afterEach(async () => {
    for (const e of opened.splice(0)) {
      e.client.close();
      await e.emu.close();
    }
  });
  const groupIdOf = (m: ds.models.ModelDeployment): string =>
    (m.modelDeploymentConfigurationDetails as ds.models.ModelGroupDeploymentConfigurationDetails)
      .modelGroupConfigurationDetails.modelGroupId;
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  it('readLagMs: right after a LIVE update a GET still reads ACTIVE with the old etag (a PUT with it is 412); the work request is current', async () => {
    const { emu, client } = await own({
      readLagMs: 300,
      delays: { ...OCI_TYPICAL_DELAYS_MS },
      timeScale: 1 / 1000,
    });
    const groupId = await activeGroup(client, stackedGroup());
    const cloneId = await activeGroup(
      client,
      cloneOf(groupId, [{ operation: 'INSERT', values: [member(LORA3, 'sql-lora-3')] }]),
    );
    const md = await activeDeployment(client, groupId);
    await sleep(350); // the replica catches up with ACTIVE
    const before = await client.getModelDeployment({ modelDeploymentId: md.id });
    assert.equal(before.modelDeployment.lifecycleState, 'ACTIVE');
    const res = await client.updateModelDeployment({
      modelDeploymentId: md.id,
      updateModelDeploymentDetails: liveUpdate(cloneId),
      ifMatch: before.etag,
    });
    assert.equal(emu.modelDeployments()[0]?.lifecycleState, 'UPDATING', 'the write happened');
    const stale = await client.getModelDeployment({ modelDeploymentId: md.id });
    assert.equal(stale.modelDeployment.lifecycleState, 'ACTIVE', 'the GET lags: still ACTIVE');
    assert.equal(stale.etag, before.etag, 'with the old etag');
    const wr = await client.getWorkRequest({ workRequestId: res.opcWorkRequestId });
    assert.notEqual(wr.workRequest.status, 'SUCCEEDED', 'the work request is read as it is');
    const refused = await ociError(
      client.updateModelDeployment({
        modelDeploymentId: md.id,
        updateModelDeploymentDetails: liveUpdate(groupId),
        ifMatch: stale.etag,
      }),
    );
    assert.equal(refused.statusCode, 412);
    assert.equal(refused.serviceCode, 'NoEtagMatch');
    await sleep(320);
    const caughtUp = await client.getModelDeployment({ modelDeploymentId: md.id });
    assert.equal(caughtUp.modelDeployment.lifecycleState, 'UPDATING', 'after the lag: UPDATING');
    assert.notEqual(caughtUp.etag, before.etag);
    await client.getWaiters().forWorkRequest({ workRequestId: res.opcWorkRequestId });
    await until(async () => {
      const m = (await client.getModelDeployment({ modelDeploymentId: md.id })).modelDeployment;
      const active = m.lifecycleState === ds.models.ModelDeploymentLifecycleState.Active;
      return active && groupIdOf(m) === cloneId ? true : undefined;
    }, 'ACTIVE on the clone, as read');
  });

  it('readLagMs: a LIST misses a group created a moment ago; a GET by its id reads it at once', async () => {
    const { client } = await own({ readLagMs: 250 });
    const created = await client.createModelGroup({ createBaseModelGroupDetails: stackedGroup() });
    const id = created.modelGroup.id;
    const listed = await client.listModelGroups({ compartmentId: COMPARTMENT, id });
    assert.deepEqual(listed.items, [], 'not listed yet');
    const got = await client.getModelGroup({ modelGroupId: id });
    assert.equal(got.modelGroup.lifecycleState, 'CREATING', 'the GET reads the create answer');
    await sleep(300);
    const later = await client.listModelGroups({ compartmentId: COMPARTMENT, id });
    assert.deepEqual(
      later.items.map((g) => g.id),
      [id],
    );
  });

  it('deletedRetentionMs: a DELETED group reads DELETED for a while, then 404 and out of lists', async () => {
    const { emu, client } = await own({ deletedRetentionMs: 200 });
    const id = await activeGroup(client, stackedGroup());
    const del = await client.deleteModelGroup({ modelGroupId: id });
    await client.getWaiters().forWorkRequest({ workRequestId: del.opcWorkRequestId });
    assert.equal((await client.getModelGroup({ modelGroupId: id })).modelGroup.lifecycleState, 'DELETED');
    const deleted = ds.models.ModelGroupLifecycleState.Deleted;
    const listed = await client.listModelGroups({ compartmentId: COMPARTMENT, lifecycleState: deleted });
    assert.equal(listed.items.length, 1);
    await sleep(250);
    const gone = await ociError(client.getModelGroup({ modelGroupId: id }));
    assert.equal(gone.statusCode, 404);
    assert.equal(gone.serviceCode, 'NotAuthorizedOrNotFound');
    const after = await client.listModelGroups({ compartmentId: COMPARTMENT, lifecycleState: deleted });
    assert.deepEqual(after.items, []);
    const again = await ociError(client.deleteModelGroup({ modelGroupId: id }));
    assert.equal(again.statusCode, 404, 'a purged record is gone for writes too');
    assert.equal(emu.modelGroups()[0]?.lifecycleState, 'DELETED', 'the test accessor still sees it');
  });

  it('outOfBand.failDeployment: FAILED or NEEDS_ATTENTION on its own with lifecycleDetails, back to ACTIVE after recoverAfterMs', async () => {
    const { emu, client, key } = await own();
    const groupId = await activeGroup(client, stackedGroup());
    const md = await activeDeployment(client, groupId);
    emu.outOfBand.failDeployment(md.id, {
      state: 'FAILED',
      details: 'The container exited with code 137',
      recoverAfterMs: 150,
    });
    const failed = (await client.getModelDeployment({ modelDeploymentId: md.id })).modelDeployment;
    assert.equal(failed.lifecycleState, 'FAILED');
    assert.equal(failed.lifecycleDetails, 'The container exited with code 137');
    const p = await signedFetch(key, `${md.modelDeploymentUrl}/predict`, 'POST', {
      body: { model: 'basemodel', prompt: 'x' },
    });
    assert.equal(p.status, 409, 'a FAILED deployment does not answer predict');
    await sleep(200);
    const back = (await client.getModelDeployment({ modelDeploymentId: md.id })).modelDeployment;
    assert.equal(back.lifecycleState, 'ACTIVE');
    assert.equal(back.lifecycleDetails, undefined);
    emu.outOfBand.failDeployment(md.id, {
      state: 'NEEDS_ATTENTION',
      details: '1 of 2 instances is unhealthy',
    });
    const attention = (await client.getModelDeployment({ modelDeploymentId: md.id })).modelDeployment;
    assert.equal(attention.lifecycleState, 'NEEDS_ATTENTION');
    assert.equal(attention.lifecycleDetails, '1 of 2 instances is unhealthy');
  });

  it('outOfBand.failNextWork: a failed update is rolled back, its errors listed; a failed create leaves a FAILED deployment', async () => {
    const { emu, client } = await own();
    const groupId = await activeGroup(client, stackedGroup());
    const cloneId = await activeGroup(
      client,
      cloneOf(groupId, [{ operation: 'INSERT', values: [member(LORA3, 'sql-lora-3')] }]),
    );
    const md = await activeDeployment(client, groupId);
    emu.outOfBand.failNextWork('MODEL_DEPLOYMENT_UPDATE', {
      code: 'InternalServerError',
      message: 'Model sql-lora-3 could not be loaded',
    });
    const res = await client.updateModelDeployment({
      modelDeploymentId: md.id,
      updateModelDeploymentDetails: liveUpdate(cloneId),
    });
    const wr = await client.getWaiters().forWorkRequest({ workRequestId: res.opcWorkRequestId });
    assert.equal(wr.workRequest.status, 'FAILED');
    assert.ok(wr.workRequest.timeFinished);
    const errors = await client.listWorkRequestErrors({ workRequestId: res.opcWorkRequestId });
    assert.deepEqual(
      errors.items.map((e) => `${e.code}: ${e.message}`),
      ['InternalServerError: Model sql-lora-3 could not be loaded'],
    );
    const after = (await client.getModelDeployment({ modelDeploymentId: md.id })).modelDeployment;
    assert.equal(after.lifecycleState, 'ACTIVE', 'rolled back');
    assert.equal(groupIdOf(after), groupId, 'on the old group');
    // Only the next one failed: the retry succeeds.
    const retry = await client.updateModelDeployment({
      modelDeploymentId: md.id,
      updateModelDeploymentDetails: liveUpdate(cloneId),
    });
    const ok = await client.getWaiters().forWorkRequest({ workRequestId: retry.opcWorkRequestId });
    assert.equal(ok.workRequest.status, 'SUCCEEDED');

    emu.outOfBand.failNextWork('MODEL_DEPLOYMENT_CREATE', {
      message: 'Image pull timed out after 20 minutes',
    });
    const created = await client.createModelDeployment({
      createModelDeploymentDetails: seedDeployment(groupId),
    });
    const cw = await client.getWaiters().forWorkRequest({ workRequestId: created.opcWorkRequestId });
    assert.equal(cw.workRequest.status, 'FAILED');
    const m = (await client.getModelDeployment({ modelDeploymentId: created.modelDeployment.id }))
      .modelDeployment;
    assert.equal(m.lifecycleState, 'FAILED');
    assert.equal(m.lifecycleDetails, 'Image pull timed out after 20 minutes');
    assert.throws(() => {
      emu.outOfBand.failNextWork('MODEL_DEPLOYMENT_CREAT', { message: 'x' });
    }, /unknown/);
  });

  it('limits: creates beyond a service limit are 400 LimitExceeded, beyond a compartment quota 400 QuotaExceeded; lifting them lets the create through', async () => {
    const { emu, client } = await own({ limits: { modelDeployments: 1 } });
    const groupId = await activeGroup(client, stackedGroup());
    await activeDeployment(client, groupId);
    const refused = await ociError(
      client.createModelDeployment({ createModelDeploymentDetails: seedDeployment(groupId) }),
    );
    assert.equal(refused.statusCode, 400);
    assert.equal(refused.serviceCode, 'LimitExceeded');
    assert.match(refused.message, /model-deployment-count: 1/);
    emu.setLimits({ compartmentQuotas: { modelGroups: 1 } });
    const quota = await ociError(client.createModelGroup({ createBaseModelGroupDetails: stackedGroup() }));
    assert.equal(quota.statusCode, 400);
    assert.equal(quota.serviceCode, 'QuotaExceeded');
    assert.equal(emu.counts().modelGroupsCreated, 1, 'nothing made by a refused create');
    emu.setLimits({});
    const ok = await client.createModelDeployment({ createModelDeploymentDetails: seedDeployment(groupId) });
    assert.equal(ok.modelDeployment.lifecycleState, 'CREATING');
  });

  it('capacity: a create that needs more instances of a shape than the region has left fails its work request with Out of host capacity', async () => {
    const { emu, client } = await own({ capacity: { 'VM.GPU.A10.1': 1 } });
    const groupId = await activeGroup(client, stackedGroup());
    await activeDeployment(client, groupId);
    const second = await client.createModelDeployment({
      createModelDeploymentDetails: seedDeployment(groupId),
    });
    const wr = await client.getWaiters().forWorkRequest({ workRequestId: second.opcWorkRequestId });
    assert.equal(wr.workRequest.status, 'FAILED');
    const errors = await client.listWorkRequestErrors({ workRequestId: second.opcWorkRequestId });
    assert.deepEqual(
      errors.items.map((e) => e.code),
      ['InternalError'],
    );
    assert.match(errors.items.map((e) => e.message).join(), /^Out of host capacity\./);
    const m = (await client.getModelDeployment({ modelDeploymentId: second.modelDeployment.id }))
      .modelDeployment;
    assert.equal(m.lifecycleState, 'FAILED');
    emu.setCapacity('VM.GPU.A10.1', undefined);
    const third = await activeDeployment(client, groupId);
    assert.equal(third.lifecycleState, 'ACTIVE', 'with the capacity back');
  });

  it("timeScale: OCI's minutes scaled down keep their proportions (REALISTIC: a 15 min create takes 1.8 s)", async () => {
    const { client } = await own({ delays: OCI_TYPICAL_DELAYS_MS, timeScale: 1 / 6000 });
    const groupId = await activeGroup(client, stackedGroup());
    const created = await client.createModelDeployment({
      createModelDeploymentDetails: seedDeployment(groupId),
    });
    const wr = await client.getWaiters().forWorkRequest({ workRequestId: created.opcWorkRequestId });
    const took =
      Date.parse(String(wr.workRequest.timeFinished)) - Date.parse(String(wr.workRequest.timeAccepted));
    // Only the lower bound is a fact: a shared machine may finish it later, never sooner.
    assert.ok(
      took >= 145,
      `15 min / 6000 = 150 ms at least (timestamps are whole ms), took ${String(took)} ms`,
    );
    assert.equal(OCI_TYPICAL_DELAYS_MS.deploymentCreateMs * (REALISTIC.timeScale ?? 1), 1800);
    await assert.rejects(startOciEmulator({ timeScale: 0 }), /timeScale must be positive/);
  });

  it('outOfBand.beforeNext: a console edit between a read and an update makes the if-match stale: 412, and a re-read update succeeds', async () => {
    const { emu, client } = await own();
    const groupId = await activeGroup(client, stackedGroup());
    const cloneId = await activeGroup(
      client,
      cloneOf(groupId, [{ operation: 'INSERT', values: [member(LORA3, 'sql-lora-3')] }]),
    );
    const md = await activeDeployment(client, groupId);
    const read = await client.getModelDeployment({ modelDeploymentId: md.id });
    emu.outOfBand.beforeNext('UpdateModelDeployment', () => {
      emu.outOfBand.updateDeployment(md.id, (d) => {
        d.freeformTags = { ...d.freeformTags, owner: 'someone' };
      });
    });
    const stale = await ociError(
      client.updateModelDeployment({
        modelDeploymentId: md.id,
        updateModelDeploymentDetails: liveUpdate(cloneId),
        ifMatch: read.etag,
      }),
    );
    assert.equal(stale.statusCode, 412);
    assert.equal(stale.serviceCode, 'NoEtagMatch');
    const reread = await client.getModelDeployment({ modelDeploymentId: md.id });
    assert.equal(reread.modelDeployment.freeformTags?.owner, 'someone');
    const ok = await client.updateModelDeployment({
      modelDeploymentId: md.id,
      updateModelDeploymentDetails: liveUpdate(cloneId),
      ifMatch: reread.etag,
    });
    assert.ok(ok.opcWorkRequestId);
    assert.throws(() => {
      emu.outOfBand.beforeNext('UpdateModelDeploymnt', () => undefined);
    }, /unknown/);
  });
});

describe('OCI Data Science emulator: signatures', () => {
  let emu: OciEmulator;
  let key: ApiKey;
  let client: ds.DataScienceClient;
  let groupId = '';

  before(async () => {
    ({ emu, key, client } = await emulator());
    groupId = await activeGroup(client, stackedGroup());
  });
  after(async () => {
    client.close();
    await emu.close();
  });

  it('strict mode answers an unsigned request 401 NotAuthenticated, with opc-request-id and JSON', async () => {
    const res = await fetch(`${emu.url}/20190101/modelGroups/${groupId}`, {
      headers: { 'opc-request-id': 'test-id' },
    });
    assert.equal(res.status, 401);
    assert.equal(res.headers.get('opc-request-id'), 'test-id');
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
    assert.equal(((await res.json()) as { code: string }).code, 'NotAuthenticated');
  });

  it('a key the emulator does not know, or a registered keyId signed with another key, is 401', async () => {
    const stranger = makeClient(emu, makeKey('stranger'));
    const e = await ociError(stranger.getModelGroup({ modelGroupId: groupId }));
    stranger.close();
    assert.equal(e.statusCode, 401);
    assert.equal(e.serviceCode, 'NotAuthenticated');

    const impostor = { ...makeKey(), keyId: key.keyId, fingerprint: key.fingerprint };
    const r = await signedFetch(impostor, `${emu.url}/20190101/modelGroups/${groupId}`, 'GET');
    assert.equal(r.status, 401);
    assert.match(errorOf(r).message, /signature does not match/);
    const last = emu.requests().slice(-2);
    assert.deepEqual(
      last.map((x) => [x.status, x.operation, x.keyId]),
      [
        [401, 'GetModelGroup', undefined],
        [401, 'GetModelGroup', undefined],
      ],
      'refused requests are recorded, with no key id',
    );
  });

  it('a tampered body (x-content-sha256 mismatch) and a stale x-date are 401', async () => {
    const body = { createType: 'CREATE', displayName: 'aaaa' };
    const tampered = JSON.stringify({ ...body, displayName: 'bbbb' });
    const r = await signedFetch(key, `${emu.url}/20190101/modelGroups`, 'POST', { body, sendBody: tampered });
    assert.equal(r.status, 401);
    assert.match(errorOf(r).message, /x-content-sha256/);

    const old = new Date(Date.now() - 6 * 60 * 1000).toUTCString();
    const stale = await signedFetch(key, `${emu.url}/20190101/modelGroups/${groupId}`, 'GET', {
      headers: { 'x-date': old },
    });
    assert.equal(stale.status, 401);
    assert.match(errorOf(stale).message, /5 minutes/);
    assert.equal(emu.counts().modelGroupsCreated, 1);
  });

  it('an unknown route is 404 NotAuthorizedOrNotFound; unsigned requests pass when not strict', async () => {
    const r = await signedFetch(key, `${emu.url}/20190101/modelGroupz`, 'GET');
    assert.equal(r.status, 404);
    assert.equal(errorOf(r).code, 'NotAuthorizedOrNotFound');

    const lax = await startOciEmulator({ strict: false, models: MODELS });
    try {
      const unsigned = new ds.DataScienceClient(
        { httpClient: new common.FetchHttpClient(null) }, // no authentication provider: nothing signs
        {
          retryConfiguration: common.NoRetryConfigurationDetails,
          circuitBreaker: new common.CircuitBreaker({ disableClientCircuitBreaker: true }),
        },
      );
      unsigned.endpoint = lax.url;
      const g = await unsigned.createModelGroup({ createBaseModelGroupDetails: stackedGroup() });
      assert.equal(g.modelGroup.createdBy, 'unsigned');
      unsigned.close();
    } finally {
      await lax.close();
    }
  });
});
