import assert from 'node:assert/strict';
import { earlyLoads, planAdapters } from '../../../../src/backends/vllm/plan.ts';

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

describe('vllm backend: early loads (pure)', () => {
  const w = (name: string, fetch = false) => ({
    name,
    path: `/mnt/${name}`,
    ...(fetch ? { fetch: { name, uri: `https://x/${name}` } } : {}),
  });
  const state = { loaded: ['a'], failed: { b: 'bad rank' }, fetching: ['c'] };

  it('starts only members the container never held, refused or is downloading', () => {
    assert.deepEqual(
      earlyLoads([w('a'), w('b'), w('c'), w('d'), w('e')], state, 4).map((x) => x.name),
      ['d', 'e'],
    );
  });

  it('starts none for a container with no state of its own, nor for members that need a fetch', () => {
    assert.deepEqual(earlyLoads([w('d')], undefined, 4), []);
    assert.deepEqual(earlyLoads([w('d', true)], state, 4), []);
  });

  it('starts at most the per-pod limit', () => {
    assert.deepEqual(
      earlyLoads([w('d'), w('e'), w('f')], state, 2).map((x) => x.name),
      ['d', 'e'],
    );
  });
});
