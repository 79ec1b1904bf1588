/**
 * Benchmark: the oci backend against the OCI emulator with every lifecycle delay at zero.
 * - member change -> the OCI deployment ACTIVE on the new group (CLONE + LIVE update), per run;
 * - OCI calls at rest over a window of poll intervals: mutating (target 0) and reads per poll.
 * Prints figures; asserts nothing (these machines are shared and noisy).
 *
 *   npm run bench:oci        (RUNS, POLL_S, REST_S override the defaults 7, 2, 10)
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { KubernetesObject } from '@kubernetes/client-node';
import { startOciEmulator } from '../playground/oci-emulator.ts';
import { apiKeySecret, makeApiKey } from '../playground/oci-keys.ts';
import { startOperator } from '../playground/operator.ts';
import { fmt, median, startBenchCluster, until } from './support.ts';
import { ociDeployment } from '../test/support/objects.ts';

const RUNS = Number(process.env.RUNS ?? 7);
const POLL_S = Number(process.env.POLL_S ?? 2);
const REST_S = Number(process.env.REST_S ?? 10);
const NS = 'bench-oci';
const BASE = 'ocid1.datasciencemodel.oc1.iad.aaaaaaaabase';
const lora = (n: number) => `ocid1.datasciencemodel.oc1.iad.aaaaaaaalora${String(n)}`;

function groupSpec(members: number[]): KubernetesObject & { spec: unknown } {
  return {
    apiVersion: 'serving.stacked.dev/v1alpha1',
    kind: 'StackedModelGroup',
    metadata: { name: 'bench', namespace: NS },
    spec: {
      baseModel: { inferenceKey: 'basemodel', modelId: BASE },
      members: members.map((n) => ({ inferenceKey: `lora-${String(n)}`, modelId: lora(n) })),
    },
  };
}

async function main(): Promise<void> {
  const key = makeApiKey();
  const emu = await startOciEmulator({
    keys: { [key.keyId]: key.publicKeyPem },
    models: [BASE, ...Array.from({ length: RUNS + 3 }, (_, i) => lora(i + 1))],
    delays: {
      groupCreateMs: 0,
      groupDeleteMs: 0,
      deploymentCreateMs: 0,
      deploymentUpdateMs: 0,
      deploymentDeleteMs: 0,
    },
  });
  const { cp, apply } = await startBenchCluster(NS);
  let operator: Awaited<ReturnType<typeof startOperator>> | undefined;
  try {
    await apply({ ...apiKeySecret('oci-api-key', key), metadata: { name: 'oci-api-key', namespace: NS } });
    operator = await startOperator(cp, {
      identity: 'bench-oci',
      namespace: NS,
      extraArgs: [
        '--leader-election-id=bench-oci',
        '--log-level=warn',
        '--oci-progress-interval-ms=50',
        `--oci-poll-interval=${String(POLL_S)}`,
      ],
    });
    let members = [1, 2];
    await apply(groupSpec(members));
    await apply(ociDeployment('bench', { namespace: NS, endpoint: emu.url, oci: { retainModelGroups: 1 } }));
    const md = () => emu.modelDeployments().find((m) => m.lifecycleState !== 'DELETED');
    const groupOf = (id: string | undefined) => emu.modelGroups().find((g) => g.id === id);
    const deployedKeys = () => {
      const m = md();
      const cfg = m?.modelDeploymentConfigurationDetails as
        { modelGroupConfigurationDetails?: { modelGroupId?: string } } | undefined;
      return m?.lifecycleState === 'ACTIVE'
        ? (
            groupOf(cfg?.modelGroupConfigurationDetails?.modelGroupId)?.memberModelEntries
              .memberModelDetails ?? []
          ).map((x) => x.inferenceKey)
        : [];
    };
    await until('initial deployment ACTIVE', () => deployedKeys().includes('lora-2'), 120_000);

    const times: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const next = 3 + i;
      members = [...members.slice(1), next];
      const t0 = performance.now();
      await apply(groupSpec(members));
      await until(
        `lora-${String(next)} deployed`,
        () => deployedKeys().includes(`lora-${String(next)}`),
        60_000,
        2,
      );
      times.push(performance.now() - t0);
      await sleep(300);
    }

    // At rest: let the last reconcile settle, then count every OCI call over REST_S seconds.
    await sleep(3000);
    const t0 = Date.now();
    await sleep(REST_S * 1000);
    const window = emu.requests().filter((r) => r.at >= t0);
    const mutating = window.filter((r) => r.method !== 'GET').length;
    const polls = REST_S / POLL_S;
    const byOp = new Map<string, number>();
    for (const r of window) byOp.set(r.operation, (byOp.get(r.operation) ?? 0) + 1);

    console.log(
      `member change -> OCI deployment ACTIVE on the new group (emulator delays 0), ${String(RUNS)} runs`,
    );
    console.log(`  runs (ms):  ${fmt(times)}`);
    console.log(`  median:     ${median(times).toFixed(0)} ms`);
    console.log(`at rest over ${String(REST_S)} s (poll interval ${String(POLL_S)} s):`);
    console.log(`  mutating OCI calls: ${String(mutating)} (target 0)`);
    console.log(
      `  reads: ${String(window.length - mutating)} = ${((window.length - mutating) / polls).toFixed(1)} per poll interval`,
    );
    console.log(`  by operation: ${[...byOp].map(([k, v]) => `${k} ${String(v)}`).join(', ')}`);
  } finally {
    await operator?.stop();
    await emu.close();
    await cp.stop();
  }
}

await main();
