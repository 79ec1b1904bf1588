import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import * as common from 'oci-common';
import { OciAuthError, apiKeyMaterial, authProvider, decodeSecretData } from '../../../src/oci/auth.ts';

const pem = generateKeyPairSync('rsa', { modulusLength: 2048 })
  .privateKey.export({ type: 'pkcs8', format: 'pem' })
  .toString();

const full = {
  tenancy: 'ocid1.tenancy.oc1..t',
  user: 'ocid1.user.oc1..u',
  fingerprint: 'aa:bb',
  privateKey: pem,
  region: ' us-phoenix-1 ',
};

/** Runs `fn` with environment variables set (or removed when undefined), then restores them. */
async function withEnv<T>(vars: Record<string, string | undefined>, fn: () => Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  for (const [k, v] of Object.entries(vars)) {
    if (v === undefined) Reflect.deleteProperty(process.env, k);
    else process.env[k] = v;
  }
  try {
    return await fn();
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) Reflect.deleteProperty(process.env, k);
      else process.env[k] = v;
    }
  }
}

describe('OCI credentials', () => {
  it('reads an api-key Secret and builds the SDK provider from it', async () => {
    const m = apiKeyMaterial(full, 'oci-api-key');
    assert.equal(m.region, 'us-phoenix-1');
    const p = await authProvider('apiKey', m);
    assert.ok(p instanceof common.SimpleAuthenticationDetailsProvider);
    assert.equal(await p.getKeyId(), 'ocid1.tenancy.oc1..t/ocid1.user.oc1..u/aa:bb');
  });

  it('names the missing keys and never a value', () => {
    assert.throws(
      () => apiKeyMaterial({ ...full, user: '', fingerprint: ' ' }, 'oci-api-key'),
      (e: unknown) =>
        e instanceof OciAuthError &&
        e.message === 'Secret "oci-api-key" lacks user, fingerprint' &&
        !e.message.includes('PRIVATE'),
    );
    assert.throws(
      () => apiKeyMaterial({ ...full, privateKey: 'not a key' }, 'k'),
      /Secret "k": privateKey is not a PEM private key/,
    );
  });

  it('decodes base64 Secret data', () => {
    assert.deepEqual(decodeSecretData({ user: Buffer.from('u1').toString('base64') }), { user: 'u1' });
    assert.deepEqual(decodeSecretData(undefined), {});
  });

  it('says which environment workload identity lacks outside an Enhanced OKE cluster', async () => {
    await withEnv({ KUBERNETES_SERVICE_HOST: '10.0.0.1', KUBERNETES_SERVICE_PORT_PROXYMUX: undefined }, () =>
      assert.rejects(
        authProvider('workloadIdentity', undefined),
        /KUBERNETES_SERVICE_PORT_PROXYMUX not set in the operator's environment/,
      ),
    );
  });

  it('reports a resource principal without its environment as an auth error', async () => {
    await withEnv({ OCI_RESOURCE_PRINCIPAL_VERSION: undefined }, () =>
      assert.rejects(authProvider('resourcePrincipal', undefined), (e: unknown) => {
        assert.ok(e instanceof OciAuthError);
        assert.match(e.message, /^resource principal credentials unavailable: /);
        return true;
      }),
    );
  });

  it('requires the Secret for apiKey', async () => {
    await assert.rejects(authProvider('apiKey', undefined), /auth type apiKey needs the api-key Secret/);
  });
});

describe('OCI credentials from an encrypted key', () => {
  const encrypted = generateKeyPairSync('rsa', { modulusLength: 2048 })
    .privateKey.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'right' })
    .toString();

  it('takes the right passphrase', async () => {
    const m = apiKeyMaterial({ ...full, privateKey: encrypted, passphrase: 'right' }, 'enc');
    assert.ok((await authProvider('apiKey', m)) instanceof common.SimpleAuthenticationDetailsProvider);
  });

  it('refuses a wrong or missing passphrase as a condition, before the SDK can crash the process', () => {
    for (const passphrase of ['wrong', undefined]) {
      assert.throws(
        () =>
          apiKeyMaterial({ ...full, privateKey: encrypted, ...(passphrase ? { passphrase } : {}) }, 'enc'),
        (e: unknown) =>
          e instanceof OciAuthError &&
          /^Secret "enc": privateKey cannot be read \(.+\); check passphrase$/.test(e.message) &&
          !e.message.includes('right') &&
          !e.message.includes('wrong'),
      );
    }
  });
});
