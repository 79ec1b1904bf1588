// Pod IPs on loopback and the kubelet's probe requests.
import { mkdirSync, openSync, closeSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import * as http from 'node:http';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ProbeTarget } from './container.ts';

const FIRST_HOST = 2; // 127.0.1.1 is often the machine's own name in /etc/hosts
const LAST_HOST = 254;
/** One lock file per address in use, holding the owner's pid, shared by every process on the machine. */
const LOCK_DIR = join(tmpdir(), 'stacked-kubelet-pod-ips');

/**
 * Pod IPs 127.0.1.N, N from 2 up, the lowest free one first. One pool per process, shared by every
 * test kubelet in it, so two kubelets running at once never hand out the same address; and a lock
 * file per address (O_EXCL, with the pid; a dead owner's lock is taken over), so that test runs in
 * other processes on the same machine do not bind the same address and port either.
 */
class IpPool {
  readonly #used = new Set<number>();

  allocate(): string {
    for (let n = FIRST_HOST; n <= LAST_HOST; n++) {
      if (!this.#used.has(n) && lockAddress(n)) {
        this.#used.add(n);
        return `127.0.1.${n}`;
      }
    }
    throw new Error('test kubelet: no free pod IP left in 127.0.1.2-254');
  }

  /** Takes a specific address (a pod that already has one); false if it is not ours to give or taken. */
  claim(ip: string): boolean {
    const n = hostPart(ip);
    if (n === undefined || this.#used.has(n) || !lockAddress(n)) return false;
    this.#used.add(n);
    return true;
  }

  release(ip: string): void {
    const n = hostPart(ip);
    if (n === undefined || !this.#used.delete(n)) return;
    unlockAddress(n);
  }

  inUse(): string[] {
    return [...this.#used].sort((a, b) => a - b).map((n) => `127.0.1.${n}`);
  }

  /** Gives back every address (at process exit). */
  releaseAll(): void {
    for (const n of this.#used) unlockAddress(n);
    this.#used.clear();
  }
}

function lockPath(n: number): string {
  return join(LOCK_DIR, `127.0.1.${n}`);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Takes the machine-wide lock of 127.0.1.n; false when a live process holds it. */
function lockAddress(n: number): boolean {
  mkdirSync(LOCK_DIR, { recursive: true });
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(lockPath(n), 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    let owner: number;
    try {
      owner = Number(readFileSync(lockPath(n), 'utf8'));
    } catch {
      continue; // released meanwhile
    }
    if (owner === process.pid) return false; // ours through another pool instance: in use
    // A lock being written has no pid yet: leave it to its owner.
    if (!Number.isInteger(owner) || owner <= 0 || alive(owner)) return false;
    try {
      unlinkSync(lockPath(n)); // left behind by a process that died
    } catch {
      // someone else took it over first
    }
  }
  return false;
}

function unlockAddress(n: number): void {
  try {
    if (Number(readFileSync(lockPath(n), 'utf8')) === process.pid) unlinkSync(lockPath(n));
  } catch {
    // already gone
  }
}

function hostPart(ip: string): number | undefined {
  const m = /^127\.0\.1\.(\d{1,3})$/.exec(ip);
  if (!m) return undefined;
  const n = Number(m[1]);
  return n >= FIRST_HOST && n <= LAST_HOST ? n : undefined;
}

export const podIps = new IpPool();
process.on('exit', () => {
  podIps.releaseAll();
});

/** One probe's outcome; `output` says why it failed, in the words the kubelet's Unhealthy Event uses. */
export interface ProbeResult {
  ok: boolean;
  output: string;
}

const PASSED: ProbeResult = { ok: true, output: '' };

/**
 * One probe attempt: an HTTP GET whose status is 200-399 (the kubelet's rule), or a TCP connect.
 * No keep-alive, like the kubelet's prober, so a probe never holds a server open after it stops.
 */
export function probeOnce(t: ProbeTarget): Promise<ProbeResult> {
  return t.kind === 'http' ? httpProbe(t) : tcpProbe(t);
}

/** Go's net/http phrasing of a failed dial or a timeout, as the kubelet reports it. */
function dialError(t: ProbeTarget, err: unknown): string {
  const address = `${t.host}:${t.port}`;
  const code = (err as { code?: unknown } | undefined)?.code;
  if (code === 'ECONNREFUSED') return `dial tcp ${address}: connect: connection refused`;
  if (code === 'ECONNRESET') return `read tcp ${address}: read: connection reset by peer`;
  return err instanceof Error ? err.message : String(err);
}

function httpProbe(t: ProbeTarget): Promise<ProbeResult> {
  const url = `http://${t.host}:${t.port}${t.path}`;
  const failed = (err: unknown): ProbeResult => ({ ok: false, output: `Get "${url}": ${dialError(t, err)}` });
  return new Promise((resolve) => {
    let req: http.ClientRequest;
    try {
      req = http.request({
        host: t.host,
        port: t.port,
        path: t.path,
        method: 'GET',
        agent: false,
        headers: { 'User-Agent': 'kube-probe/1.37', Accept: '*/*', Connection: 'close', ...t.headers },
        timeout: t.timeoutMs,
      });
    } catch (err) {
      resolve(failed(err));
      return;
    }
    req.on('response', (res) => {
      const code = res.statusCode ?? 0;
      res.resume();
      res.on('end', () => {
        resolve(
          code >= 200 && code < 400
            ? PASSED
            : { ok: false, output: `HTTP probe failed with statuscode: ${code}` },
        );
      });
      res.on('error', (err) => {
        resolve(failed(err));
      });
    });
    req.on('timeout', () => {
      req.destroy(new Error('context deadline exceeded (Client.Timeout exceeded while awaiting headers)'));
    });
    req.on('error', (err) => {
      resolve(failed(err));
    });
    req.end();
  });
}

function tcpProbe(t: ProbeTarget): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const socket = new Socket();
    const done = (result: ProbeResult): void => {
      socket.destroy();
      resolve(result);
    };
    socket.setTimeout(t.timeoutMs, () => {
      done({ ok: false, output: `dial tcp ${t.host}:${t.port}: i/o timeout` });
    });
    socket.once('connect', () => {
      done(PASSED);
    });
    socket.once('error', (err) => {
      done({ ok: false, output: dialError(t, err) });
    });
    try {
      socket.connect(t.port, t.host);
    } catch (err) {
      done({ ok: false, output: dialError(t, err) });
    }
  });
}
