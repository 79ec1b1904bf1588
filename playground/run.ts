/**
 * The playground: what `npm start` brings up when no cluster is configured, so that a first run ends
 * with predict calls answered on both backends. In order:
 *  1. the control-plane binaries (test/tools/build.sh; the first build takes about ten minutes and
 *     is shown as it goes), then the local control plane (etcd, kube-apiserver,
 *     kube-controller-manager), the CRDs and the operator's namespace and RBAC;
 *  2. two nodes with one simulated GPU each: the test kubelet binds pods to them, runs each vLLM
 *     container as the vLLM simulator and each router container as a real process; the sample's
 *     Hugging Face adapters are written to the folder the simulator reads them from;
 *  3. the OCI emulator on loopback with OCI's delays (scaled down), an API key pair it trusts, and
 *     the api-key Secret the oci sample names;
 *  4. the operator as its own process, with the ServiceAccount identity of deploy/rbac.yaml;
 *  5. the samples of deploy/samples in namespace `ml`, adapted in memory only (the checked-in files
 *     stay what a user applies to a real cluster): the oci sample points at the emulator, turns its
 *     router on and gets the vllm sample's experiment;
 *  6. once both StackedDeployments are Ready, it runs the `kubectl stacked predict` calls it prints
 *     (by inference key, by model id, through the experiment, on each backend), so a first run that
 *     cannot answer fails loudly instead of printing commands that do not work.
 * Ctrl-C (SIGINT) or SIGTERM stops everything it started, newest first.
 *
 * The pieces (the control plane harness, the test kubelet, the vLLM simulator, the OCI emulator,
 * the image runner) live beside this file; the integration tests and benchmarks use them from here.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { load, loadAll } from 'js-yaml';
import { writeAdapter } from './adapters.ts';
import { startControlPlane, type ControlPlane } from './controlplane.ts';
import { startKubelet } from './kubelet.ts';
import { kubectl } from './kubectl.ts';
import { REALISTIC, startOciEmulator } from './oci-emulator.ts';
import { apiKeySecret, makeApiKey } from './oci-keys.ts';
import { operatorCommand } from './image-runner.ts';
import { installApi, OPERATOR_NAMESPACE, OPERATOR_SA } from './operator.ts';
import { routerRunner } from './router-container.ts';
import { condition, getObject, type Obj } from './wait.ts';

const repoRoot = resolve(import.meta.dirname, '..');
const samplesDir = join(repoRoot, 'deploy', 'samples');
/** The namespace of the README's examples (`kubectl apply -n ml ...`). */
export const NAMESPACE = 'ml';
/**
 * The tokens of the operator and the routers: the tests' one hour would cut a playground left
 * running over lunch off the API server. The local API server sets no maximum.
 */
const TOKEN_TTL_S = 7 * 24 * 3600;
const READY_TIMEOUT_MS = 300_000;
/** How long one printed call may keep failing after Ready (a router learns its deployment by watch). */
const VERIFY_TIMEOUT_MS = 60_000;
const BUILD_TICK_MS = 15_000;
const OPERATOR_STOP_GRACE_MS = 10_000;
/** A signal this soon after the first is the same Ctrl-C (see onSignal), not a second one. */
const SECOND_SIGNAL_MS = 2000;

interface Sample {
  apiVersion: string;
  kind: string;
  metadata: { name: string };
  spec: Record<string, unknown>;
}
interface Member {
  inferenceKey: string;
  modelId?: string;
  rank?: number;
  source?: { huggingface?: string; pvc?: { claimName: string; path?: string } };
}
interface GroupSpec {
  baseModel: Member;
  members?: Member[];
}
interface Experiment {
  name: string;
  variants: { inferenceKey: string; weight: number }[];
}

/** A printed predict call, and what it showed when the playground ran it. */
export interface PredictCall {
  deployment: string;
  backend: string;
  /** by inference key, by model id, or through the experiment */
  what: string;
  command: string;
}

export interface PlaygroundOptions {
  /** Extra operator flags (`npm start -- --log-level=debug`). */
  operatorArgs: string[];
  /** The commands and answers: what a user copies. */
  out: (line: string) => void;
  /** Progress. */
  progress: (line: string) => void;
}

// ---------------------------------------------------------------------------------------------------------
// Stopping what was started

/** What was started, newest last; stop() undoes it newest first, once. */
export class Started {
  readonly #items: { name: string; stop: () => Promise<void> }[] = [];
  #stopping: Promise<void> | undefined;
  readonly #progress: (line: string) => void;
  readonly #asked = Promise.withResolvers<undefined>();

  constructor(progress: (line: string) => void) {
    this.#progress = progress;
  }

  /** Settles when stop() is first called (a signal, or the operator's exit). */
  get asked(): Promise<undefined> {
    return this.#asked.promise;
  }

  get stopping(): boolean {
    return this.#stopping !== undefined;
  }

  /** Registers a stop; something that finished starting after stop() began is stopped at once. */
  async add(name: string, stop: () => Promise<void>): Promise<void> {
    if (this.#stopping !== undefined) {
      await stop();
      throw new Interrupted();
    }
    this.#items.push({ name, stop });
  }

  /** Forgets a stop that is no longer needed (a build that finished). */
  forget(name: string): void {
    const i = this.#items.findIndex((item) => item.name === name);
    if (i >= 0) this.#items.splice(i, 1);
  }

  stop(): Promise<void> {
    this.#asked.resolve(undefined);
    this.#stopping ??= (async () => {
      for (const item of this.#items.reverse()) {
        try {
          await item.stop();
          this.#progress(`stopped ${item.name}`);
        } catch (err) {
          this.#progress(`stopping ${item.name} failed: ${errorText(err)}`);
        }
      }
    })();
    return this.#stopping;
  }
}

/** Start-up was cut short by a signal: not an error to report. */
class Interrupted extends Error {
  constructor() {
    super('interrupted');
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function elapsed(since: number): string {
  const s = Math.round((performance.now() - since) / 1000);
  return s < 60 ? `${String(s)} s` : `${String(Math.floor(s / 60))} min ${String(s % 60).padStart(2, '0')} s`;
}

/** SIGTERM to a process group (a build forks go, which forks compilers), SIGKILL after a grace. */
async function stopGroup(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const pid = child.pid;
  const exited = once(child, 'exit');
  const signal = (s: NodeJS.Signals) => {
    try {
      process.kill(-pid, s);
    } catch {
      // already gone
    }
  };
  signal('SIGTERM');
  const timer = setTimeout(() => {
    signal('SIGKILL');
  }, graceMs);
  await exited;
  clearTimeout(timer);
  // Whatever the leader left behind in its group.
  signal('SIGKILL');
}

// ---------------------------------------------------------------------------------------------------------
// 1. The control-plane binaries, with progress

/**
 * Runs test/tools/build.sh here rather than inside startControlPlane, so that the user sees a build
 * (which is silent for minutes while go compiles kube-apiserver) is under way and for how long, and
 * so that Ctrl-C stops it. startControlPlane's own call then answers from the cache at once.
 */
/** Exported for a check of the progress with a stand-in script. */
export async function buildTools(
  started: Started,
  progress: (line: string) => void,
  script = join(repoRoot, 'test', 'tools', 'build.sh'),
  tickMs = BUILD_TICK_MS,
): Promise<void> {
  const since = performance.now();
  // Its own process group: a signal reaches go and its compilers, not only bash.
  const child = spawn('bash', [script], {
    cwd: repoRoot,
    detached: true,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  await started.add('the control-plane build', () => stopGroup(child, 2000));
  // An object, not two lets: the handlers below change it, which narrowing cannot see.
  const build = { step: 'waiting for test/tools/build.sh', announced: false };
  const announce = () => {
    if (build.announced) return;
    build.announced = true;
    progress(
      'Building the control plane (etcd, kube-apiserver, kube-controller-manager, kubectl, helm) from ' +
        'source through the Go module proxy: only the first run does this, about 10 minutes on 2 cores.',
    );
  };
  createInterface({ input: child.stderr }).on('line', (line) => {
    announce();
    build.step = line.replace(/^\[build-tools\] /, '');
    progress(`  [${elapsed(since)}] ${build.step}`);
  });
  // go prints nothing for minutes while it compiles: a heartbeat says the build is alive and how
  // long it has run. A warm cache answers long before the first beat, and nothing is shown.
  const ticker = setInterval(() => {
    announce();
    progress(`  [${elapsed(since)}] still ${build.step}...`);
  }, tickMs);
  try {
    // 'close', not 'exit': the last lines of stderr are printed before the verdict.
    const [code] = (await once(child, 'close')) as [number | null];
    if (started.stopping) throw new Interrupted();
    if (code !== 0) {
      throw new Error(
        `test/tools/build.sh failed (exit ${String(code)}); it needs Go >= 1.26 and the Go module proxy`,
      );
    }
  } finally {
    clearInterval(ticker);
  }
  started.forget('the control-plane build');
  if (build.announced) progress(`Control plane built in ${elapsed(since)}.`);
}

// ---------------------------------------------------------------------------------------------------------
// 5. The samples, adapted in memory

interface Samples {
  group: Sample;
  vllm: Sample;
  oci: Sample;
  all: Sample[];
}

function readSamples(): Samples {
  const kustomization = load(readFileSync(join(samplesDir, 'kustomization.yaml'), 'utf8')) as {
    resources: string[];
  };
  const all = kustomization.resources.flatMap(
    (f) => loadAll(readFileSync(join(samplesDir, f), 'utf8')) as Sample[],
  );
  const find = (pred: (s: Sample) => boolean, what: string): Sample => {
    const s = all.find(pred);
    if (s === undefined) throw new Error(`deploy/samples has no ${what}`);
    return s;
  };
  return {
    all,
    group: find((s) => s.kind === 'StackedModelGroup', 'StackedModelGroup'),
    vllm: find((s) => s.kind === 'StackedDeployment' && s.spec.backend === 'vllm', 'vllm StackedDeployment'),
    oci: find((s) => s.kind === 'StackedDeployment' && s.spec.backend === 'oci', 'oci StackedDeployment'),
  };
}

function groupSpec(s: Samples): GroupSpec {
  return s.group.spec as unknown as GroupSpec;
}

/** The experiments both deployments run: the vllm sample's, else an even split of the first two members. */
function experiments(s: Samples): Experiment[] {
  const own = s.vllm.spec.experiments as Experiment[] | undefined;
  if (own !== undefined && own.length > 0) return own;
  const [a, b] = groupSpec(s).members ?? [];
  if (a === undefined || b === undefined) return [];
  return [
    {
      name: 'ab',
      variants: [
        { inferenceKey: a.inferenceKey, weight: 50 },
        { inferenceKey: b.inferenceKey, weight: 50 },
      ],
    },
  ];
}

/**
 * The oci sample as the playground applies it: at the emulator, with its router on (clients call the
 * router, which signs for them) and the vllm sample's experiment.
 */
function adaptOci(sample: Sample, endpoint: string, secretName: string, exps: Experiment[]): Sample {
  const oci = structuredClone(sample);
  const spec = oci.spec.oci as Record<string, unknown>;
  spec.endpoint = endpoint;
  spec.auth = { type: 'apiKey', secretRef: { name: secretName } };
  spec.router = { ...(spec.router as object | undefined), enabled: true };
  if (oci.spec.experiments === undefined && exps.length > 0) oci.spec.experiments = exps;
  return oci;
}

/** The Secret name the oci sample names, or ours if it authenticates another way. */
function secretNameOf(sample: Sample): string {
  const auth = (sample.spec.oci as { auth?: { secretRef?: { name?: string } } } | undefined)?.auth;
  return auth?.secretRef?.name ?? 'oci-api-key';
}

/** Adapter folders the simulator reads: Hugging Face ids under hfRoot, PVC paths under pvcRoot. */
function writeSampleAdapters(spec: GroupSpec, hfRoot: string, pvcRoot: string): string[] {
  const pvcs = new Set<string>();
  const base = spec.baseModel.source?.huggingface ?? 'org/base';
  for (const m of spec.members ?? []) {
    const rank = m.rank ?? 16;
    if (m.source?.huggingface !== undefined) writeAdapter(join(hfRoot, m.source.huggingface), rank, base);
    const pvc = m.source?.pvc;
    if (pvc !== undefined) {
      writeAdapter(join(pvcRoot, NAMESPACE, pvc.claimName, pvc.path ?? ''), rank, base);
      pvcs.add(pvc.claimName);
    }
  }
  return [...pvcs];
}

// ---------------------------------------------------------------------------------------------------------
// 4. The operator

async function startOperatorProcess(
  cp: ControlPlane,
  logPath: string,
  args: string[],
): Promise<ChildProcess> {
  const kubeconfig = await cp.mintServiceAccountKubeconfig(OPERATOR_NAMESPACE, OPERATOR_SA, TOKEN_TTL_S);
  // As the image runs it: its bundle (built from this checkout) and its Node flags.
  const image = await operatorCommand();
  const fd = openSync(logPath, 'a');
  try {
    const proc = spawn(
      process.execPath,
      [
        ...image.nodeFlags,
        image.script,
        `--kubeconfig=${kubeconfig}`,
        '--identity=playground',
        // Port 0: a second playground, or anything on 8081, must not keep this one from starting.
        '--health-host=127.0.0.1',
        '--health-port=0',
        // The emulator's deployments take seconds, not OCI's minutes: poll them at its pace.
        '--oci-progress-interval-ms=500',
        ...args,
      ],
      { cwd: repoRoot, stdio: ['ignore', fd, fd], env: { ...process.env, KUBECONFIG: '' } },
    );
    await once(proc, 'spawn');
    return proc;
  } finally {
    closeSync(fd);
  }
}

async function stopChild(proc: ChildProcess, graceMs: number): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = once(proc, 'exit');
  proc.kill('SIGTERM');
  const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** A log file written line by line; lines that come after close() (during shutdown) are dropped. */
class LogFile {
  #fd: number | undefined;

  constructor(path: string) {
    this.#fd = openSync(path, 'a');
  }

  line(text: string): void {
    if (this.#fd !== undefined) writeSync(this.#fd, `${text}\n`);
  }

  close(): Promise<void> {
    if (this.#fd !== undefined) closeSync(this.#fd);
    this.#fd = undefined;
    return Promise.resolve();
  }
}

function tail(path: string, lines: number): string {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

// ---------------------------------------------------------------------------------------------------------
// 6. Ready, then the predict calls

function readyLine(o: Obj | undefined): string {
  const c = condition(o, 'Ready');
  if (c === undefined) return 'no status yet';
  return `Ready=${c.status} ${c.reason}${c.message ? `: ${c.message}` : ''}`;
}

async function waitReady(
  cp: ControlPlane,
  names: string[],
  progress: (line: string) => void,
  started: Started,
): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  const last = new Map<string, string>();
  for (;;) {
    if (started.stopping) throw new Interrupted();
    let ready = 0;
    for (const name of names) {
      const o = await getObject(cp, NAMESPACE, 'sdep', name).catch(() => undefined);
      const fresh = o !== undefined && o.status?.observedGeneration === o.metadata.generation;
      const line = readyLine(o);
      if (last.get(name) !== line) {
        last.set(name, line);
        progress(`  ${name}: ${line}`);
      }
      if (fresh && condition(o, 'Ready')?.status === 'True' && typeof o.status?.endpoint === 'string')
        ready++;
    }
    if (ready === names.length) return;
    if (Date.now() > deadline) {
      throw new Error(
        `not Ready within ${String(READY_TIMEOUT_MS / 1000)} s: ${names.map((n) => `${n}: ${last.get(n) ?? '?'}`).join('; ')}`,
      );
    }
    await sleep(500);
  }
}

function predictCalls(s: Samples): PredictCall[] {
  const spec = groupSpec(s);
  const [member] = spec.members ?? [];
  const exps = experiments(s);
  const calls: PredictCall[] = [];
  const prompt = "'Write a SQL query listing the ten largest orders'";
  for (const d of [s.vllm, s.oci]) {
    const name = d.metadata.name;
    const backend = String(d.spec.backend);
    const call = (what: string, model: string) =>
      calls.push({
        deployment: name,
        backend,
        what,
        command: `kubectl stacked predict ${name} -n ${NAMESPACE} --model ${model} --prompt ${prompt} --max-tokens 8`,
      });
    if (member !== undefined) {
      call('by inference key', member.inferenceKey);
      if (member.modelId !== undefined) call('by model id', member.modelId);
    }
    const [exp] = exps;
    if (exp !== undefined) call(`through the experiment ${exp.name}`, exp.name);
  }
  return calls;
}

/** The shell lines a user pastes before the calls: the cluster, our plugin, the kubectl we built. */
export function shellSetup(cp: ControlPlane): string {
  return `export KUBECONFIG=${cp.kubeconfigPath} PATH=${join(repoRoot, 'bin')}:${cp.binDir}:$PATH`;
}

async function runShell(script: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = spawn('sh', ['-c', script], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const [code] = (await once(child, 'close')) as [number | null];
  return { code: code ?? -1, stdout, stderr };
}

/** Runs a printed call as the user would paste it, until it answers or VERIFY_TIMEOUT_MS pass. */
async function verify(setup: string, call: PredictCall, started: Started): Promise<string> {
  const deadline = Date.now() + VERIFY_TIMEOUT_MS;
  for (;;) {
    if (started.stopping) throw new Interrupted();
    const r = await runShell(`${setup}\n${call.command}`);
    if (r.code === 0 && r.stdout.trim() !== '') return r.stdout.trim();
    if (Date.now() > deadline) {
      throw new Error(`${call.command}\nfailed (exit ${String(r.code)}): ${r.stderr.trim() || r.stdout}`);
    }
    await sleep(1000);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Everything together

/** Brings the playground up, prints the calls, and runs until SIGINT or SIGTERM; the exit code. */
export async function runPlayground(opts: PlaygroundOptions): Promise<number> {
  const { progress, out } = opts;
  const since = performance.now();
  const started = new Started(progress);
  let signalledAt: number | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    if (signalledAt !== undefined) {
      // Under `npm start`, one Ctrl-C arrives twice: from the terminal and forwarded by npm.
      if (performance.now() - signalledAt < SECOND_SIGNAL_MS) return;
      // A second Ctrl-C while stopping: the user wants out now; the control plane's exit handler
      // still kills its processes.
      process.exit(130);
    }
    signalledAt = performance.now();
    progress(`\n${signal}: stopping everything the playground started...`);
    void started.stop();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const root = mkdtempSync(join(tmpdir(), 'stacked-playground-'));
  await started.add(`the playground folder ${root}`, () => {
    rmSync(root, { recursive: true, force: true });
    return Promise.resolve();
  });
  const logs = join(root, 'logs');
  mkdirSync(logs);
  const operatorLog = join(logs, 'operator.log');

  try {
    const samples = readSamples();
    await buildTools(started, progress);

    progress('Starting the local control plane...');
    const cp = await startControlPlane({
      log: (line) => {
        progress(`  ${line}`);
      },
    });
    await started.add('the control plane', () => cp.stop());
    await installApi(cp);
    await kubectl(cp, ['create', 'namespace', NAMESPACE]);

    // The routers' ServiceAccount tokens live as long as the operator's (TOKEN_TTL_S).
    const longLived: ControlPlane = {
      binDir: cp.binDir,
      dir: cp.dir,
      kubeconfigPath: cp.kubeconfigPath,
      server: cp.server,
      auditLogPath: cp.auditLogPath,
      mintServiceAccountKubeconfig: (ns, sa) => cp.mintServiceAccountKubeconfig(ns, sa, TOKEN_TTL_S),
      writesBy: (user, sinceMs) => cp.writesBy(user, sinceMs),
      writes: (sinceMs) => cp.writes(sinceMs),
      processes: () => cp.processes(),
      stop: () => cp.stop(),
    };
    const routerLog = new LogFile(join(logs, 'routers.log'));
    const runner = routerRunner(longLived, (line) => {
      routerLog.line(line);
    });
    const hfRoot = join(root, 'hf');
    const pvcRoot = join(root, 'pvc');
    const pvcs = writeSampleAdapters(groupSpec(samples), hfRoot, pvcRoot);
    const kubeletLog = new LogFile(join(logs, 'kubelet.log'));
    progress('Starting two nodes with one simulated GPU each (vLLM simulator, routers as processes)...');
    const kubelet = await startKubelet({
      kubeconfigPath: cp.kubeconfigPath,
      nodes: [
        { name: 'gpu-node-1', gpus: 1 },
        { name: 'gpu-node-2', gpus: 1 },
      ],
      hfRoot,
      pvcRoot,
      // Loads take a moment, as on a GPU, so that `kubectl stacked status` shows them happen.
      adapterLoadMs: 200,
      // Probes at a tenth of their period: pods turn Ready in seconds.
      probeTimeScale: 0.1,
      runContainer: runner.run,
      log: (line) => {
        kubeletLog.line(line);
      },
    });
    await started.add('the kubelet, its simulators and the routers', async () => {
      await kubelet.stop();
      await kubeletLog.close();
      await routerLog.close();
    });

    const spec = groupSpec(samples);
    const key = makeApiKey('playground');
    const modelIds = [spec.baseModel, ...(spec.members ?? [])].flatMap((m) =>
      m.modelId !== undefined ? [m.modelId] : [],
    );
    const emu = await startOciEmulator({
      keys: { [key.keyId]: key.publicKeyPem },
      models: modelIds,
      // OCI's habits, its minutes scaled to seconds: a deployment is Creating for about 2 s.
      ...REALISTIC,
    });
    await started.add(`the OCI emulator at ${emu.url}`, () => emu.close());
    progress(`OCI emulator at ${emu.url} (models: ${modelIds.join(', ')})`);
    const secretName = secretNameOf(samples.oci);
    const apply = (objs: object[]) =>
      kubectl(cp, ['apply', '-n', NAMESPACE, '-f', '-'], {
        input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objs }),
      });
    await apply([
      apiKeySecret(secretName, key),
      ...pvcs.map((name) => ({
        apiVersion: 'v1',
        kind: 'PersistentVolumeClaim',
        metadata: { name },
        spec: { accessModes: ['ReadOnlyMany'], resources: { requests: { storage: '1Gi' } } },
      })),
    ]);

    progress(`Starting the operator (log: ${operatorLog})...`);
    const operator = await startOperatorProcess(cp, operatorLog, opts.operatorArgs);
    await started.add('the operator', () => stopChild(operator, OPERATOR_STOP_GRACE_MS));
    operator.once('exit', (code, signal) => {
      if (started.stopping) return;
      progress(
        `The operator exited (${signal ?? `code ${String(code)}`}); its last lines:\n${tail(operatorLog, 20)}`,
      );
      process.exitCode = 1;
      void started.stop();
    });

    const oci = adaptOci(samples.oci, emu.url, secretName, experiments(samples));
    const applied = samples.all.map((s) => (s === samples.oci ? oci : s));
    progress(
      `Applying deploy/samples to namespace ${NAMESPACE} (the oci sample at the emulator, router on)...`,
    );
    await apply(applied);
    const deployments = [samples.vllm.metadata.name, oci.metadata.name];
    await waitReady(cp, deployments, progress, started);

    const setup = shellSetup(cp);
    const calls = predictCalls({ ...samples, oci });
    progress('Both deployments are Ready; running the predict calls...');
    const answers: string[] = [];
    for (const call of calls) answers.push(await verify(setup, call, started));

    out('');
    out(`The playground is up (${elapsed(since)}): a local control plane, two nodes with simulated GPUs,`);
    out(`the OCI emulator and the operator, with deploy/samples in namespace ${NAMESPACE}:`);
    for (const d of deployments) out(`  ${d}`);
    out('');
    out('In another shell (kubectl is the one built with the control plane; bin/ holds the plugin):');
    out('');
    out(`  ${setup}`);
    let current = '';
    calls.forEach((call, i) => {
      if (call.deployment !== current) {
        current = call.deployment;
        out('');
        out(`  # ${call.deployment} (${call.backend} backend)`);
      }
      out(`  # ${call.what}; it answered: ${answers[i] ?? ''}`);
      out(`  ${call.command}`);
    });
    out('');
    out(`  kubectl stacked status ${samples.vllm.metadata.name} -n ${NAMESPACE}`);
    out(`  kubectl stacked experiment ${samples.vllm.metadata.name} -n ${NAMESPACE}`);
    out('');
    out(`Logs: ${logs} (operator.log, kubelet.log, routers.log). Ctrl-C stops everything.`);

    await started.asked;
    await started.stop();
    return process.exitCode === undefined ? 0 : Number(process.exitCode);
  } catch (err) {
    if (err instanceof Interrupted || started.stopping) {
      await started.stop();
      return process.exitCode === undefined ? 0 : Number(process.exitCode);
    }
    progress(`\nThe playground failed: ${errorText(err)}`);
    progress(`Last lines of the operator's log:\n${tail(operatorLog, 20)}`);
    await started.stop();
    return 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
