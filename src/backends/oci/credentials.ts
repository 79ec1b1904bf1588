/**
 * The DataScienceClient a StackedDeployment talks through: its auth type, its api-key Secret (read
 * through the API, never logged), its region and endpoint. Clients are cached per Secret version.
 *
 * The Secret's data is read by a GET without resourceVersion (a consistent read), never taken from
 * an informer: the operator watches Secrets by metadata only (controllers/indexes.ts), so it holds
 * the data of no Secret but those its deployments name. The data of each read is kept with its
 * resourceVersion, and a reconcile reads again only when the metadata informer reports another
 * resourceVersion for that Secret, or none (not watched, not synced, deleted): an unchanged Secret
 * costs no request, where a GET per client lookup cost about three per OCI reconcile. A changed
 * Secret is still used at once: the watch event that brings its new resourceVersion is what
 * triggers the reconciles of the deployments that use it (setup.ts), and they find the versions
 * differ and read it; a reconcile that runs in the milliseconds between the write and that event
 * uses the previous version and is followed by that event's. The resourceVersion, in the client
 * cache key, then makes a fixed or rotated Secret build a new client at once.
 */
import type { CoreV1Api } from '@kubernetes/client-node';
import type * as ds from 'oci-datascience';
import type { StackedDeployment } from '../../api/v1alpha1/deployment.ts';
import { errorText, isNotFound } from '../../runtime/errors.ts';
import { keyOf } from '../../runtime/keys.ts';
import { OciAuthError, apiKeyMaterial, authProvider, decodeSecretData } from '../../oci/auth.ts';
import { dataScienceClient } from '../../oci/client.ts';
import type { Fence } from '../../runtime/fence.ts';
import { fenced } from './fenced.ts';
import { instrumented, type OciMetrics } from './metrics.ts';

export type ClientFactory = (d: StackedDeployment) => Promise<ds.DataScienceClient>;

/**
 * The resourceVersion of the Secret namespace/name as the metadata-only Secret informer holds it,
 * or undefined when it holds none (not synced yet, not watched, or deleted).
 */
export type SecretVersionLookup = (namespace: string, name: string) => string | undefined;

const CACHE_LIMIT = 256;

/** Adds key to a map bounded to CACHE_LIMIT entries, dropping the oldest one first. */
function bounded<V>(cache: Map<string, V>, key: string, value: V): void {
  cache.delete(key);
  if (cache.size >= CACHE_LIMIT) {
    const oldest = cache.keys().next().value;
    if (oldest !== undefined) cache.delete(oldest);
  }
  cache.set(key, value);
}

export function secretClientFactory(
  core: CoreV1Api,
  metrics?: OciMetrics,
  fence?: Fence,
  secretVersion?: SecretVersionLookup,
): ClientFactory {
  const cache = new Map<string, ds.DataScienceClient>();
  /** The data of each Secret read, by "namespace/name", with the resourceVersion it was read at. */
  const secrets = new Map<string, { version: string; data: Record<string, string> }>();

  const readSecret = async (namespace: string, name: string) => {
    const id = keyOf(namespace, name);
    const known = secretVersion?.(namespace, name);
    const kept = secrets.get(id);
    if (known !== undefined && kept?.version === known) return kept;
    try {
      const secret = await core.readNamespacedSecret({ name, namespace });
      const read = { version: secret.metadata?.resourceVersion ?? '', data: decodeSecretData(secret.data) };
      bounded(secrets, id, read);
      return read;
    } catch (err) {
      if (isNotFound(err)) {
        secrets.delete(id);
        throw new OciAuthError(`Secret "${name}" not found in namespace ${namespace}`);
      }
      throw err;
    }
  };

  return async (d) => {
    const oci = d.spec.oci;
    if (oci === undefined) throw new OciAuthError('spec.oci is missing');
    const ns = d.metadata.namespace ?? '';
    const secretName = oci.auth.secretRef?.name;
    let data: Record<string, string> | undefined;
    let version = '';
    if (oci.auth.type === 'apiKey' && secretName !== undefined) {
      ({ data, version } = await readSecret(ns, secretName));
    }
    const key = [oci.auth.type, ns, secretName ?? '', version, oci.region, oci.endpoint ?? ''].join('|');
    const cached = cache.get(key);
    if (cached !== undefined) return cached;
    const material = data === undefined ? undefined : apiKeyMaterial(data, secretName ?? '');
    const provider = await authProvider(oci.auth.type, material);
    let raw: ds.DataScienceClient;
    try {
      raw = dataScienceClient(provider, { region: oci.region, endpoint: oci.endpoint }, fence?.signal);
    } catch (err) {
      // The SDK parses the key and the region here; what it refuses is the user's to fix.
      throw new OciAuthError(`cannot build the OCI client: ${errorText(err)}`);
    }
    const counted = metrics === undefined ? raw : instrumented(raw, metrics);
    const client = fence === undefined ? counted : fenced(counted, fence);
    bounded(cache, key, client);
    return client;
  };
}
