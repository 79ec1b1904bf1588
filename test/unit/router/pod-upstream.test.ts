import assert from 'node:assert/strict';
import { PodUpstream } from '../../../src/router/pod-upstream.ts';
import { routingState } from '../../../src/router/state.ts';
import type { ServedTarget } from '../../../src/router/names.ts';
import { deployment, group, pod } from './fixtures.ts';

describe('router/pod-upstream', () => {
  const state = routingState({
    synced: true,
    deployment: deployment(),
    group: group([{ inferenceKey: 'sql' }]),
    pods: [
      pod({ name: 'p1', ip: '10.0.0.1', loaded: ['sql'] }),
      pod({ name: 'p2', ip: '10.0.0.2', loaded: ['sql'] }),
    ],
  });
  const target: ServedTarget = { kind: 'served', servedName: 'sql', adapter: 'sql' };
  const req = { target, path: '/v1/completions', headers: {}, body: Buffer.from('{}'), state };

  it('counts outstanding requests until released, and spreads by them', async () => {
    const up = new PodUpstream({ affinityMargin: 4, now: () => 0, random: () => 0 });
    const first = await up.prepare(req, new Set());
    const second = await up.prepare(req, new Set());
    assert.ok(first && second);
    assert.notEqual(first.id, second.id);
    assert.equal(first.url.href, `http://${first.id === 'p1' ? '10.0.0.1' : '10.0.0.2'}:8000/v1/completions`);
    first.release();
    first.release(); // idempotent
    assert.equal(up.outstandingOf(first.id), 0);
    assert.equal(up.outstandingOf(second.id), 1);
    second.release();
    up.close();
  });

  it('skips what this request tried, and a pod that refused until its cool-down ends', async () => {
    let now = 1000;
    const up = new PodUpstream({ affinityMargin: 4, now: () => now, random: () => 0, cooldownMs: 2000 });
    const ep = await up.prepare(req, new Set());
    assert.ok(ep);
    ep.refused();
    ep.release();
    const other = await up.prepare(req, new Set());
    assert.notEqual(other?.id, ep.id);
    other?.release();
    assert.equal(await up.prepare(req, new Set(['p1', 'p2'])), undefined);
    now += 2001;
    const back = await up.prepare(req, new Set([other?.id ?? '']));
    assert.equal(back?.id, ep.id);
    up.close();
  });
});
