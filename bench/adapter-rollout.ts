/**
 * Benchmark: how fast a new member serves on every replica, at several replica counts in one run, and
 * how fast a restarted replica is back in service, on the real control plane + test kubelet + vLLM
 * simulators with a fixed load time. Prints figures and ratios; asserts nothing (these machines are
 * shared and noisy).
 *
 *   npm run bench        (LOAD_MS, REPLICAS, RUNS, SETTLE_MS override the defaults 200, "4,16,32", 7, 500;
 *                         OPERATOR_NODE_ARGS adds Node flags to the operator's, e.g. --cpu-prof)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { KubernetesObject } from '@kubernetes/client-node';
import { writeAdapter } from '../playground/adapters.ts';
import { fmt, median, startBenchCluster, until } from './support.ts';
import { startKubelet, type Kubelet } from '../playground/kubelet.ts';
import { startOperator } from '../playground/operator.ts';
import { adaptersClaim } from '../test/support/objects.ts';

const LOAD_MS = Number(process.env.LOAD_MS ?? 200);
const REPLICA_COUNTS = (process.env.REPLICAS ?? '4,16,32').split(',').map(Number);
const MAX_REPLICAS = Math.max(...REPLICA_COUNTS);
const RUNS = Number(process.env.RUNS ?? 7);
const NS = 'bench';
const SETTLE_MS = Number(process.env.SETTLE_MS ?? 500);

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
    const keys = Array.from({ length: 3 + RUNS * REPLICA_COUNTS.length }, (_, i) => `lora-${i + 1}`);
    for (const k of keys) writeAdapter(join(root, 'pvc', NS, 'adapters', k), 16);
    kubelet = await startKubelet({
      kubeconfigPath: cp.kubeconfigPath,
      nodes: Array.from({ length: MAX_REPLICAS + 1 }, (_, i) => ({ name: `bench-gpu-${i + 1}`, gpus: 1 })),
      pvcRoot: join(root, 'pvc'),
      hfRoot: join(root, 'hf'),
      namespaces: [NS],
    });
    operator = await startOperator(cp, {
      identity: 'bench',
      namespace: NS,
      extraArgs: ['--leader-election-id=bench', `--log-level=${process.env.OPERATOR_LOG_LEVEL ?? 'warn'}`],
      // e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof"
      nodeArgs: (process.env.OPERATOR_NODE_ARGS ?? '').split(' ').filter((a) => a !== ''),
    });
    await apply(adaptersClaim('adapters', NS));
    let members = keys.slice(0, 3);
    await apply(groupSpec(members));
    const deploy = (replicas: number) =>
      apply({
        apiVersion: 'serving.stacked.dev/v1alpha1',
        kind: 'StackedDeployment',
        metadata: { name: 'bench', namespace: NS },
        // No router: this measures how fast the pods hold a member, which the router only reads.
        spec: {
          modelGroupRef: { name: 'bench' },
          backend: 'vllm',
          engine: {},
          vllm: { replicas, router: { enabled: false } },
        },
      });
    const k = kubelet;
    const sims = () =>
      k
        .runningPods()
        .filter((p) => p.startsWith(`${NS}/`))
        .flatMap((p) => k.simulator(p) ?? []);
    const readDeployment = async () =>
      (await api.read({
        apiVersion: 'serving.stacked.dev/v1alpha1',
        kind: 'StackedDeployment',
        metadata: { name: 'bench', namespace: NS },
      })) as {
        status?: {
          readyReplicas?: number;
          adapters?: { inferenceKey: string; state: string; loadedReplicas?: number }[];
        };
      };

    const results: {
      replicas: number;
      served: number[];
      /** The same, as the benchmark's 5 ms poll of the simulators noticed it. */
      polled: number[];
      reported: number[];
      /** When the first and the last replica were asked to load, from the simulators' own logs. */
      firstAsked: number[];
      lastAsked: number[];
    }[] = [];
    let next = 3;
    for (const replicas of REPLICA_COUNTS) {
      await deploy(replicas);
      const allHold = (key: string) =>
        sims().length === replicas && sims().every((s) => s.loadedAdapters().includes(key));
      await until(`${replicas} replicas with every adapter`, () => members.every(allHold), 300_000, 50);
      await until(
        `${replicas} replicas Ready`,
        async () => (await readDeployment()).status?.readyReplicas === replicas,
        300_000,
        50,
      );
      for (const s of sims()) s.setFaults({ loadLatencyMs: LOAD_MS });
      const served: number[] = [];
      const polled: number[] = [];
      const reported: number[] = [];
      const firstAsked: number[] = [];
      const lastAsked: number[] = [];
      for (let i = 0; i < RUNS; i++) {
        const key = keys[next++]!;
        members = [...members, key];
        const t0 = performance.now();
        const wall0 = Date.now();
        await apply(groupSpec(members));
        await until(`${key} on every replica`, () => allHold(key));
        polled.push(performance.now() - t0);
        // From each simulator's own log, stamped when it asked and when the adapter joined its
        // engine: the poll above adds its own lag (the simulators share this process with the
        // test kubelet), which is not the operator's.
        const at = (kind: 'load-queued' | 'load-end') =>
          sims().map(
            (s) =>
              (s.events.find((e) => e.kind === kind && e.name === key && (e.status ?? 200) === 200)?.at ??
                NaN) - wall0,
          );
        served.push(Math.max(...at('load-end')));
        firstAsked.push(Math.min(...at('load-queued')));
        lastAsked.push(Math.max(...at('load-queued')));
        await until(
          `${key} Loaded in status`,
          async () => {
            const a = (await readDeployment()).status?.adapters?.find((x) => x.inferenceKey === key);
            return a?.state === 'Loaded' && a.loadedReplicas === replicas;
          },
          60_000,
          20,
        );
        reported.push(performance.now() - t0);
        // Each addition starts from a settled deployment, as a user's does: the status and the
        // group's own status writes that follow "Loaded" are not the next run's cost.
        await sleep(SETTLE_MS);
      }
      results.push({ replicas, served, polled, reported, firstAsked, lastAsked });
    }

    const restarts: number[] = [];
    for (let i = 0; i < Math.min(RUNS, 5); i++) {
      // A different pod each time: one restarted again within 10 s waits out the kubelet's
      // CrashLoopBackOff first, which is not the operator's time.
      const pods = k.runningPods().filter((p) => p.startsWith(`${NS}/`));
      const podKey = pods[i % pods.length]!;
      const [ns, name] = podKey.split('/') as [string, string];
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
          // The restarted container is a new simulator: look it up on every check.
          const sim = k.simulator(podKey);
          return ready && sim !== undefined && members.every((m) => sim.loadedAdapters().includes(m));
        },
        60_000,
        20,
      );
      restarts.push(performance.now() - t0);
    }

    console.log(
      `\nadapter rollout benchmark: simulator load time ${LOAD_MS} ms, ${RUNS} runs per replica count`,
    );
    const overhead = (r: (typeof results)[number]) => median(r.served) - LOAD_MS;
    for (const r of results) {
      const m = median(r.served);
      console.log(
        `${r.replicas} replicas: member added -> loaded on every replica (simulators' logs): median ${m.toFixed(0)} ms, overhead ${overhead(r).toFixed(0)} ms [${fmt(r.served)}]; status Loaded ${r.replicas}/${r.replicas}: median ${median(r.reported).toFixed(0)} ms`,
      );
      console.log(
        `  load asked of the first replica at a median ${median(r.firstAsked).toFixed(0)} ms, of the last at ${median(r.lastAsked).toFixed(0)} ms; noticed by polling at ${median(r.polled).toFixed(0)} ms`,
      );
    }
    const first = results[0];
    const at16 = results.find((r) => r.replicas === 16);
    const last = results[results.length - 1];
    if (at16) console.log(`overhead at 16 replicas: ${overhead(at16).toFixed(0)} ms (target <= 100 ms)`);
    if (first && last && last !== first) {
      console.log(
        `overhead at ${last.replicas} / at ${first.replicas} replicas: ${(overhead(last) / overhead(first)).toFixed(2)}x (target <= 2x)`,
      );
    }
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
