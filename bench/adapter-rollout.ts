/**
 * Benchmark: how fast a new member serves on every replica, and how fast a restarted replica is back
 * in service, on the real control plane + test kubelet + vLLM simulators with a fixed load time.
 * Prints figures and ratios; asserts nothing (these machines are shared and noisy).
 *
 *   npm run bench        (LOAD_MS, REPLICAS, RUNS override the defaults 200, 4, 7)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KubernetesObject } from '@kubernetes/client-node';
import { writeAdapter } from '../test/support/adapters.ts';
import { fmt, median, startBenchCluster, until } from './support.ts';
import { startKubelet, type Kubelet } from '../test/support/kubelet.ts';
import { startOperator } from '../test/support/operator.ts';

const LOAD_MS = Number(process.env.LOAD_MS ?? 200);
const REPLICAS = Number(process.env.REPLICAS ?? 4);
const RUNS = Number(process.env.RUNS ?? 7);
const NS = 'bench';

function groupSpec(keys: string[]): KubernetesObject & { spec: unknown } {
  return {
    apiVersion: 'serving.stacked.dev/v1alpha1',
    kind: 'StackedModelGroup',
    metadata: { name: 'bench', namespace: NS },
    spec: {
      baseModel: { inferenceKey: 'base', source: { huggingface: 'org/base' } },
      members: keys.map((k) => ({ inferenceKey: k, source: { pvc: { claimName: 'adapters', path: k } } })),
    },
  };
}

async function main(): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'bench-'));
  const { cp, api, apply } = await startBenchCluster(NS);
  let kubelet: Kubelet | undefined;
  let operator: Awaited<ReturnType<typeof startOperator>> | undefined;
  try {
    const keys = Array.from({ length: 3 + RUNS }, (_, i) => `lora-${i + 1}`);
    for (const k of keys) writeAdapter(join(root, 'pvc', NS, 'adapters', k), 16);
    kubelet = await startKubelet({
      kubeconfigPath: cp.kubeconfigPath,
      nodes: Array.from({ length: REPLICAS + 1 }, (_, i) => ({ name: `bench-gpu-${i + 1}`, gpus: 1 })),
      pvcRoot: join(root, 'pvc'),
      hfRoot: join(root, 'hf'),
      namespaces: [NS],
    });
    operator = await startOperator(cp, {
      identity: 'bench',
      namespace: NS,
      extraArgs: ['--leader-election-id=bench', '--log-level=warn'],
    });
    await apply({
      apiVersion: 'v1',
      kind: 'PersistentVolumeClaim',
      metadata: { name: 'adapters', namespace: NS },
      spec: { accessModes: ['ReadOnlyMany'], resources: { requests: { storage: '1Gi' } } },
    });
    let members = keys.slice(0, 3);
    await apply(groupSpec(members));
    await apply({
      apiVersion: 'serving.stacked.dev/v1alpha1',
      kind: 'StackedDeployment',
      metadata: { name: 'bench', namespace: NS },
      spec: { modelGroupRef: { name: 'bench' }, backend: 'vllm', engine: {}, vllm: { replicas: REPLICAS } },
    });
    const k = kubelet;
    const sims = () =>
      k
        .runningPods()
        .filter((p) => p.startsWith(`${NS}/`))
        .map((p) => k.simulator(p)!);
    const allHold = (key: string) =>
      sims().length === REPLICAS && sims().every((s) => s.loadedAdapters().includes(key));
    await until('initial rollout', () => members.every(allHold), 120_000, 50);
    for (const s of sims()) s.setFaults({ loadLatencyMs: LOAD_MS });

    const served: number[] = [];
    const reported: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const key = keys[3 + i]!;
      members = [...members, key];
      const t0 = performance.now();
      await apply(groupSpec(members));
      await until(`${key} on every replica`, () => allHold(key));
      served.push(performance.now() - t0);
      await until(
        `${key} Loaded in status`,
        async () => {
          const d = (await api.read({
            apiVersion: 'serving.stacked.dev/v1alpha1',
            kind: 'StackedDeployment',
            metadata: { name: 'bench', namespace: NS },
          })) as {
            status?: { adapters?: { inferenceKey: string; state: string; loadedReplicas?: number }[] };
          };
          const a = d.status?.adapters?.find((x) => x.inferenceKey === key);
          return a?.state === 'Loaded' && a.loadedReplicas === REPLICAS;
        },
        60_000,
        20,
      );
      reported.push(performance.now() - t0);
    }

    const restarts: number[] = [];
    for (let i = 0; i < Math.min(RUNS, 5); i++) {
      const podKey = k.runningPods().find((p) => p.startsWith(`${NS}/`))!;
      const [ns, name] = podKey.split('/') as [string, string];
      const sim = k.simulator(podKey)!;
      const t0 = performance.now();
      await k.restartContainer(ns, name);
      await until(
        'restarted pod Ready with every adapter',
        async () => {
          const pod = (await api.read({
            apiVersion: 'v1',
            kind: 'Pod',
            metadata: { name, namespace: ns },
          })) as {
            status?: { conditions?: { type: string; status: string }[] };
          };
          const ready =
            pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
          return ready && members.every((m) => sim.loadedAdapters().includes(m));
        },
        60_000,
        20,
      );
      restarts.push(performance.now() - t0);
    }

    const m = median(served);
    console.log(
      `\nadapter rollout benchmark: ${REPLICAS} replicas, simulator load time ${LOAD_MS} ms, ${RUNS} runs`,
    );
    console.log(
      `member added -> loaded on every replica: median ${m.toFixed(0)} ms = ${(m / LOAD_MS).toFixed(2)} x load time, overhead ${(m - LOAD_MS).toFixed(0)} ms (target <= 300 ms) [${fmt(served)}]`,
    );
    console.log(
      `member added -> status Loaded ${REPLICAS}/${REPLICAS}: median ${median(reported).toFixed(0)} ms [${fmt(reported)}]`,
    );
    console.log(
      `container restart -> pod Ready with ${members.length} adapters: median ${median(restarts).toFixed(0)} ms = ${(median(restarts) / LOAD_MS).toFixed(2)} x load time [${fmt(restarts)}]`,
    );
  } finally {
    await operator?.stop();
    await kubelet?.stop();
    await cp.stop();
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
