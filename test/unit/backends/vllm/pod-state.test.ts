import assert from 'node:assert/strict';
import { V1Pod } from '@kubernetes/client-node';
import {
  ADAPTER_STATE_ANNOTATION,
  readPodState,
  readWanted,
  writePodState,
  WANTED_ADAPTERS_ANNOTATION,
  type PodAdapterState,
} from '../../../../src/backends/vllm/pod-state.ts';
import { model } from '../../../../src/runtime/model.ts';

const withAnnotation = (value: string) =>
  model(V1Pod, { metadata: { name: 'p', annotations: { [ADAPTER_STATE_ANNOTATION]: value } } });

describe('vllm backend: the adapter state a pod publishes (pure)', () => {
  it('round-trips through the annotation', () => {
    const s: PodAdapterState = {
      restartCount: 2,
      loaded: ['a', 'b'],
      failed: { z: 'rank too high', c: 'no adapter' },
      fetching: ['d'],
      error: 'e: 503',
    };
    assert.deepEqual(readPodState(withAnnotation(writePodState(s))), s);
  });

  it('writes the same string for the same state, whatever order failures were recorded in', () => {
    const a = writePodState({ restartCount: 0, loaded: [], failed: { x: '1', y: '2' }, fetching: [] });
    const b = writePodState({ restartCount: 0, loaded: [], failed: { y: '2', x: '1' }, fetching: [] });
    assert.equal(a, b);
  });

  it('ignores an annotation someone broke by hand', () => {
    assert.equal(readPodState(withAnnotation('{not json')), undefined);
    assert.equal(readPodState(withAnnotation('{"loaded":"a"}')), undefined);
    assert.equal(readPodState(model(V1Pod, { metadata: { name: 'p' } })), undefined);
  });

  it('reads the wanted adapters of a Deployment, refusing malformed ones', () => {
    const wanted = [{ name: 'a', path: '/mnt/pvc/a' }];
    assert.deepEqual(readWanted({ [WANTED_ADAPTERS_ANNOTATION]: JSON.stringify(wanted) }), wanted);
    assert.equal(readWanted({ [WANTED_ADAPTERS_ANNOTATION]: '[{"name":1}]' }), undefined);
    assert.equal(readWanted(undefined), undefined);
  });
});
