/**
 * `npm start`: runs the operator against the current kubeconfig. When no cluster is configured (no
 * $KUBECONFIG, no ~/.kube/config, not in a pod), it brings up the playground instead
 * (playground/run.ts): a local control plane (built from source by test/tools/build.sh on the first
 * run, about ten minutes), nodes with simulated GPUs, the OCI emulator, the operator and the samples,
 * and prints the `kubectl stacked predict` calls that answer on both backends. Ctrl-C stops it all.
 * Arguments go to the operator in both cases (`npm start -- --log-level=debug`).
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../src/config.ts';
import { runOperator } from '../src/main.ts';

function clusterConfigured(): boolean {
  if (process.env.KUBECONFIG) return true;
  if (process.argv.some((a) => a.startsWith('--kubeconfig'))) return true;
  if (process.env.KUBERNETES_SERVICE_HOST) return true;
  return existsSync(join(homedir(), '.kube', 'config'));
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (clusterConfigured()) {
    process.exitCode = await runOperator(parseConfig(args, process.env));
    return;
  }
  // Loaded only here: the test kubelet, simulator and emulator have no business in an operator run.
  const { runPlayground } = await import('../playground/run.ts');
  console.error('No cluster configured ($KUBECONFIG, ~/.kube/config): starting the playground.');
  const code = await runPlayground({
    operatorArgs: args,
    out: (line) => {
      process.stdout.write(`${line}\n`);
    },
    progress: (line) => {
      process.stderr.write(`${line}\n`);
    },
  });
  // Exit now: informers' sockets and timers of the stopped pieces must not keep the process alive.
  process.exit(code);
}

await main();
