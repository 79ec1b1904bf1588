import assert from 'node:assert/strict';
import type { V1Pod } from '@kubernetes/client-node';
import type { StackedDeployment } from '../../../src/api/v1alpha1/deployment.ts';
import {
  ADAPTER_STATE_ANNOTATION,
  writePodState,
  type PodAdapterState,
} from '../../../src/backends/vllm/pod-state.ts';
import { replicaState, statusReport, statusTable, type ReplicaState } from '../../../src/cli/status.ts';

function pod(
  name: string,
  state: PodAdapterState | string | undefined,
  opts: { restarts?: number; ready?: boolean } = {},
): V1Pod {
  const annotation =
    typeof state === 'string' ? state : state === undefined ? undefined : writePodState(state);
  return {
    metadata: {
      name,
      ...(annotation !== undefined ? { annotations: { [ADAPTER_STATE_ANNOTATION]: annotation } } : {}),
    },
    status: {
      podIP: '10.0.0.1',
      conditions: [{ type: 'Ready', status: opts.ready === false ? 'False' : 'True' }],
      containerStatuses: [
        { name: 'agent', restartCount: 7, ready: true, image: 'a', imageID: 'a' },
        { name: 'vllm', restartCount: opts.restarts ?? 0, ready: true, image: 'v', imageID: 'v' },
      ],
    },
  };
}

const state = (s: Partial<PodAdapterState>): PodAdapterState => ({
  restartCount: 0,
  loaded: [],
  failed: {},
  fetching: [],
  ...s,
});

const sdep = {
  apiVersion: 'serving.stacked.dev/v1alpha1',
  kind: 'StackedDeployment',
  metadata: { name: 'sql-prod', namespace: 'ml' },
  spec: { modelGroupRef: { name: 'g' }, backend: 'vllm' },
  status: {
    endpoint: 'http://sql-prod-router.ml.svc:8080',
    conditions: [
      {
        type: 'Available',
        status: 'True',
        reason: 'MinimumReplicasAvailable',
        message: '',
        lastTransitionTime: '2026-01-01T00:00:00Z',
      },
      {
        type: 'Ready',
        status: 'False',
        reason: 'AdaptersLoading',
        message: '',
        lastTransitionTime: '2026-01-01T00:00:00Z',
      },
    ],
    adapters: [
      { inferenceKey: 'sql-a', modelId: 'ocid1.a', state: 'Loaded', loadedReplicas: 2, readyReplicas: 2 },
      {
        inferenceKey: 'sql-b',
        state: 'Loading',
        loadedReplicas: 1,
        readyReplicas: 2,
        message: 'downloading',
      },
      { inferenceKey: 'sql-c', state: 'Failed' },
    ],
  },
} as unknown as StackedDeployment;

describe('kubectl stacked status', () => {
  describe('replicaState: what one pod’s annotation says of one member', () => {
    const cases: [string, V1Pod, string, ReplicaState][] = [
      ['loaded', pod('p', state({ loaded: ['sql-a'] })), 'sql-a', 'Loaded'],
      ['refused', pod('p', state({ failed: { 'sql-a': 'bad rank' } })), 'sql-a', 'Failed'],
      ['downloading', pod('p', state({ fetching: ['sql-a'] })), 'sql-a', 'Fetching'],
      ['not yet, the last sync fine', pod('p', state({ loaded: ['sql-b'] })), 'sql-a', 'Pending'],
      ['not yet, the last sync failed', pod('p', state({ error: 'connect ECONNREFUSED' })), 'sql-a', 'Error'],
      [
        'loaded even when the last sync failed',
        pod('p', state({ loaded: ['sql-a'], error: 'x' })),
        'sql-a',
        'Loaded',
      ],
      [
        'the state of this incarnation',
        pod('p', state({ restartCount: 2, loaded: ['sql-a'] }), { restarts: 2 }),
        'sql-a',
        'Loaded',
      ],
      [
        'a state from before a restart',
        pod('p', state({ restartCount: 1, loaded: ['sql-a'] }), { restarts: 2 }),
        'sql-a',
        'Unknown',
      ],
      ['no annotation', pod('p', undefined), 'sql-a', 'Unknown'],
      ['an annotation that does not parse', pod('p', '{not json'), 'sql-a', 'Unknown'],
    ];
    for (const [name, p, member, want] of cases) {
      it(`${name}: ${want}`, () => {
        assert.equal(replicaState(p, member), want);
      });
    }
  });

  describe('statusReport and its table', () => {
    const pods = [
      pod('sql-prod-vllm-b', state({ restartCount: 1, loaded: ['sql-a'], fetching: ['sql-b'] }), {
        restarts: 1,
      }),
      pod('sql-prod-vllm-a', state({ loaded: ['sql-a', 'sql-b'], failed: { 'sql-c': 'rank 128 > 64' } })),
      pod('sql-prod-vllm-c', undefined, { ready: false }),
    ];
    const report = statusReport(sdep, pods);

    it('each member on each replica, pods sorted by name', () => {
      assert.deepEqual(
        report.pods.map((p) => [p.name, p.ready, p.restartCount]),
        [
          ['sql-prod-vllm-a', true, 0],
          ['sql-prod-vllm-b', true, 1],
          ['sql-prod-vllm-c', false, 0],
        ],
      );
      assert.deepEqual(
        report.members.map((m) => [m.inferenceKey, m.state, Object.entries(m.replicas)]),
        [
          [
            'sql-a',
            'Loaded',
            [
              ['sql-prod-vllm-a', 'Loaded'],
              ['sql-prod-vllm-b', 'Loaded'],
              ['sql-prod-vllm-c', 'Unknown'],
            ],
          ],
          [
            'sql-b',
            'Loading',
            [
              ['sql-prod-vllm-a', 'Loaded'],
              ['sql-prod-vllm-b', 'Fetching'],
              ['sql-prod-vllm-c', 'Unknown'],
            ],
          ],
          [
            'sql-c',
            'Failed',
            [
              ['sql-prod-vllm-a', 'Failed'],
              ['sql-prod-vllm-b', 'Pending'],
              ['sql-prod-vllm-c', 'Unknown'],
            ],
          ],
        ],
      );
    });

    it('the deployment’s own status: endpoint, the Ready condition, and each member’s counts', () => {
      assert.equal(report.deployment, 'sql-prod');
      assert.equal(report.namespace, 'ml');
      assert.equal(report.backend, 'vllm');
      assert.equal(report.endpoint, 'http://sql-prod-router.ml.svc:8080');
      assert.equal(report.ready, 'False (AdaptersLoading)');
      assert.deepEqual(
        report.members.map(({ replicas: _, ...m }) => m),
        [
          { inferenceKey: 'sql-a', modelId: 'ocid1.a', state: 'Loaded', loadedReplicas: 2, readyReplicas: 2 },
          {
            inferenceKey: 'sql-b',
            state: 'Loading',
            loadedReplicas: 1,
            readyReplicas: 2,
            message: 'downloading',
          },
          { inferenceKey: 'sql-c', state: 'Failed' },
        ],
      );
    });

    it('the table: a header line, then a column per pod', () => {
      assert.equal(
        statusTable(report),
        [
          'ml/sql-prod (vllm)  Ready: False (AdaptersLoading)  endpoint: http://sql-prod-router.ml.svc:8080',
          'MEMBER   STATE     LOADED   SQL-PROD-VLLM-A   SQL-PROD-VLLM-B   SQL-PROD-VLLM-C (NOT READY)',
          'sql-a    Loaded    2/2      Loaded            Loaded            Unknown',
          'sql-b    Loading   1/2      Loaded            Fetching          Unknown',
          'sql-c    Failed    -        Failed            Pending           Unknown',
          '',
        ].join('\n'),
      );
    });

    it('an oci deployment (no pods) with no status yet', () => {
      const bare = {
        ...sdep,
        metadata: { name: 'oci-prod', namespace: 'ml' },
        spec: { ...sdep.spec, backend: 'oci' },
        status: undefined,
      } as unknown as StackedDeployment;
      const r = statusReport(bare, []);
      assert.deepEqual(r, { deployment: 'oci-prod', namespace: 'ml', backend: 'oci', pods: [], members: [] });
      assert.equal(
        statusTable(r),
        'ml/oci-prod (oci)  Ready: Unknown  endpoint: -\nMEMBER   STATE   LOADED\n',
      );
    });
  });
});
