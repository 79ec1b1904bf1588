// /metrics in the Prometheus text format as Python's prometheus_client writes it for vLLM
// (vllm/v1/metrics/loggers.py): label names in vLLM's order, values as Go-style floats (`0.0`,
// `1.723456789123e+09`), counters with `_total` samples plus a separate `_created` gauge family.

export const FINISH_REASONS = ['stop', 'length', 'abort', 'error'] as const;
export type FinishReason = (typeof FINISH_REASONS)[number];

export interface MetricsSnapshot {
  modelName: string;
  running: number;
  waiting: number;
  success: Record<FinishReason, number>;
  promptTokens: number;
  generationTokens: number;
  /** Unix seconds at which the counters were created (process start). */
  createdAt: number;
  /** Only with --enable-lora. */
  lora?: { maxLoras: number; series: { running: string; waiting: string; updatedAt: number }[] };
}

/** prometheus_client's floatToGoString. */
export function goFloat(d: number): string {
  if (d === Infinity) return '+Inf';
  if (d === -Infinity) return '-Inf';
  if (Number.isNaN(d)) return 'NaN';
  const s = Number.isInteger(d) && Math.abs(d) < 1e16 ? `${d}.0` : String(d);
  const dot = s.indexOf('.');
  if (d > 0 && dot > 6) {
    const mantissa = `${s[0] ?? ''}.${s.slice(1, dot)}${s.slice(dot + 1)}`.replace(/[0.]+$/, '');
    return `${mantissa}e+0${dot - 1}`;
  }
  return s;
}

function escapeLabel(v: string): string {
  return v.replaceAll('\\', '\\\\').replaceAll('\n', '\\n').replaceAll('"', '\\"');
}

function labels(pairs: [string, string][]): string {
  return `{${pairs.map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(',')}}`;
}

export function renderMetrics(m: MetricsSnapshot): string {
  const out: string[] = [];
  const base: [string, string][] = [
    ['model_name', m.modelName],
    ['engine', '0'],
  ];
  const gauge = (name: string, help: string, value: number): void => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`, `${name}${labels(base)} ${goFloat(value)}`);
  };
  const counter = (name: string, help: string, samples: [[string, string][], number][]): void => {
    out.push(`# HELP ${name}_total ${help}`, `# TYPE ${name}_total counter`);
    for (const [l, v] of samples) out.push(`${name}_total${labels(l)} ${goFloat(v)}`);
    out.push(`# HELP ${name}_created ${help}`, `# TYPE ${name}_created gauge`);
    for (const [l] of samples) out.push(`${name}_created${labels(l)} ${goFloat(m.createdAt)}`);
  };

  gauge('vllm:num_requests_running', 'Number of requests in model execution batches.', m.running);
  gauge('vllm:num_requests_waiting', 'Number of requests waiting to be processed.', m.waiting);
  gauge('vllm:kv_cache_usage_perc', 'KV-cache usage. 1 means 100 percent usage.', 0);
  counter(
    'vllm:request_success',
    'Count of successfully processed requests.',
    FINISH_REASONS.map((r) => [[...base, ['finished_reason', r]], m.success[r]]),
  );
  counter('vllm:prompt_tokens', 'Number of prefill tokens processed.', [[base, m.promptTokens]]);
  counter('vllm:generation_tokens', 'Number of generation tokens processed.', [[base, m.generationTokens]]);
  if (m.lora) {
    const name = 'vllm:lora_requests_info';
    out.push(`# HELP ${name} Running stats on lora requests.`, `# TYPE ${name} gauge`);
    for (const s of m.lora.series) {
      const l = labels([
        ['max_lora', String(m.lora.maxLoras)],
        ['waiting_lora_adapters', s.waiting],
        ['running_lora_adapters', s.running],
      ]);
      out.push(`${name}${l} ${goFloat(s.updatedAt)}`);
    }
  }
  return out.join('\n') + '\n';
}
