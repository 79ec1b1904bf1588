// kubectl and helm against a test control plane, with caches and Helm state kept inside the run's folder
// so that tests neither read nor pollute the developer's ~/.kube and ~/.config/helm.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import type { ControlPlane } from './controlplane.ts';

export type ToolTarget = Pick<ControlPlane, 'binDir' | 'dir' | 'kubeconfigPath'>;

export interface ToolOptions {
  /** Written to the tool's stdin (e.g. manifests for `apply -f -`). */
  input?: string;
  /** Another kubeconfig than the admin one, e.g. from mintServiceAccountKubeconfig(). */
  kubeconfig?: string;
  /** Resolve with the exit code instead of throwing on a non-zero exit. */
  allowFail?: boolean;
  /** Kills the tool after this long; defaults to 120 s so a hung call cannot outlive the test run. */
  timeoutMs?: number;
}

export interface ToolResult {
  /** Exit code; -1 when the tool was killed by a signal (e.g. the timeout). */
  code: number;
  stdout: string;
  stderr: string;
}

export function kubectl(cp: ToolTarget, args: string[], opts: ToolOptions = {}): Promise<ToolResult> {
  const global = [
    `--kubeconfig=${opts.kubeconfig ?? cp.kubeconfigPath}`,
    `--cache-dir=${join(cp.dir, 'kube-cache')}`,
  ];
  return runTool(join(cp.binDir, 'kubectl'), global, args, {}, opts);
}

export function helm(cp: ToolTarget, args: string[], opts: ToolOptions = {}): Promise<ToolResult> {
  const home = join(cp.dir, 'helm');
  const env = {
    HELM_CACHE_HOME: join(home, 'cache'),
    HELM_CONFIG_HOME: join(home, 'config'),
    HELM_DATA_HOME: join(home, 'data'),
  };
  const global = [`--kubeconfig=${opts.kubeconfig ?? cp.kubeconfigPath}`];
  return runTool(join(cp.binDir, 'helm'), global, args, env, opts);
}

async function runTool(
  bin: string,
  globalArgs: string[],
  args: string[],
  env: Record<string, string>,
  opts: ToolOptions,
): Promise<ToolResult> {
  const child = spawn(bin, [...globalArgs, ...args], {
    env: { ...process.env, ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
    timeout: opts.timeoutMs ?? 120_000,
    killSignal: 'SIGKILL',
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  // The tool may exit without reading stdin (e.g. on a usage error); that EPIPE is not our failure.
  child.stdin.on('error', () => {});
  child.stdin.end(opts.input ?? '');
  const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
  const result = { code: code ?? -1, stdout, stderr };
  if (result.code !== 0 && !opts.allowFail) {
    const name = bin.split('/').at(-1) ?? bin;
    const how = signal ? `signal ${signal}` : `exit ${result.code}`;
    throw new Error(`${name} ${args.join(' ')} failed (${how}): ${stderr.trim()}`);
  }
  return result;
}
