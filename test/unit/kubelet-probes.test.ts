// The test kubelet's probe outcomes and restart back-off (playground/kubelet/net.ts, backoff.ts):
// the words its Unhealthy Events carry, when a killed container starts again, and how many Events
// it writes (events.ts).
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

import {
  BACKOFF_INITIAL_MS,
  BACKOFF_MAX_MS,
  backoffMessage,
  restartDelay,
} from '../../playground/kubelet/backoff.ts';
import type { ProbeTarget } from '../../playground/kubelet/container.ts';
import { SpamFilter } from '../../playground/kubelet/events.ts';
import { probeOnce } from '../../playground/kubelet/net.ts';

function target(kind: 'http' | 'tcp', port: number, path = '/health'): ProbeTarget {
  return {
    kind,
    host: '127.0.0.1',
    port,
    path,
    headers: {},
    periodMs: 1000,
    initialDelayMs: 0,
    timeoutMs: 1000,
    successThreshold: 1,
    failureThreshold: 3,
  };
}

/** A port nothing listens on: one the system just handed out and took back. */
async function closedPort(): Promise<number> {
  const s = createServer().listen(0, '127.0.0.1');
  await once(s, 'listening');
  const { port } = s.address() as AddressInfo;
  s.close();
  await once(s, 'close');
  return port;
}

describe('test kubelet: probe outcomes, in the words of its Unhealthy Events', () => {
  let server: Server;
  let port: number;

  before(async () => {
    server = createServer((req, res) => {
      res.statusCode = req.url === '/health' ? 200 : req.url === '/moved' ? 302 : 503;
      res.end();
    }).listen(0, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as AddressInfo).port;
  });
  after(() => {
    server.close();
  });

  it('passes 200-399 with no output', async () => {
    assert.deepEqual(await probeOnce(target('http', port)), { ok: true, output: '' });
    assert.deepEqual(await probeOnce(target('http', port, '/moved')), { ok: true, output: '' });
  });

  it('fails another status with the statuscode phrase', async () => {
    assert.deepEqual(await probeOnce(target('http', port, '/sick')), {
      ok: false,
      output: 'HTTP probe failed with statuscode: 503',
    });
  });

  it('names the URL and the refused dial, as Go phrases them', async () => {
    const closed = await closedPort();
    assert.deepEqual(await probeOnce(target('http', closed)), {
      ok: false,
      output: `Get "http://127.0.0.1:${closed}/health": dial tcp 127.0.0.1:${closed}: connect: connection refused`,
    });
    assert.deepEqual(await probeOnce(target('tcp', closed)), {
      ok: false,
      output: `dial tcp 127.0.0.1:${closed}: connect: connection refused`,
    });
    assert.deepEqual(await probeOnce(target('tcp', port)), { ok: true, output: '' });
  });
});

describe('test kubelet: restart back-off after a kill', () => {
  it('restarts at once the first time, then waits 0.5 s doubling up to 5 s', () => {
    let backoff = restartDelay(undefined, 0);
    const delays = [backoff.delayMs];
    let now = 0;
    for (let i = 0; i < 6; i++) {
      now += backoff.delayMs + 1000; // the container ran 1 s before it was killed again
      backoff = restartDelay(backoff.next, now);
      delays.push(backoff.delayMs);
    }
    assert.deepEqual(delays, [0, 500, 1000, 2000, 4000, 5000, 5000]);
    assert.equal(BACKOFF_INITIAL_MS, 500);
    assert.equal(BACKOFF_MAX_MS, 5000);
  });

  it('forgets the back-off once twice its longest wait passes without a restart', () => {
    const first = restartDelay(undefined, 0);
    const second = restartDelay(first.next, 1000);
    assert.equal(second.delayMs, 500);
    // The second restart went at 1.5 s; a kill 10 s after that is no longer in back-off.
    assert.equal(restartDelay(second.next, 1500 + 2 * BACKOFF_MAX_MS).delayMs, 500 * 2);
    assert.equal(restartDelay(second.next, 1501 + 2 * BACKOFF_MAX_MS).delayMs, 0);
  });

  it('says the wait in the kubelet words of the CrashLoopBackOff message', () => {
    assert.equal(
      backoffMessage(500, 'vllm', { name: 'p', namespace: 'ns', uid: 'u-1' }),
      'back-off 0.5s restarting failed container=vllm pod=p_ns(u-1)',
    );
  });
});

describe('test kubelet: the event spam filter (client-go, per source and object)', () => {
  it('lets 25 through at once, then one per refill period, per object', () => {
    const spam = new SpamFilter(300_000);
    const burst = Array.from({ length: 26 }, () => spam.take('pod-a', 0));
    assert.deepEqual([burst.filter(Boolean).length, burst.at(-1)], [25, false]);
    assert.equal(spam.take('pod-b', 0), true, 'another object has its own bucket');
    assert.equal(spam.take('pod-a', 299_999), false);
    assert.equal(spam.take('pod-a', 300_000), true);
    assert.equal(spam.take('pod-a', 300_001), false);
    spam.forget('pod-a');
    assert.equal(spam.take('pod-a', 300_002), true, 'a forgotten object starts full');
  });
});
