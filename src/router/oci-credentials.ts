/**
 * The credentials the router signs predict calls with: the StackedDeployment's own spec.oci.auth,
 * built by the same code as the operator's (src/oci/auth.ts), so both authenticate as the same
 * principal. The router reads the api-key Secret through whatever it watches with; this module only
 * turns what it read into a provider, and keeps one provider per Secret content so a rotated key is
 * used from the next request on.
 */
import { createHash } from 'node:crypto';
import type * as common from 'oci-common';
import type { StackedDeployment } from '../api/v1alpha1/deployment.ts';
import { OciAuthError, apiKeyMaterial, authProvider, decodeSecretData } from '../oci/auth.ts';

type OciSpec = NonNullable<StackedDeployment['spec']['oci']>;

/** A core/v1 Secret as far as this module reads it: its base64 `data`. */
export interface SecretData {
  data?: Readonly<Record<string, string>> | undefined;
}

/** Reads a Secret of the deployment's namespace; undefined when there is none of that name. */
export type SecretReader = (namespace: string, name: string) => Promise<SecretData | undefined>;

export type PredictCredentials = (
  namespace: string,
  oci: Pick<OciSpec, 'auth'>,
) => Promise<common.AuthenticationDetailsProvider>;

const CACHE_LIMIT = 64;

/**
 * A function that gives the provider for a deployment's spec.oci.auth. The region and endpoint of
 * spec.oci play no part in signing: the predict URL (status.oci.predictUrl) already names the host.
 * Errors are OciAuthError, with the message the operator would put in a condition, never a secret.
 */
export function predictCredentials(readSecret: SecretReader): PredictCredentials {
  // Keyed by the Secret's content, not its resourceVersion: a reader backed by a cache may not have
  // one, and the same content must not build (and parse a PEM for) another provider per request.
  const cache = new Map<string, Promise<common.AuthenticationDetailsProvider>>();
  const remember = (key: string, build: () => Promise<common.AuthenticationDetailsProvider>) => {
    const hit = cache.get(key);
    if (hit !== undefined) return hit;
    const made = build();
    // A failed build is not kept: the next request tries again (IMDS up, Secret fixed).
    made.catch(() => cache.delete(key));
    if (cache.size >= CACHE_LIMIT) {
      const oldest = cache.keys().next().value;
      if (oldest !== undefined) cache.delete(oldest);
    }
    cache.set(key, made);
    return made;
  };

  return async (namespace, oci) => {
    const { type, secretRef } = oci.auth;
    if (type !== 'apiKey') {
      // The token principals read the pod's own identity; one provider per process refreshes itself.
      return remember(type, () => authProvider(type, undefined));
    }
    if (secretRef === undefined) throw new OciAuthError('auth type apiKey needs auth.secretRef');
    const secret = await readSecret(namespace, secretRef.name);
    if (secret === undefined) {
      throw new OciAuthError(`Secret "${secretRef.name}" not found in namespace ${namespace}`);
    }
    const data = decodeSecretData(secret.data);
    const digest = createHash('sha256')
      .update(JSON.stringify(Object.entries(data).sort(([a], [b]) => a.localeCompare(b))))
      .digest('hex');
    return remember(`apiKey|${namespace}|${secretRef.name}|${digest}`, async () =>
      authProvider('apiKey', apiKeyMaterial(data, secretRef.name)),
    );
  };
}
