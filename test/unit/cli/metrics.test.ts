import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import {
  parseMetrics,
  quantile,
  variantStats,
  type ExperimentSpec,
  type Sample,
} from '../../../src/cli/metrics.ts';
import { RouterMetrics } from '../../../src/router/metrics.ts';

const close = (actual: number | undefined, expected: number, what: string) => {
  assert.ok(
    actual !== undefined && Math.abs(actual - expected) < 1e-9,
    `${what}: ${String(actual)} ≠ ${String(expected)}`,
  );
};

describe('kubectl stacked: the routers’ Prometheus text', () => {
  describe('parseMetrics', () => {
    const cases: [string, string, Sample[]][] = [
      ['a sample without labels', 'up 1', [{ name: 'up', labels: {}, value: 1 }]],
      [
        'comments and blank lines skipped',
        '# HELP up Up.\n# TYPE up gauge\n\nup 1\n',
        [{ name: 'up', labels: {}, value: 1 }],
      ],
      [
        'labels, in any order',
        'stacked_router_requests_total{model="sql-ab",variant="sql-a",code="200"} 7',
        [
          {
            name: 'stacked_router_requests_total',
            labels: { model: 'sql-ab', variant: 'sql-a', code: '200' },
            value: 7,
          },
        ],
      ],
      ['an empty label value', 'm{variant=""} 3', [{ name: 'm', labels: { variant: '' }, value: 3 }]],
      [
        'escaped quote, backslash and newline in a label value',
        String.raw`m{a="say \"hi\"",b="C:\\dir",c="x\ny"} 1`,
        [{ name: 'm', labels: { a: 'say "hi"', b: 'C:\\dir', c: 'x\ny' }, value: 1 }],
      ],
      [
        'a comma, a brace and a space in a label value',
        'm{a="x,y} z",b="w"} 2',
        [{ name: 'm', labels: { a: 'x,y} z', b: 'w' }, value: 2 }],
      ],
      [
        'a timestamp after the value ignored',
        'm{a="b"} 4 1712000000000',
        [{ name: 'm', labels: { a: 'b' }, value: 4 }],
      ],
      ['a float in exponent form', 'm_sum 1.5e-3', [{ name: 'm_sum', labels: {}, value: 0.0015 }]],
      [
        'CRLF line ends',
        'a 1\r\nb 2\r\n',
        [
          { name: 'a', labels: {}, value: 1 },
          { name: 'b', labels: {}, value: 2 },
        ],
      ],
      [
        '+Inf and -Inf values',
        'g{x="1"} +Inf\ng{x="2"} -Inf',
        [
          { name: 'g', labels: { x: '1' }, value: Infinity },
          { name: 'g', labels: { x: '2' }, value: -Infinity },
        ],
      ],
      ['a value that is no number skipped', 'm abc\nn 5', [{ name: 'n', labels: {}, value: 5 }]],
      ['a line with no value skipped', 'm{a="b"}\nn 5', [{ name: 'n', labels: {}, value: 5 }]],
      ['NaN skipped (it would poison a sum)', 'm NaN\nn 5', [{ name: 'n', labels: {}, value: 5 }]],
    ];
    for (const [name, text, want] of cases) {
      it(name, () => {
        assert.deepEqual(parseMetrics(text), want);
      });
    }
  });

  describe('quantile (as Prometheus’s histogram_quantile)', () => {
    const buckets: [number, number][] = [
      [0.1, 3],
      [0.25, 8],
      [0.5, 14],
      [1, 20],
      [Infinity, 20],
    ];
    const cases: [string, number, readonly [number, number][], number | undefined][] = [
      // rank 19 lies in (0.5, 1]: 0.5 + 0.5 * (19 - 14) / (20 - 14)
      ['p95 interpolated within its bucket', 0.95, buckets, 0.5 + (0.5 * 5) / 6],
      // rank 10 lies in (0.25, 0.5]: 0.25 + 0.25 * (10 - 8) / (14 - 8)
      ['p50 interpolated within its bucket', 0.5, buckets, 0.25 + (0.25 * 2) / 6],
      // rank 1.5 lies in the first bucket, whose lower bound is 0: 0.1 * 1.5 / 3
      ['a rank in the first bucket, from 0', 0.075, buckets, 0.05],
      ['a rank at a bucket’s upper count is its bound', 0.4, buckets, 0.25],
      ['buckets given out of order', 0.95, [...buckets].reverse(), 0.5 + (0.5 * 5) / 6],
      [
        'a rank in the +Inf bucket is the highest finite bound',
        0.95,
        [
          [0.1, 3],
          [1, 10],
          [Infinity, 20],
        ],
        1,
      ],
      [
        'no observations',
        0.95,
        [
          [0.1, 0],
          [Infinity, 0],
        ],
        undefined,
      ],
      ['no buckets', 0.95, [], undefined],
    ];
    for (const [name, q, b, want] of cases) {
      it(name, () => {
        const got = quantile(q, b);
        if (want === undefined) assert.equal(got, undefined);
        else close(got, want, name);
      });
    }
  });

  describe('variantStats: per variant, summed over router replicas', () => {
    const experiments: ExperimentSpec[] = [
      {
        name: 'sql-ab',
        variants: [
          { inferenceKey: 'sql-a', weight: 80 },
          { inferenceKey: 'sql-b', weight: 20 },
          { inferenceKey: 'sql-c', weight: 0 },
        ],
      },
      { name: 'idle', variants: [{ inferenceKey: 'sql-a', weight: 100 }] },
    ];
    const bucketLines = (variant: string, counts: [string, number][]) =>
      counts.map(
        ([le, n]) =>
          `stacked_router_request_duration_seconds_bucket{le="${le}",model="sql-ab",variant="${variant}"} ${String(n)}`,
      );
    const replica1 = [
      '# HELP stacked_router_requests_total Inference requests answered',
      '# TYPE stacked_router_requests_total counter',
      'stacked_router_requests_total{model="sql-ab",variant="sql-a",code="200"} 9',
      'stacked_router_requests_total{model="sql-ab",variant="sql-a",code="503"} 2',
      'stacked_router_requests_total{model="sql-ab",variant="sql-a",code="404"} 2',
      'stacked_router_requests_total{model="sql-ab",variant="sql-b",code="200"} 8',
      'stacked_router_requests_total{model="sql-ab",variant="sql-b",code="429"} 2',
      // Not the experiment: the key asked for by name, and another experiment's traffic.
      'stacked_router_requests_total{model="sql-a",variant="",code="200"} 100',
      'stacked_router_requests_total{model="sql-a",variant="",code="500"} 100',
      'stacked_router_requests_total{model="other",variant="sql-a",code="500"} 50',
      ...bucketLines('sql-a', [
        ['0.1', 2],
        ['0.25', 5],
        ['0.5', 8],
        ['1', 10],
        ['+Inf', 10],
      ]),
      'stacked_router_request_duration_seconds_sum{model="sql-ab",variant="sql-a"} 5',
      'stacked_router_request_duration_seconds_count{model="sql-ab",variant="sql-a"} 10',
      'stacked_router_request_duration_seconds_bucket{le="+Inf",model="sql-a",variant=""} 1000',
      'stacked_router_request_duration_seconds_sum{model="sql-a",variant=""} 1000',
      'stacked_router_request_duration_seconds_count{model="sql-a",variant=""} 1000',
    ].join('\n');
    const replica2 = [
      'stacked_router_requests_total{model="sql-ab",variant="sql-a",code="200"} 6',
      'stacked_router_requests_total{model="sql-ab",variant="sql-a",code="500"} 1',
      'stacked_router_requests_total{model="sql-ab",variant="sql-a",code="499"} 1',
      'stacked_router_requests_total{model="sql-ab",variant="sql-a",code="503"} 1',
      ...bucketLines('sql-a', [
        ['0.1', 1],
        ['0.25', 3],
        ['0.5', 6],
        ['1', 10],
        ['+Inf', 10],
      ]),
      'stacked_router_request_duration_seconds_sum{model="sql-ab",variant="sql-a"} 7.5',
      'stacked_router_request_duration_seconds_count{model="sql-ab",variant="sql-a"} 10',
    ].join('\n');
    const stats = variantStats(experiments, [...parseMetrics(replica1), ...parseMetrics(replica2)]);
    const of = (e: string, v: string) => {
      const s = stats.find((x) => x.experiment === e && x.variant === v);
      assert.ok(s !== undefined, `${e}/${v}`);
      return s;
    };

    it('one row per variant of each experiment, in spec order, with its weight', () => {
      assert.deepEqual(
        stats.map((s) => [s.experiment, s.variant, s.weight]),
        [
          ['sql-ab', 'sql-a', 80],
          ['sql-ab', 'sql-b', 20],
          ['sql-ab', 'sql-c', 0],
          ['idle', 'sql-a', 100],
        ],
      );
    });

    it('requests and codes summed over replicas, only the experiment’s model label', () => {
      assert.deepEqual(of('sql-ab', 'sql-a').codes, { '200': 15, '503': 3, '404': 2, '500': 1, '499': 1 });
      assert.equal(of('sql-ab', 'sql-a').requests, 22);
      assert.deepEqual(of('sql-ab', 'sql-b').codes, { '200': 8, '429': 2 });
      assert.equal(of('sql-ab', 'sql-b').requests, 10);
    });

    it('errors are the 5xx answers only (4xx and 499 are the client’s)', () => {
      assert.equal(of('sql-ab', 'sql-a').errors, 4);
      assert.equal(of('sql-ab', 'sql-b').errors, 0);
    });

    it('share of the experiment’s requests', () => {
      close(of('sql-ab', 'sql-a').share, 22 / 32, 'sql-a share');
      close(of('sql-ab', 'sql-b').share, 10 / 32, 'sql-b share');
      assert.equal(of('sql-ab', 'sql-c').share, 0);
    });

    it('mean from _sum/_count, and p50/p95 from the summed buckets (hand-computed)', () => {
      const a = of('sql-ab', 'sql-a');
      close(a.meanSeconds, 12.5 / 20, 'mean');
      // Summed buckets: 0.1:3, 0.25:8, 0.5:14, 1:20, +Inf:20.
      close(a.p95Seconds, 0.5 + (0.5 * (19 - 14)) / (20 - 14), 'p95');
      close(a.p50Seconds, 0.25 + (0.25 * (10 - 8)) / (14 - 8), 'p50');
    });

    it('a variant with no traffic has no latency keys at all (so -o yaml/json omit them)', () => {
      for (const s of [of('sql-ab', 'sql-b'), of('sql-ab', 'sql-c'), of('idle', 'sql-a')]) {
        assert.ok(!('meanSeconds' in s) && !('p50Seconds' in s) && !('p95Seconds' in s), s.variant);
      }
      assert.deepEqual(of('idle', 'sql-a'), {
        experiment: 'idle',
        variant: 'sql-a',
        weight: 100,
        requests: 0,
        errors: 0,
        codes: {},
        share: 0,
      });
    });

    it('no experiments, no rows', () => {
      assert.deepEqual(variantStats([], parseMetrics(replica1)), []);
    });
  });

  it('reads what the router’s own prom-client registry exposes', async () => {
    const m = new RouterMetrics(new Registry());
    const labels = { model: 'sql-ab', variant: 'sql-b' };
    for (const s of [0.02, 0.03, 0.04, 0.2, 0.3, 0.4, 0.6, 0.7, 0.8, 3]) m.duration.observe(labels, s);
    m.requests.inc({ ...labels, code: '200' }, 9);
    m.requests.inc({ ...labels, code: '502' });
    const [s] = variantStats(
      [{ name: 'sql-ab', variants: [{ inferenceKey: 'sql-b', weight: 1 }] }],
      parseMetrics(await m.registry.metrics()),
    );
    assert.ok(s !== undefined);
    assert.equal(s.requests, 10);
    assert.equal(s.errors, 1);
    close(s.meanSeconds, 6.09 / 10, 'mean');
    // Buckets (le: cumulative): 0.025:1, 0.05:3, 0.25:4, 0.5:6, 1:9, 2.5:9, 5:10. Rank 9.5 is in (2.5, 5].
    close(s.p95Seconds, 2.5 + (2.5 * (9.5 - 9)) / (10 - 9), 'p95');
    // Rank 5 is in (0.25, 0.5]: 0.25 + 0.25 * (5 - 4) / (6 - 4).
    close(s.p50Seconds, 0.375, 'p50');
  });
});
