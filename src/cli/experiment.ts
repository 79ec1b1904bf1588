/**
 * `kubectl stacked experiment`: traffic, errors and latency per variant, from the /metrics of every
 * ready router replica (each counts only what it answered, so they are summed). Each replica is read
 * at its pod IP when that is reachable, else through the API server's pod proxy.
 */
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { ROUTER_PORT } from '../api/router/v1.ts';
import type { StackedDeployment } from '../api/v1alpha1/deployment.ts';
import { routerLabels } from '../backends/router/desired.ts';
import type { Output } from './args.ts';
import { CliError } from './errors.ts';
import { parseMetrics, variantStats, type Sample, type VariantStats } from './metrics.ts';
import { render, table } from './output.ts';
import { isReady, reachable, type Via } from './transport.ts';

export interface ExperimentReport {
  deployment: string;
  namespace: string;
  /** Each router replica read, and how. */
  routers: { pod: string; via: Extract<Via, 'pod'> | 'api-proxy' }[];
  variants: VariantStats[];
}

const ms = (s: number | undefined) => (s === undefined ? '-' : `${(s * 1000).toFixed(1)}ms`);
const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

export function experimentTable(r: ExperimentReport): string {
  return table(
    ['EXPERIMENT', 'VARIANT', 'WEIGHT', 'REQUESTS', 'SHARE', 'ERRORS', 'MEAN', 'P50', 'P95'],
    r.variants.map((v) => [
      v.experiment,
      v.variant,
      String(v.weight),
      String(v.requests),
      pct(v.share),
      `${String(v.errors)} (${pct(v.requests === 0 ? 0 : v.errors / v.requests)})`,
      ms(v.meanSeconds),
      ms(v.p50Seconds),
      ms(v.p95Seconds),
    ]),
  );
}

export async function experiment(
  kc: KubeConfig,
  sdep: StackedDeployment,
  output: Output,
  write: (s: string) => void,
): Promise<void> {
  const name = sdep.metadata.name ?? '';
  const namespace = sdep.metadata.namespace ?? '';
  const experiments = sdep.spec.experiments ?? [];
  if (experiments.length === 0) throw new CliError(`StackedDeployment ${name} has no experiments`);
  const core = kc.makeApiClient(CoreV1Api);
  const labelSelector = Object.entries(routerLabels(name))
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
  const pods = (await core.listNamespacedPod({ namespace, labelSelector })).items.filter(isReady);
  if (pods.length === 0) throw new CliError(`no ready router pod for ${namespace}/${name}`);
  const samples: Sample[] = [];
  const routers: ExperimentReport['routers'] = [];
  for (const pod of pods) {
    const podName = pod.metadata?.name ?? '';
    const ip = pod.status?.podIP ?? '';
    let text: string;
    if (await reachable(ip, ROUTER_PORT)) {
      const res = await fetch(`http://${ip}:${String(ROUTER_PORT)}/metrics`);
      if (!res.ok) throw new CliError(`router ${podName} /metrics answered ${String(res.status)}`);
      text = await res.text();
      routers.push({ pod: podName, via: 'pod' });
    } else {
      text = await core.connectGetNamespacedPodProxyWithPath({
        namespace,
        name: `${podName}:${String(ROUTER_PORT)}`,
        path: 'metrics',
      });
      routers.push({ pod: podName, via: 'api-proxy' });
    }
    samples.push(...parseMetrics(text));
  }
  const report: ExperimentReport = {
    deployment: name,
    namespace,
    routers,
    variants: variantStats(experiments, samples),
  };
  write(render(output, report, () => experimentTable(report)));
}
