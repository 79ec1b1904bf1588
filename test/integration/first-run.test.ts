// The first run, as a new user makes it: `node scripts/start.ts` (what `npm start` runs) on a machine
// with no cluster configured (an empty HOME, no KUBECONFIG) brings up the playground and prints the
// `kubectl stacked predict` calls. Pasted into a shell as printed, one call per backend answers; then
// Ctrl-C (SIGINT) stops every process the run started, and its folders are gone.
//
// The control-plane binaries are the ones already built: build.sh finds its cache through
// STACKED_TOOLS_CACHE, pointed at the real home's cache, since HOME is a fresh folder here.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const repoRoot = resolve(import.meta.dirname, '..', '..');
const READY_TIMEOUT_MS = 600_000;
const STOP_TIMEOUT_MS = 60_000;

/** A process as /proc shows it: its parent, and its start time (so a reused pid is not mistaken for it). */
interface ProcInfo {
  pid: number;
  ppid: number;
  state: string;
  start: string;
  cmd: string;
}

function procInfo(pid: number): ProcInfo | undefined {
  try {
    const stat = readFileSync(`/proc/${String(pid)}/stat`, 'utf8');
    // The command name is in parentheses and may hold spaces: the fields start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const cmd = readFileSync(`/proc/${String(pid)}/cmdline`, 'utf8')
      .replaceAll('\0', ' ')
      .trim();
    return { pid, state: fields[0] ?? '', ppid: Number(fields[1]), start: fields[19] ?? '', cmd };
  } catch {
    return undefined;
  }
}

/** Every descendant of `root` alive now (children of children too, whatever their process group). */
function descendants(root: number): ProcInfo[] {
  const all = readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .map((d) => procInfo(Number(d)))
    .filter((p): p is ProcInfo => p !== undefined);
  const found: ProcInfo[] = [];
  const parents = new Set([root]);
  for (let grew = true; grew;) {
    grew = false;
    for (const p of all) {
      if (parents.has(p.ppid) && !parents.has(p.pid)) {
        parents.add(p.pid);
        found.push(p);
        grew = true;
      }
    }
  }
  return found;
}

/** Still running: the same process (same start time) and not a zombie waiting for a reaper. */
function alive(p: ProcInfo): boolean {
  const now = procInfo(p.pid);
  return now !== undefined && now.start === p.start && now.state !== 'Z';
}

async function sh(script: string, env: NodeJS.ProcessEnv) {
  const child = spawn('sh', ['-c', script], { env, stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const [code] = (await once(child, 'close')) as [number | null];
  return { code: code ?? -1, stdout, stderr };
}

describe('the first run: npm start with no cluster configured', function () {
  this.timeout(120_000);
  let home: string;
  let env: NodeJS.ProcessEnv;
  let run: ChildProcess;
  let stdout = '';
  let stderr = '';
  let exited: Promise<[number | null, NodeJS.Signals | null]>;
  let started: ProcInfo[] = [];

  const lines = () => stdout.split('\n').map((l) => l.trim());
  const setup = () => {
    const line = lines().find((l) => l.startsWith('export KUBECONFIG='));
    assert.ok(line !== undefined, `no export line in:\n${stdout}`);
    return line;
  };
  const command = (deployment: string) => {
    const line = lines().find((l) => l.startsWith(`kubectl stacked predict ${deployment} `));
    assert.ok(line !== undefined, `no predict call for ${deployment} in:\n${stdout}`);
    return line;
  };

  before(async function () {
    // A machine without the binaries builds them first (about ten minutes).
    this.timeout(3_600_000);
    home = mkdtempSync(join(tmpdir(), 'first-run-home-'));
    const cache =
      process.env.STACKED_TOOLS_CACHE ??
      join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'stacked-operator', 'tools');
    env = { ...process.env, HOME: home, STACKED_TOOLS_CACHE: cache };
    for (const k of ['KUBECONFIG', 'KUBERNETES_SERVICE_HOST', 'KUBERNETES_SERVICE_PORT', 'XDG_CACHE_HOME']) {
      // eslint-disable-next-line @typescript-eslint/no-dynamic-delete -- an environment without them
      delete env[k];
    }
    run = spawn(process.execPath, [join(repoRoot, 'scripts', 'start.ts')], {
      cwd: repoRoot,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    exited = once(run, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    run.stdout?.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    run.stderr?.setEncoding('utf8').on('data', (c: string) => {
      stderr += c;
      if (process.env.PLAYGROUND_LOGS) process.stderr.write(c);
    });
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (!stdout.includes('Ctrl-C stops everything')) {
      assert.equal(run.exitCode, null, `npm start exited ${String(run.exitCode)}:\n${stderr}`);
      assert.ok(Date.now() < deadline, `no predict calls printed in time:\n${stderr}`);
      await sleep(250);
    }
    started = descendants(run.pid ?? -1);
  });

  after(async () => {
    if (run.exitCode === null && run.signalCode === null) {
      run.kill('SIGKILL');
      await exited;
    }
    rmSync(home, { recursive: true, force: true });
  });

  it('says it takes the no-cluster path and shows the control plane coming up', () => {
    assert.match(stderr, /No cluster configured/);
    assert.match(stderr, /control plane ready at https:\/\/127\.0\.0\.1:\d+/);
    assert.match(stderr, /sql-prod: Ready=True/);
    assert.match(stderr, /sql-oci: Ready=True/);
  });

  it('prints the predict calls for both backends: by inference key, by model id, through the experiment', () => {
    for (const d of ['sql-prod', 'sql-oci']) {
      const calls = lines().filter((l) => l.startsWith(`kubectl stacked predict ${d} `));
      assert.deepEqual(
        calls.map((c) => /--model (\S+)/.exec(c)?.[1]),
        ['sql-lora-1', 'ocid1.datasciencemodel.oc1.iad.aaaaaaaalora1', 'sql-ab'],
        d,
      );
    }
    assert.match(setup(), /PATH=\S+\/bin:\S+:\$PATH$/);
  });

  it('the vllm call, pasted as printed, is answered by the simulator serving the adapter', async () => {
    const r = await sh(`${setup()}\n${command('sql-prod')}`, env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /sql-lora-1/);
  });

  it('the oci call, pasted as printed, is answered by the OCI emulator through the router', async () => {
    const r = await sh(`${setup()}\n${command('sql-oci')}`, env);
    assert.equal(r.code, 0, r.stderr);
    // The emulator's completions start with the inference key OCI served.
    assert.match(r.stdout, /^\[sql-lora-1\]/);
  });

  it('Ctrl-C stops every process it started and removes its folders', async () => {
    const names = started.map((p) => p.cmd);
    for (const want of [
      'etcd',
      'kube-apiserver',
      'kube-controller-manager',
      'dist/operator.mjs',
      'dist/router.mjs',
    ]) {
      assert.ok(
        names.some((n) => n.includes(want)),
        `${want} among the processes it started:\n${names.join('\n')}`,
      );
    }
    const folders = [/Logs: (\S+)\/logs /.exec(stdout)?.[1], /dir (\/\S+)\)/.exec(stderr)?.[1]];
    run.kill('SIGINT');
    const [code] = await Promise.race([
      exited,
      sleep(STOP_TIMEOUT_MS).then(() =>
        assert.fail(`still running ${String(STOP_TIMEOUT_MS)} ms after SIGINT`),
      ),
    ]);
    assert.equal(code, 0, stderr);
    // Children reparented at exit may take a moment to die.
    const deadline = Date.now() + 10_000;
    while (started.some(alive) && Date.now() < deadline) await sleep(200);
    assert.deepEqual(
      started.filter(alive).map((p) => `${String(p.pid)} ${p.cmd}`),
      [],
      'processes left behind',
    );
    for (const f of folders) {
      assert.ok(f !== undefined, `folder printed (stdout:\n${stdout})`);
      assert.ok(!existsSync(f), `${f} removed`);
      assert.ok(existsSync(dirname(f)));
    }
  });
});
