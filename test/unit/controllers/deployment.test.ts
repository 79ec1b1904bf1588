import assert from 'node:assert/strict';
import type { StackedDeployment } from '../../../src/api/v1alpha1/deployment.ts';
import type { StackedModelGroup } from '../../../src/api/v1alpha1/modelgroup.ts';
import { withDefaults } from '../../../src/api/v1alpha1/validate.ts';
import { ociPreflight } from '../../../src/backends/oci/preflight.ts';
import { vllmPreflight } from '../../../src/backends/vllm/preflight.ts';
import { groupProblem as sharedProblem } from '../../../src/controllers/deployment/checks.ts';
import { desiredDeploymentStatus, preflight } from '../../../src/controllers/deployment/status.ts';
import { sampleDeployment, sampleGroup } from '../../support/objects.ts';

function dep(
  file: 'deployment-vllm.yaml' | 'deployment-oci.yaml',
  m: (d: StackedDeployment) => void = () => undefined,
) {
  const d = withDefaults('StackedDeployment', sampleDeployment(file, 'd'));
  d.metadata.namespace = 'ml';
  d.metadata.generation = 2;
  m(d);
  return d;
}
/** The checks in the order the reconciler runs them: shared ones, then the backend's. */
function groupProblem(d: StackedDeployment, g: StackedModelGroup | undefined) {
  if (g === undefined) return sharedProblem(d, g);
  return (
    sharedProblem(d, g) ??
    (d.spec.backend === 'oci' ? ociPreflight(d, g, new Map()) : vllmPreflight(d, g, new Map()))
  );
}
const group = (m: (g: StackedModelGroup) => void = () => undefined) => sampleGroup('sql-assistants', m);

describe('StackedDeployment checks (pure)', () => {
  it('says the group is missing, by name and namespace', () => {
    assert.deepEqual(groupProblem(dep('deployment-vllm.yaml'), undefined), {
      ready: false,
      reason: 'ModelGroupNotFound',
      message: 'StackedModelGroup "sql-assistants" not found in namespace ml',
    });
  });

  it('repeats the message of a group that is not ready', () => {
    const g = group(
      (x) =>
        (x.status = {
          conditions: [
            {
              type: 'Ready',
              status: 'False',
              reason: 'MemberInvalid',
              message: 'member a: x',
              lastTransitionTime: 't',
            },
          ],
        }),
    );
    assert.equal(
      groupProblem(dep('deployment-vllm.yaml'), g)?.message,
      'StackedModelGroup "sql-assistants" is not ready: member a: x',
    );
  });

  it('names every member whose rank exceeds maxLoraRank', () => {
    const g = group((x) => {
      x.spec.members![0]!.rank = 128;
      x.spec.members![1]!.rank = 256;
    });
    assert.equal(
      groupProblem(dep('deployment-vllm.yaml'), g)?.message,
      'member sql-lora-1 (rank 128), sql-lora-2 (rank 256) exceeds engine.maxLoraRank 64',
    );
    assert.equal(
      groupProblem(
        dep('deployment-vllm.yaml', (d) => (d.spec.engine.maxLoraRank = 256)),
        g,
      ),
      undefined,
    );
  });

  it('needs modelId on every model for the oci backend only', () => {
    const g = group((x) => delete x.spec.baseModel.modelId);
    assert.equal(groupProblem(dep('deployment-oci.yaml'), g)?.reason, 'ModelIdMissing');
    assert.match(groupProblem(dep('deployment-oci.yaml'), g)!.message, /missing on basemodel$/);
    assert.equal(groupProblem(dep('deployment-vllm.yaml'), g), undefined);
  });

  it('needs spec.vllm.oci for members or a base read from OCI, naming them, before any pod is touched', () => {
    const g = group((x) => {
      x.spec.members![1]!.source = { uri: 'oci://adapters@ns/sql-lora-2/' };
      x.spec.baseModel.source = { modelCatalog: {} };
    });
    assert.deepEqual(groupProblem(dep('deployment-vllm.yaml'), g), {
      ready: false,
      reason: 'OciAccessMissing',
      message:
        'basemodel, sql-lora-2 read from OCI (oci:// or modelCatalog): set spec.vllm.oci (region and auth) so the fetch agent can reach it',
    });
    assert.equal(
      groupProblem(dep('deployment-oci.yaml'), g),
      undefined,
      'the oci backend has its own access',
    );
    const withAccess = dep('deployment-vllm.yaml', (d) => {
      d.spec.vllm!.oci = {
        region: 'us-ashburn-1',
        auth: { type: 'apiKey', secretRef: { name: 'oci-api-key' } },
      };
    });
    assert.equal(groupProblem(withAccess, g), undefined, 'the fetch agent reads them');
    const https = group((x) => (x.spec.members![1]!.source = { uri: 'https://h/a.tgz' }));
    assert.equal(
      groupProblem(dep('deployment-vllm.yaml'), https),
      undefined,
      'https archives need no OCI access',
    );
  });

  it('checks experiments against the group', () => {
    const named = dep('deployment-vllm.yaml', (d) => (d.spec.experiments![0]!.name = 'basemodel'));
    assert.equal(
      groupProblem(named, group())?.message,
      'experiment basemodel: its name is an inference key of group "sql-assistants"',
    );
    const unknown = dep(
      'deployment-vllm.yaml',
      (d) => (d.spec.experiments![0]!.variants[0]!.inferenceKey = 'ghost'),
    );
    assert.equal(
      groupProblem(unknown, group())?.message,
      'experiment sql-ab: variant ghost is not a member of group "sql-assistants"',
    );
  });

  it('lets a valid oci deployment through to the backend, and stamps the generation', () => {
    const d = dep('deployment-oci.yaml');
    assert.equal(preflight(d, group(), []), undefined, 'nothing keeps the backend from acting');
    const v = { ready: false, reason: 'DeploymentCreating', message: 'OCI model deployment is CREATING' };
    const s = desiredDeploymentStatus(d, v, new Date('2026-11-27T10:00:00.123Z'));
    assert.equal(s.observedGeneration, 2);
    assert.equal(s.conditions![0]!.observedGeneration, 2);
    assert.equal(s.conditions![0]!.status, 'False');
    d.status = s;
    assert.deepEqual(
      desiredDeploymentStatus(d, v, new Date('2026-11-27T11:00:00Z')),
      s,
      'a fixed point at rest',
    );
  });

  it('reports validator findings first', () => {
    assert.equal(
      preflight(dep('deployment-vllm.yaml'), undefined, [{ path: 'spec.x', message: 'unknown field' }])
        ?.reason,
      'InvalidSpec',
    );
  });
});
