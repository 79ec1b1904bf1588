import assert from 'node:assert/strict';
import * as common from 'oci-common';
import type * as ds from 'oci-datascience';
import type { StackedDeployment } from '../../../../src/api/v1alpha1/deployment.ts';
import type { StackedModelGroup } from '../../../../src/api/v1alpha1/modelgroup.ts';
import { withDefaults } from '../../../../src/api/v1alpha1/validate.ts';
import { decide, type Action, type Decision } from '../../../../src/backends/oci/decide.ts';
import { configDigest, createDeploymentDetails, desiredGroup } from '../../../../src/backends/oci/desired.ts';
import { OciTransientError } from '../../../../src/backends/oci/errors.ts';
import { failureStep } from '../../../../src/backends/oci/failure.ts';
import type { GroupView, Snapshot } from '../../../../src/backends/oci/snapshot.ts';
import type { Step } from '../../../../src/backends/oci/status.ts';
import { OciAuthError } from '../../../../src/oci/auth.ts';
import { sampleDeployment, sampleGroup } from '../../../support/objects.ts';

const UID = '5f0c7b7e-0000-4000-8000-0000000000aa';
const MD = 'ocid1.datasciencemodeldeployment.oc1.iad.md1';
const OLD = 'ocid1.datasciencemodelgroup.oc1.iad.old';
const NEW = 'ocid1.datasciencemodelgroup.oc1.iad.new';
const HIST = 'ocid1.datasciencemodelgroupversionhistory.oc1.iad.h1';
const OTHER_BASE = 'ocid1.datasciencemodel.oc1.iad.aaaaaaaaotherbase';

interface Spec {
  d: StackedDeployment;
  group: StackedModelGroup;
}

/** The sample oci deployment and group; `mutate` changes either before the row runs. */
function spec(mutate: (s: Spec) => void = () => undefined): Spec {
  const d = withDefaults(
    'StackedDeployment',
    sampleDeployment('deployment-oci.yaml', 'sql-oci', (x) => {
      x.metadata.namespace = 'ml';
      x.metadata.uid = UID;
    }),
  );
  const s = { d, group: sampleGroup('sql-assistants', (g) => (g.metadata.uid = 'group-uid')) };
  mutate(s);
  return s;
}

const wantHash = (s: Spec = spec()) => desiredGroup(s.group)?.hash ?? '';
/** The member set before the change: a group made for it is superseded. */
const oldHash = 'old-member-set';

function group(id: string, over: Partial<GroupView> = {}): GroupView {
  return {
    id,
    state: 'ACTIVE',
    ours: true,
    membersHash: wantHash(),
    baseModelId: 'ocid1.datasciencemodel.oc1.iad.aaaaaaaabase',
    members: [],
    created: 1000,
    ...over,
  };
}

/** What OCI hands back for the deployment the spec asks for, serving `groupId`. */
function live(groupId: string, over: LiveOver = {}, s: Spec = spec()) {
  const body = createDeploymentDetails(s.d, s.group, groupId);
  // Through JSON like the wire: OCI's states arrive as plain strings, unknown ones too.
  const md = JSON.parse(
    JSON.stringify({
      ...body,
      id: MD,
      lifecycleState: 'ACTIVE',
      modelDeploymentUrl: `https://modeldeployment.example/${MD}`,
      ...over,
    }),
  ) as ds.models.ModelDeployment;
  return { md, etag: 'etag-1' };
}

type LiveOver = Omit<Partial<ds.models.ModelDeployment>, 'lifecycleState'> & { lifecycleState?: string };

function snapshot(over: Partial<Snapshot> = {}): Snapshot {
  return { previous: {}, groupsRead: 'all', groups: [], historyId: HIST, ...over };
}

/** Settled on NEW, as the last pass recorded it. */
const applied = (s: Spec = spec()) => ({
  modelDeploymentId: MD,
  modelGroupId: NEW,
  appliedConfig: configDigest(s.d, s.group),
  modelGroupVersionHistoryId: HIST,
});

interface Row {
  name: string;
  snapshot: Snapshot;
  spec?: Spec;
  /** The action's kind and the fields of it that matter. */
  expect: Partial<Action> & { kind: Action['kind'] };
  /** What else the decision must say. */
  check?: (d: Decision) => void;
}

const rows: Row[] = [
  {
    name: 'a model without its OCID: ModelIdMissing',
    snapshot: snapshot(),
    spec: spec((s) => delete s.group.spec.baseModel.modelId),
    expect: { kind: 'problem', reason: 'ModelIdMissing' },
  },
  {
    name: 'a work request in progress: wait',
    snapshot: snapshot({
      previous: { workRequestId: 'wr1' },
      workRequest: { id: 'wr1', phase: 'running', operationType: 'MODEL_GROUP_CREATE', percentComplete: 40 },
      groupsRead: 'none',
    }),
    expect: {
      kind: 'wait',
      reason: 'WorkRequestInProgress',
      message: 'MODEL_GROUP_CREATE 40% done (wr1)',
    },
    check: (d) => {
      assert.equal(d.oci.workRequestId, 'wr1', 'still tracked');
    },
  },
  {
    name: 'a work request FAILED: WorkRequestFailed, and the config counts as not applied',
    snapshot: snapshot({
      previous: { ...applied(), workRequestId: 'wr1' },
      deployment: live(NEW),
      workRequest: {
        id: 'wr1',
        phase: 'failed',
        operationType: 'MODEL_DEPLOYMENT_UPDATE',
        errors: 'OutOfHostCapacity: no A10 left',
      },
    }),
    expect: {
      kind: 'problem',
      reason: 'WorkRequestFailed',
      message: 'MODEL_DEPLOYMENT_UPDATE failed: OutOfHostCapacity: no A10 left',
    },
    check: (d) => {
      assert.equal(d.oci.workRequestId, undefined);
      assert.equal(d.oci.appliedConfig, undefined);
    },
  },
  {
    name: 'a work request OCI no longer knows: forgotten, and the pass goes on',
    snapshot: snapshot({
      previous: { ...applied(), workRequestId: 'wr1' },
      deployment: live(NEW),
      workRequest: { id: 'wr1', phase: 'gone' },
      groups: [group(NEW)],
    }),
    expect: { kind: 'settled' },
    check: (d) => {
      assert.equal(d.oci.workRequestId, undefined);
    },
  },
  {
    name: 'the deployment deleted in OCI under driftPolicy Observe: DeletedInOCI',
    snapshot: snapshot({ previous: applied(), groups: [group(NEW)] }),
    spec: spec((s) => (s.d.spec.oci!.driftPolicy = 'Observe')),
    expect: { kind: 'problem', reason: 'DeletedInOCI' },
  },
  {
    name: 'the deployment DELETING outside the operator: wait',
    snapshot: snapshot({ previous: applied(), deployment: live(NEW, { lifecycleState: 'DELETING' }) }),
    expect: { kind: 'wait', reason: 'DeploymentDeleting' },
  },
  {
    name: 'first create, no version history yet: create the history',
    snapshot: snapshot({ historyId: undefined }),
    expect: { kind: 'createHistory' },
    check: (d) => {
      assert.ok(d.action.kind === 'createHistory' && d.action.token.length === 64, 'a retry token');
      assert.equal(d.action.body.freeformTags?.['k8s-uid'], UID);
    },
  },
  {
    name: 'first create: create the group by CREATE, in the history',
    snapshot: snapshot(),
    expect: { kind: 'createGroup', how: 'CREATE', adapters: 2 },
    check: (d) => {
      assert.ok(d.action.kind === 'createGroup');
      const body = d.action.body as ds.models.CreateModelGroupDetails;
      assert.equal(body.modelGroupVersionHistoryId, HIST);
      assert.equal(body.freeformTags?.['stacked-members'], wantHash());
      assert.equal(d.oci.modelGroupVersionHistoryId, HIST, 'an adopted history is recorded');
    },
  },
  {
    name: 'a member change on the same base: CLONE of the deployed group',
    snapshot: snapshot({
      previous: { ...applied(), modelGroupId: OLD },
      deployment: live(OLD),
      groups: [
        group(OLD, {
          membersHash: oldHash,
          members: [{ modelId: 'ocid1.datasciencemodel.oc1.iad.aaaaaaaabase', inferenceKey: 'basemodel' }],
        }),
      ],
    }),
    expect: { kind: 'createGroup', how: `CLONE of ${OLD}` },
    check: (d) => {
      assert.equal(d.oci.modelGroupHistory, undefined, 'the deployed group is not superseded yet');
    },
  },
  {
    name: 'a base-model change: a new group by CREATE (a clone cannot change the base)',
    snapshot: snapshot({
      previous: { ...applied(), modelGroupId: OLD },
      deployment: live(OLD),
      groups: [
        group(OLD, {
          membersHash: oldHash,
          baseModelId: OTHER_BASE,
          members: [{ modelId: OTHER_BASE, inferenceKey: 'basemodel' }],
        }),
      ],
    }),
    expect: { kind: 'createGroup', how: 'CREATE' },
  },
  {
    name: 'a group of this member set FAILED: deleted and reported, a new one at the next poll',
    snapshot: snapshot({ groups: [group(NEW, { state: 'FAILED', details: 'model not found' })] }),
    expect: { kind: 'dropFailedGroup', groupId: NEW, reason: 'ModelGroupFailed' },
  },
  {
    name: 'the group of a failed attempt gone: a new create with another retry token',
    snapshot: snapshot({ groups: [group(NEW, { state: 'DELETED' })] }),
    expect: { kind: 'createGroup', how: 'CREATE' },
    check: (d) => {
      const first = decide(snapshot(), spec());
      assert.ok(d.action.kind === 'createGroup' && first.action.kind === 'createGroup');
      assert.notEqual(d.action.token, first.action.token);
    },
  },
  {
    name: 'the group CREATING: wait',
    snapshot: snapshot({ groups: [group(NEW, { state: 'CREATING' })] }),
    expect: { kind: 'wait', reason: 'CreatingModelGroup' },
  },
  {
    name: 'the group ACTIVE and no deployment: create the deployment on it',
    snapshot: snapshot({ groups: [group(NEW)] }),
    expect: { kind: 'createDeployment', groupId: NEW, digest: configDigest(spec().d, spec().group) },
  },
  {
    name: 'the deployment deleted in OCI under driftPolicy Reconcile: recreated, with another token',
    snapshot: snapshot({ previous: applied(), groups: [group(NEW)] }),
    expect: { kind: 'createDeployment', groupId: NEW },
    check: (d) => {
      const first = decide(snapshot({ groups: [group(NEW)] }), spec());
      assert.ok(d.action.kind === 'createDeployment' && first.action.kind === 'createDeployment');
      assert.notEqual(d.action.token, first.action.token);
    },
  },
  {
    name: 'the deployment CREATING: wait',
    snapshot: snapshot({
      previous: applied(),
      deployment: live(NEW, { lifecycleState: 'CREATING' }),
      groups: [group(NEW)],
    }),
    expect: { kind: 'wait', reason: 'DeploymentCreating' },
    check: (d) => {
      assert.equal(d.onTargetGroup, true);
    },
  },
  {
    name: 'the deployment UPDATING: wait',
    snapshot: snapshot({
      previous: applied(),
      deployment: live(NEW, { lifecycleState: 'UPDATING' }),
      groups: [group(NEW)],
    }),
    expect: { kind: 'wait', reason: 'DeploymentUpdating' },
  },
  {
    name: "the deployment FAILED: DeploymentFailed with OCI's details",
    snapshot: snapshot({
      previous: applied(),
      deployment: live(NEW, { lifecycleState: 'FAILED', lifecycleDetails: 'container exited' }),
      groups: [group(NEW)],
    }),
    expect: { kind: 'problem', reason: 'DeploymentFailed', message: 'container exited' },
  },
  {
    name: 'the deployment in another compartment than the spec: ImmutableFieldChanged',
    snapshot: snapshot({
      previous: applied(),
      deployment: live(NEW, { compartmentId: 'ocid1.compartment.oc1..elsewhere' }),
      groups: [group(NEW)],
    }),
    expect: { kind: 'problem', reason: 'ImmutableFieldChanged' },
  },
  {
    name: 'the deployment INACTIVE under driftPolicy Reconcile: activate it, with if-match',
    snapshot: snapshot({
      previous: applied(),
      deployment: live(NEW, { lifecycleState: 'INACTIVE' }),
      groups: [group(NEW)],
    }),
    expect: { kind: 'activate', modelDeploymentId: MD, ifMatch: 'etag-1' },
  },
  {
    name: 'the deployment INACTIVE under driftPolicy Observe: DeploymentInactive',
    snapshot: snapshot({
      previous: applied(),
      deployment: live(NEW, { lifecycleState: 'INACTIVE' }),
      groups: [group(NEW)],
    }),
    spec: spec((s) => (s.d.spec.oci!.driftPolicy = 'Observe')),
    expect: { kind: 'problem', reason: 'DeploymentInactive' },
  },
  {
    name: 'the deployment in a state OCI added later: wait',
    snapshot: snapshot({
      previous: applied(),
      deployment: live(NEW, { lifecycleState: 'MIGRATING' }),
      groups: [group(NEW)],
    }),
    expect: { kind: 'wait', reason: 'DeploymentMIGRATING' },
  },
  {
    name: 'changed in OCI behind our back under driftPolicy Observe: DriftDetected',
    snapshot: snapshot({
      previous: applied(),
      deployment: live(NEW, { displayName: 'renamed in the console' }),
      groups: [group(NEW)],
    }),
    spec: spec((s) => (s.d.spec.oci!.driftPolicy = 'Observe')),
    expect: { kind: 'problem', reason: 'DriftDetected' },
  },
  {
    name: 'moved to another group in OCI under driftPolicy Observe: DriftDetected',
    snapshot: snapshot({
      previous: applied(),
      deployment: live(OLD),
      groups: [group(NEW), group(OLD, { membersHash: oldHash })],
    }),
    spec: spec((s) => (s.d.spec.oci!.driftPolicy = 'Observe')),
    expect: { kind: 'problem', reason: 'DriftDetected' },
  },
  {
    name: 'changed in OCI under driftPolicy Reconcile: brought back by a ZDT update',
    snapshot: snapshot({
      previous: applied(),
      deployment: live(NEW, { displayName: 'renamed in the console' }),
      groups: [group(NEW)],
    }),
    expect: { kind: 'zdtUpdate', groupId: NEW, what: 'displayName', ifMatch: 'etag-1' },
    check: (d) => {
      assert.deepEqual(d.drift, ['displayName']);
    },
  },
  {
    name: 'the new group ACTIVE on the same base: LIVE update, the old group recorded as superseded',
    snapshot: snapshot({
      previous: { ...applied(), modelGroupId: OLD },
      deployment: live(OLD),
      groups: [group(NEW, { created: 2000 }), group(OLD, { membersHash: oldHash })],
    }),
    expect: { kind: 'liveUpdate', modelDeploymentId: MD, groupId: NEW, ifMatch: 'etag-1' },
    check: (d) => {
      assert.deepEqual(d.oci.modelGroupHistory, [OLD]);
      assert.equal(d.onTargetGroup, false);
      assert.equal(d.drift, undefined, 'our own change, not drift');
    },
  },
  {
    name: 'the new group on another base: ZDT update (LIVE refuses a base change)',
    snapshot: snapshot({
      previous: { ...applied(), modelGroupId: OLD },
      deployment: live(OLD),
      groups: [group(NEW, { created: 2000 }), group(OLD, { membersHash: oldHash, baseModelId: OTHER_BASE })],
    }),
    expect: { kind: 'zdtUpdate', groupId: NEW, what: 'modelGroup' },
  },
  {
    name: 'a shape or count change in the spec: ZDT update of the infrastructure',
    snapshot: snapshot({ previous: applied(), deployment: live(NEW), groups: [group(NEW)] }),
    spec: spec((s) => (s.d.spec.oci!.infrastructure.instanceCount = 2)),
    expect: { kind: 'zdtUpdate', groupId: NEW, what: 'infrastructure' },
    check: (d) => {
      assert.equal(d.drift, undefined, 'a spec change is no drift');
    },
  },
  {
    name: 'at rest: settled, nothing read beyond the served group, status unchanged',
    snapshot: snapshot({
      previous: { ...applied(), modelGroupHistory: [OLD] },
      deployment: live(NEW),
      groupsRead: 'serving',
      groups: [group(NEW)],
      modelStates: new Map([['m', 'SUCCESS']]),
    }),
    expect: { kind: 'settled' },
    check: (d) => {
      assert.deepEqual(d.oci.modelGroupHistory, [OLD], 'unread, so kept as recorded');
      assert.equal(d.onTargetGroup, true);
    },
  },
  {
    name: 'settled with more superseded groups than retainModelGroups: the oldest beyond it goes',
    snapshot: snapshot({
      previous: applied(),
      deployment: live(NEW),
      groups: [
        group(NEW, { created: 4000 }),
        group('g3', { membersHash: 'h3', created: 3000 }),
        group('g2', { membersHash: 'h2', created: 2000, state: 'CREATING' }),
        group('g1', { membersHash: 'h1', created: 1000 }),
      ],
    }),
    spec: spec((s) => (s.d.spec.oci!.retainModelGroups = 1)),
    expect: { kind: 'collectGarbage', groupId: 'g1' },
    check: (d) => {
      // g3 is the newest superseded: kept for rollback. g2 (CREATING) waits; g1 goes now and stays
      // recorded until OCI reports it DELETING.
      assert.deepEqual(d.oci.modelGroupHistory, ['g3', 'g2', 'g1']);
      assert.equal(d.oci.modelGroupId, NEW);
    },
  },
  {
    name: 'settled with retainModelGroups 0: every superseded group goes, the newest first',
    snapshot: snapshot({
      previous: applied(),
      deployment: live(NEW),
      groups: [
        group(NEW, { created: 4000 }),
        group('g3', { membersHash: 'h3', created: 3000 }),
        group('g1', { membersHash: 'h1', created: 1000, state: 'DELETING' }),
      ],
    }),
    spec: spec((s) => (s.d.spec.oci!.retainModelGroups = 0)),
    expect: { kind: 'collectGarbage', groupId: 'g3' },
    check: (d) => {
      assert.deepEqual(d.oci.modelGroupHistory, ['g3'], 'a DELETING group needs no more care');
    },
  },
  {
    name: 'settled with no more superseded groups than kept: settled, the kept ones recorded',
    snapshot: snapshot({
      previous: applied(),
      deployment: live(NEW),
      groups: [
        group(NEW, { created: 4000 }),
        group('g3', { membersHash: 'h3', created: 3000 }),
        group('g2', { membersHash: 'h2', created: 2000 }),
        group('foreign', { ours: false, membersHash: 'h9', created: 5000 }),
      ],
    }),
    expect: { kind: 'settled' },
    check: (d) => {
      assert.deepEqual(d.oci.modelGroupHistory, ['g3', 'g2'], 'retainModelGroups 2 (default)');
    },
  },
];

describe('oci decide', () => {
  for (const row of rows) {
    it(row.name, () => {
      const d = decide(row.snapshot, row.spec ?? spec());
      const picked = Object.fromEntries(
        Object.keys(row.expect).map((k) => [k, (d.action as unknown as Record<string, unknown>)[k]]),
      );
      assert.deepEqual(picked, row.expect);
      row.check?.(d);
    });
  }

  it('is pure: the snapshot is left as it was', () => {
    const s = snapshot({
      previous: { ...applied(), workRequestId: 'wr1' },
      workRequest: { id: 'wr1', phase: 'gone' },
    });
    const before = JSON.stringify(s);
    decide(s, spec());
    assert.equal(JSON.stringify(s), before);
  });
});

const ociError = (status: number, code: string) =>
  new common.OciError(status, code, `${code} message`, 'req-1', 'DataScience', 'op', '', '', '');

describe('oci failure classification', () => {
  const failures: { name: string; err: unknown; expect: Pick<Step, 'kind' | 'reason'> }[] = [
    {
      name: 'credentials that cannot work: CredentialsInvalid',
      err: new OciAuthError('bad key'),
      expect: { kind: 'problem', reason: 'CredentialsInvalid' },
    },
    {
      name: '401: NotAuthenticated',
      err: ociError(401, 'NotAuthenticated'),
      expect: { kind: 'problem', reason: 'NotAuthenticated' },
    },
    {
      name: '404: NotAuthorizedOrNotFound',
      err: ociError(404, 'NotAuthorizedOrNotFound'),
      expect: { kind: 'problem', reason: 'NotAuthorizedOrNotFound' },
    },
    {
      name: 'a second 412 in one pass: Conflict, read again soon',
      err: ociError(412, 'NoEtagMatch'),
      expect: { kind: 'progressing', reason: 'Conflict' },
    },
    {
      name: '400 LimitExceeded: OciRejected',
      err: ociError(400, 'LimitExceeded'),
      expect: { kind: 'problem', reason: 'OciRejected' },
    },
  ];
  for (const f of failures) {
    it(f.name, () => {
      const step = failureStep(f.err);
      assert.deepEqual({ kind: step.kind, reason: step.reason }, f.expect);
    });
  }

  it('throttling and outages go back to the work queue', () => {
    for (const err of [
      ociError(429, 'TooManyRequests'),
      ociError(503, 'ServiceUnavailable'),
      new Error('ECONNRESET'),
    ]) {
      assert.throws(() => failureStep(err), OciTransientError);
    }
  });
});
