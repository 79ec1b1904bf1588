import assert from 'node:assert/strict';
import type { StackedDeployment } from '../../../../src/api/v1alpha1/deployment.ts';
import { CreateJournal, LIST_ALL } from '../../../../src/backends/oci/journal.ts';

const sdep = (uid: string, name = 'sql'): StackedDeployment =>
  ({
    apiVersion: 'serving.stacked.dev/v1alpha1',
    kind: 'StackedDeployment',
    metadata: { namespace: 'team-a', name, uid },
    spec: { backend: 'oci', modelGroupRef: { name: 'g' } },
  }) as StackedDeployment;

const NOTHING = { listDeployments: false, listGroups: false, listHistories: false };

describe('oci create journal: when a pass must list the compartment', () => {
  it('lists nothing for an object met without its finalizer, and hands back the ids its creates returned', () => {
    const j = new CreateJournal();
    const d = sdep('u1');
    assert.deepEqual(j.begin(d, false), NOTHING);
    // The finalizer is on now (protect before the first create); status may still lag the creates.
    j.created(d, { historyId: 'h1' });
    assert.deepEqual(j.begin(d, true), { ...NOTHING, historyId: 'h1', deploymentId: undefined });
    j.created(d, { deploymentId: 'md1' });
    assert.deepEqual(j.begin(d, true), { ...NOTHING, historyId: 'h1', deploymentId: 'md1' });
  });

  it('lists everything for an object that already had its finalizer when this process met it', () => {
    const j = new CreateJournal();
    const d = sdep('u1');
    assert.deepEqual(j.begin(d, true), LIST_ALL);
    // Creates answered later do not make up for what an earlier process may have sent.
    j.created(d, { deploymentId: 'md1' });
    assert.deepEqual(j.begin(d, true), LIST_ALL);
    assert.equal(j.size, 0);
  });

  it('lists groups again once the object made one (its DELETED groups salt the next create token)', () => {
    const j = new CreateJournal();
    const d = sdep('u1');
    j.begin(d, false);
    j.created(d, { group: true });
    assert.deepEqual(j.begin(d, true), {
      ...NOTHING,
      listGroups: true,
      historyId: undefined,
      deploymentId: undefined,
    });
  });

  it('lists everything after a create that failed without an answer (the request may have reached OCI)', () => {
    const j = new CreateJournal();
    const d = sdep('u1');
    j.begin(d, false);
    j.created(d, { historyId: 'h1' });
    j.unanswered(d);
    assert.deepEqual(j.begin(d, true), LIST_ALL);
  });

  it('keeps each object to its key and uid: a namesake made again starts afresh, and forget drops the entry', () => {
    const j = new CreateJournal();
    const first = sdep('u1');
    const other = sdep('u2', 'other');
    j.begin(first, false);
    j.begin(other, false);
    j.created(first, { deploymentId: 'md1' });
    assert.equal(j.begin(other, true).deploymentId, undefined, 'another object does not see md1');
    // Deleted and made again under the same name, already protected when met: nothing is known of it.
    assert.deepEqual(j.begin(sdep('u3'), true), LIST_ALL);
    j.forget('team-a/other');
    assert.deepEqual(j.begin(other, true), LIST_ALL);
    assert.equal(j.size, 1);
  });
});
