import assert from 'node:assert/strict';
import { join } from 'node:path';
import type * as ds from 'oci-datascience';
import { withDefaults } from '../../../../src/api/v1alpha1/validate.ts';
import {
  TAG_MEMBERS,
  TAG_UID,
  cloneGroupDetails,
  configDrift,
  createDeploymentDetails,
  createGroupDetails,
  desiredGroup,
  liveUpdateDetails,
  memberPatch,
  params,
  retryToken,
  zdtUpdateDetails,
} from '../../../../src/backends/oci/desired.ts';
import { goldenFiles } from '../../../support/golden.ts';
import { sampleDeployment, sampleGroup } from '../../../support/objects.ts';

const testdata = join(import.meta.dirname, 'testdata');

const golden = goldenFiles(testdata);

const UID = '5f0c7b7e-0000-4000-8000-0000000000aa';

function fixture() {
  const d = withDefaults(
    'StackedDeployment',
    sampleDeployment('deployment-oci.yaml', 'sql-oci', (x) => {
      x.metadata.namespace = 'ml';
      x.metadata.uid = UID;
    }),
  );
  const g = sampleGroup('sql-assistants');
  return { d, g };
}

/** What OCI would hand back for the deployment we asked for (plus fields the service adds). */
function liveFrom(body: ds.models.CreateModelDeploymentDetails): ds.models.ModelDeployment {
  // Through JSON like the wire: the service's enums arrive as plain strings (reference §8).
  const live = JSON.parse(
    JSON.stringify({ ...body, id: 'ocid1.datasciencemodeldeployment.oc1.iad.x', lifecycleState: 'ACTIVE' }),
  ) as ds.models.ModelDeployment;
  const cfg = live.modelDeploymentConfigurationDetails as ds.models.ModelGroupDeploymentConfigurationDetails;
  const env =
    cfg.environmentConfigurationDetails as ds.models.OcirModelDeploymentEnvironmentConfigurationDetails;
  env.defaultEnvironmentVariables = { SERVICE_SET: '1' };
  return live;
}

describe('oci desired state', () => {
  it('builds the seed CREATE payload: STACKED, base first with its key, owner tags', () => {
    const { d, g } = fixture();
    const want = desiredGroup(g)!;
    assert.deepEqual(
      want.members.map((m) => m.inferenceKey),
      ['basemodel', 'sql-lora-1', 'sql-lora-2'],
    );
    const body = createGroupDetails(d, g, want);
    const tags = body.freeformTags ?? {};
    assert.equal(tags[TAG_UID], UID);
    assert.equal(tags[TAG_MEMBERS], want.hash);
    golden('create-model-group.yaml', body);
  });

  it('builds the seed deployment payload with PARAMS carrying the engine flags', () => {
    const { d, g } = fixture();
    const body = createDeploymentDetails(d, g, 'ocid1.datasciencemodelgroup.oc1.iad.g1');
    assert.equal(
      params(d, g),
      '--served-model-name basemodel ocid1.datasciencemodel.oc1.iad.aaaaaaaabase --max-model-len 4096 --enable-lora --max-lora-rank 64 --max-loras 4',
    );
    golden('create-model-deployment.yaml', body);
  });

  it('autoscaling becomes a THRESHOLD policy that scales in at half the scale-out threshold', () => {
    const { d, g } = fixture();
    delete d.spec.oci!.infrastructure.instanceCount;
    d.spec.oci!.infrastructure.autoscaling = {
      minimumInstanceCount: 1,
      maximumInstanceCount: 4,
      cpuUtilizationPercent: 70,
    };
    const cfg = createDeploymentDetails(d, g, 'x')
      .modelDeploymentConfigurationDetails as ds.models.ModelGroupDeploymentConfigurationDetails;
    golden('autoscaling.yaml', cfg.infrastructureConfigurationDetails.scalingPolicy);
  });

  it('hashes the member set, not its order, so reordering makes no new group', () => {
    const { g } = fixture();
    const h1 = desiredGroup(g)!.hash;
    g.spec.members!.reverse();
    assert.equal(desiredGroup(g)!.hash, h1);
    g.spec.members![0]!.inferenceKey = 'renamed';
    assert.notEqual(desiredGroup(g)!.hash, h1);
  });

  it('needs every model id', () => {
    const { g } = fixture();
    delete g.spec.members![1]!.modelId;
    assert.equal(desiredGroup(g), undefined);
  });

  it('clones with REMOVE before INSERT, and refuses to clone across bases', () => {
    const { d, g } = fixture();
    const current = desiredGroup(g)!;
    g.spec.members = [
      g.spec.members![1]!,
      { inferenceKey: 'sql-lora-3', modelId: 'ocid1.datasciencemodel.oc1.iad.aaaaaaaalora3' },
    ];
    const want = desiredGroup(g)!;
    assert.deepEqual(memberPatch(current.members, want.members), {
      remove: [{ modelId: 'ocid1.datasciencemodel.oc1.iad.aaaaaaaalora1', inferenceKey: 'sql-lora-1' }],
      insert: [{ modelId: 'ocid1.datasciencemodel.oc1.iad.aaaaaaaalora3', inferenceKey: 'sql-lora-3' }],
    });
    const source = {
      id: 'ocid1.datasciencemodelgroup.oc1.iad.g1',
      baseModelId: current.baseModelId,
      members: current.members,
    };
    const clone = cloneGroupDetails(d, g, want, source)!;
    golden('clone-model-group.yaml', clone);
    assert.equal(
      cloneGroupDetails(d, g, want, { ...source, baseModelId: 'ocid1.datasciencemodel.oc1.iad.other' }),
      undefined,
    );
  });

  it('LIVE carries only the new group id; ZDT carries infrastructure and container', () => {
    const { d, g } = fixture();
    assert.deepEqual(liveUpdateDetails('G2'), {
      modelDeploymentConfigurationDetails: {
        deploymentType: 'MODEL_GROUP',
        updateType: 'LIVE',
        modelGroupConfigurationDetails: { modelGroupId: 'G2' },
      },
    });
    const zdt = zdtUpdateDetails(d, g, 'G2');
    assert.ok(!('compartmentId' in zdt), 'the SDK update type has no compartmentId');
    golden('zdt-update.yaml', zdt);
  });

  it('sees drift only in what we set, not in service defaults', () => {
    const { d, g } = fixture();
    const live = liveFrom(createDeploymentDetails(d, g, 'G1'));
    assert.deepEqual(configDrift(live, d, g), []);
    // What the service fills in on its own is not drift.
    const cfg =
      live.modelDeploymentConfigurationDetails as ds.models.ModelGroupDeploymentConfigurationDetails;
    cfg.infrastructureConfigurationDetails.maximumBandwidthMbps = 10;
    cfg.infrastructureConfigurationDetails.instanceConfiguration.subnetId = 'ocid1.subnet.oc1..s';
    assert.deepEqual(configDrift(live, d, g), []);
    d.spec.oci!.infrastructure.instanceCount = 3;
    d.spec.oci!.container.image = 'iad.ocir.io/ns/vllm:0.7';
    d.spec.oci!.displayName = 'renamed';
    assert.deepEqual(configDrift(live, d, g), ['displayName', 'infrastructure', 'container']);
  });

  it('derives retry tokens from uid, kind, body and salt', () => {
    const a = retryToken(UID, 'model-group', { b: 1, a: [1, 2] });
    assert.equal(a, retryToken(UID, 'model-group', { a: [1, 2], b: 1 }), 'key order does not matter');
    assert.equal(a.length, 64);
    assert.notEqual(a, retryToken(UID, 'model-deployment', { b: 1, a: [1, 2] }));
    assert.notEqual(a, retryToken('other-uid', 'model-group', { b: 1, a: [1, 2] }));
    assert.notEqual(a, retryToken(UID, 'model-group', { b: 1, a: [1, 2] }, 'previous-id'));
  });
});
