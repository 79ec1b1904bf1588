/**
 * Pure: the routers' Prometheus text, summed over router replicas, as per-variant traffic, errors
 * and latency of each experiment. Only the router's own series are read
 * (stacked_router_requests_total{model,variant,code}, stacked_router_request_duration_seconds).
 */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The samples of an exposition in the text format (comments, malformed lines and NaN skipped). */
export function parseMetrics(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (m === null) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[l[1] ?? ''] = (l[2] ?? '').replaceAll(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    }
    // The text format spells infinities +Inf and -Inf, which Number() does not read.
    const value = m[3] === '+Inf' ? Infinity : m[3] === '-Inf' ? -Infinity : Number(m[3]);
    if (m[1] !== undefined && !Number.isNaN(value)) out.push({ name: m[1], labels, value });
  }
  return out;
}

export interface VariantStats {
  experiment: string;
  variant: string;
  weight: number;
  requests: number;
  /** Answers with a 5xx code: the variant (or its backend) failed. */
  errors: number;
  /** Requests by HTTP status code. */
  codes: Record<string, number>;
  /** This variant's share of the experiment's requests (0..1). */
  share: number;
  meanSeconds?: number;
  p50Seconds?: number;
  p95Seconds?: number;
}

/** The q-quantile from cumulative buckets, interpolated within the bucket, as Prometheus does. */
export function quantile(q: number, buckets: readonly [number, number][]): number | undefined {
  const sorted = [...buckets].sort((a, b) => a[0] - b[0]);
  const total = sorted.at(-1)?.[1] ?? 0;
  if (total === 0) return undefined;
  const rank = q * total;
  let prevBound = 0;
  let prevCount = 0;
  for (const [bound, count] of sorted) {
    if (count >= rank) {
      if (!Number.isFinite(bound)) return prevBound;
      return prevBound + ((bound - prevBound) * (rank - prevCount)) / Math.max(count - prevCount, 1e-12);
    }
    prevBound = bound;
    prevCount = count;
  }
  return prevBound;
}

export interface ExperimentSpec {
  name: string;
  variants: { inferenceKey: string; weight: number }[];
}

/** Per variant of each experiment, from the samples of every router replica together. */
export function variantStats(
  experiments: readonly ExperimentSpec[],
  samples: readonly Sample[],
): VariantStats[] {
  const sum = (
    name: string,
    model: string,
    variant: string,
    extra: (l: Record<string, string>) => boolean = () => true,
  ) =>
    samples
      .filter(
        (s) =>
          s.name === name &&
          s.labels['model'] === model &&
          s.labels['variant'] === variant &&
          extra(s.labels),
      )
      .reduce((a, s) => a + s.value, 0);
  const out: VariantStats[] = [];
  for (const e of experiments) {
    const requestsOf = (v: string) => sum('stacked_router_requests_total', e.name, v);
    const all = e.variants.reduce((a, v) => a + requestsOf(v.inferenceKey), 0);
    for (const v of e.variants) {
      const codes: Record<string, number> = {};
      for (const s of samples) {
        if (s.name !== 'stacked_router_requests_total' || s.labels['model'] !== e.name) continue;
        if (s.labels['variant'] !== v.inferenceKey) continue;
        const code = s.labels['code'] ?? '';
        codes[code] = (codes[code] ?? 0) + s.value;
      }
      const requests = requestsOf(v.inferenceKey);
      const count = sum('stacked_router_request_duration_seconds_count', e.name, v.inferenceKey);
      const seconds = sum('stacked_router_request_duration_seconds_sum', e.name, v.inferenceKey);
      const bounds = new Map<number, number>();
      for (const s of samples) {
        if (s.name !== 'stacked_router_request_duration_seconds_bucket') continue;
        if (s.labels['model'] !== e.name || s.labels['variant'] !== v.inferenceKey) continue;
        const le = s.labels['le'] === '+Inf' ? Infinity : Number(s.labels['le']);
        bounds.set(le, (bounds.get(le) ?? 0) + s.value);
      }
      const buckets = [...bounds.entries()];
      const p50 = quantile(0.5, buckets);
      const p95 = quantile(0.95, buckets);
      out.push({
        experiment: e.name,
        variant: v.inferenceKey,
        weight: v.weight,
        requests,
        errors: Object.entries(codes).reduce((a, [c, n]) => (c.startsWith('5') ? a + n : a), 0),
        codes,
        share: all === 0 ? 0 : requests / all,
        ...(count > 0 ? { meanSeconds: seconds / count } : {}),
        ...(p50 !== undefined ? { p50Seconds: p50 } : {}),
        ...(p95 !== undefined ? { p95Seconds: p95 } : {}),
      });
    }
  }
  return out;
}
