/**
 * The oci backend's upstream: the model deployment's predict URL (status.oci.predictUrl), each try
 * signed with the deployment's own spec.oci.auth. OCI balances across its instances itself and its
 * load balancer has no second address to fall back to, so there is one endpoint and no retry: a
 * predict that may have reached the model is never sent twice.
 *
 * Every inference route goes to /predict, which takes vLLM's completion body; what OCI refuses there
 * (a chat body, stream: true) comes back as OCI's own error.
 */
import { Agent as HttpAgent, type OutgoingHttpHeaders } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import type { CoreV1Api } from '@kubernetes/client-node';
import { apiErrorCode } from '../runtime/errors.ts';
import type { Logger } from '../runtime/logger.ts';
import { type PredictCredentials, type SecretData, predictCredentials } from './oci-credentials.ts';
import { predictTarget, signPredict } from './oci-signer.ts';
import type { Upstream, UpstreamEndpoint, UpstreamRequest } from './upstream.ts';

/** The id of OCI's one endpoint among a request's tries. */
export const OCI_ENDPOINT_ID = 'oci-predict';

/**
 * How long a Secret read stays fresh. The router's Role may only `get` the one Secret (no watch), so
 * it re-reads: a rotated key is used within this window, and from the next request on once OCI has
 * answered 401 to the old one.
 */
export const SECRET_TTL_MS = 10_000;

/** A Secret reader over the API with a short cache, so predicts do not each cost an API call. */
export function cachedSecretReader(
  core: CoreV1Api,
  ttlMs = SECRET_TTL_MS,
  now: () => number = Date.now,
): { read: (namespace: string, name: string) => Promise<SecretData | undefined>; forget: () => void } {
  const cache = new Map<string, { at: number; value: Promise<SecretData | undefined> }>();
  const read = (namespace: string, name: string): Promise<SecretData | undefined> => {
    const key = `${namespace}/${name}`;
    const hit = cache.get(key);
    if (hit !== undefined && now() - hit.at < ttlMs) return hit.value;
    const value = core.readNamespacedSecret({ namespace, name }).then(
      (s) => ({ data: s.data }),
      (err: unknown) => {
        if (apiErrorCode(err) === 404) return undefined;
        cache.delete(key);
        throw err;
      },
    );
    cache.set(key, { at: now(), value });
    return value;
  };
  return {
    read,
    forget: () => {
      cache.clear();
    },
  };
}

export interface OciUpstreamOptions {
  core: CoreV1Api;
  log: Logger;
  /** Default: from the Secret (apiKey) or the pod's principal, as the operator authenticates. */
  credentials?: PredictCredentials;
}

export class OciUpstream implements Upstream {
  private readonly https = new HttpsAgent({ keepAlive: true, maxFreeSockets: 64 });
  private readonly http = new HttpAgent({ keepAlive: true, maxFreeSockets: 64 });
  private readonly secrets: ReturnType<typeof cachedSecretReader>;
  private readonly credentials: PredictCredentials;
  private readonly log: Logger;

  constructor(opts: OciUpstreamOptions) {
    this.secrets = cachedSecretReader(opts.core);
    this.credentials = opts.credentials ?? predictCredentials((ns, name) => this.secrets.read(ns, name));
    this.log = opts.log;
  }

  async prepare(req: UpstreamRequest, tried: ReadonlySet<string>): Promise<UpstreamEndpoint | undefined> {
    if (tried.has(OCI_ENDPOINT_ID)) return undefined;
    const d = req.state.deployment;
    const url = d?.status?.oci?.predictUrl;
    if (d?.spec.oci === undefined || url === undefined) return undefined;
    let headers: Record<string, string>;
    let target: URL;
    try {
      target = predictTarget(url);
      const provider = await this.credentials(d.metadata.namespace ?? '', d.spec.oci);
      // Signed per try: OCI refuses a signature whose x-date is more than 5 minutes off.
      headers = await signPredict(provider, target.href, req.body, plainHeaders(req.headers));
    } catch (err) {
      this.log.warn('cannot sign the predict call', {
        error: err instanceof Error ? err.message : String(err),
      });
      return undefined;
    }
    return {
      id: OCI_ENDPOINT_ID,
      url: target,
      headers,
      body: req.body,
      agent: target.protocol === 'https:' ? this.https : this.http,
      release: () => undefined,
      // The connection failed before the request went out (no answer, so no 401 either): read the
      // Secret again on the next request anyway, in case the deployment's credentials changed.
      refused: () => {
        this.secrets.forget();
      },
      // OCI refused the signature: the Secret may hold a new key since it was read; the next
      // request reads it again instead of waiting out the cache.
      answered: (status) => {
        if (status === 401) this.secrets.forget();
      },
    };
  }

  close(): void {
    this.https.destroy();
    this.http.destroy();
  }
}

/** The client's end-to-end headers that OCI may see: single string values only. */
function plainHeaders(h: OutgoingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) {
    if (typeof v === 'string') out[k] = v;
    else if (typeof v === 'number') out[k] = String(v);
  }
  return out;
}

/** Sends each request to the backend its deployment names: vLLM pods, or OCI's predict. */
export class BackendUpstream implements Upstream {
  private readonly pods: Upstream;
  private readonly oci: Upstream;

  constructor(pods: Upstream, oci: Upstream) {
    this.pods = pods;
    this.oci = oci;
  }

  prepare(req: UpstreamRequest, tried: ReadonlySet<string>): Promise<UpstreamEndpoint | undefined> {
    return req.state.deployment?.spec.backend === 'oci'
      ? this.oci.prepare(req, tried)
      : this.pods.prepare(req, tried);
  }

  close(): void {
    this.pods.close();
    this.oci.close();
  }
}
