/** What every benchmark prints and waits with. */
import { setTimeout as sleep } from 'node:timers/promises';
import { KubeConfig, KubernetesObjectApi, PatchStrategy } from '@kubernetes/client-node';
import { startControlPlane, type ControlPlane } from '../test/support/controlplane.ts';
import { installApi } from '../test/support/operator.ts';

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
    return { cp, api, apply };
  } catch (err) {
    await cp.stop();
    throw err;
  }
}
