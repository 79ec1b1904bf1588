/**
 * Prometheus metrics of the OCI calls the operator makes, by operation and outcome: throttling,
 * outages and the cost of polling show here before they show in a bill or an incident.
 */
import type * as ds from 'oci-datascience';
import { Counter, Histogram, type Registry } from 'prom-client';
import { ociFailure } from './errors.ts';
import { aroundOperations } from './operations.ts';

export class OciMetrics {
  readonly requests: Counter<'operation' | 'result'>;
  readonly duration: Histogram<'operation'>;

  constructor(registry: Registry) {
    this.requests = new Counter({
      name: 'stacked_oci_requests_total',
      help: 'OCI Data Science calls by SDK operation and result (ok, or the HTTP status; 0: no answer).',
      labelNames: ['operation', 'result'],
      registers: [registry],
    });
    this.duration = new Histogram({
      name: 'stacked_oci_request_duration_seconds',
      help: 'Duration of OCI Data Science calls, SDK retries included.',
      labelNames: ['operation'],
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers: [registry],
    });
  }
}

/** The SDK's operations: its promise-returning methods (record iterators call them, so count once). */
const OPERATION = /^(get|list|create|update|delete|activate|deactivate|change)[A-Z]/;

/** The client with every operation counted and timed. */
export function instrumented(client: ds.DataScienceClient, metrics: OciMetrics): ds.DataScienceClient {
  return aroundOperations(client, OPERATION, (operation, call) => {
    const result = call();
    if (!(result instanceof Promise)) return result;
    const stop = metrics.duration.startTimer({ operation });
    return result.then(
      (v: unknown) => {
        stop();
        metrics.requests.inc({ operation, result: 'ok' });
        return v;
      },
      (err: unknown) => {
        stop();
        metrics.requests.inc({ operation, result: String(ociFailure(err).status) });
        throw err;
      },
    );
  });
}
