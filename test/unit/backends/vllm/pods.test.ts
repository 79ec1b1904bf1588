import assert from 'node:assert/strict';
import type { V1Pod } from '@kubernetes/client-node';
import { ADAPTER_STATE_ANNOTATION } from '../../../../src/backends/vllm/pod-state.ts';
import { podView } from '../../../../src/backends/vllm/pods.ts';

function pod(loaded: string[]): V1Pod {
  const state = { restartCount: 0, loaded, failed: {}, fetching: [] };
  return {
    metadata: {
      name: 'p',
      namespace: 'ns',
      uid: 'u',
      annotations: { [ADAPTER_STATE_ANNOTATION]: JSON.stringify(state) },
    },
    status: { podIP: '10.0.0.1', containerStatuses: [] },
  };
}

const deepFreeze = <T>(o: T): T => {
  if (typeof o === 'object' && o !== null) {
    Object.freeze(o);
    for (const v of Object.values(o)) deepFreeze(v);
  }
  return o;
};

describe('vllm backend: pod views (pure)', () => {
  it('reads a cached (frozen) pod once: the same view comes back for the same object', () => {
    const cached = deepFreeze(pod(['a']));
    const first = podView(cached);
    assert.equal(podView(cached), first);
    assert.deepEqual(first.state?.loaded, ['a']);
    assert.ok(Object.isFrozen(first), 'a shared view cannot be changed by one of its readers');
  });

  it('reads a changed pod (a new object) afresh, and never keeps views of objects that can change', () => {
    const before = deepFreeze(pod(['a']));
    const after = deepFreeze(pod(['a', 'b']));
    assert.deepEqual(podView(before).state?.loaded, ['a']);
    assert.deepEqual(podView(after).state?.loaded, ['a', 'b']);
    const mutable = pod(['a']);
    const view = podView(mutable);
    assert.notEqual(podView(mutable), view, 'a pod that is not frozen is read each time');
  });
});
