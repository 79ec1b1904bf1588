import assert from 'node:assert/strict';
import { type V1ContainerStatus, V1Deployment, V1Pod } from '@kubernetes/client-node';
import { model, type Plain } from '../../../../src/runtime/model.ts';
import type { Member } from '../../../../src/api/v1alpha1/modelgroup.ts';
import { podView, type PodView } from '../../../../src/backends/vllm/pods.ts';
import type { PodAdapterState } from '../../../../src/backends/vllm/pod-state.ts';
import { vllmStatus, type VllmFacts } from '../../../../src/backends/vllm/status.ts';
import { fakePodView } from './helpers/pod-view.ts';

const T0 = new Date('2026-11-27T10:00:00Z');
const members: Member[] = [{ inferenceKey: 'a' }, { inferenceKey: 'b' }];

const pod = fakePodView;

const OPEN = {
  type: 'serving.stacked.dev/adapters-loaded',
  status: 'True' as const,
  reason: 'AdaptersLoaded',
  message: '',
  lastTransitionTime: '2026-11-27T10:00:00Z',
};

/** A serving pod (gate open) whose published state says it holds `loaded`. */
function synced(name: string, loaded: string[], extra: Partial<PodAdapterState> = {}): PodView {
  return pod(name, { gate: OPEN, state: { restartCount: 0, loaded, failed: {}, fetching: [], ...extra } });
}

function facts(pods: PodView[], extra: Partial<VllmFacts> = {}): VllmFacts {
  return {
    members,
    desiredReplicas: 2,
    pods,
    workload: model(V1Deployment, {
      metadata: { generation: 1 },
      status: { observedGeneration: 1, replicas: 2, updatedReplicas: 2 },
    }),
    generation: 3,
    endpoint: 'http://x',
    ...extra,
  };
}

const cond = (conds: { type: string; status: string; reason: string }[] | undefined, type: string) =>
  conds?.find((c) => c.type === type);

describe('vllm backend: status from the pods (pure)', () => {
  it('is Ready when every replica serves every adapter', () => {
    const { status, verdict } = vllmStatus(
      facts([synced('p1', ['a', 'b']), synced('p2', ['a', 'b'])]),
      [],
      T0,
    );
    assert.equal(verdict.ready, true);
    assert.equal(status.readyReplicas, 2);
    assert.deepEqual(
      status.adapters?.map((a) => [a.inferenceKey, a.state, a.loadedReplicas]),
      [
        ['a', 'Loaded', 2],
        ['b', 'Loaded', 2],
      ],
    );
    assert.equal(cond(status.conditions, 'AdaptersReady')?.status, 'True');
    assert.equal(cond(status.conditions, 'Progressing')?.status, 'False');
    assert.equal(cond(status.conditions, 'Degraded')?.status, 'False');
  });

  it('is Degraded naming a refused member, while the others are served', () => {
    const failed = { b: 'Loading lora b failed: No adapter found for /mnt/pvc/x/b' };
    const { status, verdict } = vllmStatus(facts([synced('p1', ['a'], { failed })]), [], T0);
    assert.equal(verdict.ready, false);
    assert.equal(verdict.reason, 'AdapterFailed');
    assert.match(verdict.message, /member b: Loading lora b failed: No adapter found/);
    assert.equal(cond(status.conditions, 'Available')?.status, 'True', 'a is still served');
    assert.equal(status.adapters?.[1]?.state, 'Failed');
  });

  it('reports unschedulable pods and no serving replica', () => {
    const waiting = pod('p1', {
      containersReady: false,
      url: undefined,
      unschedulable: '0/1 nodes are available: 1 Insufficient nvidia.com/gpu.',
    });
    const { verdict, status } = vllmStatus(facts([waiting]), [], T0);
    assert.equal(verdict.reason, 'Unschedulable');
    assert.equal(cond(status.conditions, 'Available')?.status, 'False');
  });

  it('says why no replica starts when the base model cannot be fetched', () => {
    const message = 'sha256 mismatch for base-1: expected 00, got ff';
    const waiting = pod('p1', { containersReady: false, baseFetchFailed: message });
    const { verdict, status } = vllmStatus(facts([waiting]), [], T0);
    assert.deepEqual(verdict, {
      ready: false,
      reason: 'BaseModelFetchFailed',
      message: `the base model cannot be fetched: ${message}`,
    });
    assert.equal(cond(status.conditions, 'Degraded')?.reason, 'BaseModelFetchFailed');
    assert.equal(
      status.conditions?.find((c) => c.type === 'Available')?.message,
      `the base model cannot be fetched: ${message}`,
    );
  });

  it('reads the failure of the base model fetch from the pod', () => {
    const p = (init: Plain<V1ContainerStatus>[]) =>
      podView(
        model(V1Pod, { metadata: { name: 'p', namespace: 'ml' }, status: { initContainerStatuses: init } }),
      );
    const failed: Plain<V1ContainerStatus> = {
      name: 'fetch-model',
      image: 'op',
      imageID: '',
      ready: false,
      restartCount: 2,
      state: { waiting: { reason: 'CrashLoopBackOff' } },
      lastState: {
        terminated: { exitCode: 1, message: 'GetObject oci://b@ns/x.tgz: 404 ObjectNotFound: gone\n' },
      },
    };
    assert.equal(p([failed]).baseFetchFailed, 'GetObject oci://b@ns/x.tgz: 404 ObjectNotFound: gone');
    const retrying = { ...failed, state: { running: {} } };
    assert.equal(p([retrying]).baseFetchFailed, 'GetObject oci://b@ns/x.tgz: 404 ObjectNotFound: gone');
    const done = { ...failed, state: { terminated: { exitCode: 0 } } };
    assert.equal(p([done]).baseFetchFailed, undefined, 'it succeeded in the end');
    assert.equal(p([]).baseFetchFailed, undefined);
  });

  it('is a fixed point at rest', () => {
    const f = facts([synced('p1', ['a', 'b'])]);
    const first = vllmStatus(f, [], T0).status;
    const again = vllmStatus(f, first.conditions ?? [], new Date('2026-11-27T11:00:00Z')).status;
    assert.deepEqual(again, first);
  });

  it('counts a pod whose state is of an older container incarnation as knowing nothing', () => {
    const restarted = podView(
      model(V1Pod, {
        metadata: {
          name: 'p1',
          namespace: 'ml',
          annotations: {
            'serving.stacked.dev/adapter-state': JSON.stringify({ restartCount: 0, loaded: ['a', 'b'] }),
          },
        },
        status: {
          conditions: [{ type: 'ContainersReady', status: 'True' }],
          podIP: '127.0.1.2',
          containerStatuses: [{ name: 'vllm', image: 'v', imageID: '', ready: true, restartCount: 1 }],
        },
      }),
    );
    assert.equal(restarted.state, undefined);
    const { status } = vllmStatus(facts([restarted]), [], T0);
    assert.deepEqual(
      status.adapters?.map((a) => a.state),
      ['Pending', 'Pending'],
    );
  });

  it('is Degraded when every replica fails to load a member for a transient reason, naming it', () => {
    const error = 'b: load answered 503: engine busy';
    const { status, verdict } = vllmStatus(
      facts([synced('p1', ['a'], { error }), synced('p2', ['a'], { error })]),
      [],
      T0,
    );
    assert.equal(verdict.reason, 'AdapterUnavailable');
    assert.match(verdict.message, /no replica could load b: b: load answered 503/);
    assert.equal(cond(status.conditions, 'Available')?.status, 'True', 'a is still served on both');
    assert.equal(status.readyReplicas, 2);
  });

  it('reports a member whose files are still downloading as Loading, not Degraded', () => {
    const { status, verdict } = vllmStatus(facts([synced('p1', ['a'], { fetching: ['b'] })]), [], T0);
    assert.equal(verdict.reason, 'LoadingAdapters');
    assert.deepEqual(
      status.adapters?.map((a) => [a.state, a.message]),
      [
        ['Loaded', undefined],
        ['Loading', 'the fetch agent is downloading its files'],
      ],
    );
  });
});
