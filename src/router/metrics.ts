/**
 * The router's Prometheus metrics, on its own registry (served on its /metrics with the process
 * metrics). Labels are bounded by the spec: `model` is an inference key or an experiment name
 * (UNKNOWN_MODEL for a name the deployment does not answer to, NO_MODEL before one is read),
 * `variant` the experiment's chosen inference key or '' outside an experiment, `code` an HTTP status.
 * Nothing a client sends becomes a label value.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { createRegistry } from '../runtime/metrics.ts';

/** The `model` label of a request for a name the deployment does not answer to. */
export const UNKNOWN_MODEL = 'unknown';
/** The `model` label of a request that failed before its model was read (bad JSON, too large). */
export const NO_MODEL = 'none';
/** The `code` label of a request whose client went away before the response was complete (nginx's). */
export const CLIENT_CLOSED = '499';

/** Generation takes from milliseconds to minutes. */
const DURATION_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300];
const TTFT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export type RequestLabels = 'model' | 'variant';

export class RouterMetrics {
  readonly registry: Registry;
  readonly requests: Counter<RequestLabels | 'code'>;
  readonly duration: Histogram<RequestLabels>;
  readonly timeToFirstToken: Histogram<RequestLabels>;
  readonly promptTokens: Counter<RequestLabels>;
  readonly completionTokens: Counter<RequestLabels>;
  readonly inFlight: Gauge<RequestLabels>;
  /** Tries that failed to connect and went to another pod. */
  readonly retries: Counter;

  constructor(registry: Registry = createRegistry()) {
    this.registry = registry;
    const registers = [registry];
    const labelNames = ['model', 'variant'] as const;
    this.requests = new Counter({
      name: 'stacked_router_requests_total',
      help: 'Inference requests answered, by model (inference key or experiment), variant and HTTP status code',
      labelNames: [...labelNames, 'code'],
      registers,
    });
    this.duration = new Histogram({
      name: 'stacked_router_request_duration_seconds',
      help: 'Time from receiving an inference request to the end of its response',
      labelNames,
      buckets: DURATION_BUCKETS,
      registers,
    });
    this.timeToFirstToken = new Histogram({
      name: 'stacked_router_time_to_first_token_seconds',
      help: 'Time from receiving a streaming request to the first byte of its event stream',
      labelNames,
      buckets: TTFT_BUCKETS,
      registers,
    });
    this.promptTokens = new Counter({
      name: 'stacked_router_prompt_tokens_total',
      help: 'Prompt tokens, from the usage vLLM reports',
      labelNames,
      registers,
    });
    this.completionTokens = new Counter({
      name: 'stacked_router_completion_tokens_total',
      help: 'Completion tokens, from the usage vLLM reports',
      labelNames,
      registers,
    });
    this.inFlight = new Gauge({
      name: 'stacked_router_in_flight_requests',
      help: 'Inference requests being answered',
      labelNames,
      registers,
    });
    this.retries = new Counter({
      name: 'stacked_router_upstream_retries_total',
      help: 'Tries whose connection failed before any byte was sent, retried on another pod',
      registers,
    });
  }
}
