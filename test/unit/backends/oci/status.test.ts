import assert from 'node:assert/strict';
import { ociStatus, type OciFacts } from '../../../../src/backends/oci/status.ts';
import { findCondition } from '../../../../src/runtime/conditions.ts';

const NOW = new Date('2026-11-27T12:00:00Z');
const members = [
  { inferenceKey: 'sql-lora-1', modelId: 'M1' },
  { inferenceKey: 'sql-lora-2', modelId: 'M2' },
];

function facts(over: Partial<OciFacts> = {}): OciFacts {
  return {
    generation: 3,
    members,
    deployment: {
      lifecycleState: 'ACTIVE',
      url: 'https://modeldeployment.us-ashburn-1.oci.customer-oci.com/ocid1.md',
      instances: 2,
      onTargetGroup: true,
    },
    modelStates: new Map([
      ['M1', 'SUCCESS'],
      ['M2', 'SUCCESS'],
    ]),
    step: { kind: 'settled', reason: 'Serving', message: 'ok' },
    oci: { modelDeploymentId: 'ocid1.md' },
    observed: true,
    ...over,
  };
}

describe('oci status', () => {
  it('is Ready when ACTIVE on the target group with every member SUCCESS; endpoint is /predict', () => {
    const { status, verdict } = ociStatus(facts(), NOW);
    assert.equal(verdict.ready, true);
    assert.equal(
      status.endpoint,
      'https://modeldeployment.us-ashburn-1.oci.customer-oci.com/ocid1.md/predict',
    );
    assert.equal(
      status.oci?.predictUrl,
      'https://modeldeployment.us-ashburn-1.oci.customer-oci.com/ocid1.md/predict',
      'the router forwards to status.oci.predictUrl',
    );
    assert.equal(status.oci.modelDeploymentId, 'ocid1.md');
    assert.deepEqual(
      status.adapters?.map((a) => [a.inferenceKey, a.state, a.loadedReplicas]),
      [
        ['sql-lora-1', 'Loaded', 2],
        ['sql-lora-2', 'Loaded', 2],
      ],
    );
    for (const [type, want] of [
      ['Available', 'True'],
      ['AdaptersReady', 'True'],
      ['Progressing', 'False'],
      ['Degraded', 'False'],
    ] as const) {
      assert.equal(findCondition(status.conditions, type)?.status, want, type);
      assert.equal(findCondition(status.conditions, type)?.observedGeneration, 3);
    }
  });

  it('keeps serving (Available) during a LIVE update, while the new members are Loading', () => {
    const { status, verdict } = ociStatus(
      facts({
        deployment: { lifecycleState: 'UPDATING', url: 'u', instances: 1, onTargetGroup: false },
        step: { kind: 'progressing', reason: 'LiveUpdating', message: 'LIVE update' },
      }),
      NOW,
    );
    assert.equal(verdict.ready, false);
    assert.equal(verdict.reason, 'LiveUpdating');
    assert.equal(findCondition(status.conditions, 'Available')?.status, 'True');
    assert.equal(findCondition(status.conditions, 'Progressing')?.reason, 'LiveUpdating');
    assert.equal(status.adapters?.[0]?.state, 'Loading');
  });

  it('maps FAILED and NEEDS_ATTENTION to Degraded with the lifecycle details', () => {
    const { status, verdict } = ociStatus(
      facts({
        deployment: {
          lifecycleState: 'NEEDS_ATTENTION',
          lifecycleDetails: 'instance pool lost 1 of 2 instances',
          url: 'u',
          instances: 1,
          onTargetGroup: true,
        },
      }),
      NOW,
    );
    assert.equal(verdict.reason, 'DeploymentNeedsAttention');
    assert.equal(
      findCondition(status.conditions, 'Degraded')?.message,
      'instance pool lost 1 of 2 instances',
    );
  });

  it('reports a member OCI marks FAILED, naming it', () => {
    const { status, verdict } = ociStatus(
      facts({
        modelStates: new Map([
          ['M1', 'SUCCESS'],
          ['M2', 'FAILED'],
        ]),
      }),
      NOW,
    );
    assert.equal(verdict.reason, 'AdapterFailed');
    assert.match(verdict.message, /sql-lora-2/);
    assert.equal(status.adapters?.[1]?.state, 'Failed');
  });

  it('a problem step is Degraded and not Ready, and keeps what runs in status', () => {
    const { status, verdict } = ociStatus(
      facts({
        step: { kind: 'problem', reason: 'NotAuthenticated', message: 'OCI rejected the credentials' },
      }),
      NOW,
    );
    assert.equal(verdict.reason, 'NotAuthenticated');
    assert.equal(findCondition(status.conditions, 'Available')?.status, 'True', 'it still serves');
    assert.equal(status.oci?.modelDeploymentId, 'ocid1.md');
  });

  it('keeps what the last status said the deployment serves when an error came before reading it', () => {
    const serving = ociStatus(facts(), NOW).status;
    const { status, verdict } = ociStatus(
      facts({
        observed: false,
        deployment: undefined,
        modelStates: undefined,
        previous: serving,
        step: { kind: 'problem', reason: 'NotAuthenticated', message: 'OCI rejected the credentials' },
      }),
      NOW,
    );
    assert.equal(verdict.reason, 'NotAuthenticated');
    assert.equal(status.endpoint, serving.endpoint, 'the endpoint still serves');
    assert.equal(status.oci?.predictUrl, serving.oci?.predictUrl, 'so does the predict URL');
    assert.deepEqual(status.adapters, serving.adapters);
    assert.equal(findCondition(status.conditions, 'Available')?.status, 'True');
    assert.equal(findCondition(status.conditions, 'Degraded')?.reason, 'NotAuthenticated');
  });

  it('drops the predict URL once the deployment is read and gone, and trims a trailing slash', () => {
    const serving = ociStatus(
      facts({ deployment: { ...facts().deployment!, url: 'http://127.0.0.1:9/md/ocid1.md/' } }),
      NOW,
    ).status;
    assert.equal(serving.oci?.predictUrl, 'http://127.0.0.1:9/md/ocid1.md/predict');
    const gone = ociStatus(
      facts({ deployment: undefined, modelStates: undefined, previous: serving, oci: { ...serving.oci } }),
      NOW,
    ).status;
    assert.equal(gone.oci?.predictUrl, undefined);
    assert.equal(gone.endpoint, undefined);
  });

  it("during an update keeps each member's last state, and only a new member is Loading", () => {
    const before = ociStatus(facts(), NOW).status;
    const { status } = ociStatus(
      facts({
        members: [...members, { inferenceKey: 'sql-lora-3', modelId: 'M3' }],
        deployment: { lifecycleState: 'UPDATING', url: 'u', instances: 2, onTargetGroup: false },
        modelStates: undefined,
        previous: before,
        step: { kind: 'progressing', reason: 'DeploymentUpdating', message: 'UPDATING' },
      }),
      NOW,
    );
    assert.deepEqual(
      status.adapters?.map((a) => [a.inferenceKey, a.state]),
      [
        ['sql-lora-1', 'Loaded'],
        ['sql-lora-2', 'Loaded'],
        ['sql-lora-3', 'Loading'],
      ],
    );
  });

  it('is a fixed point: the same facts give the same conditions', () => {
    const first = ociStatus(facts(), NOW).status.conditions ?? [];
    const again = ociStatus(facts({ previous: { conditions: first } }), new Date('2026-11-27T13:00:00Z'))
      .status.conditions;
    assert.deepEqual(again, first);
  });
});
