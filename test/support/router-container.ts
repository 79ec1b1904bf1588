// Runs the router container of a router pod for real, the way a node would: its own Node process
// started from the container's command and args, on the pod's IP, as the pod's ServiceAccount (a
// token from the TokenRequest API), so a permission the router's Role lacks fails the test.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { V1Container } from '@kubernetes/client-node';
import { ROUTER_CONTAINER, ROUTER_PORT } from '../../src/api/router/v1.ts';
import type { ControlPlane } from './controlplane.ts';
import type { ContainerContext, RunningContainer } from './kubelet.ts';
import { containerEnv } from './kubelet/container.ts';

const repoRoot = resolve(import.meta.dirname, '..', '..');
const LISTEN_TIMEOUT_MS = 30_000;
const STOP_GRACE_MS = 5_000;

/** One router process the runner started. */
export interface RouterProcess {
  podKey: string;
  ip: string;
  port: number;
  proc: ChildProcess;
  /** Its stdout and stderr, line by line. */
  lines: string[];
}

export interface RouterRunner {
  /** The kubelet's runContainer hook: runs containers named `router`, leaves the others. */
  run: (c: V1Container, ctx: ContainerContext) => Promise<RunningContainer | undefined>;
  /** The router processes running now, by pod key. */
  readonly running: Map<string, RouterProcess>;
  /** Every line every router process has written so far. */
  readonly lines: string[];
}

/** The `--port` of the container's args, else the contract's port. */
function portOf(args: readonly string[]): number {
  const flag = args.findLast((a) => a.startsWith('--port='));
  return flag === undefined ? ROUTER_PORT : Number(flag.slice('--port='.length));
}

async function stopProcess(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = once(proc, 'exit');
  proc.kill('SIGTERM');
  const timer = setTimeout(() => proc.kill('SIGKILL'), STOP_GRACE_MS);
  try {
    await exited;
  } finally {
    clearTimeout(timer);
  }
}

async function waitListening(p: RouterProcess): Promise<void> {
  const deadline = performance.now() + LISTEN_TIMEOUT_MS;
  while (performance.now() < deadline) {
    if (p.proc.exitCode !== null) {
      throw new Error(
        `router of ${p.podKey} exited ${String(p.proc.exitCode)}: ${p.lines.slice(-5).join('\n')}`,
      );
    }
    try {
      const res = await fetch(`http://${p.ip}:${String(p.port)}/healthz`, {
        signal: AbortSignal.timeout(1000),
      });
      await res.body?.cancel();
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await sleep(50);
  }
  throw new Error(`router of ${p.podKey} did not listen within ${String(LISTEN_TIMEOUT_MS)} ms`);
}

export function routerRunner(cp: ControlPlane, log: (line: string) => void = () => undefined): RouterRunner {
  const running = new Map<string, RouterProcess>();
  const lines: string[] = [];
  const run = async (c: V1Container, ctx: ContainerContext): Promise<RunningContainer | undefined> => {
    if (c.name !== ROUTER_CONTAINER || ctx.init) return undefined;
    const namespace = ctx.pod.metadata?.namespace ?? 'default';
    const kubeconfig = await cp.mintServiceAccountKubeconfig(
      namespace,
      ctx.pod.spec?.serviceAccountName ?? 'default',
      3600,
    );
    // The image runs `node src/router/main.ts`; here the same file runs on this test run's Node.
    const [, ...script] = c.command ?? [];
    const args = [...script, ...(c.args ?? []), `--host=${ctx.ip}`];
    const proc = spawn(process.execPath, args, {
      cwd: repoRoot,
      env: { ...process.env, ...containerEnv(c), KUBECONFIG: kubeconfig },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const p: RouterProcess = { podKey: ctx.podKey, ip: ctx.ip, port: portOf(c.args ?? []), proc, lines: [] };
    const collect = (chunk: Buffer) => {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line === '') continue;
        p.lines.push(line);
        lines.push(line);
        log(`router ${ctx.podKey}: ${line}`);
      }
    };
    proc.stdout.on('data', collect);
    proc.stderr.on('data', collect);
    try {
      await waitListening(p);
    } catch (err) {
      await stopProcess(proc);
      throw err;
    }
    running.set(ctx.podKey, p);
    return {
      stop: async () => {
        if (running.get(ctx.podKey) === p) running.delete(ctx.podKey);
        await stopProcess(proc);
      },
    };
  };
  return { run, running, lines };
}
