import assert from 'node:assert/strict';
import {
  DEPLOYMENT_LABEL,
  Timeline,
  adapterViolations,
  byLabel,
  formatTimeline,
  formatViolations,
  missingAdapters,
  type TimelineInput,
  type Violation,
} from '../../playground/timeline.ts';

const DEP = { [DEPLOYMENT_LABEL]: 'chat' };

/** A hand-made log: [at, event] pairs, appended in the order given. */
function log(...entries: [number, TimelineInput][]): Timeline {
  const t = new Timeline(() => 0);
  for (const [at, e] of entries) t.append({ ...e, at });
  return t;
}

const ready = (pod: string, r = true, labels: Record<string, string> = DEP): TimelineInput => ({
  kind: 'pod-ready',
  pod,
  ready: r,
  labels,
});
const serving = (pod: string, ...adapters: string[]): TimelineInput => ({
  kind: 'sim-serving',
  pod,
  adapters,
});
const stopped = (pod: string): TimelineInput => ({ kind: 'sim-stopped', pod });
const loaded = (pod: string, adapter: string): TimelineInput => ({ kind: 'adapter-loaded', pod, adapter });
const lost = (
  pod: string,
  adapter: string,
  cause: 'unload' | 'unload-direct' | 'stopped' = 'unload',
): TimelineInput => ({
  kind: 'adapter-lost',
  pod,
  adapter,
  cause,
});
const gone = (pod: string): TimelineInput => ({ kind: 'pod-gone', pod });

/** [pod, adapter, from, to] of each violation. */
function windows(vs: Violation[]): [string, string, number, number | undefined][] {
  return vs.map((v) => [v.pod, v.adapter, v.from, v.to]);
}

/** Two Ready pods of deployment ns/chat, both serving x. */
function twoReadyWithX(): [number, TimelineInput][] {
  return [
    [0, serving('ns/a')],
    [1, serving('ns/b')],
    [2, loaded('ns/a', 'x')],
    [3, loaded('ns/b', 'x')],
    [4, ready('ns/a')],
    [5, ready('ns/b')],
  ];
}

describe('timeline', () => {
  describe('Timeline', () => {
    it('numbers events in append order and stamps them with its monotonic clock', () => {
      let now = 100;
      const t = new Timeline(() => now);
      t.append(serving('ns/a'));
      now = 105.5;
      t.note('member added');
      t.append({ ...loaded('ns/a', 'x'), at: 103 });
      assert.equal(t.size, 3);
      assert.deepEqual(
        t.events().map((e) => [e.seq, e.at, e.kind]),
        [
          [1, 100, 'sim-serving'],
          [2, 105.5, 'note'],
          [3, 103, 'adapter-loaded'],
        ],
      );
      assert.deepEqual(
        t.events(104).map((e) => e.seq),
        [2],
      );
      assert.equal(t.now(), 105.5);
    });

    it('uses performance.now by default', () => {
      const t = new Timeline();
      const a = t.append(serving('ns/a')).at;
      const b = t.append(stopped('ns/a')).at;
      assert.ok(b >= a && a > 0);
    });

    it('is returned as a copy: the log cannot be changed through events()', () => {
      const t = log([0, serving('ns/a')]);
      t.events().pop();
      assert.equal(t.events().length, 1);
    });
  });

  describe('adapterViolations', () => {
    it('finds nothing when every Ready pod holds the same adapters', () => {
      assert.deepEqual(adapterViolations(log(...twoReadyWithX()).events()), []);
    });

    it('reports an adapter loaded on A but missing on Ready B for exactly that window', () => {
      const t = log(
        ...twoReadyWithX(),
        [10, loaded('ns/a', 'y')],
        [12.5, loaded('ns/b', 'y')],
        [20, loaded('ns/b', 'z')],
      );
      const vs = adapterViolations(t.events());
      assert.deepEqual(windows(vs), [
        ['ns/b', 'y', 10, 12.5],
        ['ns/a', 'z', 20, undefined],
      ]);
      assert.deepEqual(vs[0]!.heldBy, ['ns/a']);
      assert.equal(vs[0]!.group, 'ns/chat');
      assert.equal(
        formatViolations(vs),
        'ns/b lacked y from 0.0 ms to 2.5 ms (held by ns/a)\nns/a lacked z from 10.0 ms to the end (held by ns/b)',
      );
    });

    it('does not count a restarted container (stopped, then started empty) while the pod is not Ready', () => {
      const t = log(
        ...twoReadyWithX(),
        [10, lost('ns/b', 'x', 'stopped')],
        [10, stopped('ns/b')],
        [11, ready('ns/b', false)],
        [12, serving('ns/b')],
        [15, loaded('ns/b', 'x')],
        [16, ready('ns/b', true)],
      );
      assert.deepEqual(adapterViolations(t.events()), []);
    });

    it('does not count a Ready pod whose simulator is down: it serves nothing, it lacks nothing', () => {
      const t = log(...twoReadyWithX(), [10, stopped('ns/b')], [30, ready('ns/b', false)]);
      assert.deepEqual(adapterViolations(t.events()), []);
    });

    it('reports a restarted container that is Ready again before its adapters are back', () => {
      const t = log(
        ...twoReadyWithX(),
        [10, stopped('ns/b')],
        [11, ready('ns/b', false)],
        [12, serving('ns/b')],
        [14, ready('ns/b', true)],
        [19, loaded('ns/b', 'x')],
      );
      assert.deepEqual(windows(adapterViolations(t.events())), [['ns/b', 'x', 14, 19]]);
    });

    it('reports an unload by hand on a Ready pod until the adapter is back', () => {
      const t = log(...twoReadyWithX(), [10, lost('ns/a', 'x', 'unload-direct')], [13, loaded('ns/a', 'x')]);
      assert.deepEqual(windows(adapterViolations(t.events())), [['ns/a', 'x', 10, 13]]);
    });

    it('opens no window for changes made at the same instant', () => {
      const t = log(...twoReadyWithX(), [10, loaded('ns/a', 'y')], [10, loaded('ns/b', 'y')]);
      assert.deepEqual(adapterViolations(t.events()), []);
    });

    it('replays in time order whatever the append order', () => {
      const t = log(...twoReadyWithX(), [12, loaded('ns/b', 'y')], [10, loaded('ns/a', 'y')]);
      assert.deepEqual(windows(adapterViolations(t.events())), [['ns/b', 'y', 10, 12]]);
    });

    it('counts only Ready pods as holders: a pod that is not Ready makes nobody lack anything', () => {
      const t = log(
        [0, serving('ns/a', 'x')],
        [1, serving('ns/b')],
        [2, ready('ns/b')],
        [3, ready('ns/a', false)],
        [8, ready('ns/a')],
        [9, loaded('ns/b', 'x')],
      );
      assert.deepEqual(windows(adapterViolations(t.events())), [['ns/b', 'x', 8, 9]]);
    });

    it('takes the static adapters a simulator serves with, and a pod that is gone out', () => {
      const t = log(
        [0, serving('ns/a', 'x')],
        [0, serving('ns/b')],
        [1, ready('ns/a')],
        [1, ready('ns/b')],
        [5, gone('ns/a')],
      );
      assert.deepEqual(windows(adapterViolations(t.events())), [['ns/b', 'x', 1, 5]]);
    });

    it('compares pods of one deployment only (label per namespace), and skips pods of none', () => {
      const other = { [DEPLOYMENT_LABEL]: 'sql' };
      const t = log(
        [0, serving('ns/a', 'x')],
        [0, serving('ns/b')],
        [0, serving('ns2/c')],
        [0, serving('ns/d')],
        [1, ready('ns/a')],
        [1, ready('ns/b', true, other)],
        [1, ready('ns2/c')],
        [1, ready('ns/d', true, {})],
      );
      assert.deepEqual(adapterViolations(t.events()), []);
      // One group for everything: everybody lacks x.
      const all = adapterViolations(t.events(), { groupOf: () => 'all' });
      assert.deepEqual(
        all.map((v) => v.pod),
        ['ns/b', 'ns/d', 'ns2/c'],
      );
      assert.equal(byLabel('app')({ key: 'n/p', namespace: 'n', name: 'p', labels: { app: 'x' } }), 'n/x');
    });

    it('can be restricted to some adapters and some pods (prefix or predicate)', () => {
      const t = log(
        ...twoReadyWithX(),
        [0, serving('other/c')],
        [1, ready('other/c')],
        [10, loaded('ns/a', 'y')],
        [10, loaded('other/c', 'y')],
        [11, loaded('other/c', 'z')],
      );
      assert.deepEqual(
        windows(adapterViolations(t.events(), { adapters: ['x'], groupOf: () => 'g' })).map((w) => w[0]),
        ['other/c'],
      );
      assert.deepEqual(windows(adapterViolations(t.events(), { pods: 'ns/' })), [
        ['ns/b', 'y', 10, undefined],
      ]);
      assert.deepEqual(
        windows(adapterViolations(t.events(), { pods: (k) => k !== 'ns/b', groupOf: () => 'g' })),
        [
          ['other/c', 'x', 4, undefined], // from when ns/a is Ready with x
          ['ns/a', 'z', 11, undefined],
        ],
      );
    });

    it('reports only windows open at or after `since`, replays up to `until`, and drops short ones', () => {
      const t = log(
        ...twoReadyWithX(),
        [10, loaded('ns/a', 'y')],
        [11, loaded('ns/b', 'y')],
        [20, loaded('ns/a', 'z')],
        [30, loaded('ns/b', 'z')],
      );
      assert.deepEqual(windows(adapterViolations(t.events(), { since: 15 })), [['ns/b', 'z', 20, 30]]);
      assert.deepEqual(windows(adapterViolations(t.events(), { since: 11 })), [['ns/b', 'z', 20, 30]]);
      assert.deepEqual(windows(adapterViolations(t.events(), { since: 10.5 })).length, 2);
      assert.deepEqual(windows(adapterViolations(t.events(), { until: 25 })), [
        ['ns/b', 'y', 10, 11],
        ['ns/b', 'z', 20, undefined],
      ]);
      assert.deepEqual(windows(adapterViolations(t.events(), { minWindowMs: 5 })), [['ns/b', 'z', 20, 30]]);
    });

    it('ignores notes', () => {
      const t = log(...twoReadyWithX());
      t.note('nothing happens');
      assert.deepEqual(adapterViolations(t.events()), []);
      assert.match(formatTimeline(t.events()), /-- nothing happens$/);
    });
  });

  describe('missingAdapters', () => {
    it('reports every Ready, running pod that lacks one of the adapters, whatever its group', () => {
      const t = log(
        [0, serving('ns/a', 'x')],
        [0, serving('ns/b')],
        [1, ready('ns/a', true, {})],
        [2, ready('ns/b')],
        [5, loaded('ns/b', 'x')],
        [6, stopped('ns/a')],
        [8, serving('ns/a')],
      );
      const vs = missingAdapters(t.events(), ['x', 'y']);
      assert.deepEqual(windows(vs), [
        ['ns/a', 'y', 1, 6],
        ['ns/b', 'x', 2, 5],
        ['ns/b', 'y', 2, undefined],
        ['ns/a', 'x', 8, undefined],
        ['ns/a', 'y', 8, undefined],
      ]);
      assert.deepEqual(vs[0]!.heldBy, []);
      assert.equal(vs[0]!.group, undefined);
      assert.deepEqual(windows(missingAdapters(t.events(), ['x'], { pods: 'ns/b', since: 5 })), []);
    });
  });

  it('formats a log for a failing test', () => {
    const t = log(
      [0, serving('ns/a', 'x')],
      [1, ready('ns/a')],
      [2, lost('ns/a', 'x', 'stopped')],
      [2, stopped('ns/a')],
      [3, gone('ns/a')],
      [4, serving('ns/other')],
    );
    assert.equal(
      formatTimeline(t.events(), 'ns/a'),
      [
        '      0.0 ms ns/a serving [x]',
        '      1.0 ms ns/a Ready=True',
        '      2.0 ms ns/a lost x (stopped)',
        '      2.0 ms ns/a stopped',
        '      3.0 ms ns/a gone',
      ].join('\n'),
    );
  });
});
