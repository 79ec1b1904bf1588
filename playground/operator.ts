// Runs the operator as a separate process, the way it runs in a cluster: its own Node process, the
// ServiceAccount identity of deploy/rbac.yaml (so a missing permission fails the test), JSON logs that
// tests can wait on.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { sharedControlPlane, type ControlPlane } from './controlplane.ts';
import { kubectl } from './kubectl.ts';
import { operatorCommand } from './image-runner.ts';

const repoRoot = resolve(import.meta.dirname, '..');
export const OPERATOR_NAMESPACE = 'stacked-system';
export const OPERATOR_SA = 'stacked-operator';
export const OPERATOR_USER = `system:serviceaccount:${OPERATOR_NAMESPACE}:${OPERATOR_SA}`;

const installed = new WeakMap<ControlPlane, Promise<void>>();

/** Installs the CRDs and the operator's namespace and RBAC once per control plane. */
export function installApi(cp: ControlPlane): Promise<void> {
  const done = installed.get(cp);
  if (done !== undefined) return done;
  const installing = (async () => {
    await kubectl(cp, ['apply', '--server-side', '-f', join(repoRoot, 'crds')]);
    await kubectl(cp, ['wait', '--for=condition=Established', '--timeout=60s', 'crd', '--all']);
    await kubectl(cp, [
      'apply',
      '-f',
      join(repoRoot, 'deploy', 'namespace.yaml'),
      '-f',
      join(repoRoot, 'deploy', 'rbac.yaml'),
    ]);
  })();
  installed.set(cp, installing);
  return installing;
}

export interface LogLine {
  level: string;
  message: string;
  [k: string]: unknown;
}

export interface OperatorProcess {
  identity: string;
  proc: ChildProcess;
  lines: LogLine[];
  /** Resolves with the first log line (past or future) that matches, or rejects after timeoutMs. */
  waitForLog(match: (l: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** SIGTERM (graceful) or SIGKILL (crash); resolves when the process is gone. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /** Resolves with the exit code (null if killed by a signal) when the process ends by itself or is stopped. */
  exited: Promise<number | null>;
}

export interface OperatorOptions {
  identity: string;
  namespace?: string;
  /** Another identity than deploy/rbac.yaml's, e.g. the Helm chart's; its namespace also holds the Lease. */
  serviceAccount?: { namespace: string; name: string };
  /** Short leases keep the failover test fast. */
  extraArgs?: string[];
  /** Flags for Node itself, before the script (e.g. `--cpu-prof`, `--heapsnapshot-signal=SIGUSR2`). */
  nodeArgs?: string[];
}

export async function startOperator(cp: ControlPlane, opts: OperatorOptions): Promise<OperatorProcess> {
  const sa = opts.serviceAccount ?? { namespace: OPERATOR_NAMESPACE, name: OPERATOR_SA };
  const kubeconfig = await cp.mintServiceAccountKubeconfig(sa.namespace, sa.name, 3600);
  const image = await operatorCommand();
  const args = [
    ...image.nodeFlags,
    ...(opts.nodeArgs ?? []),
    image.script,
    `--kubeconfig=${kubeconfig}`,
    `--identity=${opts.identity}`,
    '--health-host=127.0.0.1',
    '--health-port=0',
    '--lease-duration=4',
    '--renew-deadline=3',
    '--retry-period=1',
    '--log-level=debug',
    `--leader-election-namespace=${sa.namespace}`,
    ...(opts.namespace ? [`--namespace=${opts.namespace}`] : []),
    ...(opts.extraArgs ?? []),
  ];
  // process.execPath is Node 24 here: mocha runs under npm, which puts the `node` devDependency first.
  const proc = spawn(process.execPath, args, {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, KUBECONFIG: '' },
  });
  const lines: LogLine[] = [];
  const waiters = new Set<() => void>();
  const onLine = (text: string) => {
    let l: LogLine;
    try {
      l = JSON.parse(text) as LogLine;
    } catch {
      l = { level: 'raw', message: text };
    }
    lines.push(l);
    if (process.env.OPERATOR_LOGS) process.stderr.write(`[${opts.identity}] ${text}\n`);
    for (const w of waiters) w();
  };
  createInterface({ input: proc.stdout }).on('line', onLine);
  createInterface({ input: proc.stderr }).on('line', onLine);
  const exited = once(proc, 'exit').then(([code]) => code as number | null);

  return {
    identity: opts.identity,
    proc,
    lines,
    exited,
    waitForLog(match, timeoutMs = 30_000) {
      return new Promise((resolveLine, reject) => {
        const check = () => {
          const hit = lines.find(match);
          if (hit) {
            cleanup();
            resolveLine(hit);
          }
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(
            new Error(
              `${opts.identity}: no matching log line in ${timeoutMs} ms; last lines:\n${lines
                .slice(-15)
                .map((l) => JSON.stringify(l))
                .join('\n')}`,
            ),
          );
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
    async stop(signal = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return exited;
    },
  };
}

/** The shared control plane with our API installed and a fresh namespace for one test file. */
export async function controlPlaneWithNamespace(namespace: string): Promise<ControlPlane> {
  const cp = await sharedControlPlane();
  await installApi(cp);
  await kubectl(cp, ['create', 'namespace', namespace]);
  return cp;
}
