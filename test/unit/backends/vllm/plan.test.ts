import assert from 'node:assert/strict';
import { planAdapters } from '../../../../src/backends/vllm/plan.ts';

const base = { id: 'basemodel', root: 'meta-llama/Llama-3.1-8B-Instruct', parent: null };
const card = (id: string, root: string) => ({ id, root, parent: 'basemodel' });

describe('vllm backend: adapter plan (pure)', () => {
  it('loads what is missing, keeps what is there, unloads what left the group', () => {
    const plan = planAdapters(
      [
        { name: 'a', path: '/mnt/pvc/x/a' },
        { name: 'b', path: 'org/b' },
      ],
      [base, card('a', '/mnt/pvc/x/a'), card('old', '/mnt/pvc/x/old')],
    );
    assert.deepEqual(plan, {
      present: ['a'],
      load: [{ name: 'b', path: 'org/b' }],
      replace: [],
      unload: ['old'],
    });
  });

  it('never unloads a base model, even one that looks like an adapter name', () => {
    const plan = planAdapters(
      [],
      [base, { id: 'ocid1.datasciencemodel.oc1.iad.x', root: 'm', parent: null }],
    );
    assert.deepEqual(plan.unload, []);
  });

  it('reloads in place an adapter whose source moved', () => {
    const plan = planAdapters([{ name: 'a', path: '/mnt/pvc/x/a-v2' }], [base, card('a', '/mnt/pvc/x/a')]);
    assert.deepEqual(plan.replace, [{ name: 'a', path: '/mnt/pvc/x/a-v2' }]);
    assert.deepEqual(plan.load, []);
  });

  it('treats an empty model list (a restarted container) as everything to load', () => {
    const plan = planAdapters([{ name: 'a', path: 'p' }], [base]);
    assert.deepEqual(plan.load, [{ name: 'a', path: 'p' }]);
  });
});
