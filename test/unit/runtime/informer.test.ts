import assert from 'node:assert/strict';
import { type KubernetesListObject, Watch } from '@kubernetes/client-node';
import { systemClock } from '../../../src/runtime/clock.ts';
import { Informer, ListThenWatch, METADATA_WATCH_ACCEPT } from '../../../src/runtime/informer.ts';
import { FakeApiServer, status } from './helpers/fake-apiserver.ts';
import { FakeClock, flush } from './helpers/fake-clock.ts';
import { FakeListWatch, type TestObj, listOf, obj } from './helpers/fake-listwatch.ts';
import { captureLogger, isPending, silentLogger, waitFor } from './helpers/util.ts';

interface Harness {
  inf: Informer<TestObj>;
  clock: FakeClock;
  /** Every ListWatch the informer created, oldest first. */
  lws: FakeListWatch<TestObj>[];
  /** Current list response (change it to script relists). */
  items: TestObj[];
  events: string[];
  listError?: Error;
}

function harness(opts: { watchdogMs?: number; kind?: string; apiVersion?: string } = {}): Harness {
  const clock = new FakeClock();
  const h: Harness = { inf: undefined as never, clock, lws: [], items: [], events: [] };
  const list = (): Promise<KubernetesListObject<TestObj>> =>
    h.listError
      ? Promise.reject(h.listError)
      : Promise.resolve(listOf(h.items.map((i) => structuredClone(i))));
  h.inf = new Informer<TestObj>({
    kc: undefined as never,
    path: '/apis/test.dev/v1/things',
    list,
    logger: silentLogger(),
    clock,
    random: () => 1,
    backoff: { initialMs: 1000, maxMs: 8000 },
    watchdogMs: opts.watchdogMs ?? 0,
    ...(opts.kind !== undefined ? { kind: opts.kind } : {}),
    ...(opts.apiVersion !== undefined ? { apiVersion: opts.apiVersion } : {}),
    createListWatch: (l) => {
      const lw = new FakeListWatch(l);
      h.lws.push(lw);
      return lw;
    },
  });
  for (const ev of ['add', 'update', 'delete'] as const) {
    h.inf.on(ev, (o, old) => {
      h.events.push(
        `${ev} ${o.metadata.name}@${o.metadata.resourceVersion ?? ''}${old ? ` (was ${old.metadata.resourceVersion ?? ''})` : ''}`,
      );
    });
  }
  return h;
}

const last = <T>(xs: T[]): T => xs[xs.length - 1]!;

describe('runtime/informer', () => {
  it('resolves start() once the first list is cached', async () => {
    const h = harness();
    h.items = [obj('ns', 'a'), obj('ns', 'b'), obj('other', 'c')];
    assert.equal(h.inf.hasSynced(), false);
    await h.inf.start();
    assert.equal(h.inf.hasSynced(), true);
    assert.deepEqual(h.events, ['add a@1', 'add b@1', 'add c@1']);
    assert.equal(h.inf.get('ns/a')?.metadata.name, 'a');
    assert.equal(h.inf.get('ns/zzz'), undefined);
    assert.deepEqual(
      h.inf.list('ns').map((o) => o.metadata.name),
      ['a', 'b'],
    );
    assert.equal(h.inf.list().length, 3);
    assert.equal(h.inf.start(), h.inf.start(), 'start() is idempotent');
  });

  it('caches objects without metadata.managedFields, and leaves the listed object alone', async () => {
    const h = harness();
    const listed = {
      ...obj('ns', 'a'),
      metadata: {
        ...obj('ns', 'a').metadata,
        labels: { app: 'x' },
        managedFields: [{ manager: 'kubectl', operation: 'Apply', fieldsType: 'FieldsV1' }],
      },
    };
    h.items = [listed];
    await h.inf.start();
    const cached = h.inf.get('ns/a');
    const managedFields = (o?: TestObj) =>
      (o?.metadata as { managedFields?: unknown[] } | undefined)?.managedFields;
    assert.equal(managedFields(cached), undefined);
    assert.deepEqual(cached?.metadata.labels, { app: 'x' }, 'the rest of the metadata stays');
    assert.equal(managedFields(h.items[0])?.length, 1, 'the input object is not changed');
  });

  it('keeps retrying the first list and only then resolves start()', async () => {
    const h = harness();
    h.listError = new Error('connection refused');
    const started = h.inf.start();
    assert.equal(await isPending(started), true);
    assert.deepEqual(h.clock.pendingDelays(), [1000]);
    h.listError = undefined;
    h.items = [obj('ns', 'a')];
    await h.clock.advanceAsync(1000);
    await started;
    assert.equal(h.lws.length, 2);
    assert.equal(h.lws[0]!.stopped, true);
  });

  it('emits update with the old object and skips same-version replays', async () => {
    const h = harness();
    h.items = [obj('ns', 'a')];
    await h.inf.start();
    const lw = last(h.lws);
    lw.emit('update', obj('ns', 'a'));
    lw.emit('update', obj('ns', 'a', { resourceVersion: '2' }));
    assert.deepEqual(h.events, ['add a@1', 'update a@2 (was 1)']);
    assert.equal(h.inf.get('ns/a')?.metadata.resourceVersion, '2');
  });

  it('removes deleted objects and emits delete', async () => {
    const h = harness();
    h.items = [obj('ns', 'a')];
    await h.inf.start();
    last(h.lws).emit('delete', obj('ns', 'a', { resourceVersion: '5' }));
    last(h.lws).emit('delete', obj('ns', 'nope'));
    assert.deepEqual(h.events, ['add a@1', 'delete a@5 (was 1)']);
    assert.equal(h.inf.get('ns/a'), undefined);
  });

  it('hands out deep-frozen copies', async () => {
    const h = harness();
    const original = obj('ns', 'a', { labels: { x: '1' } });
    h.items = [original];
    await h.inf.start();
    const cached = h.inf.get('ns/a')!;
    assert.throws(() => {
      cached.metadata.labels!['x'] = '2';
    }, TypeError);
    assert.throws(() => {
      (cached.metadata as { name: string }).name = 'b';
    }, TypeError);
    original.metadata.labels!['x'] = 'changed';
    assert.equal(h.inf.get('ns/a')!.metadata.labels!['x'], '1', 'the cache does not alias its input');
  });

  it('stamps apiVersion and kind on list items that lack them', async () => {
    const h = harness({ apiVersion: 'test.dev/v1', kind: 'Thing' });
    const bare: TestObj = { metadata: { name: 'a', namespace: 'ns', resourceVersion: '1' } };
    h.items = [bare];
    await h.inf.start();
    assert.equal(h.inf.get('ns/a')?.kind, 'Thing');
    assert.equal(h.inf.get('ns/a')?.apiVersion, 'test.dev/v1');
  });

  it('maintains secondary indexes through add, update and delete', async () => {
    const h = harness();
    h.inf.addIndex('byGroup', (o) =>
      o.spec?.group ? [`${o.metadata.namespace ?? ''}/${o.spec.group}`] : [],
    );
    h.items = [
      obj('ns', 'b', {}, { group: 'g1' }),
      obj('ns', 'a', {}, { group: 'g1' }),
      obj('ns', 'c', {}, { group: 'g2' }),
    ];
    await h.inf.start();
    assert.deepEqual(
      h.inf.byIndex('byGroup', 'ns/g1').map((o) => o.metadata.name),
      ['a', 'b'],
      'sorted by key',
    );
    last(h.lws).emit('update', obj('ns', 'a', { resourceVersion: '2' }, { group: 'g2' }));
    assert.deepEqual(
      h.inf.byIndex('byGroup', 'ns/g1').map((o) => o.metadata.name),
      ['b'],
    );
    assert.deepEqual(
      h.inf.byIndex('byGroup', 'ns/g2').map((o) => o.metadata.name),
      ['a', 'c'],
    );
    last(h.lws).emit('delete', obj('ns', 'c', {}, { group: 'g2' }));
    assert.deepEqual(
      h.inf.byIndex('byGroup', 'ns/g2').map((o) => o.metadata.name),
      ['a'],
    );
    assert.deepEqual(h.inf.byIndex('byGroup', 'ns/none'), []);
    assert.throws(() => h.inf.byIndex('missing', 'x'), /no index/);
    assert.throws(() => {
      h.inf.addIndex('byGroup', () => []);
    }, /already exists/);
  });

  it('indexes the existing cache when an index is added after start', async () => {
    const h = harness();
    h.items = [obj('ns', 'a', {}, { group: 'g' })];
    await h.inf.start();
    h.inf.addIndex('g', (o) => [o.spec?.group ?? '']);
    assert.equal(h.inf.byIndex('g', 'g').length, 1);
  });

  it('restarts after a watch error with a fresh list that reconciles the cache', async () => {
    const h = harness();
    h.items = [obj('ns', 'a'), obj('ns', 'b')];
    await h.inf.start();
    h.events.length = 0;
    // While disconnected: a deleted, b changed, c created.
    h.items = [obj('ns', 'b', { resourceVersion: '7' }), obj('ns', 'c')];
    last(h.lws).emit('error', Object.assign(new Error('Internal Server Error'), { statusCode: 500 }));
    assert.equal(h.lws.length, 1, 'waits for the backoff');
    await h.clock.advanceAsync(999);
    assert.equal(h.lws.length, 1);
    await h.clock.advanceAsync(1);
    assert.equal(h.lws.length, 2);
    assert.deepEqual(h.events, ['delete a@1 (was 1)', 'update b@7 (was 1)', 'add c@1']);
    assert.deepEqual(
      h.inf.list().map((o) => o.metadata.name),
      ['b', 'c'],
    );
  });

  it('backs off exponentially up to the maximum between failed restarts', async () => {
    const { logger, lines } = captureLogger('warn');
    const clock = new FakeClock();
    const lws: FakeListWatch<TestObj>[] = [];
    const inf = new Informer<TestObj>({
      kc: undefined as never,
      path: '/x',
      list: () => Promise.reject(new Error('forbidden')),
      logger,
      clock,
      random: () => 1,
      watchdogMs: 0,
      backoff: { initialMs: 1000, maxMs: 8000 },
      createListWatch: (l) => {
        const lw = new FakeListWatch(l);
        lws.push(lw);
        return lw;
      },
    });
    void inf.start();
    const delays: number[] = [];
    for (let i = 0; i < 6; i++) {
      await flush();
      delays.push(clock.pendingDelays()[0]!);
      await clock.advanceAsync(delays[i]!);
    }
    assert.deepEqual(delays, [1000, 2000, 4000, 8000, 8000, 8000]);
    assert.equal(lws.length, 7);
    assert.equal(lines[0]!['message'], 'list/watch failed; restarting');
    assert.equal(lines[0]!['informer'], '/x');
    inf.stop();
  });

  it('jitters the backoff between half and the full delay', async () => {
    for (const [r, want] of [
      [0, 500],
      [0.5, 750],
    ] as const) {
      const clock = new FakeClock();
      const inf = new Informer<TestObj>({
        kc: undefined as never,
        path: '/x',
        list: () => Promise.reject(new Error('x')),
        logger: silentLogger(),
        clock,
        random: () => r,
        watchdogMs: 0,
        createListWatch: (l) => new FakeListWatch(l),
      });
      void inf.start();
      await flush();
      assert.deepEqual(clock.pendingDelays(), [want]);
      inf.stop();
    }
  });

  it('ignores events from a superseded ListWatch and stops it', async () => {
    const h = harness();
    h.items = [obj('ns', 'a')];
    await h.inf.start();
    const old = last(h.lws);
    old.emit('error', new Error('x'));
    await h.clock.advanceAsync(1000);
    assert.equal(h.lws.length, 2);
    h.events.length = 0;
    old.stopped = false;
    old.emit('add', obj('ns', 'ghost'));
    assert.deepEqual(h.events, []);
    assert.equal(old.stopped, true);
    assert.equal(h.inf.get('ns/ghost'), undefined);
  });

  it('restarts a silent watch after watchdogMs', async () => {
    const h = harness({ watchdogMs: 300_000 });
    h.items = [obj('ns', 'a')];
    await h.inf.start();
    await h.clock.advanceAsync(200_000);
    last(h.lws).emit('connect');
    await h.clock.advanceAsync(250_000);
    assert.equal(h.lws.length, 1, 'a reconnect counts as activity');
    await h.clock.advanceAsync(100_000);
    assert.equal(h.lws.length, 2, 'relisted after 300 s of silence');
    assert.equal(h.lws[0]!.stopped, true);
  });

  it('keeps other handlers running when one throws', async () => {
    const h = harness();
    const seen: string[] = [];
    h.inf.on('add', () => {
      throw new Error('bad handler');
    });
    h.inf.on('add', (o) => seen.push(o.metadata.name));
    h.items = [obj('ns', 'a')];
    await h.inf.start();
    assert.deepEqual(seen, ['a']);
    assert.ok(h.inf.get('ns/a'));
  });

  it('stop() before sync rejects start() and stops the ListWatch', async () => {
    const h = harness();
    h.listError = new Error('nope');
    const started = h.inf.start();
    await flush();
    h.inf.stop();
    await assert.rejects(started, /stopped before it synced/);
    assert.equal(h.clock.pending(), 0, 'no restart scheduled after stop');
    await assert.rejects(h.inf.start(), /was stopped/);
  });

  it('stop() after sync keeps the cache and stops watching', async () => {
    const h = harness({ watchdogMs: 1000 });
    h.items = [obj('ns', 'a')];
    await h.inf.start();
    h.inf.stop();
    assert.equal(last(h.lws).stopped, true);
    assert.equal(h.clock.pending(), 0);
    assert.ok(h.inf.get('ns/a'));
  });

  it('handles cluster-scoped objects', async () => {
    const h = harness();
    h.items = [{ metadata: { name: 'node1', resourceVersion: '1' } }];
    await h.inf.start();
    assert.ok(h.inf.get('node1'));
    assert.equal(h.inf.list('').length, 1);
  });
});

describe('runtime/informer against client-node 2.0.1 Watch (fake API server)', () => {
  const server = new FakeApiServer();
  before(() => server.start());
  after(() => server.stop());

  it('lists, follows watch events, and relists after a watch error', async () => {
    const cm = (name: string, rv: string): TestObj => ({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name, namespace: 'ns', resourceVersion: rv },
    });
    let lists = 0;
    let watches = 0;
    const watchQueries: string[] = [];
    server.route = (req, res) => {
      if (req.path !== '/api/v1/namespaces/ns/configmaps' || req.query.get('watch') !== 'true')
        return undefined;
      watches++;
      watchQueries.push(req.query.toString());
      if (watches === 1) {
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.write(`${JSON.stringify({ type: 'MODIFIED', object: cm('a', '2') })}\n`);
        res.write(`${JSON.stringify({ type: 'ADDED', object: cm('b', '3') })}\n`);
        // A clean close: client-node reconnects from the last resourceVersion by itself.
        setTimeout(() => res.end(), 20);
        return 'handled';
      }
      if (watches === 2) return status(500, 'InternalError', 'etcd is sad');
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.write('\n');
      return 'handled';
    };
    const events: string[] = [];
    const inf = new Informer<TestObj>({
      kc: server.kubeConfig(),
      path: '/api/v1/namespaces/ns/configmaps',
      labelSelector: 'app=x',
      list: () => {
        lists++;
        return Promise.resolve(lists === 1 ? listOf([cm('a', '1')], '100') : listOf([cm('b', '3')], '200'));
      },
      logger: silentLogger(),
      backoff: { initialMs: 20, maxMs: 40 },
      watchdogMs: 0,
    });
    for (const ev of ['add', 'update', 'delete'] as const) {
      inf.on(ev, (o) => events.push(`${ev} ${o.metadata.name}@${o.metadata.resourceVersion ?? ''}`));
    }
    try {
      await inf.start();
      await waitFor(() => watches >= 3 && lists === 2 && events.length === 4, 'relist after the 500');
      assert.deepEqual(events, ['add a@1', 'update a@2', 'add b@3', 'delete a@2']);
      assert.match(watchQueries[0]!, /resourceVersion=100/);
      assert.match(watchQueries[0]!, /labelSelector=app%3Dx/);
      assert.match(watchQueries[1]!, /resourceVersion=3/, 'reconnect resumes from the last event');
      assert.match(watchQueries[2]!, /resourceVersion=200/, 'after the error, a fresh list');
      assert.deepEqual(
        inf.list().map((o) => o.metadata.name),
        ['b'],
      );
    } finally {
      inf.stop();
    }
  });
});

describe('runtime/informer ListThenWatch (fake API server)', () => {
  const server = new FakeApiServer();
  before(() => server.start());
  after(() => server.stop());
  beforeEach(() => {
    server.requests.length = 0;
  });

  const PATH = '/api/v1/namespaces/ns/secrets';
  const meta = (name: string, rv: string, annotations?: Record<string, string>): TestObj => ({
    apiVersion: 'meta.k8s.io/v1',
    kind: 'PartialObjectMetadata',
    metadata: { name, namespace: 'ns', resourceVersion: rv, ...(annotations ? { annotations } : {}) },
  });
  const watchesOf = () => server.requests.filter((r) => r.path === PATH && r.query.get('watch') === 'true');

  it('sends the metadata-only Accept header on the watch and caches only what transform keeps', async () => {
    server.route = (req, res) => {
      if (req.path !== PATH || req.query.get('watch') !== 'true') return undefined;
      res.writeHead(200, { 'Content-Type': 'application/json' });
      // kubectl apply puts the whole manifest, data included, into this annotation.
      const leaky = {
        'kubectl.kubernetes.io/last-applied-configuration': '{"data":{"privateKey":"c2VjcmV0"}}',
      };
      res.write(`${JSON.stringify({ type: 'MODIFIED', object: meta('a', '2', leaky) })}\n`);
      return 'handled';
    };
    const events: string[] = [];
    const inf = new Informer<TestObj>({
      kc: server.kubeConfig(),
      path: PATH,
      list: () => Promise.resolve(listOf([meta('a', '1')], '100')),
      watchAccept: METADATA_WATCH_ACCEPT,
      transform: (o) => ({ metadata: { name: o.metadata.name, namespace: o.metadata.namespace ?? '' } }),
      apiVersion: 'v1',
      kind: 'Secret',
      logger: silentLogger(),
      watchdogMs: 0,
    });
    inf.on('update', (o) => events.push(`update ${o.metadata.name}`));
    try {
      await inf.start();
      await waitFor(() => events.length === 1, 'the watch event');
      assert.equal(watchesOf()[0]?.headers.accept, METADATA_WATCH_ACCEPT);
      assert.match(watchesOf()[0]?.headers.authorization ?? '', /^Bearer /, 'the credentials still go along');
      assert.match(watchesOf()[0]?.query.toString() ?? '', /allowWatchBookmarks=true/);
      assert.deepEqual(inf.get('ns/a'), {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'a', namespace: 'ns' },
      });
    } finally {
      inf.stop();
    }
  });

  it('relists within the session on a 410 in the stream, resumes after a clean close, and stops for good', async () => {
    let watches = 0;
    server.route = (req, res) => {
      if (req.path !== PATH || req.query.get('watch') !== 'true') return undefined;
      watches++;
      res.writeHead(200, { 'Content-Type': 'application/json' });
      if (watches === 1) {
        const gone = { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'Expired', code: 410 };
        res.end(`${JSON.stringify({ type: 'ERROR', object: gone })}\n`);
      } else if (watches === 2) {
        res.write(`${JSON.stringify({ type: 'BOOKMARK', object: meta('', '250') })}\n`);
        setTimeout(() => res.end(), 20);
      } else {
        res.write('\n');
      }
      return 'handled';
    };
    let lists = 0;
    const errors: unknown[] = [];
    const lw = new ListThenWatch<TestObj>({
      watch: new Watch(server.kubeConfig()),
      path: PATH,
      list: () => {
        lists++;
        return Promise.resolve(listOf([], String(100 * lists)));
      },
      clock: systemClock,
    });
    lw.on('error', (err) => errors.push(err));
    await lw.start();
    await waitFor(() => watches >= 3, 'the third watch');
    await lw.stop();
    const queries = watchesOf().map((r) => r.query.get('resourceVersion'));
    assert.deepEqual(queries, ['100', '200', '250'], 'relisted after 410; resumed from the bookmark');
    assert.equal(lists, 2);
    assert.deepEqual(errors, [], 'a 410 is no error');
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(watchesOf().length, 3, 'no reconnect after stop()');
  });

  it('ends the session with an error on a refused watch, without reconnecting', async () => {
    server.route = (req) =>
      req.path === PATH && req.query.get('watch') === 'true'
        ? status(403, 'Forbidden', 'secrets is forbidden')
        : undefined;
    const errors: unknown[] = [];
    const lw = new ListThenWatch<TestObj>({
      watch: new Watch(server.kubeConfig()),
      path: PATH,
      list: () => Promise.resolve(listOf([], '100')),
      clock: systemClock,
    });
    lw.on('error', (err) => errors.push(err));
    await lw.start();
    await waitFor(() => errors.length === 1, 'the error');
    assert.equal((errors[0] as { statusCode?: number }).statusCode, 403);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(watchesOf().length, 1);
  });
});
