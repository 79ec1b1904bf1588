import assert from 'node:assert/strict';
import type { StackedDeployment } from '../../../src/api/v1alpha1/deployment.ts';
import { withDefaults } from '../../../src/api/v1alpha1/validate.ts';
import {
  groupVerdict,
  memberStatuses,
  servedBy,
  type GroupFacts,
} from '../../../src/controllers/modelgroup/checks.ts';
import { desiredGroupStatus } from '../../../src/controllers/modelgroup/status.ts';
import { sampleDeployment, sampleGroup } from '../../support/objects.ts';

const T0 = new Date('2026-11-27T10:00:00Z');
const T1 = new Date('2026-11-27T10:05:00Z');
const noFacts: GroupFacts = { claims: new Set(), deployments: [] };

function withPvc() {
  const g = sampleGroup('g', (x) => (x.spec.members![1]!.source = { pvc: { claimName: 'adapters' } }));
  g.metadata.namespace = 'ml';
  g.metadata.generation = 1;
  return g;
}

describe('StackedModelGroup status (pure)', () => {
  it('is Ready with reason Valid when every source is usable', () => {
    const s = desiredGroupStatus(
      sampleGroup('g', (g) => (g.metadata.generation = 3)),
      noFacts,
      [],
      T0,
    );
    assert.equal(s.observedGeneration, 3);
    assert.equal(s.memberCount, 2);
    assert.deepEqual(s.conditions, [
      {
        type: 'Ready',
        status: 'True',
        reason: 'Valid',
        message: 'base model basemodel and 2 members are valid',
        lastTransitionTime: '2026-11-27T10:00:00Z',
        observedGeneration: 3,
      },
    ]);
  });

  it('names the member and the missing PVC, and recovers when it appears', () => {
    const g = withPvc();
    const broken = desiredGroupStatus(g, noFacts, [], T0);
    const c = broken.conditions![0]!;
    assert.equal(c.status, 'False');
    assert.equal(c.reason, 'MemberInvalid');
    assert.equal(c.message, 'member sql-lora-2: PersistentVolumeClaim "adapters" not found');
    assert.deepEqual(
      broken.members!.map((m) => [m.inferenceKey, m.valid, m.message]),
      [
        ['sql-lora-1', true, undefined],
        ['sql-lora-2', false, 'PersistentVolumeClaim "adapters" not found'],
      ],
    );
    g.status = broken;
    const fixed = desiredGroupStatus(g, { claims: new Set(['adapters']), deployments: [] }, [], T1);
    assert.equal(fixed.conditions![0]!.status, 'True');
    assert.equal(fixed.conditions![0]!.lastTransitionTime, '2026-11-27T10:05:00Z');
  });

  it('is a fixed point: the status of a settled group recomputes to itself (no write at rest)', () => {
    const g = withPvc();
    g.status = desiredGroupStatus(g, noFacts, [], T0);
    assert.deepEqual(desiredGroupStatus(g, noFacts, [], T1), g.status);
  });

  it('reports the base model first when its source is missing', () => {
    const g = sampleGroup('g', (x) => (x.spec.baseModel.source = { pvc: { claimName: 'base' } }));
    const v = groupVerdict(g, memberStatuses(g, noFacts), noFacts);
    assert.deepEqual(v, {
      ready: false,
      reason: 'SourceNotFound',
      message: 'baseModel basemodel: PersistentVolumeClaim "base" not found',
    });
  });

  it('reports validator findings as InvalidSpec without member details', () => {
    const s = desiredGroupStatus(
      sampleGroup('g'),
      noFacts,
      [{ path: 'spec.members[0].rank', message: 'must be <= 512' }],
      T0,
    );
    assert.equal(s.conditions![0]!.reason, 'InvalidSpec');
    assert.equal(s.conditions![0]!.message, 'spec.members[0].rank: must be <= 512');
    assert.equal(s.members, undefined);
  });

  it('lists the deployments that report a member loaded', () => {
    const loaded = (name: string, state: 'Loaded' | 'Failed'): StackedDeployment => {
      const d = withDefaults('StackedDeployment', sampleDeployment('deployment-vllm.yaml', name));
      d.status = { adapters: [{ inferenceKey: 'sql-lora-1', state }] };
      return d;
    };
    assert.deepEqual(
      servedBy('sql-lora-1', [loaded('zeta', 'Loaded'), loaded('alpha', 'Loaded'), loaded('beta', 'Failed')]),
      ['alpha', 'zeta'],
    );
    assert.deepEqual(servedBy('sql-lora-2', [loaded('zeta', 'Loaded')]), []);
  });
});
