// The test kubelet's runContainer hook for our own image (Dockerfile): a container that runs one of
// its entry points (the operator, `node dist/operator.mjs`, the image's ENTRYPOINT; the router,
// `node dist/router.mjs`) runs for real as a Node process on this machine, the way a node would
// run it:
//   - argv: the container's command and args (Kubernetes' $(VAR) expansion included); without a
//     command, the image's ENTRYPOINT. The script is built from this checkout (scripts/build.ts)
//     and runs on this test run's Node.
//   - env: the container's env, fieldRef values resolved from the pod (POD_NAME, status.podIP, ...),
//     plus KUBERNETES_SERVICE_HOST / KUBERNETES_SERVICE_PORT: the API server's loopback address. The
//     host's environment is not passed on (PATH aside), as a container does not see it.
//   - the ServiceAccount token: a token from the TokenRequest API bound to the pod (as the kubelet's
//     projected volume holds), written with ca.crt and namespace into a folder of its own. client-node
//     reads the in-cluster files from /var/run/secrets/kubernetes.io/serviceaccount only, which a test
//     cannot write, so KUBECONFIG points at a kubeconfig that says what in-cluster loading would:
//     server https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT, that ca.crt, and the token
//     read from that token file (client-node's tokenFile provider, which re-reads it as in-cluster).
//     automountServiceAccountToken: false gives neither folder nor KUBECONFIG.
//   - its network: the pod's IP. The operator gets `--health-host=<pod IP>` (its `--health-port`, the
//     container port, stays), the router `--host=<pod IP>`, so pods never clash on a port.
//   - the kubelet's security-context refusal, checked before anything starts: runAsNonRoot with no
//     numeric user (no runAsUser in the container's or the pod's securityContext, and an image USER
//     that is a name) fails with the kubelet's own message as CreateContainerConfigError, and so do
//     runAsUser 0 and an image USER 0 under runAsNonRoot. The image's USER is the Dockerfile's, or
//     what `imageUsers` says for an image reference (e.g. an older image that said `USER node`).
// Other containers go to `fallback` (e.g. a test's in-process fetch agent), or run nothing.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  AuthenticationV1TokenRequest,
  CoreV1Api,
  KubeConfig,
  V1TokenRequestSpec,
  type V1Container,
  type V1EnvVar,
  type V1Pod,
  type V1SecurityContext,
} from '@kubernetes/client-node';
import { load } from 'js-yaml';
import { ROUTER_PORT } from '../src/api/router/v1.ts';
import { ensureBundles } from './bundles.ts';
import type { ControlPlane } from './controlplane.ts';
import { CreateContainerConfigError, type ContainerContext, type RunningContainer } from './kubelet.ts';
import { expandVars } from './kubelet/container.ts';
import { HOST_IP } from './kubelet/podstatus.ts';

const repoRoot = resolve(import.meta.dirname, '..');
const LISTEN_TIMEOUT_MS = 30_000;
const STOP_GRACE_MS = 5_000;
/** The operator's default --health-port (src/config.ts). */
const OPERATOR_HEALTH_PORT = 8081;
/** The kubelet's token lifetime for projected ServiceAccount tokens (it refreshes them at 80%). */
const TOKEN_TTL_SECONDS = 3600;

/** Our image's entry points, by the script the container runs. */
export const ENTRY_POINTS = {
  'dist/operator.mjs': 'operator',
  'dist/router.mjs': 'router',
} as const;
export type EntryPoint = (typeof ENTRY_POINTS)[keyof typeof ENTRY_POINTS];

/** One process the runner started. */
export interface EntryProcess {
  podKey: string;
  container: string;
  entry: EntryPoint;
  ip: string;
  /** Where it answers /healthz. */
  port: number;
  proc: ChildProcess;
  /** Its stdout and stderr, line by line. */
  lines: string[];
  /** Where its token, ca.crt, namespace and kubeconfig are. */
  secretsDir: string | undefined;
}

export interface ImageRunnerOptions {
  /** Which images are ours; default: a repository named `stacked-operator` (any registry, tag or digest). */
  isOurImage?: (image: string) => boolean;
  /** The image's USER by image reference, where it is not the Dockerfile's. */
  imageUsers?: Readonly<Record<string, string>>;
  /** Runs containers that are not ours; default: nothing (the kubelet reports them running). */
  fallback?: (c: V1Container, ctx: ContainerContext) => Promise<RunningContainer | undefined>;
  /** Every line of every process, prefixed with its pod and container. */
  log?: (line: string) => void;
}

export interface ImageRunner {
  /** The kubelet's runContainer hook. */
  run: (c: V1Container, ctx: ContainerContext) => Promise<RunningContainer | undefined>;
  /** The processes running now, by pod key (our pods run one of our entry points each). */
  readonly running: Map<string, EntryProcess>;
  /** Every line every process has written so far, with the processes' own lines in `running`. */
  readonly lines: string[];
  /** Every process ever started (also those stopped since), oldest first. */
  readonly started: EntryProcess[];
}

/** The Dockerfile's last USER (the final stage's), e.g. "1000:1000". */
export function dockerfileUser(path = join(repoRoot, 'Dockerfile')): string {
  const users = readFileSync(path, 'utf8')
    .split('\n')
    .map((l) => /^\s*USER\s+(\S+)/i.exec(l)?.[1])
    .filter((u): u is string => u !== undefined);
  const last = users.at(-1);
  if (last === undefined) throw new Error(`${path} has no USER`);
  return last;
}

/** The Dockerfile's ENTRYPOINT, in its exec (JSON) form, e.g. ["node", "dist/operator.mjs"]. */
export function dockerfileEntrypoint(path = join(repoRoot, 'Dockerfile')): string[] {
  const lines = readFileSync(path, 'utf8')
    .split('\n')
    .map((l) => /^\s*ENTRYPOINT\s+(\[.*\])\s*$/i.exec(l)?.[1])
    .filter((e): e is string => e !== undefined);
  const last = lines.at(-1);
  if (last === undefined) throw new Error(`${path} has no ENTRYPOINT in exec form`);
  return JSON.parse(last) as string[];
}

/**
 * The flags the image gives Node itself for the operator (its ENTRYPOINT's, before the script):
 * whatever runs the operator here runs it as the image does.
 */
export function operatorNodeFlags(): string[] {
  return splitNodeArgv(dockerfileEntrypoint())?.flags ?? [];
}

/**
 * The operator as the image starts it: Node's flags and the script's path in this checkout, built
 * from the sources first (the image runs a bundle, scripts/build.ts).
 */
export async function operatorCommand(): Promise<{ nodeFlags: string[]; script: string }> {
  const node = splitNodeArgv(dockerfileEntrypoint());
  if (node === undefined) throw new Error("the Dockerfile's ENTRYPOINT is not a node command");
  await ensureBundles();
  return { nodeFlags: node.flags, script: join(repoRoot, checkoutRelative(node.script)) };
}

/** A path of the image (its WORKDIR is /app) as a path of this checkout, relative to its root. */
function checkoutRelative(script: string): string {
  return script.replace(/^\/app\//, '');
}

/** `node [flags] script [args]` apart; undefined when argv is not a node command. */
function splitNodeArgv(
  argv: readonly string[],
): { flags: string[]; script: string; args: string[] } | undefined {
  const [bin, ...rest] = argv;
  if (bin === undefined || !/(^|\/)node$/.test(bin)) return undefined;
  const at = rest.findIndex((a) => !a.startsWith('-'));
  const script = rest[at];
  if (at < 0 || script === undefined) return undefined;
  return { flags: rest.slice(0, at), script, args: rest.slice(at + 1) };
}

const defaultIsOurImage = (image: string): boolean => /(^|\/)stacked-operator([:@]|$)/.test(image);

/** The entry point a container of our image runs: its command's script, else the ENTRYPOINT's. */
export function entryPointOf(
  c: V1Container,
): { entry: EntryPoint; nodeFlags: string[]; script: string; args: string[] } | undefined {
  const argv = c.command !== undefined && c.command.length > 0 ? c.command : dockerfileEntrypoint();
  const node = splitNodeArgv(argv);
  if (node === undefined) return undefined;
  const entry = (ENTRY_POINTS as Record<string, EntryPoint | undefined>)[checkoutRelative(node.script)];
  if (entry === undefined) return undefined;
  return { entry, nodeFlags: node.flags, script: node.script, args: [...node.args, ...(c.args ?? [])] };
}

/** kubelet's format.Pod: name_namespace(uid). */
function formatPod(pod: V1Pod): string {
  return `${pod.metadata?.name ?? ''}_${pod.metadata?.namespace ?? ''}(${pod.metadata?.uid ?? ''})`;
}

/**
 * The kubelet's verifyRunAsNonRoot (pkg/kubelet/kuberuntime/security_context_others.go), with its
 * messages: undefined when the container may start.
 */
export function runAsNonRootRefusal(pod: V1Pod, c: V1Container, imageUser: string): string | undefined {
  const podSc = pod.spec?.securityContext;
  const sc: V1SecurityContext | undefined = c.securityContext;
  const runAsNonRoot = sc?.runAsNonRoot ?? podSc?.runAsNonRoot;
  if (runAsNonRoot !== true) return undefined;
  const where = `(pod: "${formatPod(pod)}", container: ${c.name})`;
  const runAsUser = sc?.runAsUser ?? podSc?.runAsUser;
  if (runAsUser !== undefined) {
    return runAsUser === 0 ? `container's runAsUser breaks non-root policy ${where}` : undefined;
  }
  const user = imageUser.split(':')[0] ?? '';
  if (/^\d+$/.test(user)) {
    return Number(user) === 0 ? `container has runAsNonRoot and image will run as root ${where}` : undefined;
  }
  if (user === '') return undefined;
  return `container has runAsNonRoot and image has non-numeric user (${user}), cannot verify user is non-root ${where}`;
}

/** The value of a downward-API fieldPath, as the kubelet resolves it. */
function fieldValue(pod: V1Pod, ip: string, path: string): string | undefined {
  const sub = /^metadata\.(labels|annotations)\['(.+)'\]$/.exec(path);
  if (sub !== null) {
    const map = sub[1] === 'labels' ? pod.metadata?.labels : pod.metadata?.annotations;
    return map?.[sub[2] ?? ''];
  }
  const values: Record<string, string | undefined> = {
    'metadata.name': pod.metadata?.name,
    'metadata.namespace': pod.metadata?.namespace,
    'metadata.uid': pod.metadata?.uid,
    'spec.nodeName': pod.spec?.nodeName,
    'spec.serviceAccountName': pod.spec?.serviceAccountName ?? 'default',
    'status.podIP': ip,
    'status.podIPs': ip,
    'status.hostIP': HOST_IP,
    'status.hostIPs': HOST_IP,
  };
  return values[path];
}

/** The container's env: literal values and fieldRefs, expanded in order like the kubelet does. */
export function resolveEnv(
  c: V1Container,
  pod: V1Pod,
  ip: string,
  log: (line: string) => void,
): Record<string, string> {
  const vars = new Map<string, string>();
  const one = (e: V1EnvVar): string | undefined => {
    if (e.valueFrom === undefined) return expandVars(e.value ?? '', vars);
    const path = e.valueFrom.fieldRef?.fieldPath;
    if (path !== undefined) return fieldValue(pod, ip, path);
    // Secret and ConfigMap keys and resourceFieldRefs are not resolved here: say so, leave it unset.
    log(`env ${e.name} of ${c.name}: only value and fieldRef are resolved, left unset`);
    return undefined;
  };
  for (const e of c.env ?? []) {
    const v = one(e);
    if (v !== undefined) vars.set(e.name, v);
  }
  return Object.fromEntries(vars);
}

/** `--name=V` or `--name V` (the last one wins, like parseArgs). */
function flagValue(args: readonly string[], name: string): string | undefined {
  let value: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i] ?? '';
    if (a === `--${name}`) value = args[++i];
    else if (a.startsWith(`--${name}=`)) value = a.slice(name.length + 3);
  }
  return value;
}

async function stopProcess(proc: ChildProcess, graceMs: number): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = once(proc, 'exit');
  proc.kill('SIGTERM');
  const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
  try {
    await exited;
  } finally {
    clearTimeout(timer);
  }
}

async function waitHealthy(p: EntryProcess): Promise<void> {
  const deadline = performance.now() + LISTEN_TIMEOUT_MS;
  while (performance.now() < deadline) {
    if (p.proc.exitCode !== null) {
      throw new Error(
        `${p.entry} of ${p.podKey} exited ${String(p.proc.exitCode)}: ${p.lines.slice(-5).join('\n')}`,
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
  throw new Error(`${p.entry} of ${p.podKey} did not listen within ${String(LISTEN_TIMEOUT_MS)} ms`);
}

/** What the kubelet's projected ServiceAccount volume holds, and a kubeconfig that reads it. */
async function mountServiceAccount(
  cp: ControlPlane,
  admin: KubeConfig,
  pod: V1Pod,
  dir: string,
): Promise<{ secretsDir: string; kubeconfig: string }> {
  const namespace = pod.metadata?.namespace ?? 'default';
  const body = new AuthenticationV1TokenRequest();
  body.spec = new V1TokenRequestSpec();
  body.spec.audiences = [];
  body.spec.expirationSeconds = TOKEN_TTL_SECONDS;
  // Bound to the pod, as the kubelet asks: the token dies with the pod.
  body.spec.boundObjectRef = {
    apiVersion: 'v1',
    kind: 'Pod',
    name: pod.metadata?.name ?? '',
    ...(pod.metadata?.uid === undefined ? {} : { uid: pod.metadata.uid }),
  };
  const res = await admin.makeApiClient(CoreV1Api).createNamespacedServiceAccountToken({
    namespace,
    name: pod.spec?.serviceAccountName ?? 'default',
    body,
  });
  const token = res.status?.token;
  if (token === undefined || token === '')
    throw new Error(`TokenRequest for ${formatPod(pod)} returned no token`);
  const secretsDir = join(dir, 'serviceaccount');
  mkdirSync(secretsDir, { recursive: true });
  writeFileSync(join(secretsDir, 'token'), token, { mode: 0o600 });
  writeFileSync(join(secretsDir, 'ca.crt'), adminCa(cp));
  writeFileSync(join(secretsDir, 'namespace'), namespace);
  const server = new URL(cp.server);
  const kubeconfig = join(dir, 'kubeconfig');
  // What client-node's loadFromCluster() builds from the service env and these files.
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      {
        name: 'inCluster',
        cluster: {
          server: `https://${server.hostname}:${server.port}`,
          'certificate-authority': join(secretsDir, 'ca.crt'),
        },
      },
    ],
    users: [
      {
        name: 'inClusterUser',
        user: { 'auth-provider': { name: 'tokenFile', config: { tokenFile: join(secretsDir, 'token') } } },
      },
    ],
    contexts: [
      { name: 'inClusterContext', context: { cluster: 'inCluster', user: 'inClusterUser', namespace } },
    ],
    'current-context': 'inClusterContext',
  };
  writeFileSync(kubeconfig, JSON.stringify(config, null, 2), { mode: 0o600 });
  return { secretsDir, kubeconfig };
}

/** The API server's CA, from the admin kubeconfig. */
function adminCa(cp: ControlPlane): string {
  const config = load(readFileSync(cp.kubeconfigPath, 'utf8')) as {
    clusters?: { cluster?: { 'certificate-authority-data'?: string } }[];
  };
  const data = config.clusters?.[0]?.cluster?.['certificate-authority-data'];
  if (data === undefined) throw new Error(`${cp.kubeconfigPath} has no certificate-authority-data`);
  return Buffer.from(data, 'base64').toString('utf8');
}

export function imageRunner(cp: ControlPlane, opts: ImageRunnerOptions = {}): ImageRunner {
  const running = new Map<string, EntryProcess>();
  const started: EntryProcess[] = [];
  const lines: string[] = [];
  const log = opts.log ?? (() => undefined);
  const isOurs = opts.isOurImage ?? defaultIsOurImage;
  const imageUser = dockerfileUser();
  const admin = new KubeConfig();
  admin.loadFromFile(cp.kubeconfigPath);
  const apiServer = new URL(cp.server);

  const run = async (c: V1Container, ctx: ContainerContext): Promise<RunningContainer | undefined> => {
    const found = isOurs(c.image ?? '') && !ctx.init ? entryPointOf(c) : undefined;
    if (found === undefined) return opts.fallback?.(c, ctx);
    const pod = ctx.pod;
    const refusal = runAsNonRootRefusal(pod, c, opts.imageUsers?.[c.image ?? ''] ?? imageUser);
    if (refusal !== undefined) throw new CreateContainerConfigError(refusal);

    const dir = mkdtempSync(join(tmpdir(), `stacked-pod-${(pod.metadata?.name ?? '').slice(0, 40)}-`));
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: dir,
      // The Dockerfile's ENV.
      NODE_ENV: 'production',
      // Profiling what the image runs, e.g. IMAGE_NODE_OPTIONS="--cpu-prof --cpu-prof-dir=/tmp/prof".
      ...(process.env.IMAGE_NODE_OPTIONS ? { NODE_OPTIONS: process.env.IMAGE_NODE_OPTIONS } : {}),
      KUBERNETES_SERVICE_HOST: apiServer.hostname,
      KUBERNETES_SERVICE_PORT: apiServer.port,
      KUBERNETES_SERVICE_PORT_HTTPS: apiServer.port,
      ...resolveEnv(c, pod, ctx.ip, (l) => {
        log(`${ctx.podKey}: ${l}`);
      }),
    };
    let secretsDir: string | undefined;
    if (pod.spec?.automountServiceAccountToken !== false) {
      const mounted = await mountServiceAccount(cp, admin, pod, dir);
      secretsDir = mounted.secretsDir;
      env['KUBECONFIG'] = mounted.kubeconfig;
    }
    const vars = new Map(Object.entries(env));
    const args = found.args.map((a) => expandVars(a, vars));
    let port: number;
    if (found.entry === 'operator') {
      args.push(`--health-host=${ctx.ip}`);
      port = Number(flagValue(args, 'health-port') ?? env['HEALTH_PORT'] ?? OPERATOR_HEALTH_PORT);
    } else {
      args.push(`--host=${ctx.ip}`);
      port = Number(flagValue(args, 'port') ?? ROUTER_PORT);
    }
    const script = join(repoRoot, checkoutRelative(found.script));
    await ensureBundles();
    const proc = spawn(process.execPath, [...found.nodeFlags, script, ...args], {
      cwd: repoRoot,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const p: EntryProcess = {
      podKey: ctx.podKey,
      container: c.name,
      entry: found.entry,
      ip: ctx.ip,
      port,
      proc,
      lines: [],
      secretsDir,
    };
    started.push(p);
    const collect = (chunk: Buffer) => {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line === '') continue;
        p.lines.push(line);
        lines.push(line);
        log(`${ctx.podKey}/${c.name}: ${line}`);
      }
    };
    proc.stdout.on('data', collect);
    proc.stderr.on('data', collect);
    const key = ctx.podKey;
    const graceMs = Math.min((pod.spec?.terminationGracePeriodSeconds ?? 30) * 1000, STOP_GRACE_MS);
    const cleanup = async () => {
      await stopProcess(proc, graceMs);
      rmSync(dir, { recursive: true, force: true });
    };
    try {
      await waitHealthy(p);
    } catch (err) {
      await cleanup();
      throw err;
    }
    running.set(key, p);
    return {
      stop: async () => {
        if (running.get(key) === p) running.delete(key);
        await cleanup();
      },
    };
  };
  return { run, running, lines, started };
}
