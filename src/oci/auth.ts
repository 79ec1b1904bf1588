/**
 * OCI credentials, by the four ways a pod can hold them. Shared by the oci backend (which reads the
 * api-key Secret through the API) and the fetch agent (which gets it mounted as files).
 */
import { createPrivateKey } from 'node:crypto';
import * as common from 'oci-common';
import { errorText } from '../runtime/errors.ts';

export const AUTH_TYPES = ['apiKey', 'workloadIdentity', 'instancePrincipal', 'resourcePrincipal'] as const;
export type OciAuthType = (typeof AUTH_TYPES)[number];

/** The keys an api-key Secret holds; names follow the OCI config file, camel-cased like Kubernetes. */
export const API_KEY_FIELDS = ['tenancy', 'user', 'fingerprint', 'privateKey'] as const;
export const API_KEY_OPTIONAL_FIELDS = ['passphrase', 'region'] as const;

export interface ApiKeyMaterial {
  tenancy: string;
  user: string;
  fingerprint: string;
  privateKey: string;
  passphrase?: string;
  region?: string;
}

/** Thrown when credentials cannot be built; the message never holds secret material. */
export class OciAuthError extends Error {
  override readonly name = 'OciAuthError';
}

/**
 * Reads an api-key Secret's decoded data. Names only the missing keys, never a value, so the message
 * can go into a condition.
 */
export function apiKeyMaterial(data: Readonly<Record<string, string>>, secretName: string): ApiKeyMaterial {
  const missing = API_KEY_FIELDS.filter((k) => (data[k] ?? '').trim() === '');
  if (missing.length > 0) {
    throw new OciAuthError(`Secret "${secretName}" lacks ${missing.join(', ')}`);
  }
  const privateKey = data.privateKey ?? '';
  if (!privateKey.includes('PRIVATE KEY-----')) {
    throw new OciAuthError(`Secret "${secretName}": privateKey is not a PEM private key`);
  }
  // Read the key here, before the SDK does: given a wrong passphrase the SDK's key library throws
  // again from an async callback nothing can catch, which would end the whole process.
  try {
    createPrivateKey({ key: privateKey, passphrase: data.passphrase ?? '' });
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    throw new OciAuthError(
      `Secret "${secretName}": privateKey cannot be read (${typeof code === 'string' ? code : 'invalid key'}); check passphrase`,
    );
  }
  const material: ApiKeyMaterial = {
    tenancy: (data.tenancy ?? '').trim(),
    user: (data.user ?? '').trim(),
    fingerprint: (data.fingerprint ?? '').trim(),
    privateKey,
  };
  if (data.passphrase !== undefined && data.passphrase !== '') material.passphrase = data.passphrase;
  if (data.region !== undefined && data.region.trim() !== '') material.region = data.region.trim();
  return material;
}

/** Decodes a Secret's base64 `data` map. */
export function decodeSecretData(data: Readonly<Record<string, string>> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(data ?? {})) out[k] = Buffer.from(v, 'base64').toString('utf8');
  return out;
}

/**
 * Builds the SDK's provider. The token principals talk to their own endpoints (IMDS, the OKE proxymux,
 * the resource principal env), so they fail here with a message the caller turns into a condition.
 */
export async function authProvider(
  type: OciAuthType,
  apiKey: ApiKeyMaterial | undefined,
): Promise<common.AuthenticationDetailsProvider> {
  switch (type) {
    case 'apiKey': {
      if (apiKey === undefined) throw new OciAuthError('auth type apiKey needs the api-key Secret');
      return new common.SimpleAuthenticationDetailsProvider(
        apiKey.tenancy,
        apiKey.user,
        apiKey.fingerprint,
        apiKey.privateKey,
        apiKey.passphrase ?? null,
      );
    }
    case 'workloadIdentity': {
      // The SDK reads the service account token and needs both KUBERNETES_SERVICE_HOST and
      // KUBERNETES_SERVICE_PORT_PROXYMUX (only Enhanced OKE clusters set the latter); say which is missing.
      const missing = ['KUBERNETES_SERVICE_HOST', 'KUBERNETES_SERVICE_PORT_PROXYMUX'].filter(
        (v) => (process.env[v] ?? '') === '',
      );
      if (missing.length > 0) {
        throw new OciAuthError(
          `workload identity needs an Enhanced OKE cluster: ${missing.join(' and ')} not set in the operator's environment`,
        );
      }
      return guard('workload identity', () =>
        new common.OkeWorkloadIdentityAuthenticationDetailsProvider.OkeWorkloadIdentityAuthenticationDetailsProviderBuilder().build(),
      );
    }
    case 'instancePrincipal':
      return guardAsync('instance principal', () =>
        new common.InstancePrincipalsAuthenticationDetailsProviderBuilder().build(),
      );
    case 'resourcePrincipal':
      return guard('resource principal', () =>
        common.ResourcePrincipalAuthenticationDetailsProvider.builder(),
      );
  }
}

function guard<T>(what: string, build: () => T): T {
  try {
    return build();
  } catch (err) {
    throw new OciAuthError(`${what} credentials unavailable: ${errorText(err)}`);
  }
}

async function guardAsync<T>(what: string, build: () => Promise<T>): Promise<T> {
  try {
    return await build();
  } catch (err) {
    throw new OciAuthError(`${what} credentials unavailable: ${errorText(err)}`);
  }
}
