// A real, throw-away Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager) for
// integration tests, started from the binaries that test/tools/build.sh produces. The recipe and the
// reasons for most flags are in the project's real-controlplane reference notes.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { appendFileSync, closeSync, openSync, readFileSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import * as http from 'node:http';
import * as https from 'node:https';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';

export interface ControlPlane {
  /** Folder holding etcd, kube-apiserver, kube-controller-manager, kubectl and helm. */
  binDir: string;
  /** Temporary folder of this run: certificates, etcd data, logs, kubeconfigs. */
  dir: string;
  /** Admin kubeconfig (CN=admin, O=system:masters); cluster, user and context are named `envtest`. */
  kubeconfigPath: string;
  /** `https://127.0.0.1:PORT` */
  server: string;
  auditLogPath: string;
  /** Requests a token for an existing ServiceAccount and writes a kubeconfig that uses it; returns its path. */
  mintServiceAccountKubeconfig(
    namespace: string,
    serviceAccount: string,
    ttlSeconds?: number,
  ): Promise<string>;
  /** Write requests (including denied ones) made by `username` since `sinceMs` (epoch ms), oldest first. */
  writesBy(username: string, sinceMs?: number): Promise<AuditEvent[]>;
  /** Every user's write requests since `sinceMs` (epoch ms), oldest first. */
  writes(sinceMs?: number): Promise<AuditEvent[]>;
  /** Its processes (etcd, kube-apiserver, kube-controller-manager), e.g. to read their CPU time. */
  processes(): { name: string; pid: number }[];
  /** Stops every process and removes `dir`. Idempotent. */
  stop(): Promise<void>;
}

/** The subset of an audit.k8s.io/v1 Event that the Metadata level records and tests look at. */
export interface AuditEvent {
  auditID: string;
  stage: string;
  verb: string;
  requestURI: string;
  user: { username: string; groups?: string[] };
  userAgent?: string;
  objectRef?: {
    resource?: string;
    subresource?: string;
    namespace?: string;
    name?: string;
    apiGroup?: string;
    apiVersion?: string;
  };
  responseStatus?: { code?: number; status?: string; reason?: string; message?: string };
  requestReceivedTimestamp: string;
  stageTimestamp: string;
}

export interface StartOptions {
  /** Progress lines (build output, phases). Defaults to stderr with a `[controlplane]` prefix. */
  log?: (line: string) => void;
}

const WRITE_VERBS = ['create', 'update', 'patch', 'delete', 'deletecollection'];
const CONTROLLERS = [
  'garbage-collector-controller',
  'deployment-controller',
  'replicaset-controller',
  'namespace-controller',
];
// Two cores and a cold page cache make the apiserver's post-start hooks slow; 20 s (envtest) is too short.
const APISERVER_READY_TIMEOUT_MS = 120_000;
const ETCD_READY_TIMEOUT_MS = 30_000;
const KCM_READY_TIMEOUT_MS = 60_000;
const STOP_GRACE_MS = 10_000;
const POLL_MS = 200;
// The audit barrier: an admin `get` of this (never existing) ConfigMap is the only read the policy records.
const BARRIER_NAMESPACE = 'kube-system';
const BARRIER_NAME = 'audit-barrier';

const repoRoot = resolve(import.meta.dirname, '..');
const execFileAsync = promisify(execFile);

// ---------------------------------------------------------------------------------------------------------
// Public entry points

export async function startControlPlane(opts: StartOptions = {}): Promise<ControlPlane> {
  const log = opts.log ?? defaultLog;
  const startedAt = performance.now();
  const binDir = await buildTools(log);
  const dir = await mkdtemp(join(tmpdir(), 'stacked-cp-'));
  const procs = new ProcessGroup(dir);
  try {
    const cp = await boot(binDir, dir, procs, log);
    log(`control plane ready at ${cp.server} in ${elapsedSeconds(startedAt)} s (dir ${dir})`);
    return cp;
  } catch (err) {
    await procs.stop();
    throw err;
  }
}

let shared: Promise<ControlPlane> | undefined;

/**
 * One control plane per test process, started on first use. A failed start is remembered so that every
 * later `before` fails fast with the same error instead of paying the start-up again.
 */
export function sharedControlPlane(): Promise<ControlPlane> {
  shared ??= startControlPlane();
  return shared;
}

export async function stopSharedControlPlane(): Promise<void> {
  const pending = shared;
  shared = undefined;
  if (pending === undefined) return;
  const cp = await pending.catch(() => undefined);
  await cp?.stop();
}

// ---------------------------------------------------------------------------------------------------------
// Boot sequence

async function boot(binDir: string, dir: string, procs: ProcessGroup, log: (line: string) => void) {
  const [etcdPort, peerPort, apiPort, kcmPort] = (await freePorts(4)) as [number, number, number, number];
  const server = `https://127.0.0.1:${apiPort}`;
  const certs = await makeCertificates(dir);
  const adminKubeconfig = join(dir, 'admin.kubeconfig');
  const kcmKubeconfig = join(dir, 'controller-manager.kubeconfig');
  await writeKubeconfig(adminKubeconfig, server, certs.servingCa, clientCertUser(certs.admin));
  await writeKubeconfig(kcmKubeconfig, server, certs.servingCa, clientCertUser(certs.controllerManager));
  const auditLogPath = join(dir, 'audit.log');
  const auditPolicyPath = join(dir, 'audit-policy.yaml');
  await writeFile(auditPolicyPath, auditPolicy());

  let phaseStart = performance.now();
  const etcd = await procs.start('etcd', join(binDir, 'etcd'), etcdArgs(dir, etcdPort, peerPort));
  await waitFor('etcd /health', etcd, ETCD_READY_TIMEOUT_MS, () => etcdHealthy(etcdPort));
  log(`etcd ready in ${elapsedSeconds(phaseStart)} s`);

  phaseStart = performance.now();
  const apiArgs = apiserverArgs({ dir, certs, etcdPort, apiPort, auditPolicyPath, auditLogPath });
  const apiserver = await procs.start('kube-apiserver', join(binDir, 'kube-apiserver'), apiArgs);
  const admin = new AdminClient(server, certs);
  await waitFor('kube-apiserver /readyz', apiserver, APISERVER_READY_TIMEOUT_MS, () => admin.ready());
  log(`kube-apiserver ready in ${elapsedSeconds(phaseStart)} s (pid ${apiserver.pid})`);

  phaseStart = performance.now();
  const kcmArgs = controllerManagerArgs(dir, kcmKubeconfig, kcmPort);
  const kcm = await procs.start('kube-controller-manager', join(binDir, 'kube-controller-manager'), kcmArgs);
  await waitFor('kube-controller-manager /healthz', kcm, KCM_READY_TIMEOUT_MS, () => kcmHealthy(kcmPort));
  log(`kube-controller-manager ready in ${elapsedSeconds(phaseStart)} s`);

  return new RunningControlPlane({
    binDir,
    dir,
    kubeconfigPath: adminKubeconfig,
    server,
    auditLogPath,
    admin,
    procs,
  });
}

function etcdArgs(dir: string, clientPort: number, peerPort: number): string[] {
  const client = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  return [
    `--data-dir=${join(dir, 'etcd')}`,
    `--listen-client-urls=${client}`,
    `--advertise-client-urls=${client}`,
    `--listen-peer-urls=${peer}`,
    `--initial-advertise-peer-urls=${peer}`,
    `--initial-cluster=default=${peer}`,
    // Test data is disposable; fsync dominates write latency on CI disks.
    '--unsafe-no-fsync=true',
    '--log-level=warn',
  ];
}

interface ApiserverArgsInput {
  dir: string;
  certs: Certificates;
  etcdPort: number;
  apiPort: number;
  auditPolicyPath: string;
  auditLogPath: string;
}

function apiserverArgs(a: ApiserverArgsInput): string[] {
  return [
    `--etcd-servers=http://127.0.0.1:${a.etcdPort}`,
    `--secure-port=${a.apiPort}`,
    '--bind-address=127.0.0.1',
    // Without a default route the apiserver cannot pick an address and exits.
    '--advertise-address=127.0.0.1',
    // The `kubernetes` Endpoints object would be rejected for a loopback IP.
    '--endpoint-reconciler-type=none',
    // Keeps the apiserver from writing self-signed certificates under /var/run/kubernetes.
    `--cert-dir=${join(a.dir, 'apiserver-certs')}`,
    `--tls-cert-file=${a.certs.serving.certPath}`,
    `--tls-private-key-file=${a.certs.serving.keyPath}`,
    `--client-ca-file=${a.certs.clientCaPath}`,
    // kubeadm's default: room for ~1M Services (a /24 ran out at 253 in the scale benchmark). The
    // `kubernetes` Service takes its first IP (10.96.0.1); nothing connects to it, so it is not in the
    // serving certificate's SANs.
    '--service-cluster-ip-range=10.96.0.0/12',
    // kubeadm's order: the test kubelet's nodes have no DNS name, their InternalIP reaches them.
    '--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname',
    '--allow-privileged=true',
    '--authorization-mode=RBAC',
    // No serviceaccount controller runs, so the admission plugin would reject every Pod.
    '--disable-admission-plugins=ServiceAccount',
    `--service-account-issuer=https://127.0.0.1:${a.apiPort}`,
    `--service-account-key-file=${a.certs.serviceAccountPublicKeyPath}`,
    `--service-account-signing-key-file=${a.certs.serviceAccountPrivateKeyPath}`,
    `--audit-policy-file=${a.auditPolicyPath}`,
    `--audit-log-path=${a.auditLogPath}`,
    // Blocking: the event is written in the request's goroutine, so a finished request is in the log.
    '--audit-log-mode=blocking',
    '--audit-log-format=json',
  ];
}

function controllerManagerArgs(dir: string, kubeconfig: string, port: number): string[] {
  return [
    `--kubeconfig=${kubeconfig}`,
    `--controllers=${CONTROLLERS.join(',')}`,
    '--leader-elect=false',
    '--use-service-account-credentials=false',
    '--bind-address=127.0.0.1',
    // The default 10257 would collide with a second control plane or a real cluster on this machine.
    `--secure-port=${port}`,
    `--cert-dir=${join(dir, 'kcm-certs')}`,
    '--kube-api-qps=100',
    '--kube-api-burst=200',
  ];
}

/**
 * Metadata for writes only, so that "the operator made zero writes" can be counted per user. The one
 * exception is the admin's read of a fixed, never-existing ConfigMap, used as a barrier by writesBy().
 * The authentication and authorization groups hold only reviews (TokenReview, SubjectAccessReview,
 * SelfSubjectReview, ...): `create`s that persist nothing, made e.g. by `kubectl auth` or by a metrics
 * endpoint that checks its callers, so they are not writes.
 */
function auditPolicy(): string {
  return `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
    users: [admin]
    verbs: [get]
    namespaces: [${BARRIER_NAMESPACE}]
    resources:
      - group: ''
        resources: [configmaps]
        resourceNames: [${BARRIER_NAME}]
  - level: None
    resources:
      - group: authentication.k8s.io
      - group: authorization.k8s.io
  - level: Metadata
    verbs: [${WRITE_VERBS.join(', ')}]
  - level: None
`;
}

// ---------------------------------------------------------------------------------------------------------
// The running control plane

interface RunningInit {
  binDir: string;
  dir: string;
  kubeconfigPath: string;
  server: string;
  auditLogPath: string;
  admin: AdminClient;
  procs: ProcessGroup;
}

class RunningControlPlane implements ControlPlane {
  readonly binDir: string;
  readonly dir: string;
  readonly kubeconfigPath: string;
  readonly server: string;
  readonly auditLogPath: string;
  readonly #admin: AdminClient;
  readonly #procs: ProcessGroup;
  #minted = 0;

  constructor(init: RunningInit) {
    this.binDir = init.binDir;
    this.dir = init.dir;
    this.kubeconfigPath = init.kubeconfigPath;
    this.server = init.server;
    this.auditLogPath = init.auditLogPath;
    this.#admin = init.admin;
    this.#procs = init.procs;
  }

  async mintServiceAccountKubeconfig(namespace: string, serviceAccount: string, ttlSeconds = 3600) {
    const token = await requestToken(this.kubeconfigPath, namespace, serviceAccount, ttlSeconds);
    this.#minted += 1;
    const path = join(this.dir, `sa-${namespace}-${serviceAccount}-${this.#minted}.kubeconfig`);
    await writeKubeconfig(path, this.server, this.#admin.servingCa, { token });
    return path;
  }

  async writesBy(username: string, sinceMs = 0): Promise<AuditEvent[]> {
    return (await this.writes(sinceMs)).filter((e) => e.user.username === username);
  }

  async writes(sinceMs = 0): Promise<AuditEvent[]> {
    await this.#auditBarrier();
    const events = parseAuditLog(await readFile(this.auditLogPath, 'utf8'));
    return events.filter(
      (e) =>
        e.stage === 'ResponseComplete' &&
        WRITE_VERBS.includes(e.verb) &&
        Date.parse(e.requestReceivedTimestamp) >= sinceMs,
    );
  }

  processes(): { name: string; pid: number }[] {
    return this.#procs.list();
  }

  stop(): Promise<void> {
    return this.#procs.stop();
  }

  /**
   * Makes a recorded request and waits until the log holds it, so that every request that completed
   * before this call is in the file too (the log is written in order, in blocking mode).
   */
  async #auditBarrier(): Promise<void> {
    const path = `/api/v1/namespaces/${BARRIER_NAMESPACE}/configmaps/${BARRIER_NAME}`;
    const res = await this.#admin.get(path);
    const auditId = res.headers['audit-id'];
    if (typeof auditId !== 'string') throw new Error(`no Audit-Id header on GET ${path} (${res.status})`);
    const deadline = Date.now() + 10_000;
    while (!(await readFile(this.auditLogPath, 'utf8')).includes(auditId)) {
      if (Date.now() > deadline) throw new Error(`audit event ${auditId} never reached ${this.auditLogPath}`);
      await sleep(20);
    }
  }
}

async function requestToken(kubeconfigPath: string, namespace: string, name: string, ttlSeconds: number) {
  // Imported on first use: it takes ~0.3 s, and every run that loads the mocha hooks loads this module.
  const k8s = await import('@kubernetes/client-node');
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(kubeconfigPath);
  const body = new k8s.AuthenticationV1TokenRequest();
  body.spec = new k8s.V1TokenRequestSpec();
  body.spec.audiences = []; // empty: the apiserver's own audience, the one it accepts for API calls
  body.spec.expirationSeconds = ttlSeconds;
  let response: InstanceType<typeof k8s.AuthenticationV1TokenRequest>;
  try {
    response = await kc
      .makeApiClient(k8s.CoreV1Api)
      .createNamespacedServiceAccountToken({ name, namespace, body });
  } catch (err) {
    // client-node words a 404 as "Unknown API Status Code!"; name the usual cause instead.
    const hint = (err as { code?: number }).code === 404 ? ' (does the ServiceAccount exist?)' : '';
    throw new Error(`TokenRequest for ${namespace}/${name} failed${hint}: ${String(err)}`, { cause: err });
  }
  const token = response.status?.token;
  if (!token) throw new Error(`TokenRequest for ${namespace}/${name} returned no token`);
  return token;
}

function parseAuditLog(text: string): AuditEvent[] {
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as AuditEvent);
}

// ---------------------------------------------------------------------------------------------------------
// Processes: each in its own process group, logs in the run's folder, nothing left behind

interface Proc {
  readonly name: string;
  readonly pid: number;
  readonly logPath: string;
  /** Settles (never rejects) once the process has exited. */
  readonly exited: Promise<void>;
  /** Set on exit, e.g. `code 1` or `signal SIGKILL`. */
  exitStatus: string | undefined;
}

/** Process groups and folders of every live control plane, for the synchronous last-resort cleanup. */
const liveGroups = new Set<number>();
const liveDirs = new Set<string>();
let exitHandlersInstalled = false;

class ProcessGroup {
  readonly #dir: string;
  readonly #procs: Proc[] = [];
  readonly #watchdog: ChildProcess;
  #stopping: Promise<void> | undefined;

  list(): { name: string; pid: number }[] {
    return this.#procs.map((p) => ({ name: p.name, pid: p.pid }));
  }

  constructor(dir: string) {
    this.#dir = dir;
    installExitHandlers();
    liveDirs.add(dir);
    this.#watchdog = startWatchdog(dir);
    if (this.#watchdog.pid !== undefined) liveGroups.add(this.#watchdog.pid);
  }

  async start(name: string, bin: string, args: string[]): Promise<Proc> {
    if (this.#stopping) throw new Error(`cannot start ${name}: control plane is stopping`);
    const logPath = join(this.#dir, `${name}.log`);
    const fd = openSync(logPath, 'a');
    let child: ChildProcess;
    try {
      // detached: own process group, so one signal reaches anything it forks and Ctrl-C does not.
      child = spawn(bin, args, { detached: true, stdio: ['ignore', fd, fd] });
    } finally {
      closeSync(fd);
    }
    const proc = trackExit(name, child, logPath);
    await once(child, 'spawn');
    this.#procs.push(proc);
    liveGroups.add(proc.pid);
    appendFileSync(join(this.#dir, 'pgids'), `${proc.pid}\n`);
    void proc.exited.then(() => liveGroups.delete(proc.pid));
    return proc;
  }

  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    // Controller manager and apiserver first: they would only log errors about a vanished etcd.
    const etcd = this.#procs.filter((p) => p.name === 'etcd');
    await terminate(this.#procs.filter((p) => p.name !== 'etcd'));
    await terminate(etcd);
    if (this.#watchdog.pid !== undefined) {
      signalGroup(this.#watchdog.pid, 'SIGKILL');
      liveGroups.delete(this.#watchdog.pid);
    }
    await rm(this.#dir, { recursive: true, force: true });
    liveDirs.delete(this.#dir);
  }
}

function trackExit(name: string, child: ChildProcess, logPath: string): Proc {
  const proc: Proc = {
    name,
    pid: child.pid ?? -1,
    logPath,
    exitStatus: undefined,
    exited: new Promise<void>((resolveExit) => {
      child.once('exit', (code, signal) => {
        proc.exitStatus = signal ? `signal ${signal}` : `code ${code ?? '?'}`;
        resolveExit();
      });
      // A failed spawn emits 'error' without 'exit'; start() reports it through once(child, 'spawn').
      child.once('error', () => {
        proc.exitStatus ??= 'spawn error';
        resolveExit();
      });
    }),
  };
  // The children must not keep the test process alive; stop() and the exit handlers end them.
  child.unref();
  return proc;
}

async function terminate(procs: Proc[]): Promise<void> {
  if (procs.length === 0) return;
  for (const p of procs) signalGroup(p.pid, 'SIGTERM');
  const allExited = Promise.all(procs.map((p) => p.exited));
  const timer = new AbortController();
  await Promise.race([allExited, sleep(STOP_GRACE_MS, undefined, { signal: timer.signal }).catch(() => {})]);
  timer.abort();
  // Also reaps anything left in the group after its leader exited.
  for (const p of procs) signalGroup(p.pid, 'SIGKILL');
  await allExited;
}

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  if (pgid <= 0) return;
  try {
    process.kill(-pgid, signal);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

function killEverythingSync(): void {
  for (const pgid of liveGroups) signalGroup(pgid, 'SIGKILL');
  liveGroups.clear();
  for (const dir of liveDirs) rmSync(dir, { recursive: true, force: true });
  liveDirs.clear();
}

/** A test run that ends by process.exit(), a crash or Ctrl-C still takes its control planes down. */
function installExitHandlers(): void {
  if (exitHandlersInstalled) return;
  exitHandlersInstalled = true;
  process.on('exit', killEverythingSync);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    const handler = (): void => {
      killEverythingSync();
      process.removeListener(signal, handler);
      // Re-raise so the default action (exit with 128+n) happens unless someone else handles it.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    };
    process.on(signal, handler);
  }
}

/**
 * A SIGKILLed test process runs no handlers. This shell outlives it, notices, and kills the groups
 * listed in `pgids` and removes the folder.
 */
function startWatchdog(dir: string): ChildProcess {
  const script = [
    `while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done`,
    // No `--` before the negative pid: dash's kill (Debian's sh) rejects it.
    `for g in $(cat '${dir}/pgids' 2>/dev/null); do kill -KILL "-$g" 2>/dev/null; done`,
    `rm -rf '${dir}'`,
  ].join('\n');
  const child = spawn('sh', ['-c', script], { detached: true, stdio: 'ignore' });
  child.unref();
  return child;
}

async function waitFor(what: string, proc: Proc, timeoutMs: number, probe: () => Promise<boolean>) {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (proc.exitStatus !== undefined) {
      throw new Error(`${proc.name} exited (${proc.exitStatus}) before ${what} was ready:\n${logTail(proc)}`);
    }
    if (await probe()) return;
    if (performance.now() > deadline) {
      throw new Error(`${what} not ready after ${timeoutMs / 1000} s:\n${logTail(proc)}`);
    }
    await sleep(POLL_MS);
  }
}

function logTail(proc: Proc, lines = 40): string {
  let text: string;
  try {
    text = readFileSync(proc.logPath, 'utf8');
  } catch {
    return `(no log at ${proc.logPath})`;
  }
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

// ---------------------------------------------------------------------------------------------------------
// HTTP probes

interface HttpResult {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function httpGet(url: string, options: https.RequestOptions = {}): Promise<HttpResult> {
  const get = url.startsWith('https:') ? https.get : http.get;
  return new Promise((resolveGet, reject) => {
    const req = get(url, { ...options, timeout: 5000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        resolveGet({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks).toString(),
        });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
  });
}

/** True on 200, false while the server is not up yet (connection refused, 5xx, ...). */
async function probeOk(url: string, options?: https.RequestOptions): Promise<boolean> {
  try {
    return (await httpGet(url, options)).status === 200;
  } catch {
    return false;
  }
}

function etcdHealthy(port: number): Promise<boolean> {
  return probeOk(`http://127.0.0.1:${port}/health`);
}

function kcmHealthy(port: number): Promise<boolean> {
  // The controller manager serves a self-signed certificate of its own.
  return probeOk(`https://127.0.0.1:${port}/healthz`, { rejectUnauthorized: false });
}

/** Talks to the apiserver as admin, without the client library, for readiness and the audit barrier. */
class AdminClient {
  readonly servingCa: string;
  readonly #server: string;
  readonly #tls: https.RequestOptions;

  constructor(server: string, certs: Certificates) {
    this.#server = server;
    this.servingCa = certs.servingCa;
    this.#tls = { ca: certs.servingCa, cert: certs.admin.cert, key: certs.admin.key };
  }

  get(path: string): Promise<HttpResult> {
    return httpGet(`${this.#server}${path}`, this.#tls);
  }

  /** /readyz, plus the `default` namespace that the apiserver creates shortly after. */
  async ready(): Promise<boolean> {
    return (
      (await probeOk(`${this.#server}/readyz`, this.#tls)) &&
      (await probeOk(`${this.#server}/api/v1/namespaces/default`, this.#tls))
    );
  }
}

// ---------------------------------------------------------------------------------------------------------
// Certificates and kubeconfigs (openssl: Node's crypto cannot issue certificates)

interface KeyPair {
  certPath: string;
  keyPath: string;
  cert: string;
  key: string;
}

interface Certificates {
  /** PEM of the CA that signed the apiserver's serving certificate. */
  servingCa: string;
  serving: KeyPair;
  clientCaPath: string;
  admin: KeyPair;
  controllerManager: KeyPair;
  serviceAccountPrivateKeyPath: string;
  serviceAccountPublicKeyPath: string;
}

// Long enough for any test run, short enough that a leaked key is worthless soon.
const VALIDITY = ['-days', '7'];

async function makeCertificates(dir: string): Promise<Certificates> {
  const pki = join(dir, 'pki');
  await mkdir(pki);
  const [servingCa, clientCa] = await Promise.all([makeCa(pki, 'serving-ca'), makeCa(pki, 'client-ca')]);
  const [serving, admin, controllerManager] = await Promise.all([
    issue(pki, servingCa, 'apiserver', '/CN=kube-apiserver', [
      'subjectAltName=DNS:localhost,IP:127.0.0.1',
      'extendedKeyUsage=serverAuth',
    ]),
    issue(pki, clientCa, 'admin', '/O=system:masters/CN=admin', ['extendedKeyUsage=clientAuth']),
    // Its own user name keeps the controllers' writes apart from the tests' admin writes in the audit log.
    issue(pki, clientCa, 'controller-manager', '/O=system:masters/CN=system:kube-controller-manager', [
      'extendedKeyUsage=clientAuth',
    ]),
  ]);
  const saKey = join(pki, 'sa.key');
  const saPub = join(pki, 'sa.pub');
  await openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', saKey]);
  await openssl(['pkey', '-in', saKey, '-pubout', '-out', saPub]);
  return {
    servingCa: servingCa.cert,
    serving,
    clientCaPath: clientCa.certPath,
    admin,
    controllerManager,
    serviceAccountPrivateKeyPath: saKey,
    serviceAccountPublicKeyPath: saPub,
  };
}

async function makeCa(pki: string, name: string): Promise<KeyPair> {
  const keyPath = await newKey(pki, name);
  const certPath = join(pki, `${name}.crt`);
  const selfSigned = ['-x509', '-new', '-key', keyPath, '-subj', `/CN=${name}`];
  await openssl(['req', ...selfSigned, ...VALIDITY, '-out', certPath]);
  return readPair(certPath, keyPath);
}

async function issue(pki: string, ca: KeyPair, name: string, subject: string, exts: string[]) {
  const keyPath = await newKey(pki, name);
  const csrPath = join(pki, `${name}.csr`);
  const extPath = join(pki, `${name}.ext`);
  const certPath = join(pki, `${name}.crt`);
  await openssl(['req', '-new', '-key', keyPath, '-subj', subject, '-out', csrPath]);
  const allExts = ['basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature', ...exts];
  await writeFile(extPath, allExts.join('\n') + '\n');
  const serial = `0x${randomBytes(8).toString('hex')}`;
  const signing = ['-CA', ca.certPath, '-CAkey', ca.keyPath, '-set_serial', serial, '-extfile', extPath];
  await openssl(['x509', '-req', '-in', csrPath, ...signing, ...VALIDITY, '-out', certPath]);
  return readPair(certPath, keyPath);
}

async function newKey(pki: string, name: string): Promise<string> {
  const keyPath = join(pki, `${name}.key`);
  await openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', keyPath]);
  return keyPath;
}

async function readPair(certPath: string, keyPath: string): Promise<KeyPair> {
  const [cert, key] = await Promise.all([readFile(certPath, 'utf8'), readFile(keyPath, 'utf8')]);
  return { certPath, keyPath, cert, key };
}

async function openssl(args: string[]): Promise<void> {
  try {
    await execFileAsync('openssl', args);
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr ?? '';
    throw new Error(`openssl ${args.join(' ')} failed: ${String(err)}\n${stderr}`, { cause: err });
  }
}

type KubeconfigUser = { token: string } | { 'client-certificate-data': string; 'client-key-data': string };

function clientCertUser(pair: KeyPair): KubeconfigUser {
  return { 'client-certificate-data': base64(pair.cert), 'client-key-data': base64(pair.key) };
}

/** Written as JSON, which every kubeconfig reader accepts since YAML is a superset of it. */
async function writeKubeconfig(
  path: string,
  server: string,
  caPem: string,
  user: KubeconfigUser,
): Promise<void> {
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'envtest', cluster: { server, 'certificate-authority-data': base64(caPem) } }],
    users: [{ name: 'envtest', user }],
    contexts: [{ name: 'envtest', context: { cluster: 'envtest', user: 'envtest' } }],
    'current-context': 'envtest',
  };
  await writeFile(path, JSON.stringify(config, null, 2) + '\n', { mode: 0o600 });
}

function base64(text: string): string {
  return Buffer.from(text).toString('base64');
}

// ---------------------------------------------------------------------------------------------------------
// Small helpers

/** Runs test/tools/build.sh, streaming its progress; a warm cache answers at once. */
async function buildTools(log: (line: string) => void): Promise<string> {
  const child = spawn('bash', [join(repoRoot, 'test', 'tools', 'build.sh')], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  createInterface({ input: child.stderr }).on('line', log);
  const [code] = (await once(child, 'close')) as [number | null];
  const binDir = stdout.trim().split('\n').at(-1) ?? '';
  if (code !== 0 || binDir === '') throw new Error(`test/tools/build.sh failed (exit ${code ?? 'signal'})`);
  return binDir;
}

/** Ports the OS considers free right now; all are held open together so that they are distinct. */
async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: count }, async () => {
      const server = createServer();
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      return server;
    }),
  );
  const ports = servers.map((s) => (s.address() as AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((done) => s.close(done))));
  return ports;
}

function elapsedSeconds(since: number): string {
  return ((performance.now() - since) / 1000).toFixed(1);
}

function defaultLog(line: string): void {
  process.stderr.write(`[controlplane] ${line}\n`);
}
