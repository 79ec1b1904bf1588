import assert from 'node:assert/strict';
import { ApiException, type CoreV1Event, KubeConfig } from '@kubernetes/client-node';
import { EventRecorder, type EventsApi, MAX_EVENT_MESSAGE } from '../../../src/runtime/events.ts';
import { FakeApiServer } from './helpers/fake-apiserver.ts';
import type { TestObj } from './helpers/fake-listwatch.ts';
import { captureLogger, silentLogger } from './helpers/util.ts';

interface Recorded {
  creates: { namespace: string; body: CoreV1Event }[];
  patches: {
    name: string;
    namespace: string;
    body: { count: number; lastTimestamp: string };
    contentType?: string;
  }[];
}

function fakeApi(opts: { failCreate?: Error; failPatch?: Error } = {}): {
  api: EventsApi;
  rec: Recorded;
} {
  const rec: Recorded = { creates: [], patches: [] };
  const api = {
    createNamespacedEvent: async (p: { namespace: string; body: CoreV1Event }) => {
      await Promise.resolve();
      if (opts.failCreate) throw opts.failCreate;
      rec.creates.push(p);
      return p.body;
    },
    patchNamespacedEvent: async (
      p: { name: string; namespace: string; body: { count: number; lastTimestamp: string } },
      o?: { middleware?: { pre: (ctx: unknown) => unknown }[] },
    ) => {
      await Promise.resolve();
      if (opts.failPatch) throw opts.failPatch;
      // Run the header middleware on a stub request to see the Content-Type it sets.
      let contentType: string | undefined;
      for (const m of o?.middleware ?? []) {
        m.pre({ setHeaderParam: (k: string, v: string) => k === 'Content-Type' && (contentType = v) });
      }
      rec.patches.push({ ...p, ...(contentType !== undefined ? { contentType } : {}) });
      return {};
    },
  } as unknown as EventsApi;
  return { api, rec };
}

const sd: TestObj = {
  apiVersion: 'serving.stacked.dev/v1alpha1',
  kind: 'StackedDeployment',
  metadata: { name: 'llama', namespace: 'team-a', uid: 'uid-1', resourceVersion: '42' },
};

const withUid = (uid: string): TestObj => ({ ...sd, metadata: { ...sd.metadata, uid } });

describe('runtime/events', () => {
  let now: Date;
  const clock = (): Date => now;
  beforeEach(() => {
    now = new Date('2026-02-01T12:00:00.456Z');
  });

  function recorder(api: EventsApi, logger = silentLogger()): EventRecorder {
    return new EventRecorder({
      kc: new KubeConfig(),
      component: 'stacked-operator',
      logger,
      clock,
      api,
      instance: 'pod-0',
    });
  }

  it('creates a core/v1 Event about the object', async () => {
    const { api, rec } = fakeApi();
    const r = recorder(api);
    r.record(sd, 'Warning', 'GroupNotReady', 'model group "g" is not ready');
    await r.flush();
    assert.equal(rec.creates.length, 1);
    const { namespace, body } = rec.creates[0]!;
    assert.equal(namespace, 'team-a');
    assert.equal(body.metadata.namespace, 'team-a');
    assert.match(body.metadata.name ?? '', /^llama\.[0-9a-f]+$/);
    assert.deepEqual(structuredClone(body.involvedObject), {
      apiVersion: 'serving.stacked.dev/v1alpha1',
      kind: 'StackedDeployment',
      name: 'llama',
      namespace: 'team-a',
      uid: 'uid-1',
      resourceVersion: '42',
    });
    assert.equal(body.type, 'Warning');
    assert.equal(body.reason, 'GroupNotReady');
    assert.equal(body.message, 'model group "g" is not ready');
    assert.equal(body.count, 1);
    assert.equal(body.firstTimestamp?.toISOString(), '2026-02-01T12:00:00.000Z', 'whole seconds');
    assert.equal(body.lastTimestamp?.toISOString(), '2026-02-01T12:00:00.000Z');
    assert.equal(body.source?.component, 'stacked-operator');
    assert.equal(body.reportingComponent, 'stacked-operator');
    assert.equal(body.reportingInstance, 'pod-0');
  });

  it('aggregates repeats into one Event by patching count and lastTimestamp', async () => {
    const { api, rec } = fakeApi();
    const r = recorder(api);
    r.record(sd, 'Warning', 'Failed', 'boom');
    r.record(sd, 'Warning', 'Failed', 'boom');
    now = new Date('2026-02-01T12:05:00Z');
    r.record(sd, 'Warning', 'Failed', 'boom');
    await r.flush();
    assert.equal(rec.creates.length, 1, 'serialised per key: no duplicate create in a burst');
    assert.deepEqual(
      rec.patches.map((p) => [p.name, p.body.count, p.body.lastTimestamp, p.contentType]),
      [
        [rec.creates[0]!.body.metadata.name, 2, '2026-02-01T12:00:00Z', 'application/merge-patch+json'],
        [rec.creates[0]!.body.metadata.name, 3, '2026-02-01T12:05:00Z', 'application/merge-patch+json'],
      ],
    );
  });

  it('keeps distinct messages, reasons and types apart', async () => {
    const { api, rec } = fakeApi();
    const r = recorder(api);
    r.record(sd, 'Warning', 'Failed', 'a');
    r.record(sd, 'Warning', 'Failed', 'b');
    r.record(sd, 'Warning', 'Other', 'a');
    r.record(sd, 'Normal', 'Failed', 'a');
    r.record(withUid('uid-2'), 'Warning', 'Failed', 'a');
    await r.flush();
    assert.equal(rec.creates.length, 5);
    assert.equal(rec.patches.length, 0);
  });

  it('creates a new Event when the aggregated one has expired (404)', async () => {
    const { api, rec } = fakeApi();
    const r = recorder(api);
    r.record(sd, 'Normal', 'Ready', 'ok');
    await r.flush();
    (api as { patchNamespacedEvent: unknown }).patchNamespacedEvent = () =>
      Promise.reject(new ApiException(404, 'x', '{"reason":"NotFound"}', {}));
    r.record(sd, 'Normal', 'Ready', 'ok');
    await r.flush();
    assert.equal(rec.creates.length, 2);
  });

  it('never throws and logs failures without the message', async () => {
    const { logger, lines } = captureLogger();
    const { api } = fakeApi({
      failCreate: new ApiException(403, 'Forbidden', '{"reason":"Forbidden","message":"no"}', {}),
    });
    const r = recorder(api, logger);
    assert.doesNotThrow(() => {
      r.record(sd, 'Warning', 'Failed', 'password=hunter2');
    });
    await r.flush();
    const line = lines.find((l) => l['message'] === 'failed to record event');
    assert.ok(line);
    assert.equal(line['code'], 403);
    assert.equal(line['eventReason'], 'Failed');
    assert.equal(line['reason'], 'Forbidden');
    assert.doesNotMatch(JSON.stringify(lines), /hunter2/);
  });

  it('puts Events about cluster-scoped objects in "default"', async () => {
    const { api, rec } = fakeApi();
    const r = recorder(api);
    const node: TestObj = { apiVersion: 'v1', kind: 'Node', metadata: { name: 'n1', uid: 'u' } };
    r.record(node, 'Normal', 'X', 'y');
    await r.flush();
    assert.equal(rec.creates[0]!.namespace, 'default');
  });

  it('truncates long messages', async () => {
    const { api, rec } = fakeApi();
    const r = recorder(api);
    r.record(sd, 'Normal', 'X', 'x'.repeat(5000));
    await r.flush();
    const message = rec.creates[0]!.body.message ?? '';
    assert.equal(message.length, MAX_EVENT_MESSAGE);
    assert.ok(message.endsWith('...'));
  });

  it('drops Events about unnamed objects', async () => {
    const { api, rec } = fakeApi();
    const r = recorder(api);
    const unnamed: TestObj = { metadata: { name: '' } };
    r.record(unnamed, 'Normal', 'X', 'y');
    await r.flush();
    assert.equal(rec.creates.length, 0);
  });

  it('rate-limits one object to a burst of 25, refilling one per 5 minutes', async () => {
    const { api, rec } = fakeApi();
    const r = recorder(api);
    for (let i = 0; i < 30; i++) r.record(sd, 'Normal', 'Step', `step ${i}`);
    await r.flush();
    assert.equal(rec.creates.length, 25);
    r.record(withUid('other'), 'Normal', 'Step', 'x');
    await r.flush();
    assert.equal(rec.creates.length, 26, 'other objects are not affected');
    now = new Date(now.getTime() + 300_000);
    r.record(sd, 'Normal', 'Step', 'later');
    r.record(sd, 'Normal', 'Step', 'later 2');
    await r.flush();
    assert.equal(rec.creates.length, 27);
  });

  describe('through client-node 2.0.1 (fake API server)', () => {
    const server = new FakeApiServer();
    before(() => server.start());
    after(() => server.stop());

    it('POSTs the Event and merge-patches repeats', async () => {
      server.requests.length = 0;
      server.route = (req) => ({
        status: req.method === 'POST' ? 201 : 200,
        body: { ...JSON.parse(req.body), kind: 'Event', apiVersion: 'v1' },
      });
      const r = new EventRecorder({
        kc: server.kubeConfig(),
        component: 'stacked-operator',
        logger: silentLogger(),
        clock,
      });
      r.record(sd, 'Normal', 'Ready', 'all good');
      await r.flush();
      r.record(sd, 'Normal', 'Ready', 'all good');
      await r.flush();
      const [post, patch] = server.requests;
      assert.equal(post?.method, 'POST');
      assert.equal(post.path, '/api/v1/namespaces/team-a/events');
      const body = JSON.parse(post.body) as Record<string, unknown>;
      assert.equal(body['firstTimestamp'], '2026-02-01T12:00:00.000Z');
      assert.equal(body['count'], 1);
      assert.equal((body['involvedObject'] as Record<string, unknown>)['uid'], 'uid-1');
      assert.equal(patch?.method, 'PATCH');
      assert.equal(
        patch.path,
        `/api/v1/namespaces/team-a/events/${(body['metadata'] as { name: string }).name}`,
      );
      assert.equal(patch.headers['content-type'], 'application/merge-patch+json');
      assert.deepEqual(JSON.parse(patch.body), { count: 2, lastTimestamp: '2026-02-01T12:00:00Z' });
    });
  });
});
