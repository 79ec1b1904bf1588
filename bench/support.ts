/** What every benchmark prints and waits with. */
import { readFileSync } from 'node:fs';
import * as https from 'node:https';
import { createServer, type AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { KubeConfig, KubernetesObjectApi, PatchStrategy } from '@kubernetes/client-node';
import { startControlPlane, type ControlPlane } from '../playground/controlplane.ts';
import { installApi } from '../playground/operator.ts';

export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
export const fmt = (xs: number[]) => xs.map((x) => x.toFixed(0)).join(', ');

/** Polls `check` every `everyMs` until it holds; the poll interval bounds the timing error. */
export async function until(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 60_000,
  everyMs = 5,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** A fresh control plane with our API installed, a namespace, and server-side apply as `bench`. */
export async function startBenchCluster(namespace: string): Promise<{
  cp: ControlPlane;
  /** The admin KubeConfig, for clients other than `api`. */
  kc: KubeConfig;
  api: KubernetesObjectApi;
  apply: (o: object) => Promise<unknown>;
}> {
  const cp = await startControlPlane();
  try {
    await installApi(cp);
    const kc = new KubeConfig();
    kc.loadFromFile(cp.kubeconfigPath);
    const api = KubernetesObjectApi.makeApiClient(kc);
    const apply = (o: object) =>
      api.patch(o, undefined, undefined, 'bench', true, PatchStrategy.ServerSideApply);
    await apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } });
    return { cp, kc, api, apply };
  } catch (err) {
    await cp.stop();
    throw err;
  }
}

/** A TCP port the OS considers free right now (for a child's listener; a race is possible but rare). */
export async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await new Promise((resolveListen) => server.once('listening', resolveListen));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolveClose) => server.close(resolveClose));
  return port;
}

/** A process's resident set now and at its peak (VmRSS, VmHWM), in MB, from /proc (Linux only). */
export function memoryOf(pid: number): { rssMb: number; peakMb: number } {
  const status = readFileSync(`/proc/${String(pid)}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rssMb: kb('VmRSS') / 1024, peakMb: kb('VmHWM') / 1024 };
}

/** CPU seconds (user + system) a process has used so far, from /proc (Linux only). */
export function cpuSecondsOf(pid: number): number {
  // Fields after the command (which may hold spaces) start at the state, field 3; utime and stime
  // are fields 14 and 15, in clock ticks (100 a second on Linux).
  const stat = readFileSync(`/proc/${String(pid)}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** Counts keyed by a label such as `verb resource`. */
export type Counts = Map<string, number>;

export function countBy<T>(items: Iterable<T>, key: (item: T) => string): Counts {
  const counts: Counts = new Map();
  for (const item of items) counts.set(key(item), (counts.get(key(item)) ?? 0) + 1);
  return counts;
}

/** after - before, keeping only the keys that grew. */
export function diffCounts(after: Counts, before: Counts): Counts {
  const diff: Counts = new Map();
  for (const [k, v] of after) if (v > (before.get(k) ?? 0)) diff.set(k, v - (before.get(k) ?? 0));
  return diff;
}

export const sumCounts = (counts: Counts): number => [...counts.values()].reduce((a, b) => a + b, 0);

/**
 * The API server's `apiserver_request_total`, summed over response codes, keyed `VERB resource[/sub]`.
 * It has no label for the client, so a difference over a window counts every client's requests.
 * Watches are counted when they end, not when they start.
 */
export async function apiserverRequests(kc: KubeConfig): Promise<Counts> {
  const text = await getText(kc, '/metrics');
  const counts: Counts = new Map();
  for (const line of text.split('\n')) {
    if (!line.startsWith('apiserver_request_total{')) continue;
    const labels = Object.fromEntries(
      [...line.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1] ?? '', m[2] ?? '']),
    );
    const resource = labels.subresource ? `${labels.resource ?? ''}/${labels.subresource}` : labels.resource;
    const key = `${labels.verb ?? '?'} ${resource ?? ''}`;
    counts.set(key, (counts.get(key) ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1)));
  }
  return counts;
}

/** GET of a raw API server path (e.g. /metrics) with the KubeConfig's credentials. */
async function getText(kc: KubeConfig, path: string): Promise<string> {
  const server = kc.getCurrentCluster()?.server;
  if (server === undefined) throw new Error('no current cluster in the kubeconfig');
  const options: https.RequestOptions = {};
  await kc.applyToHTTPSOptions(options);
  return new Promise((resolveGet, reject) => {
    https
      .get(`${server}${path}`, options, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
        res.on('end', () => {
          if (res.statusCode === 200) resolveGet(body);
          else reject(new Error(`GET ${path}: ${String(res.statusCode)} ${body.slice(0, 200)}`));
        });
        res.on('error', reject);
      })
      .on('error', reject);
  });
}

/**
 * A table of counts, largest first; with `per`, each count's share of it too (e.g. per object). With
 * `rows`, only that many, and one line for the rest.
 */
export function countTable(counts: Counts, per?: number, indent = '    ', rows = Infinity): string {
  if (counts.size === 0) return `${indent}(none)`;
  const sorted = [...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  const shown = sorted.slice(0, rows);
  const rest = sorted.slice(shown.length);
  const width = Math.max(...shown.map(([k]) => k.length));
  const lines = shown.map(
    ([k, v]) =>
      `${indent}${k.padEnd(width)}  ${String(v).padStart(7)}` +
      (per === undefined ? '' : `  ${(v / per).toFixed(2)} per object`),
  );
  if (rest.length > 0) {
    lines.push(`${indent}(${String(rest.length)} more, ${String(sumCounts(new Map(rest)))} requests)`);
  }
  return lines.join('\n');
}
