import assert from 'node:assert/strict';
import { type V1ContainerStatus, V1Deployment, V1Pod } from '@kubernetes/client-node';
import { model, type Plain } from '../../../../src/runtime/model.ts';
import type { Member } from '../../../../src/api/v1alpha1/modelgroup.ts';
import { podView, type PodView } from '../../../../src/backends/vllm/pods.ts';
import { desiredGate, gateUpdate, vllmStatus, type VllmFacts } from '../../../../src/backends/vllm/status.ts';
import type { PodSync } from '../../../../src/backends/vllm/sync.ts';

const T0 = new Date('2026-11-27T10:00:00Z');
const members: Member[] = [{ inferenceKey: 'a' }, { inferenceKey: 'b' }];

function pod(name: string, extra: Partial<PodView> = {}): PodView {
  return {
    name,
    uid: name,
    url: `http://127.0.1.2:8000`,
    agentUrl: `http://127.0.1.2:8089`,
    containersReady: true,
    terminating: false,
    gate: undefined,
    restartCount: 0,
    unschedulable: undefined,
    baseFetchFailed: undefined,
    ...extra,
  };
}

function sync(p: PodView, loaded: string[], extra: Partial<PodSync> = {}): PodSync {
  return { pod: p, loaded, rejected: new Map(), lost: [], routeMissing: false, error: undefined, ...extra };
}

function facts(syncs: PodSync[], extra: Partial<VllmFacts> = {}): VllmFacts {
  return {
    members,
    desiredReplicas: 2,
    pods: syncs.map((s) => s.pod),
    syncs,
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

describe('vllm backend: readiness gate and status (pure)', () => {
  it('opens the gate only when every member is loaded', () => {
    assert.equal(desiredGate(sync(pod('p'), ['a']), 2)?.status, 'False');
    assert.deepEqual(desiredGate(sync(pod('p'), ['a', 'b']), 2), {
      type: 'serving.stacked.dev/adapters-loaded',
      status: 'True',
      reason: 'AdaptersLoaded',
      message: '2 of 2 adapters loaded',
    });
  });

  it('does not keep pods out of service for a member the engine refuses', () => {
    const gate = desiredGate(
      sync(pod('p'), ['a'], {
        rejected: new Map([['b', 'LoRA rank 128 is greater than max_lora_rank 64.']]),
      }),
      2,
    );
    assert.equal(gate?.status, 'True');
    assert.match(gate.message, /1 refused by the engine/);
  });

  it('closes the gate with a clear reason when runtime updates are off', () => {
    assert.equal(
      desiredGate(sync(pod('p'), [], { routeMissing: true }), 2)?.reason,
      'RuntimeLoraUpdatesDisabled',
    );
  });

  it('writes the gate only when it changes', () => {
    const desired = desiredGate(sync(pod('p'), ['a', 'b']), 2);
    const written = gateUpdate(pod('p'), desired, T0);
    assert.equal(written?.lastTransitionTime, '2026-11-27T10:00:00Z');
    assert.equal(gateUpdate(pod('p', { gate: written }), desired, T0), undefined);
  });

  it('is Ready when every replica serves every adapter', () => {
    const { status, verdict } = vllmStatus(
      facts([sync(pod('p1'), ['a', 'b']), sync(pod('p2'), ['a', 'b'])]),
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
    const rejected = new Map([['b', 'Loading lora b failed: No adapter found for /mnt/pvc/x/b']]);
    const { status, verdict } = vllmStatus(facts([sync(pod('p1'), ['a'], { rejected })]), [], T0);
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
    const { verdict, status } = vllmStatus(facts([], { pods: [waiting] }), [], T0);
    assert.equal(verdict.reason, 'Unschedulable');
    assert.equal(cond(status.conditions, 'Available')?.status, 'False');
  });

  it('says why no replica starts when the base model cannot be fetched', () => {
    const message = 'sha256 mismatch for base-1: expected 00, got ff';
    const waiting = pod('p1', { containersReady: false, baseFetchFailed: message });
    const { verdict, status } = vllmStatus(facts([], { pods: [waiting] }), [], T0);
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
        8000,
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
    const f = facts([sync(pod('p1'), ['a', 'b'])]);
    const first = vllmStatus(f, [], T0).status;
    const again = vllmStatus(f, first.conditions ?? [], new Date('2026-11-27T11:00:00Z')).status;
    assert.deepEqual(again, first);
  });
});
