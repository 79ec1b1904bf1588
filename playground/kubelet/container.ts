// What a container runtime would make of a container spec: the process's argv and environment, the
// port vLLM listens on, and where a path inside the container lives on the host.
import { existsSync } from 'node:fs';
import { isAbsolute, join, normalize, posix } from 'node:path';
import type { V1Container, V1Pod, V1Probe } from '@kubernetes/client-node';

/** vLLM's default `--port`. */
export const VLLM_DEFAULT_PORT = 8000;

/**
 * Kubernetes' $(VAR) expansion of command, args and env values: `$(NAME)` becomes the variable's
 * value when it is defined, `$$` becomes `$`, and anything else stays as written.
 */
export function expandVars(text: string, vars: ReadonlyMap<string, string>): string {
  return text.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (whole, name: string | undefined) => {
    if (name === undefined) return '$';
    return vars.get(name) ?? whole;
  });
}

/** The container's literal env values (valueFrom and envFrom are not resolved), expanded in order. */
export function containerEnv(c: V1Container): Record<string, string> {
  const vars = new Map<string, string>();
  for (const e of c.env ?? []) {
    if (e.value === undefined && e.valueFrom !== undefined) continue;
    vars.set(e.name, expandVars(e.value ?? '', vars));
  }
  return Object.fromEntries(vars);
}

const LAUNCHERS: readonly (readonly string[])[] = [
  ['vllm', 'serve'],
  ['python', '-m', 'vllm.entrypoints.openai.api_server'],
  ['python3', '-m', 'vllm.entrypoints.openai.api_server'],
];

/**
 * The arguments vLLM's parser sees: `command` + `args` (expanded like the kubelet does) with the
 * launcher (`vllm serve`, `python3 -m vllm.entrypoints.openai.api_server`, also as an absolute path)
 * removed. Without a `command`, the image's entrypoint is the launcher and `args` are what vLLM sees.
 */
export function vllmArgs(c: V1Container, env: Record<string, string>): string[] {
  const vars = new Map(Object.entries(env));
  const argv = [...(c.command ?? []), ...(c.args ?? [])].map((a) => expandVars(a, vars));
  if (c.command === undefined || c.command.length === 0) return argv;
  for (const launcher of LAUNCHERS) {
    const head = argv.slice(0, launcher.length).map((a, i) => (i === 0 ? posix.basename(a) : a));
    if (head.length === launcher.length && head.every((a, i) => a === launcher[i])) {
      return argv.slice(launcher.length);
    }
  }
  return argv;
}

/** `--port N` / `--port=N` (the last one wins, like argparse). */
export function portArg(args: readonly string[]): number | undefined {
  let port: number | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i] ?? '';
    let raw: string | undefined;
    if (a === '--port') raw = args[++i];
    else if (a.startsWith('--port=')) raw = a.slice('--port='.length);
    if (raw !== undefined && /^\d+$/.test(raw)) port = Number(raw);
  }
  return port;
}

/** The port the simulator listens on: `--port`, else the first TCP containerPort, else vLLM's 8000. */
export function listenPort(c: V1Container, args: readonly string[]): number {
  const tcp = (c.ports ?? []).find((p) => (p.protocol ?? 'TCP') === 'TCP');
  return portArg(args) ?? tcp?.containerPort ?? VLLM_DEFAULT_PORT;
}

/** Where the pod's volumes live on the host. */
export interface VolumeRoots {
  pvcRoot: string;
  hfRoot: string;
  /** Host folder of an emptyDir volume of this pod (created on demand by the caller). */
  emptyDir: (volumeName: string) => string;
}

/**
 * Maps a path as the process inside the container would use it to a host path: under a PVC mount
 * into `<pvcRoot>/<namespace>/<claim>/<subPath>/<rest>`, under an emptyDir mount into the pod's folder
 * for that volume; a relative path is a Hugging Face id, found at `<hfRoot>/<id>`. Returns undefined
 * when nothing is mounted there or the host path does not exist.
 */
export function makeResolvePath(
  pod: V1Pod,
  c: V1Container,
  roots: VolumeRoots,
): (path: string) => string | undefined {
  const namespace = pod.metadata?.namespace ?? 'default';
  const volumes = new Map((pod.spec?.volumes ?? []).map((v) => [v.name, v]));
  const mounts = [...(c.volumeMounts ?? [])]
    .map((m) => ({
      name: m.name,
      subPath: m.subPath,
      mountPath: posix.normalize(m.mountPath).replace(/(.)\/$/, '$1'),
    }))
    .sort((a, b) => b.mountPath.length - a.mountPath.length);
  return (path: string) => {
    if (path === '') return undefined;
    let host: string | undefined;
    if (!path.startsWith('/')) {
      const id = posix.normalize(path);
      if (id.startsWith('..') || isAbsolute(id)) return undefined;
      host = join(roots.hfRoot, id);
    } else {
      const p = posix.normalize(path);
      for (const m of mounts) {
        const under = p === m.mountPath || p.startsWith(m.mountPath === '/' ? '/' : `${m.mountPath}/`);
        if (!under) continue;
        const rest = p.slice(m.mountPath.length).replace(/^\//, '');
        const volume = volumes.get(m.name);
        let base: string | undefined;
        if (volume?.persistentVolumeClaim) {
          base = join(roots.pvcRoot, namespace, volume.persistentVolumeClaim.claimName);
        } else if (volume?.emptyDir) {
          base = roots.emptyDir(volume.name);
        }
        if (base === undefined) return undefined;
        host = normalize(join(base, m.subPath ?? '', rest));
        if (host !== base && !host.startsWith(`${base}/`)) return undefined;
        break;
      }
    }
    return host !== undefined && existsSync(host) ? host : undefined;
  };
}

/** A probe as the test kubelet runs it: HTTP GET or TCP connect. */
export interface ProbeTarget {
  kind: 'http' | 'tcp';
  host: string;
  port: number;
  path: string;
  headers: Record<string, string>;
  periodMs: number;
  initialDelayMs: number;
  timeoutMs: number;
  successThreshold: number;
  failureThreshold: number;
}

/** Startup and readiness probes run at least this often, whatever periodSeconds says, so tests move quickly. */
export const MAX_PROBE_PERIOD_MS = 200;
/** A startup or readiness probe's initialDelaySeconds is honoured up to this long. */
export const MAX_INITIAL_DELAY_MS = 1000;

/** How the test kubelet times a probe. */
export interface ProbeTiming {
  /** periodSeconds and initialDelaySeconds are multiplied by this (not timeoutSeconds); default 1. */
  timeScale?: number;
  /**
   * Cap the (scaled) period at MAX_PROBE_PERIOD_MS and the initial delay at MAX_INITIAL_DELAY_MS;
   * default true. Startup and readiness probes are capped; liveness probes are not, since a probe
   * that fails sooner restarts a container sooner than the kubelet would.
   */
  cap?: boolean;
}

/**
 * The probe's target on the pod's IP, or undefined when the probe is absent or of a kind the test
 * kubelet does not run (exec, grpc: those count as passing).
 */
export function probeTarget(
  probe: V1Probe | undefined,
  c: V1Container,
  podIP: string,
  timingOpts: ProbeTiming = {},
): ProbeTarget | undefined {
  if (probe === undefined) return undefined;
  // A named port the container does not declare makes the probe fail, as in the kubelet.
  const resolvePort = (port: number | string): number => {
    if (typeof port === 'number') return port;
    if (/^\d+$/.test(port)) return Number(port);
    return (c.ports ?? []).find((p) => p.name === port)?.containerPort ?? -1;
  };
  const scale = timingOpts.timeScale ?? 1;
  const cap = timingOpts.cap ?? true;
  const periodMs = (probe.periodSeconds ?? 10) * 1000 * scale;
  const initialDelayMs = (probe.initialDelaySeconds ?? 0) * 1000 * scale;
  const timing = {
    periodMs: cap ? Math.min(periodMs, MAX_PROBE_PERIOD_MS) : periodMs,
    initialDelayMs: cap ? Math.min(initialDelayMs, MAX_INITIAL_DELAY_MS) : initialDelayMs,
    timeoutMs: (probe.timeoutSeconds ?? 1) * 1000,
    successThreshold: probe.successThreshold ?? 1,
    failureThreshold: probe.failureThreshold ?? 3,
  };
  if (probe.httpGet) {
    const port = resolvePort(probe.httpGet.port);
    const headers: Record<string, string> = {};
    for (const h of probe.httpGet.httpHeaders ?? []) headers[h.name] = h.value;
    const path = probe.httpGet.path ?? '/';
    return {
      kind: 'http',
      host: probe.httpGet.host ?? podIP,
      port,
      path: path.startsWith('/') ? path : `/${path}`,
      headers,
      ...timing,
    };
  }
  if (probe.tcpSocket) {
    const port = resolvePort(probe.tcpSocket.port);
    return { kind: 'tcp', host: probe.tcpSocket.host ?? podIP, port, path: '', headers: {}, ...timing };
  }
  return undefined;
}
