import assert from 'node:assert/strict';
import { CoreV1Api } from '@kubernetes/client-node';
import type { StackedDeployment } from '../../../../src/api/v1alpha1/deployment.ts';
import { secretClientFactory } from '../../../../src/backends/oci/credentials.ts';
import { OciAuthError } from '../../../../src/oci/auth.ts';
import { makeApiKey, type ApiKey } from '../../../../playground/oci-keys.ts';
import { FakeApiServer } from '../../runtime/helpers/fake-apiserver.ts';

const b64 = (s: string) => Buffer.from(s).toString('base64');

/** The api-key Secret as the API server returns it. */
function secret(key: ApiKey, resourceVersion: string): object {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'oci-key', namespace: 'ml', resourceVersion },
    data: {
      tenancy: b64(key.tenancy),
      user: b64(key.user),
      fingerprint: b64(key.fingerprint),
      privateKey: b64(key.privateKeyPem),
    },
  };
}

const deployment = {
  apiVersion: 'serving.stacked.dev/v1alpha1',
  kind: 'StackedDeployment',
  metadata: { name: 'd', namespace: 'ml' },
  spec: {
    backend: 'oci',
    oci: { region: 'us-ashburn-1', auth: { type: 'apiKey', secretRef: { name: 'oci-key' } } },
  },
} as unknown as StackedDeployment;

describe('oci backend: the client of a deployment and its api-key Secret', () => {
  const server = new FakeApiServer();
  /** What the API server holds; undefined: the Secret does not exist. */
  let stored: object | undefined;
  before(() => server.start());
  after(() => server.stop());
  beforeEach(() => {
    server.requests.length = 0;
    stored = undefined;
    server.route = (req) =>
      req.method === 'GET' && req.path === '/api/v1/namespaces/ml/secrets/oci-key' && stored !== undefined
        ? { status: 200, body: stored }
        : undefined;
  });
  const reads = () => server.requests.length;

  it('reads the Secret again only when the informer reports another resourceVersion', async () => {
    const first = makeApiKey('first');
    stored = secret(first, '10');
    /** The metadata informer's view: the version it last saw, or nothing. */
    let seen: string | undefined = '10';
    const looked: string[] = [];
    const clients = secretClientFactory(
      server.kubeConfig().makeApiClient(CoreV1Api),
      undefined,
      undefined,
      (ns, name) => {
        looked.push(`${ns}/${name}`);
        return seen;
      },
    );
    const client = await clients(deployment);
    assert.equal(reads(), 1, 'the first use reads it');
    assert.equal(await clients(deployment), client);
    assert.equal(await clients(deployment), client);
    assert.equal(reads(), 1, 'an unchanged Secret costs no request');
    assert.deepEqual(looked, ['ml/oci-key', 'ml/oci-key', 'ml/oci-key']);

    // Rotated: the watch brings the new resourceVersion, and the next reconcile uses the new key.
    stored = secret(makeApiKey('second'), '11');
    seen = '11';
    const rotated = await clients(deployment);
    assert.equal(reads(), 2);
    assert.notEqual(rotated, client, 'a new Secret version builds a new client at once');
    assert.equal(await clients(deployment), rotated);
    assert.equal(reads(), 2);

    // Written, and its watch event not in yet: this use keeps version 11; the event then brings 12
    // to the informer, and the reconcile it triggers reads it.
    stored = secret(makeApiKey('third'), '12');
    assert.equal(await clients(deployment), rotated);
    assert.equal(reads(), 2);
    seen = '12';
    const third = await clients(deployment);
    assert.notEqual(third, rotated);
    assert.equal(reads(), 3);
    seen = undefined; // not in the informer (not synced, not watched): read, as without an informer
    assert.equal(await clients(deployment), third);
    assert.equal(reads(), 4);
  });

  it('reads on every use without an informer, and reports a deleted Secret', async () => {
    stored = secret(makeApiKey(), '5');
    const clients = secretClientFactory(server.kubeConfig().makeApiClient(CoreV1Api));
    const client = await clients(deployment);
    assert.equal(await clients(deployment), client, 'same version, same client');
    assert.equal(reads(), 2);
    stored = undefined;
    await assert.rejects(
      clients(deployment),
      (e: unknown) => e instanceof OciAuthError && /not found/.test(e.message),
    );
  });

  it('a deleted Secret is not served from what was read before', async () => {
    stored = secret(makeApiKey(), '7');
    let seen: string | undefined = '7';
    const clients = secretClientFactory(
      server.kubeConfig().makeApiClient(CoreV1Api),
      undefined,
      undefined,
      () => seen,
    );
    await clients(deployment);
    stored = undefined;
    seen = undefined;
    await assert.rejects(clients(deployment), OciAuthError);
    // Recreated with the very same resourceVersion string (it cannot be, but the cache must not care).
    stored = secret(makeApiKey(), '7');
    seen = '7';
    await clients(deployment);
    assert.equal(reads(), 3);
  });
});
