import assert from 'node:assert/strict';
import { load } from 'js-yaml';
import type { StackedDeployment } from '../../../src/api/v1alpha1/deployment.ts';
import type { Output } from '../../../src/cli/args.ts';
import { experimentTable, type ExperimentReport } from '../../../src/cli/experiment.ts';
import { render, table } from '../../../src/cli/output.ts';
import { predictPath } from '../../../src/cli/predict.ts';

describe('kubectl stacked: output', () => {
  describe('table', () => {
    const cases: [string, string[], string[][], string][] = [
      [
        'columns padded to the widest cell, three spaces apart',
        ['NAME', 'STATE'],
        [
          ['sql-a', 'Loaded'],
          ['b', 'Failed'],
        ],
        'NAME    STATE\nsql-a   Loaded\nb       Failed\n',
      ],
      [
        'the last column not padded, no trailing spaces',
        ['A', 'B'],
        [
          ['x', ''],
          ['y', 'long value'],
        ],
        'A   B\nx\ny   long value\n',
      ],
      ['headers alone when there are no rows', ['MEMBER', 'STATE'], [], 'MEMBER   STATE\n'],
      [
        'a header wider than its cells',
        ['EXPERIMENT', 'N'],
        [['e', '1']],
        'EXPERIMENT   N\ne            1\n',
      ],
      ['a short row leaves its missing cells empty', ['A', 'B', 'C'], [['aaaa']], 'A      B   C\naaaa\n'],
    ];
    for (const [name, headers, rows, want] of cases) {
      it(name, () => {
        assert.equal(table(headers, rows), want);
      });
    }
  });

  describe('render', () => {
    const value = {
      name: 'sql',
      count: 2,
      absent: undefined,
      nested: { list: ['a', 'b'], text: 'line 1\nline 2' },
    };
    const cases: [Output, (s: string) => void][] = [
      [
        'json',
        (s) => {
          assert.ok(s.endsWith('}\n'));
          assert.ok(s.includes('\n  "count": 2,'), 'indented by two');
          assert.deepEqual(JSON.parse(s), {
            name: 'sql',
            count: 2,
            nested: { list: ['a', 'b'], text: 'line 1\nline 2' },
          });
        },
      ],
      [
        'yaml',
        (s) => {
          assert.ok(s.startsWith('name: sql\ncount: 2\n'), s);
          assert.ok(!s.includes('absent'), 'an undefined key is left out');
          assert.deepEqual(load(s), {
            name: 'sql',
            count: 2,
            nested: { list: ['a', 'b'], text: 'line 1\nline 2' },
          });
        },
      ],
      [
        'table',
        (s) => {
          assert.equal(s, 'THE TABLE\n');
        },
      ],
    ];
    for (const [output, check] of cases) {
      it(`-o ${output}`, () => {
        let called = 0;
        const s = render(output, value, () => {
          called++;
          return 'THE TABLE\n';
        });
        check(s);
        assert.equal(called, output === 'table' ? 1 : 0, 'the table is built only for -o table');
      });
    }

    it('-o yaml does not fold a long line', () => {
      const long = 'x'.repeat(300);
      assert.equal(
        render('yaml', { long }, () => ''),
        `long: ${long}\n`,
      );
    });
  });

  describe('experimentTable', () => {
    it('per variant: weight, requests, share, errors with their rate, and latencies in ms', () => {
      const r: ExperimentReport = {
        deployment: 'sql-prod',
        namespace: 'ml',
        routers: [{ pod: 'r-0', via: 'pod' }],
        variants: [
          {
            experiment: 'sql-ab',
            variant: 'sql-a',
            weight: 80,
            requests: 22,
            errors: 4,
            codes: {},
            share: 22 / 32,
            meanSeconds: 0.625,
            p50Seconds: 1 / 3,
            p95Seconds: 0.91666,
          },
          { experiment: 'sql-ab', variant: 'sql-b', weight: 20, requests: 0, errors: 0, codes: {}, share: 0 },
        ],
      };
      assert.equal(
        experimentTable(r),
        [
          'EXPERIMENT   VARIANT   WEIGHT   REQUESTS   SHARE   ERRORS      MEAN      P50       P95',
          'sql-ab       sql-a     80       22         68.8%   4 (18.2%)   625.0ms   333.3ms   916.7ms',
          'sql-ab       sql-b     20       0          0.0%    0 (0.0%)    -         -         -',
          '',
        ].join('\n'),
      );
    });
  });

  describe('predictPath: where the seed’s predict call goes', () => {
    const sdep = { metadata: { name: 'sql-prod', namespace: 'ml' } } as unknown as StackedDeployment;
    const cases: [string, string, boolean, string][] = [
      [
        'the router takes the seed’s body at /predict',
        'http://sql-prod-router.ml.svc:8080',
        false,
        '/predict',
      ],
      [
        'the router streams on /v1/completions',
        'http://sql-prod-router.ml.svc:8080',
        true,
        '/v1/completions',
      ],
      ['the vLLM Service speaks OpenAI only', 'http://sql-prod-vllm.ml.svc:8000', false, '/v1/completions'],
      [
        'another deployment’s router is no router of this one',
        'http://other-router.ml.svc:8080',
        false,
        '/v1/completions',
      ],
      [
        'OCI’s endpoint is its /predict URL itself',
        'https://md.oci.example.com/ocid1.md/predict',
        false,
        '/ocid1.md/predict',
      ],
      [
        'OCI’s /predict URL even when streaming',
        'https://md.oci.example.com/ocid1.md/predict',
        true,
        '/ocid1.md/predict',
      ],
    ];
    for (const [name, endpoint, stream, want] of cases) {
      it(`${name}: ${want}`, () => {
        assert.equal(predictPath(sdep, new URL(endpoint), stream), want);
      });
    }
  });
});
