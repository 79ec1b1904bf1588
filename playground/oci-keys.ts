// An OCI API signing key as a user makes one: an RSA pair, its fingerprint, and the Secret the
// operator reads (tenancy, user, fingerprint, privateKey, region).
import { generateKeyPairSync } from 'node:crypto';
import * as common from 'oci-common';
import { keyFingerprint } from './oci-emu/signature.ts';

export interface ApiKey {
  tenancy: string;
  user: string;
  fingerprint: string;
  keyId: string;
  privateKeyPem: string;
  publicKeyPem: string;
}

export function makeApiKey(name = 'operator'): ApiKey {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const tenancy = 'ocid1.tenancy.oc1..aaaaaaaatenancy';
  const user = `ocid1.user.oc1..aaaaaaaa${name}`;
  const fingerprint = keyFingerprint(publicKeyPem);
  return {
    tenancy,
    user,
    fingerprint,
    keyId: `${tenancy}/${user}/${fingerprint}`,
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKeyPem,
  };
}

/** The SDK's signer for this key, as a client outside the operator would build it. */
export function apiKeyProvider(
  key: ApiKey,
  region?: common.Region,
): common.SimpleAuthenticationDetailsProvider {
  return new common.SimpleAuthenticationDetailsProvider(
    key.tenancy,
    key.user,
    key.fingerprint,
    key.privateKeyPem,
    null,
    region,
  );
}

/** The api-key Secret as `kubectl apply` takes it. */
export function apiKeySecret(name: string, key: ApiKey, region = 'us-ashburn-1'): object {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name },
    type: 'Opaque',
    stringData: {
      tenancy: key.tenancy,
      user: key.user,
      fingerprint: key.fingerprint,
      privateKey: key.privateKeyPem,
      region,
    },
  };
}

/**
 * POST to an OCI deployment's /predict, signed by the SDK's own signer like the seed's client (the
 * SDK has no predict method). Returns the status and the parsed body.
 */
export async function predict(
  key: ApiKey,
  endpoint: string,
  model: string,
): Promise<{ status: number; body: unknown }> {
  const headers = new Headers({ 'content-type': 'application/json' });
  const body = JSON.stringify({
    model,
    prompt: '[user] Write a SQL query [/user] [assistant]',
    max_tokens: 8,
  });
  const provider = apiKeyProvider(key);
  await new common.DefaultRequestSigner(provider).signHttpRequest({
    method: 'POST',
    uri: endpoint,
    headers,
    body,
  });
  const res = await fetch(endpoint, { method: 'POST', headers, body });
  const text = await res.text();
  return { status: res.status, body: text === '' ? undefined : (JSON.parse(text) as unknown) };
}
