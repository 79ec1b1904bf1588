/**
 * Pure: reads vLLM's `vllm:lora_requests_info` gauge from the Prometheus text of its /metrics.
 *
 * The gauge has one series per combination of labels `running_lora_adapters` and
 * `waiting_lora_adapters` (comma-joined adapter names) and `max_lora`, and its value is the Unix
 * time the series was last set (reference/vllm-lora-api.md section 6). Old combinations are never
 * removed, so the current one is the series with the largest value.
 */

export const LORA_INFO_METRIC = 'vllm:lora_requests_info';

export interface LoraInfo {
  /** Adapters of the requests running now: they hold a GPU slot. */
  running: ReadonlySet<string>;
  /** Adapters of the requests waiting to be scheduled. */
  waiting: ReadonlySet<string>;
  /** Unix seconds of the series' last update (the gauge's value). */
  updatedAt: number;
}

/** Parses `{a="x",b="y\"z"}` from position i of line (at the `{`); undefined when malformed. */
function parseLabels(line: string, start: number): { labels: Map<string, string>; end: number } | undefined {
  const labels = new Map<string, string>();
  let i = start + 1;
  for (;;) {
    while (line[i] === ' ' || line[i] === ',') i++;
    if (line[i] === '}') return { labels, end: i + 1 };
    const eq = line.indexOf('=', i);
    if (eq < 0 || line[eq + 1] !== '"') return undefined;
    const name = line.slice(i, eq).trim();
    let value = '';
    i = eq + 2;
    for (;;) {
      const c = line[i];
      if (c === undefined) return undefined;
      if (c === '"') break;
      if (c === '\\') {
        const next = line[i + 1];
        value += next === 'n' ? '\n' : (next ?? '');
        i += 2;
        continue;
      }
      value += c;
      i++;
    }
    labels.set(name, value);
    i++;
  }
}

function names(joined: string | undefined): ReadonlySet<string> {
  if (joined === undefined || joined === '') return new Set();
  return new Set(
    joined
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== ''),
  );
}

/** The newest series of the gauge in a /metrics text, or undefined when it has none. */
export function parseLoraInfo(text: string): LoraInfo | undefined {
  let best: LoraInfo | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line.startsWith(LORA_INFO_METRIC)) continue;
    const after = line[LORA_INFO_METRIC.length];
    // Another metric whose name merely starts with ours (e.g. a _created series).
    if (after !== '{' && after !== ' ') continue;
    let labels = new Map<string, string>();
    let rest = line.slice(LORA_INFO_METRIC.length);
    if (after === '{') {
      const parsed = parseLabels(line, LORA_INFO_METRIC.length);
      if (parsed === undefined) continue;
      labels = parsed.labels;
      rest = line.slice(parsed.end);
    }
    // The value, then an optional timestamp.
    const value = Number(rest.trim().split(/\s+/)[0]);
    if (!Number.isFinite(value)) continue;
    if (best === undefined || value > best.updatedAt) {
      best = {
        running: names(labels.get('running_lora_adapters')),
        waiting: names(labels.get('waiting_lora_adapters')),
        updatedAt: value,
      };
    }
  }
  return best;
}
