import assert from 'node:assert/strict';
import { ApiException, CoreV1Api, KubernetesObjectApi, V1ConfigMap } from '@kubernetes/client-node';
import { model } from '../../../src/runtime/model.ts';
import {
  FIELD_MANAGER,
  apiErrorCode,
  apiErrorStatus,
  controllerOwnerReference,
  errorMeta,
  isConflict,
  isNotFound,
  serverSideApply,
} from '../../../src/runtime/apply.ts';
import { FakeApiServer, status } from './helpers/fake-apiserver.ts';

const statusBody = JSON.stringify({
  kind: 'Status',
  apiVersion: 'v1',
  status: 'Failure',
  reason: 'Conflict',
  message: 'the object has been modified',
  code: 409,
});

describe('runtime/apply', () => {
  describe('controllerOwnerReference', () => {
    it('builds a controller reference that blocks owner deletion', () => {
      const ref = controllerOwnerReference({
        apiVersion: 'serving.stacked.dev/v1alpha1',
        kind: 'StackedDeployment',
        metadata: { name: 'sd', uid: 'uid-1' },
      });
      assert.deepEqual(structuredClone(ref), {
        apiVersion: 'serving.stacked.dev/v1alpha1',
        kind: 'StackedDeployment',
        name: 'sd',
        uid: 'uid-1',
        controller: true,
        blockOwnerDeletion: true,
      });
    });

    it('refuses an owner without uid', () => {
      assert.throws(
        () => controllerOwnerReference({ apiVersion: 'v1', kind: 'X', metadata: { name: 'a' } }),
        /no name or uid/,
      );
    });
  });

  describe('error helpers', () => {
    it('reads the code of an ApiException and of a watch error', () => {
      assert.equal(apiErrorCode(new ApiException(409, 'x', statusBody, {})), 409);
      assert.equal(apiErrorCode(Object.assign(new Error('Gone'), { statusCode: 410 })), 410);
      assert.equal(apiErrorCode(Object.assign(new Error('connect'), { code: 'ECONNREFUSED' })), undefined);
      assert.equal(apiErrorCode('nope'), undefined);
      assert.equal(apiErrorCode(undefined), undefined);
    });

    it('parses the Status in ApiException.body (raw JSON text)', () => {
      assert.deepEqual(apiErrorStatus(new ApiException(409, 'x', statusBody, {})), {
        reason: 'Conflict',
        message: 'the object has been modified',
      });
      assert.deepEqual(apiErrorStatus({ body: { reason: 'NotFound' } }), { reason: 'NotFound' });
      assert.equal(apiErrorStatus(new ApiException(401, 'Unauthorized', undefined, {})), undefined);
      assert.equal(apiErrorStatus(new ApiException(502, 'x', '<html>bad gateway</html>', {})), undefined);
      assert.equal(apiErrorStatus(new Error('x')), undefined);
    });

    it('classifies NotFound and Conflict', () => {
      assert.equal(isNotFound(new ApiException(404, 'x', '', {})), true);
      assert.equal(isNotFound(new ApiException(409, 'x', '', {})), false);
      assert.equal(isConflict(new ApiException(409, 'x', '', {})), true);
    });

    it('errorMeta gives a short message and never the headers or raw body', () => {
      const err = new ApiException(409, 'Unknown API Status Code!', statusBody, {
        authorization: 'Bearer s3cret',
      });
      const meta = errorMeta(err);
      assert.deepEqual(meta, { error: 'the object has been modified', code: 409, reason: 'Conflict' });
      assert.doesNotMatch(JSON.stringify(meta), /s3cret/);
      assert.deepEqual(errorMeta(new ApiException(401, 'Unauthorized', undefined, {})), {
        error: 'HTTP-Code: 401',
        code: 401,
      });
      assert.deepEqual(errorMeta(new ApiException(502, 'x', '<html/>', { a: 'b' })), {
        error: 'HTTP 502',
        code: 502,
      });
      assert.deepEqual(errorMeta(new Error('line one\nline two')), { error: 'line one' });
      assert.deepEqual(errorMeta('plain'), { error: 'plain' });
    });
  });

  describe('serverSideApply', () => {
    it('patches with the apply strategy, our field manager and force', async () => {
      const calls: unknown[][] = [];
      const api = {
        patch: (...args: unknown[]) => {
          calls.push(args);
          return Promise.resolve(args[0]);
        },
      } as unknown as Pick<KubernetesObjectApi, 'patch'>;
      const cm = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'a', namespace: 'ns' } };
      assert.equal(await serverSideApply(api, cm), cm);
      assert.deepEqual(calls[0], [
        cm,
        undefined,
        undefined,
        FIELD_MANAGER,
        true,
        'application/apply-patch+yaml',
      ]);
      await serverSideApply(api, cm, 'other');
      assert.equal(calls[1]![3], 'other');
    });
  });

  describe('through client-node 2.0.1 (fake API server)', () => {
    const server = new FakeApiServer();
    before(() => server.start());
    after(() => server.stop());

    it('server-side applies to the object URL with fieldManager and force', async () => {
      server.requests.length = 0;
      server.route = (req) => {
        if (req.path === '/api/v1') {
          return {
            status: 200,
            body: {
              kind: 'APIResourceList',
              groupVersion: 'v1',
              resources: [
                {
                  name: 'configmaps',
                  namespaced: true,
                  kind: 'ConfigMap',
                  verbs: ['patch'],
                  singularName: '',
                },
              ],
            },
          };
        }
        if (req.method === 'PATCH')
          return {
            status: 200,
            body: { ...JSON.parse(req.body), metadata: { name: 'a', namespace: 'ns', uid: 'u' } },
          };
        return undefined;
      };
      const api = KubernetesObjectApi.makeApiClient(server.kubeConfig());
      const cm = model(V1ConfigMap, {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'a', namespace: 'ns' },
        data: { k: 'v' },
      });
      const out = await serverSideApply(api, cm);
      assert.equal(out.metadata?.uid, 'u');
      const patch = server.requests.find((r) => r.method === 'PATCH')!;
      assert.equal(patch.path, '/api/v1/namespaces/ns/configmaps/a');
      assert.equal(patch.headers['content-type'], 'application/apply-patch+yaml');
      assert.equal(patch.query.get('fieldManager'), 'stacked-operator');
      assert.equal(patch.query.get('force'), 'true');
      assert.deepEqual(JSON.parse(patch.body), structuredClone(cm));
    });

    it('surfaces a Status error the helpers can read', async () => {
      server.route = () => status(409, 'AlreadyExists', 'configmaps "a" already exists');
      const api = server.kubeConfig().makeApiClient(CoreV1Api);
      const err = await api.readNamespacedConfigMap({ name: 'a', namespace: 'ns' }).then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.equal(apiErrorCode(err), 409);
      assert.deepEqual(apiErrorStatus(err), {
        reason: 'AlreadyExists',
        message: 'configmaps "a" already exists',
      });
      assert.doesNotMatch(JSON.stringify(errorMeta(err)), /secret-token/);
    });
  });
});
