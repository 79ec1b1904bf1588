/** Pure: kubectl-style output, a table with upper-case headers or the whole value as JSON or YAML. */
import { dump } from 'js-yaml';
import type { Output } from './args.ts';

/** Columns padded to their widest cell, three spaces apart, as kubectl prints them. */
export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('   ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n') + '\n';
}

/** The value as JSON or YAML, or the table when the output is `table`. */
export function render(output: Output, value: unknown, asTable: () => string): string {
  if (output === 'json') return JSON.stringify(value, null, 2) + '\n';
  if (output === 'yaml') return dump(value, { noRefs: true, lineWidth: -1 });
  return asTable();
}
