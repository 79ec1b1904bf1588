import assert from 'node:assert/strict';
import { pickPod } from '../../../src/router/pick.ts';
import type { PodEndpoint } from '../../../src/router/pods.ts';

function endpoint(name: string, adapters: string[]): PodEndpoint {
  return { name, origin: `http://${name}:8000`, adapters: new Set(adapters) };
}

interface Case {
  name: string;
  /** name -> [adapters held, outstanding, adapters running in a GPU slot] */
  pods: Record<string, [string[], number, string[]]>;
  adapter: string | undefined;
  excluded?: string[];
  margin?: number;
  want: string | undefined;
}

describe('router/pick', () => {
  const cases: Case[] = [
    { name: 'no pods', pods: {}, adapter: 'a', want: undefined },
    {
      name: 'the base goes to the least loaded pod',
      pods: { p1: [[], 3, []], p2: [[], 1, []] },
      adapter: undefined,
      want: 'p2',
    },
    {
      name: 'only a pod that holds the adapter',
      pods: { p1: [[], 0, []], p2: [['a'], 9, []] },
      adapter: 'a',
      want: 'p2',
    },
    { name: 'nobody holds it', pods: { p1: [['b'], 0, []] }, adapter: 'a', want: undefined },
    {
      name: 'least loaded of the holders',
      pods: { p1: [['a'], 5, []], p2: [['a'], 2, []] },
      adapter: 'a',
      want: 'p2',
    },
    {
      name: 'affinity wins within the margin',
      pods: { p1: [['a'], 6, ['a']], p2: [['a'], 2, []] },
      adapter: 'a',
      margin: 4,
      want: 'p1',
    },
    {
      name: 'affinity loses beyond the margin',
      pods: { p1: [['a'], 7, ['a']], p2: [['a'], 2, []] },
      adapter: 'a',
      margin: 4,
      want: 'p2',
    },
    {
      name: 'margin 0: affinity only on equal load',
      pods: { p1: [['a'], 2, ['a']], p2: [['a'], 2, []] },
      adapter: 'a',
      margin: 0,
      want: 'p1',
    },
    {
      name: 'affinity for another adapter does not count',
      pods: { p1: [['a'], 3, ['b']], p2: [['a'], 2, []] },
      adapter: 'a',
      want: 'p2',
    },
    {
      name: 'the least loaded affine pod',
      pods: { p1: [['a'], 3, ['a']], p2: [['a'], 1, ['a']], p3: [['a'], 0, []] },
      adapter: 'a',
      want: 'p2',
    },
    {
      name: 'an excluded pod is skipped',
      pods: { p1: [['a'], 0, ['a']], p2: [['a'], 9, []] },
      adapter: 'a',
      excluded: ['p1'],
      want: 'p2',
    },
    {
      name: 'every holder excluded',
      pods: { p1: [['a'], 0, []] },
      adapter: 'a',
      excluded: ['p1'],
      want: undefined,
    },
    {
      name: 'base requests ignore affinity',
      pods: { p1: [[], 2, ['a']], p2: [[], 1, []] },
      adapter: undefined,
      want: 'p2',
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const entries = Object.entries(c.pods);
      const got = pickPod({
        pods: entries.map(([name, [held]]) => endpoint(name, held)),
        adapter: c.adapter,
        outstanding: (p) => c.pods[p]?.[1] ?? 0,
        running: (p, a) => c.pods[p]?.[2].includes(a) ?? false,
        excluded: (p) => c.excluded?.includes(p) ?? false,
        affinityMargin: c.margin ?? 4,
        random: () => 0,
      });
      assert.equal(got?.name, c.want);
    });
  }

  it('spreads ties between equally loaded pods', () => {
    const pods = ['p1', 'p2', 'p3'].map((n) => endpoint(n, []));
    const seen = new Set<string>();
    for (const r of [0, 0.4, 0.9]) {
      seen.add(
        pickPod({
          pods,
          adapter: undefined,
          outstanding: () => 0,
          running: () => false,
          excluded: () => false,
          affinityMargin: 4,
          random: () => r,
        })?.name ?? '',
      );
    }
    assert.deepEqual([...seen].sort(), ['p1', 'p2', 'p3']);
  });
});
