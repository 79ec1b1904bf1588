/**
 * The DataScienceClient a StackedDeployment talks through: its auth type, its api-key Secret (read
 * through the API, never logged), its region and endpoint. Clients are cached per Secret version.
 *
 * The Secret is read on every call, by a GET without resourceVersion (a consistent read), never
 * taken from an informer: the operator watches Secrets by metadata only (controllers/indexes.ts),
 * and the reconcile a Secret change triggers must see that change. Its resourceVersion in the
 * cache key then makes a fixed or rotated Secret build a new client at once.
 */
import type { CoreV1Api } from '@kubernetes/client-node';
import type * as ds from 'oci-datascience';
import type { StackedDeployment } from '../../api/v1alpha1/deployment.ts';
import { errorText, isNotFound } from '../../runtime/errors.ts';
import { OciAuthError, apiKeyMaterial, authProvider, decodeSecretData } from '../../oci/auth.ts';
import { dataScienceClient } from '../../oci/client.ts';
import type { Fence } from '../../runtime/fence.ts';
import { fenced } from './fenced.ts';
import { instrumented, type OciMetrics } from './metrics.ts';

export type ClientFactory = (d: StackedDeployment) => Promise<ds.DataScienceClient>;

const CACHE_LIMIT = 256;

export function secretClientFactory(core: CoreV1Api, metrics?: OciMetrics, fence?: Fence): ClientFactory {
  const cache = new Map<string, ds.DataScienceClient>();
  return async (d) => {
    const oci = d.spec.oci;
    if (oci === undefined) throw new OciAuthError('spec.oci is missing');
    const ns = d.metadata.namespace ?? '';
    const secretName = oci.auth.secretRef?.name;
    let data: Record<string, string> | undefined;
    let version = '';
    if (oci.auth.type === 'apiKey' && secretName !== undefined) {
      try {
        const secret = await core.readNamespacedSecret({ name: secretName, namespace: ns });
        data = decodeSecretData(secret.data);
        version = secret.metadata?.resourceVersion ?? '';
      } catch (err) {
        if (isNotFound(err)) throw new OciAuthError(`Secret "${secretName}" not found in namespace ${ns}`);
        throw err;
      }
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
    if (cache.size >= CACHE_LIMIT) {
      const oldest = cache.keys().next().value;
      if (oldest !== undefined) cache.delete(oldest);
    }
    cache.set(key, client);
    return client;
  };
}
