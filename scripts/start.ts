/**
 * `npm start`: runs the operator against the current kubeconfig. When no cluster is configured (no
 * $KUBECONFIG, no ~/.kube/config, not in a pod), it first starts a local control plane (etcd,
 * kube-apiserver, kube-controller-manager built from source by test/tools/build.sh; the first build
 * takes tens of minutes), installs the CRDs and RBAC, and prints how to reach it with kubectl.
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
  const { startControlPlane } = await import('../test/support/controlplane.ts');
  const { installApi } = await import('../test/support/operator.ts');
  console.error(
    'No cluster configured: starting a local control plane (see README for the first build time).',
  );
  const cp = await startControlPlane({
    log: (line) => {
      console.error(line);
    },
  });
  await installApi(cp);
  console.error(
    `\nLocal control plane ready. In another shell:\n  export KUBECONFIG=${cp.kubeconfigPath}\n` +
      `  ${join(cp.binDir, 'kubectl')} apply -f deploy/samples/modelgroup.yaml\n`,
  );
  try {
    process.exitCode = await runOperator(
      parseConfig(['--kubeconfig', cp.kubeconfigPath, ...args], process.env),
    );
  } finally {
    await cp.stop();
  }
}

await main();
