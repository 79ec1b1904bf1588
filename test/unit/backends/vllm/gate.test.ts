import assert from 'node:assert/strict';
import {
  desiredGate,
  gateBeforeLoads,
  gateUpdate,
  servedByOthers,
  staleGate,
} from '../../../../src/backends/vllm/gate.ts';
import type { PodAdapterState } from '../../../../src/backends/vllm/pod-state.ts';
import type { PodView } from '../../../../src/backends/vllm/pods.ts';

const T0 = new Date('2026-11-27T10:00:00Z');
const GATE = 'serving.stacked.dev/adapters-loaded';

function pod(name: string, open: boolean, loaded?: string[], extra: Partial<PodView> = {}): PodView {
  return {
    name,
    namespace: 'ml',
    uid: name,
    deployment: 'sql',
    url: 'http://127.0.1.2:8000',
    agentUrl: 'http://127.0.1.2:8089',
    containersReady: true,
    terminating: false,
    gate: open
      ? { type: GATE, status: 'True', reason: 'AdaptersLoaded', message: '', lastTransitionTime: '' }
      : undefined,
    restartCount: 0,
    unschedulable: undefined,
    baseFetchFailed: undefined,
    state: loaded === undefined ? undefined : state(loaded),
    ...extra,
  };
}

function state(loaded: string[], extra: Partial<PodAdapterState> = {}): PodAdapterState {
  return { restartCount: 0, loaded, failed: {}, fetching: [], ...extra };
}

const wanted = new Set(['a', 'b', 'c']);

describe('vllm backend: the readiness gate rule (pure)', () => {
  it('counts only adapters that other Ready pods hold, and only wanted ones', () => {
    const self = pod('p1', true, ['a']);
    const pods = [
      self,
      pod('p2', true, ['a', 'b', 'gone']),
      pod('p3', false, ['c']),
      pod('p4', true, ['c'], { terminating: true }),
      pod('p5', true, ['c'], { containersReady: false }),
    ];
    assert.deepEqual([...servedByOthers(pods, self, wanted)].sort(), ['a', 'b']);
  });

  it('closes the gate of a pod that lacks an adapter another Ready pod serves, naming it', () => {
    const gate = desiredGate(pod('p1', true), state(['a']), new Set(['a', 'b']), 3);
    assert.equal(gate?.status, 'False');
    assert.equal(gate.reason, 'LoadingAdapters');
    assert.equal(gate.message, 'lacks b, which other ready replicas serve');
  });

  it('keeps the gate open for an adapter no Ready pod holds yet (new, or failing everywhere)', () => {
    const gate = desiredGate(pod('p1', true), state(['a'], { error: 'b: 503' }), new Set(['a']), 2);
    assert.equal(gate?.status, 'True');
    assert.equal(gate.reason, 'ServingWhatOthersServe');
  });

  it('never empties the Service when a member fails on every pod', () => {
    // Every pod holds a and fails b: each sees only a served elsewhere, so every gate stays open.
    const pods = ['p1', 'p2', 'p3'].map((n) => pod(n, true, ['a'], {}));
    for (const p of pods) {
      const g = desiredGate(p, state(['a'], { error: 'b: 503' }), servedByOthers(pods, p, wanted), 2);
      assert.equal(g?.status, 'True', p.name);
    }
  });

  it('lets a pod into the Service only after a clean sync', () => {
    const failing = state(['a'], { error: 'b: the engine is dead' });
    const gate = desiredGate(pod('p1', false), failing, new Set(), 2);
    assert.equal(gate?.status, 'False');
    assert.equal(gate.message, '1 of 2 adapters loaded; retrying: b: the engine is dead');
    // What the engine refuses, or the agent still downloads, is the member's: the pod may serve the rest.
    const refused = state(['a'], { failed: { b: 'rank too high' } });
    assert.equal(desiredGate(pod('p1', false), refused, new Set(), 2)?.status, 'True');
  });

  it('closes an open gate before loading what another Ready pod serves, and only then', () => {
    const lacking = gateBeforeLoads(pod('p1', true), ['a'], new Set(['a', 'b']));
    assert.equal(lacking?.status, 'False');
    assert.equal(lacking.message, 'lacks b, which other ready replicas serve');
    assert.equal(gateBeforeLoads(pod('p1', true), ['a', 'b'], new Set(['a', 'b'])), undefined);
    assert.equal(gateBeforeLoads(pod('p1', true), ['a'], new Set(['a'])), undefined, 'a new member');
    assert.equal(gateBeforeLoads(pod('p1', false), [], new Set(['a'])), undefined, 'already closed');
  });

  it('opens the first pod of a fresh deployment with what it loaded', () => {
    assert.equal(desiredGate(pod('p1', false), state(['a', 'b']), new Set(), 2)?.status, 'True');
  });

  it('closes an open gate when vLLM cannot be asked, and writes nothing for a pod never opened', () => {
    assert.equal(desiredGate(pod('p1', true), undefined, new Set(), 2)?.reason, 'Unreachable');
    assert.equal(desiredGate(pod('p1', false), undefined, new Set(), 2), undefined);
  });

  it('closes the gate with a clear reason when runtime updates are off', () => {
    const gate = desiredGate(pod('p1', true), state([], { routeMissing: true }), new Set(), 2);
    assert.equal(gate?.reason, 'RuntimeLoraUpdatesDisabled');
  });

  it('closes a True gate when the container is no longer ready, and leaves other gates alone', () => {
    assert.equal(staleGate(pod('p1', true, [], { containersReady: false }))?.reason, 'ContainerNotReady');
    assert.equal(staleGate(pod('p1', false, [], { containersReady: false })), undefined);
    assert.equal(staleGate(pod('p1', true, [], { containersReady: false, terminating: true })), undefined);
  });

  it('writes the gate only when it changes', () => {
    const desired = desiredGate(pod('p', false), state(['a', 'b']), new Set(), 2);
    const written = gateUpdate(pod('p', false), desired, T0);
    assert.equal(written?.lastTransitionTime, '2026-11-27T10:00:00Z');
    assert.equal(gateUpdate(pod('p', false, undefined, { gate: written }), desired, T0), undefined);
  });
});
