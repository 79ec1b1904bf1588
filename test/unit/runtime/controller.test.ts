import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import {
  Controller,
  type ReconcileFn,
  type ReconcileResult,
  apiGroup,
  generationChanged,
  objectKey,
  ownerKeys,
  splitKey,
} from '../../../src/runtime/controller.ts';
import { Informer } from '../../../src/runtime/informer.ts';
import { ControllerMetrics } from '../../../src/runtime/metrics.ts';
import { WorkQueue } from '../../../src/runtime/workqueue.ts';
import { FakeClock, flush } from './helpers/fake-clock.ts';
import { FakeListWatch, type TestObj, listOf, obj } from './helpers/fake-listwatch.ts';
import { captureLogger, silentLogger, waitFor } from './helpers/util.ts';

/** A reconcile function whose outcome per call is scripted; records the calls. */
function scripted(outcomes: (ReconcileResult | Error | undefined)[]): { fn: ReconcileFn; calls: string[] } {
  const calls: string[] = [];
  const fn: ReconcileFn = (key) => {
    calls.push(key);
    const out = outcomes.shift();
    if (out instanceof Error) return Promise.reject(out);
    return Promise.resolve(out);
  };
  return { fn, calls };
}

async function counterValue(
  registry: Registry,
  name: string,
  labels: Record<string, string>,
): Promise<number> {
  const metric = await registry.getSingleMetric(name)!.get();
  const v = metric.values.find((x) => Object.entries(labels).every(([k, val]) => x.labels[k] === val));
  return v?.value ?? 0;
}

describe('runtime/controller', () => {
  let clock: FakeClock;
  let queue: WorkQueue;
  let controller: Controller | undefined;

  beforeEach(() => {
    clock = new FakeClock();
    queue = new WorkQueue({ clock });
  });
  afterEach(async () => {
    await controller?.stop();
    controller = undefined;
  });

  function make(fn: ReconcileFn, extra: { workers?: number; metrics?: ControllerMetrics } = {}): Controller {
    controller = new Controller({ name: 'things', reconcile: fn, logger: silentLogger(), queue, ...extra });
    return controller;
  }

  it('requeues a failed key with exponential backoff', async () => {
    const { fn, calls } = scripted([new Error('boom'), new Error('boom'), undefined]);
    const c = make(fn);
    c.start();
    c.enqueue('ns/a');
    await waitFor(() => calls.length === 1 && queue.numRequeues('ns/a') === 1, 'first failure');
    clock.advance(4);
    await flush();
    assert.equal(calls.length, 1, 'not retried before 5 ms');
    clock.advance(1);
    await waitFor(() => calls.length === 2 && queue.numRequeues('ns/a') === 2, 'second failure');
    clock.advance(9);
    await flush();
    assert.equal(calls.length, 2, 'second retry waits 10 ms');
    clock.advance(1);
    await waitFor(() => calls.length === 3, 'third attempt');
    await waitFor(() => queue.numRequeues('ns/a') === 0, 'success forgets the failures');
  });

  it('forgets the key on success and does not requeue', async () => {
    const { fn, calls } = scripted([new Error('x'), undefined]);
    const c = make(fn);
    c.start();
    c.enqueue('ns/a');
    await waitFor(() => queue.numRequeues('ns/a') === 1);
    clock.advance(5);
    await waitFor(() => calls.length === 2);
    await waitFor(() => queue.numRequeues('ns/a') === 0);
    assert.equal(clock.pending(), 0, 'nothing scheduled after success');
  });

  it('honours requeueAfterMs', async () => {
    const { fn, calls } = scripted([{ requeueAfterMs: 30_000 }, undefined]);
    const c = make(fn);
    c.start();
    c.enqueue('ns/a');
    await waitFor(() => calls.length === 1 && clock.pending() === 1);
    clock.advance(29_999);
    await flush();
    assert.equal(calls.length, 1);
    clock.advance(1);
    await waitFor(() => calls.length === 2);
    assert.equal(queue.numRequeues('ns/a'), 0);
  });

  it('requeueAfter does not postpone an earlier pending retry', async () => {
    const { fn, calls } = scripted([{ requeueAfterMs: 60_000 }, undefined]);
    const c = make(fn);
    queue.addAfter('ns/a', 10);
    c.start();
    c.enqueue('ns/a');
    await waitFor(() => calls.length === 1);
    clock.advance(10);
    await waitFor(() => calls.length === 2, 'the 10 ms add still fires');
  });

  it('logs errors with the key and counts retries', async () => {
    const { logger, lines } = captureLogger();
    const { fn } = scripted([new Error('apiserver down')]);
    controller = new Controller({ name: 'things', reconcile: fn, logger, queue });
    controller.start();
    controller.enqueue('ns/b');
    await waitFor(() => lines.some((l) => l['message'] === 'reconcile failed; will retry'));
    const line = lines.find((l) => l['message'] === 'reconcile failed; will retry')!;
    assert.equal(line['key'], 'ns/b');
    assert.equal(line['error'], 'apiserver down');
    assert.equal(line['retries'], 1);
  });

  it('treats a synchronous throw like a rejection', async () => {
    let n = 0;
    const c = make(() => {
      n++;
      throw new Error('sync');
    });
    c.start();
    c.enqueue('ns/a');
    await waitFor(() => n === 1 && queue.numRequeues('ns/a') === 1);
  });

  it('never runs two reconciles of one key at once', async () => {
    let active = 0;
    let maxActive = 0;
    let runs = 0;
    const release: (() => void)[] = [];
    const c = make(
      async () => {
        active++;
        runs++;
        maxActive = Math.max(maxActive, active);
        await new Promise<void>((r) => release.push(r));
        active--;
      },
      { workers: 4 },
    );
    c.start();
    c.enqueue('ns/a');
    await waitFor(() => runs === 1);
    c.enqueue('ns/a');
    c.enqueue('ns/a');
    await flush();
    assert.equal(runs, 1, 'the re-add waits for the running reconcile');
    release.shift()!();
    await waitFor(() => runs === 2, 'the dirty key is re-delivered after done()');
    release.shift()!();
    await flush();
    assert.equal(runs, 2);
    assert.equal(maxActive, 1);
  });

  it('runs different keys in parallel up to the worker count', async () => {
    let active = 0;
    let maxActive = 0;
    const release: (() => void)[] = [];
    const c = make(
      async () => {
        active++;
        maxActive = Math.max(maxActive, active);
        await new Promise<void>((r) => release.push(r));
        active--;
      },
      { workers: 2 },
    );
    c.start();
    for (const k of ['a', 'b', 'c']) c.enqueue(`ns/${k}`);
    await waitFor(() => release.length === 2);
    await flush();
    assert.equal(active, 2, 'a third key waits for a free worker');
    for (const r of release.splice(0)) r();
    await waitFor(() => release.length === 1);
    release.shift()!();
    assert.equal(maxActive, 2);
  });

  it('stop() waits for the in-flight reconcile and drops queued keys', async () => {
    const release: (() => void)[] = [];
    const seen: string[] = [];
    const c = make(
      async (key) => {
        seen.push(key);
        await new Promise<void>((r) => release.push(r));
      },
      { workers: 1 },
    );
    c.start();
    c.enqueue('ns/a');
    c.enqueue('ns/b');
    await waitFor(() => release.length === 1);
    let stopped = false;
    const stopping = c.stop().then(() => (stopped = true));
    await flush();
    assert.equal(stopped, false, 'stop waits for ns/a');
    release.shift()!();
    await stopping;
    assert.deepEqual(seen, ['ns/a'], 'ns/b is not started after stop');
    controller = undefined;
  });

  it('gives every reconcile a signal that stop() aborts', async () => {
    const signals: AbortSignal[] = [];
    let finished = false;
    const c = make(async (_key, _log, signal) => {
      signals.push(signal);
      // A reconcile that waits on I/O until cancelled, as an HTTP call given the signal does.
      await new Promise<void>((resolve) => {
        signal.addEventListener('abort', () => {
          resolve();
        });
      });
      finished = true;
    });
    c.start();
    c.enqueue('ns/a');
    await waitFor(() => signals.length === 1);
    assert.equal(signals[0]!.aborted, false);
    await c.stop();
    controller = undefined;
    assert.equal(signals[0]!.aborted, true);
    assert.equal(finished, true, 'stop() returned after the reconcile ended');
  });

  it('aborts reconciles when the signal given to start() aborts, and retries nothing after', async () => {
    const { logger, lines } = captureLogger();
    const lease = new AbortController();
    const calls: string[] = [];
    controller = new Controller({
      name: 'things',
      logger,
      queue,
      workers: 1,
      reconcile: async (key, _log, signal) => {
        calls.push(key);
        await new Promise<void>((resolve) => {
          signal.addEventListener('abort', () => {
            resolve();
          });
        });
        // What a fenced write does once the lease is gone.
        throw new Error('write refused');
      },
    });
    controller.start(lease.signal);
    controller.enqueue('ns/a');
    controller.enqueue('ns/b');
    await waitFor(() => calls.length === 1);
    lease.abort();
    await waitFor(() => lines.some((l) => String(l['message']).startsWith('reconcile ended by stop')));
    clock.advance(10_000);
    await flush();
    assert.deepEqual(calls, ['ns/a'], 'ns/b is dropped, ns/a not retried');
    assert.equal(
      lines.some((l) => l['level'] === 'error'),
      false,
      'an abort is not a reconcile failure to alert on',
    );
  });

  it('records metrics per result', async () => {
    const registry = new Registry();
    const metrics = new ControllerMetrics(registry);
    const { fn, calls } = scripted([new Error('x'), { requeueAfterMs: 1000 }, undefined, new Error('y')]);
    const c = make(fn, { metrics });
    c.start();
    c.enqueue('ns/a');
    await waitFor(() => queue.numRequeues('ns/a') === 1);
    clock.advance(5);
    await waitFor(() => calls.length === 2 && clock.pending() === 1);
    clock.advance(1000);
    await waitFor(() => calls.length === 3);
    c.enqueue('ns/a');
    await waitFor(() => calls.length === 4 && queue.numRequeues('ns/a') === 1);
    await flush();
    const l = { controller: 'things' };
    assert.equal(
      await counterValue(registry, 'controller_runtime_reconcile_total', { ...l, result: 'error' }),
      2,
    );
    assert.equal(
      await counterValue(registry, 'controller_runtime_reconcile_total', { ...l, result: 'success' }),
      1,
    );
    assert.equal(
      await counterValue(registry, 'controller_runtime_reconcile_total', { ...l, result: 'requeue_after' }),
      1,
    );
    assert.equal(await counterValue(registry, 'controller_runtime_reconcile_errors_total', l), 2);
    assert.equal(await counterValue(registry, 'workqueue_retries_total', { name: 'things' }), 2);
    const hist = await registry.getSingleMetric('controller_runtime_reconcile_time_seconds')!.get();
    const count = hist.values.find(
      (v) => (v as { metricName?: string }).metricName === 'controller_runtime_reconcile_time_seconds_count',
    );
    assert.equal(count?.value, 4);
  });

  it('sets the queue depth gauge when it creates its own queue', async () => {
    const registry = new Registry();
    const metrics = new ControllerMetrics(registry);
    controller = new Controller({
      name: 'depth',
      reconcile: () => Promise.resolve(),
      logger: silentLogger(),
      metrics,
    });
    controller.enqueue('a');
    controller.enqueue('b');
    assert.equal(await counterValue(registry, 'workqueue_depth', { name: 'depth' }), 2);
  });

  it('refuses to start twice', () => {
    const c = make(() => Promise.resolve());
    c.start();
    assert.throws(() => {
      c.start();
    }, /already started/);
  });

  describe('watch()', () => {
    function informer(items: TestObj[]): { inf: Informer<TestObj>; lw: () => FakeListWatch<TestObj> } {
      let lw: FakeListWatch<TestObj> | undefined;
      const inf = new Informer<TestObj>({
        kc: undefined as never,
        path: '/things',
        list: () => Promise.resolve(listOf(items)),
        logger: silentLogger(),
        clock,
        watchdogMs: 0,
        createListWatch: (list) => (lw = new FakeListWatch(list)),
      });
      return { inf, lw: () => lw! };
    }

    it('enqueues the object key by default and filters with the predicate', async () => {
      const { inf, lw } = informer([obj('ns', 'a', { generation: 1 })]);
      const c = make(() => Promise.resolve());
      c.watch(inf, undefined, generationChanged);
      await inf.start();
      assert.equal(queue.len(), 1);
      assert.equal(await queue.get(), 'ns/a');
      queue.done('ns/a');
      lw().emit('update', obj('ns', 'a', { generation: 1, resourceVersion: '2' }));
      assert.equal(queue.len(), 0, 'status-only update filtered');
      lw().emit('update', obj('ns', 'a', { generation: 2, resourceVersion: '3' }));
      assert.equal(queue.len(), 1, 'spec change passes');
      await queue.get();
      queue.done('ns/a');
      lw().emit('delete', obj('ns', 'a', { generation: 2, resourceVersion: '3' }));
      assert.equal(queue.len(), 1, 'deletes pass');
    });

    it('maps child events to the owner key', async () => {
      const child = obj('ns', 'child', {
        ownerReferences: [
          { apiVersion: 'test.dev/v1', kind: 'Owner', name: 'parent', uid: 'u1', controller: true },
        ],
      });
      const { inf } = informer([child, obj('ns', 'orphan')]);
      const c = make(() => Promise.resolve());
      c.watch(inf, ownerKeys('Owner', 'test.dev'));
      await inf.start();
      assert.equal(queue.len(), 1);
      assert.equal(await queue.get(), 'ns/parent');
      queue.done('ns/parent');
    });

    it('survives a throwing map function', async () => {
      const { inf } = informer([obj('ns', 'a'), obj('ns', 'b')]);
      const c = make(() => Promise.resolve());
      c.watch(inf, (o) => {
        if (o.metadata.name === 'a') throw new Error('bad map');
        return [objectKey(o)];
      });
      await inf.start();
      assert.equal(queue.len(), 1);
      assert.equal(await queue.get(), 'ns/b');
    });
  });
});

describe('runtime/controller predicates and keys', () => {
  const base = (meta: Partial<TestObj['metadata']> = {}): TestObj =>
    obj('ns', 'a', { generation: 1, ...meta });

  it('generationChanged passes adds and deletes', () => {
    assert.equal(generationChanged(undefined, base()), true);
  });

  it('generationChanged skips updates with the same generation', () => {
    assert.equal(generationChanged(base(), base({ resourceVersion: '9' })), false);
  });

  it('generationChanged passes a generation bump', () => {
    assert.equal(generationChanged(base(), base({ generation: 2 })), true);
  });

  it('generationChanged passes label, annotation, finalizer and deletion changes', () => {
    const o: TestObj = base();
    assert.equal(generationChanged(o, base({ labels: { a: 'b' } })), true);
    const withAnn: TestObj = {
      ...base(),
      metadata: { ...base().metadata, annotations: { x: 'y' } },
    };
    assert.equal(generationChanged(o, withAnn), true);
    const withFin: TestObj = { ...base(), metadata: { ...base().metadata, finalizers: ['f'] } };
    assert.equal(generationChanged(o, withFin), true);
    const deleting: TestObj = {
      ...base(),
      metadata: { ...base().metadata, deletionTimestamp: new Date('2026-01-01T00:00:00Z') },
    };
    assert.equal(generationChanged(o, deleting), true);
  });

  it('generationChanged ignores finalizer order and equal label maps', () => {
    const a: TestObj = {
      metadata: { name: 'a', generation: 1, finalizers: ['x', 'y'], labels: { a: '1', b: '2' } },
    };
    const b: TestObj = {
      metadata: { name: 'a', generation: 1, finalizers: ['y', 'x'], labels: { b: '2', a: '1' } },
    };
    assert.equal(generationChanged(a, b), false);
  });

  it('generationChanged passes objects without a generation', () => {
    assert.equal(generationChanged(obj('ns', 'a'), obj('ns', 'a', { resourceVersion: '2' })), true);
  });

  it('ownerKeys follows only the controller reference of the right kind and group', () => {
    const map = ownerKeys('StackedDeployment', 'serving.stacked.dev');
    const ref = { kind: 'StackedDeployment', name: 'sd', uid: 'u' };
    assert.deepEqual(
      map(
        obj('ns', 'c', {
          ownerReferences: [{ ...ref, apiVersion: 'serving.stacked.dev/v1alpha1', controller: true }],
        }),
      ),
      ['ns/sd'],
    );
    assert.deepEqual(
      map(
        obj('ns', 'c', {
          ownerReferences: [{ ...ref, apiVersion: 'serving.stacked.dev/v1', controller: true }],
        }),
      ),
      ['ns/sd'],
      'any version of the group',
    );
    assert.deepEqual(
      map(obj('ns', 'c', { ownerReferences: [{ ...ref, apiVersion: 'serving.stacked.dev/v1alpha1' }] })),
      [],
    );
    assert.deepEqual(
      map(
        obj('ns', 'c', { ownerReferences: [{ ...ref, apiVersion: 'other.dev/v1alpha1', controller: true }] }),
      ),
      [],
    );
    assert.deepEqual(
      map(
        obj('ns', 'c', {
          ownerReferences: [
            { ...ref, kind: 'Other', apiVersion: 'serving.stacked.dev/v1alpha1', controller: true },
          ],
        }),
      ),
      [],
    );
    assert.deepEqual(map(obj('ns', 'c')), []);
  });

  it('ownerKeys handles core-group owners', () => {
    const map = ownerKeys('ConfigMap', '');
    assert.deepEqual(
      map(
        obj('ns', 'c', {
          ownerReferences: [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'cm', uid: 'u', controller: true }],
        }),
      ),
      ['ns/cm'],
    );
  });

  it('apiGroup splits apiVersion', () => {
    assert.equal(apiGroup('apps/v1'), 'apps');
    assert.equal(apiGroup('v1'), '');
  });

  it('objectKey and splitKey round-trip', () => {
    assert.equal(objectKey(obj('ns', 'a')), 'ns/a');
    const node: TestObj = { metadata: { name: 'node1' } };
    assert.equal(objectKey(node), 'node1');
    assert.deepEqual(splitKey('ns/a'), { namespace: 'ns', name: 'a' });
    assert.deepEqual(splitKey('node1'), { namespace: '', name: 'node1' });
  });
});
