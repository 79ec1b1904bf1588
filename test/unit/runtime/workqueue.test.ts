import assert from 'node:assert/strict';
import { RateLimiter, WorkQueue } from '../../../src/runtime/workqueue.ts';
import { FakeClock } from './helpers/fake-clock.ts';
import { isPending } from './helpers/util.ts';

describe('runtime/workqueue', () => {
  let clock: FakeClock;
  let q: WorkQueue;
  beforeEach(() => {
    clock = new FakeClock();
    q = new WorkQueue({ clock });
  });

  describe('add/get/done', () => {
    it('queues a key added three times only once', async () => {
      q.add('ns/a');
      q.add('ns/a');
      q.add('ns/a');
      assert.equal(q.len(), 1);
      assert.equal(await q.get(), 'ns/a');
      assert.equal(q.len(), 0);
      q.done('ns/a');
      assert.equal(await isPending(q.get()), true, 'no second delivery of ns/a');
    });

    it('hands keys out in FIFO order', async () => {
      for (const k of ['a', 'b', 'c', 'b']) q.add(k);
      assert.deepEqual([await q.get(), await q.get(), await q.get()], ['a', 'b', 'c']);
      assert.equal(q.len(), 0);
    });

    it('re-delivers a key added while it is processed only after done()', async () => {
      q.add('ns/a');
      const key = await q.get();
      assert.equal(key, 'ns/a');
      q.add('ns/a');
      q.add('ns/a');
      assert.equal(q.len(), 0, 'not queued while a worker holds it');
      const second = q.get();
      assert.equal(await isPending(second), true, 'a second worker must not get ns/a');
      q.done('ns/a');
      assert.equal(await second, 'ns/a');
      q.done('ns/a');
      assert.equal(q.len(), 0, 'the two mid-processing adds collapse into one');
    });

    it('hands a key added later to a worker already waiting', async () => {
      const waiting = q.get();
      assert.equal(await isPending(waiting), true);
      q.add('x');
      assert.equal(await waiting, 'x');
      q.add('x');
      assert.equal(q.len(), 0, 'x is being processed, so it waits for done()');
    });

    it('ignores done() for a key it never handed out', () => {
      q.done('nope');
      q.add('a');
      assert.equal(q.len(), 1);
    });

    it('reports its depth on every change', async () => {
      const depths: number[] = [];
      const dq = new WorkQueue({ clock, onDepthChange: (d) => depths.push(d) });
      dq.add('a');
      dq.add('b');
      await dq.get();
      assert.deepEqual(depths, [1, 2, 1]);
    });

    it('keeps working across queue compaction', async () => {
      for (let i = 0; i < 3000; i++) q.add(`k${i}`);
      for (let i = 0; i < 2500; i++) assert.equal(await q.get(), `k${i}`);
      assert.equal(q.len(), 500);
      q.add('late');
      for (let i = 2500; i < 3000; i++) assert.equal(await q.get(), `k${i}`);
      assert.equal(await q.get(), 'late');
    });
  });

  describe('delays and rate limiting', () => {
    it('adds after the delay, not before', () => {
      q.addAfter('a', 100);
      clock.advance(99);
      assert.equal(q.len(), 0);
      clock.advance(1);
      assert.equal(q.len(), 1);
    });

    it('addAfter keeps the earliest deadline when the later one comes second', async () => {
      q.addAfter('a', 100);
      q.addAfter('a', 500);
      clock.advance(100);
      assert.equal(q.len(), 1);
      assert.equal(await q.get(), 'a');
      q.done('a');
      clock.advance(1000);
      assert.equal(q.len(), 0, 'the later deadline was dropped');
    });

    it('addAfter keeps the earliest deadline when the earlier one comes second', () => {
      q.addAfter('a', 500);
      q.addAfter('a', 50);
      clock.advance(50);
      assert.equal(q.len(), 1);
      assert.equal(clock.pending(), 0, 'the 500 ms timer was cancelled');
    });

    it('addAfter with no delay adds at once', () => {
      q.addAfter('a', 0);
      assert.equal(q.len(), 1);
    });

    it('backs off per key exponentially from 5 ms', async () => {
      const delays: number[] = [];
      for (let i = 0; i < 4; i++) {
        q.addRateLimited('a');
        const [d] = clock.pendingDelays();
        delays.push(d!);
        clock.advance(d! - 1);
        assert.equal(q.len(), 0, `retry ${i} not queued before ${d} ms`);
        clock.advance(1);
        assert.equal(q.len(), 1, `retry ${i} queued after ${d} ms`);
        q.done((await q.get())!);
      }
      assert.deepEqual(delays, [5, 10, 20, 40]);
      assert.equal(q.numRequeues('a'), 4);
      assert.equal(q.numRequeues('b'), 0, 'failures are per key');
    });

    it('does not re-add a rate-limited key before its backoff', () => {
      q.addRateLimited('a');
      q.addRateLimited('a');
      // Second failure: 10 ms, but the earliest deadline (5 ms) is kept.
      clock.advance(4);
      assert.equal(q.len(), 0);
      clock.advance(1);
      assert.equal(q.len(), 1);
    });

    it('forget resets the backoff', () => {
      q.addRateLimited('a');
      q.addRateLimited('a');
      q.addRateLimited('a');
      assert.equal(q.numRequeues('a'), 3);
      q.forget('a');
      assert.equal(q.numRequeues('a'), 0);
      clock.advance(1000);
      q.addRateLimited('a');
      assert.deepEqual(clock.pendingDelays(), [5]);
    });
  });

  describe('RateLimiter', () => {
    it('caps the per-key delay at maxDelayMs', () => {
      const rl = new RateLimiter({ baseDelayMs: 5, maxDelayMs: 100, qps: 0 }, () => 0);
      const delays = Array.from({ length: 8 }, () => rl.when('a'));
      assert.deepEqual(delays, [5, 10, 20, 40, 80, 100, 100, 100]);
    });

    it('uses the default 1000 s cap', () => {
      const rl = new RateLimiter({ qps: 0 }, () => 0);
      let last = 0;
      for (let i = 0; i < 40; i++) last = rl.when('a');
      assert.equal(last, 1_000_000);
    });

    it('spreads a burst across keys with the global token bucket', () => {
      let now = 0;
      const rl = new RateLimiter({ baseDelayMs: 1, qps: 10, burst: 2 }, () => now);
      assert.deepEqual(
        ['a', 'b', 'c', 'd'].map((k) => rl.when(k)),
        [1, 1, 100, 200],
      );
      now += 1000;
      assert.equal(rl.when('e'), 1, 'bucket refilled after a second');
    });
  });

  describe('shutdown', () => {
    it('wakes waiting get() calls with undefined', async () => {
      const a = q.get();
      const b = q.get();
      q.shutDown();
      assert.equal(await a, undefined);
      assert.equal(await b, undefined);
      assert.equal(await q.get(), undefined);
      assert.equal(q.isShuttingDown(), true);
    });

    it('still hands out keys queued before shutdown, then undefined', async () => {
      q.add('a');
      q.shutDown();
      q.add('b');
      assert.equal(await q.get(), 'a');
      assert.equal(await q.get(), undefined, 'b was added after shutdown');
    });

    it('drops delayed adds', () => {
      q.addAfter('a', 10);
      q.addRateLimited('b');
      q.shutDown();
      assert.equal(clock.pending(), 0);
      clock.advance(1000);
      assert.equal(q.len(), 0);
    });

    it('shutDownWithDrain waits for keys being processed', async () => {
      q.add('a');
      q.add('b');
      const a = await q.get();
      const b = await q.get();
      const drained = q.shutDownWithDrain();
      assert.equal(await isPending(drained), true);
      q.done(a!);
      assert.equal(await isPending(drained), true, 'b is still being processed');
      q.done(b!);
      await drained;
    });

    it('shutDownWithDrain resolves at once when idle', async () => {
      await q.shutDownWithDrain();
    });
  });
});
