/**
 * The SDK clients as the operator configures them: region (or a test endpoint), a short retry
 * budget and no circuit breaker.
 */
import * as common from 'oci-common';
import * as ds from 'oci-datascience';
import * as os from 'oci-objectstorage';

export interface OciTarget {
  region: string;
  /** Overrides the service endpoint (private realms, tests); set after the region, as the SDK needs. */
  endpoint?: string | undefined;
}

/**
 * Retries stay with the SDK (it re-signs each attempt and keeps the retry token), but few and short:
 * the work queue already backs off per object, and a reconcile worker parked for the SDK's default
 * 8 attempts (over two minutes) would hold up every other object behind it.
 */
export function retryConfiguration(maxAttempts = 3): common.RetryConfiguration {
  return {
    terminationStrategy: new common.MaxAttemptsTerminationStrategy(maxAttempts),
    delayStrategy: new common.ExponentialBackoffDelayStrategy(4),
  };
}

/**
 * The SDK's circuit breaker is shared by every call of a client and opens for 30 s once 80 % of recent
 * calls failed: one compartment's throttling would then fail every other deployment's reconcile with
 * a breaker error instead of OCI's answer. The work queue's per-key backoff does that job per object.
 */
function clientConfiguration(signal?: AbortSignal): common.ClientConfiguration {
  return {
    retryConfiguration: retryConfiguration(),
    circuitBreaker: new common.CircuitBreaker({ disableClientCircuitBreaker: true }),
    // The SDK hands httpOptions to fetch() with every request (oci-common http.js): a signal there
    // cancels the calls in flight, e.g. when the operator loses its lease.
    ...(signal !== undefined ? { httpOptions: { signal } } : {}),
  };
}

export function dataScienceClient(
  provider: common.AuthenticationDetailsProvider,
  target: OciTarget,
  signal?: AbortSignal,
): ds.DataScienceClient {
  const client = new ds.DataScienceClient(
    { authenticationDetailsProvider: provider },
    clientConfiguration(signal),
  );
  client.regionId = target.region;
  if (target.endpoint !== undefined && target.endpoint !== '') client.endpoint = stripSlash(target.endpoint);
  return client;
}

export function objectStorageClient(
  provider: common.AuthenticationDetailsProvider,
  target: OciTarget,
): os.ObjectStorageClient {
  const client = new os.ObjectStorageClient(
    { authenticationDetailsProvider: provider },
    clientConfiguration(),
  );
  client.regionId = target.region;
  if (target.endpoint !== undefined && target.endpoint !== '') client.endpoint = stripSlash(target.endpoint);
  return client;
}

/** The SDK appends its own path to the endpoint; a trailing slash would double it. */
function stripSlash(u: string): string {
  return u.replace(/\/+$/, '');
}

/**
 * The SDK writes retries and failures with console.warn (oci-common retrier.js), bypassing any logger
 * one configures, which would put plain-text lines among our JSON logs. Its messages are already
 * passed through its own sanitizer of sensitive headers.
 */
export function captureSdkWarnings(write: (message: string) => void): void {
  console.warn = (...parts: unknown[]) => {
    write(parts.map(String).join(' '));
  };
}
