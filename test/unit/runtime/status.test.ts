import assert from 'node:assert/strict';
import { CustomObjectsApi } from '@kubernetes/client-node';
import { mergePatchFor, patchStatusIfChanged, statusEqual } from '../../../src/runtime/status.ts';
import { FakeApiServer, status } from './helpers/fake-apiserver.ts';

describe('runtime/status', () => {
  describe('statusEqual', () => {
    it('ignores key order', () => {
      assert.equal(statusEqual({ a: 1, b: { c: 2, d: 3 } }, { b: { d: 3, c: 2 }, a: 1 }), true);
    });

    it('treats undefined and null fields as absent', () => {
      assert.equal(statusEqual({ a: 1, b: undefined }, { a: 1 }), true);
      assert.equal(statusEqual({ a: 1 }, { a: 1, b: null }), true);
      assert.equal(statusEqual(undefined, null), true);
    });

    it('sees value, type and length differences', () => {
      assert.equal(statusEqual({ a: 1 }, { a: 2 }), false);
      assert.equal(statusEqual({ a: 1 }, { a: '1' }), false);
      assert.equal(statusEqual({ a: [1, 2] }, { a: [1, 2, 3] }), false);
      assert.equal(statusEqual({ a: [1, 2] }, { a: [2, 1] }), false, 'arrays are ordered');
      assert.equal(statusEqual({ a: {} }, { a: [] }), false);
      assert.equal(statusEqual({ a: 1 }, { a: 1, extra: 0 }), false);
      assert.equal(statusEqual({ a: 1 }, { a: 1, extra: false }), false);
      assert.equal(statusEqual(undefined, {}), false);
    });

    it('compares nested condition lists', () => {
      const c = {
        type: 'Ready',
        status: 'True',
        reason: 'Ok',
        message: '',
        lastTransitionTime: '2026-01-01T00:00:00Z',
      };
      assert.equal(statusEqual({ conditions: [c] }, { conditions: [{ ...c }] }), true);
      assert.equal(statusEqual({ conditions: [c] }, { conditions: [{ ...c, message: 'x' }] }), false);
    });

    it('compares Dates by their JSON form', () => {
      const d = new Date('2026-01-01T00:00:00Z');
      assert.equal(statusEqual({ t: d }, { t: '2026-01-01T00:00:00.000Z' }), true);
      assert.equal(statusEqual({ t: d }, { t: '2026-01-01T00:00:01.000Z' }), false);
    });
  });

  describe('mergePatchFor', () => {
    it('nulls out fields the desired status no longer has, at any depth', () => {
      assert.deepEqual(mergePatchFor({ a: 1, b: 2, n: { x: 1, y: 2 } }, { a: 1, n: { x: 1 } }), {
        a: 1,
        b: null,
        n: { x: 1, y: null },
      });
    });

    it('replaces arrays and scalars wholesale', () => {
      assert.deepEqual(mergePatchFor({ l: [1, 2], s: 'a' }, { l: [3], s: { o: 1 } }), {
        l: [3],
        s: { o: 1 },
      });
    });

    it('sends desired as is when there is no current status', () => {
      assert.deepEqual(mergePatchFor(undefined, { a: { b: 1 }, u: undefined }), { a: { b: 1 } });
    });
  });

  describe('patchStatusIfChanged', () => {
    type Call = [Record<string, unknown>, { middleware?: unknown[] } | undefined];
    function fakeApi(): { api: Pick<CustomObjectsApi, 'patchNamespacedCustomObjectStatus'>; calls: Call[] } {
      const calls: Call[] = [];
      const api = {
        patchNamespacedCustomObjectStatus: (
          param: Record<string, unknown>,
          opts?: { middleware?: unknown[] },
        ) => {
          calls.push([param, opts]);
          return Promise.resolve({});
        },
      } as unknown as Pick<CustomObjectsApi, 'patchNamespacedCustomObjectStatus'>;
      return { api, calls };
    }
    const target = {
      group: 'serving.stacked.dev',
      version: 'v1alpha1',
      plural: 'stackeddeployments',
      namespace: 'ns',
      name: 'sd',
      fieldManager: 'stacked-operator',
    };

    it('does not write an unchanged status', async () => {
      const { api, calls } = fakeApi();
      const wrote = await patchStatusIfChanged({
        ...target,
        api,
        current: { phase: 'x', observedGeneration: 2 },
        desired: { observedGeneration: 2, phase: 'x' },
      });
      assert.equal(wrote, false);
      assert.equal(calls.length, 0);
    });

    it('writes a changed status as a merge patch of {status}', async () => {
      const { api, calls } = fakeApi();
      const wrote = await patchStatusIfChanged({
        ...target,
        api,
        current: { observedGeneration: 1, old: true },
        desired: { observedGeneration: 2 },
      });
      assert.equal(wrote, true);
      assert.equal(calls.length, 1);
      const [param, opts] = calls[0]!;
      assert.deepEqual(param, { ...target, body: { status: { observedGeneration: 2, old: null } } });
      assert.equal(opts?.middleware?.length, 1, 'a Content-Type middleware is passed');
    });
  });

  describe('patchStatusIfChanged through client-node 2.0.1 (fake API server)', () => {
    const server = new FakeApiServer();
    before(() => server.start());
    after(() => server.stop());

    it('sends a JSON merge patch to the /status subresource', async () => {
      server.requests.length = 0;
      server.route = (req) => ({
        status: 200,
        body: { apiVersion: 'x/v1', kind: 'X', metadata: { name: 'sd' }, status: JSON.parse(req.body) },
      });
      const api = server.kubeConfig().makeApiClient(CustomObjectsApi);
      const wrote = await patchStatusIfChanged({
        api,
        group: 'serving.stacked.dev',
        version: 'v1alpha1',
        plural: 'stackeddeployments',
        namespace: 'ns',
        name: 'sd',
        current: undefined,
        desired: { observedGeneration: 3 },
        fieldManager: 'stacked-operator',
      });
      assert.equal(wrote, true);
      const req = server.requests[0]!;
      assert.equal(req.method, 'PATCH');
      assert.equal(req.path, '/apis/serving.stacked.dev/v1alpha1/namespaces/ns/stackeddeployments/sd/status');
      assert.equal(req.headers['content-type'], 'application/merge-patch+json');
      assert.equal(req.query.get('fieldManager'), 'stacked-operator');
      assert.deepEqual(JSON.parse(req.body), { status: { observedGeneration: 3 } });
    });

    it('propagates API errors', async () => {
      server.route = () => status(404, 'NotFound', 'gone');
      const api = server.kubeConfig().makeApiClient(CustomObjectsApi);
      await assert.rejects(
        patchStatusIfChanged({
          api,
          group: 'g',
          version: 'v1',
          plural: 'p',
          namespace: 'ns',
          name: 'n',
          current: undefined,
          desired: { a: 1 },
          fieldManager: 'f',
        }),
        (err: unknown) => (err as { code?: number }).code === 404,
      );
    });
  });
});
