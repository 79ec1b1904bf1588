import assert from 'node:assert/strict';
import { heldAdapters, podEndpoint, slimPod } from '../../../src/router/pods.ts';
import { type PodOptions, pod } from './fixtures.ts';

describe('router/pods', () => {
  const cases: { name: string; pod: PodOptions; want: string | undefined }[] = [
    {
      name: 'a ready pod with adapters',
      pod: { name: 'p', loaded: ['a', 'b'], port: 8123 },
      want: 'http://10.0.0.1:8123 a,b',
    },
    { name: 'a ready pod without published state', pod: { name: 'p' }, want: 'http://10.0.0.1:8000 ' },
    { name: 'an IPv6 pod', pod: { name: 'p', ip: 'fd00::1', loaded: [] }, want: 'http://[fd00::1]:8000 ' },
    { name: 'a pod that is not Ready', pod: { name: 'p', ready: false, loaded: ['a'] }, want: undefined },
    { name: 'a pod without an IP', pod: { name: 'p', ip: '', loaded: ['a'] }, want: undefined },
    { name: 'a terminating pod', pod: { name: 'p', terminating: true, loaded: ['a'] }, want: undefined },
    {
      name: 'a state of an earlier container incarnation holds nothing',
      pod: { name: 'p', loaded: ['a'], restartCount: 2, stateRestartCount: 1 },
      want: 'http://10.0.0.1:8000 ',
    },
    {
      name: 'a state of the running incarnation',
      pod: { name: 'p', loaded: ['a'], restartCount: 2 },
      want: 'http://10.0.0.1:8000 a',
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const e = podEndpoint(pod(c.pod));
      assert.equal(e === undefined ? undefined : `${e.origin} ${[...e.adapters].join(',')}`, c.want);
    });
  }

  it('keeps what routing reads through slimPod, and drops the rest', () => {
    const full = pod({ name: 'p', loaded: ['a'], port: 8001, restartCount: 3 });
    full.metadata!.annotations!['other'] = 'x';
    full.spec!.containers[1]!.env = [{ name: 'SECRET', value: 'y' }];
    const slim = slimPod(full);
    assert.deepEqual(podEndpoint(slim), podEndpoint(full));
    assert.deepEqual([...heldAdapters(slim)], ['a']);
    assert.equal(slim.metadata?.annotations?.['other'], undefined);
    assert.equal(JSON.stringify(slim).includes('SECRET'), false);
    assert.equal(slim.spec?.containers.length, 1);
  });
});
