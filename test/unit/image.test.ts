// The image, checked without a Docker engine (none runs here): the Dockerfile lints clean, every file it
// copies exists, its user is numeric and matches what deploy/ and the chart run as, its Node is the
// tests' Node, the production dependencies cover every import of src/, and each entry point starts
// from a tree holding only what the image holds: the bundles scripts/build.ts makes, no node_modules.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { validate } from 'dockerfile-utils';
import { load, loadAll } from 'js-yaml';
import { ensureBundles } from '../../playground/bundles.ts';
import { dockerfileEntrypoint } from '../../playground/image-runner.ts';
import { BUNDLES, NOTICES } from '../../scripts/build.ts';
import { AGENT_COMMAND } from '../../src/api/agent/v1.ts';
import { ROUTER_COMMAND } from '../../src/api/router/v1.ts';

const repoRoot = join(import.meta.dirname, '..', '..');
const dockerfile = readFileSync(join(repoRoot, 'Dockerfile'), 'utf8');
const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as {
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};

interface Instruction {
  keyword: string;
  args: string;
}

/** The Dockerfile's instructions, continuation lines joined, comments dropped. */
function instructions(text: string): Instruction[] {
  const joined = text
    .split('\n')
    .filter((l) => !l.trimStart().startsWith('#'))
    .join('\n')
    .replaceAll(/\\\n/g, ' ');
  return joined
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '')
    .map((l) => {
      const [keyword = '', ...rest] = l.split(/\s+/);
      return { keyword: keyword.toUpperCase(), args: rest.join(' ') };
    });
}

const all = instructions(dockerfile);
const stages = all.filter((i) => i.keyword === 'FROM');
/** The instructions of the last stage: what the image is. */
const final = all.slice(all.lastIndexOf(stages.at(-1)!));

/** The sources of COPY instructions that read the build context (not `--from=` another stage). */
function contextSources(): string[] {
  return all
    .filter((i) => i.keyword === 'COPY' && !i.args.includes('--from='))
    .flatMap((i) =>
      i.args
        .split(/\s+/)
        .filter((a) => !a.startsWith('--'))
        .slice(0, -1),
    );
}

/** The numeric user of the image's last USER, as [uid, gid]. */
function imageUser(): [number, number] {
  const user = final.findLast((i) => i.keyword === 'USER')?.args ?? '';
  const m = /^(\d+)(?::(\d+))?$/.exec(user);
  assert.ok(m, `USER must be numeric (uid or uid:gid), got "${user}"`);
  return [Number(m[1]), Number(m[2] ?? m[1])];
}

describe('the image (Dockerfile)', () => {
  it('lints clean with dockerfile-utils (every warning is an error here)', () => {
    const problems = validate(dockerfile).map(
      (d) => `line ${d.range.start.line + 1}: ${typeof d.message === 'string' ? d.message : d.message.value}`,
    );
    assert.deepEqual(problems, []);
  });

  it('builds in stages on a pinned Node 24 slim image, the Node the tests run on', () => {
    assert.ok(stages.length >= 2, 'multi-stage');
    const nodeVersion = pkg.devDependencies['node'];
    for (const s of stages) {
      assert.match(s.args, /^node:24\.\d+\.\d+-slim(\s+AS\s+\S+)?$/i, `pinned node:24 slim tag: ${s.args}`);
      assert.ok(
        s.args.startsWith(`node:${nodeVersion ?? ''}-slim`),
        `the tests' Node ${String(nodeVersion)}`,
      );
    }
  });

  it('installs from the lock file with install scripts off, in a build stage only', () => {
    const install = all.filter((i) => i.keyword === 'RUN' && i.args.includes('npm '));
    assert.ok(install.length > 0);
    for (const i of install) assert.match(i.args, /npm ci( --omit=dev)? --ignore-scripts/);
    assert.ok(
      !final.some((i) => i.keyword === 'RUN' && i.args.includes('npm ')),
      'the final stage installs nothing',
    );
  });

  it('holds the bundles and their licences, and neither node_modules nor the sources', async function () {
    this.timeout(60_000);
    const copied = final.filter((i) => i.keyword === 'COPY').map((i) => i.args);
    assert.deepEqual(copied, ['--from=build /app/dist ./dist']);
    assert.ok(NOTICES.startsWith('dist/'), 'the licences are written into dist/, which the image copies');
    await ensureBundles();
    const notices = readFileSync(join(repoRoot, NOTICES), 'utf8');
    for (const bundled of ['@kubernetes/client-node', 'oci-common', 'winston']) {
      assert.match(notices, new RegExp(`^${bundled} \\S+ \\(`, 'm'), `${bundled}'s licence`);
    }
    const build = all.find((i) => i.keyword === 'RUN' && i.args.includes('scripts/build.ts'));
    assert.ok(build, 'the build stage runs scripts/build.ts');
    // Every program the operator's builders start is one of the bundles.
    for (const command of [dockerfileEntrypoint(), [...AGENT_COMMAND], [...ROUTER_COMMAND]]) {
      const script = command.find((a) => a.endsWith('.mjs')) ?? command.join(' ');
      assert.ok(script in BUNDLES, `${script} is built by scripts/build.ts`);
    }
  });

  it('copies only files that exist, and .dockerignore lets each of them in', () => {
    const sources = contextSources();
    assert.ok(sources.length > 0);
    const allowed = readFileSync(join(repoRoot, '.dockerignore'), 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('!'))
      .map((l) => l.slice(1).replace(/\/$/, ''));
    for (const s of sources) {
      const path = s.replace(/\/$/, '');
      assert.ok(existsSync(join(repoRoot, path)), `COPY ${s}: no such file`);
      assert.ok(allowed.includes(path), `.dockerignore keeps ${s} out of the build context`);
    }
  });

  it('runs as a numeric non-root user, with the operator as the default entry point', () => {
    const [uid, gid] = imageUser();
    assert.notEqual(uid, 0);
    assert.notEqual(gid, 0);
    const entrypoint = JSON.parse(
      final.findLast((i) => i.keyword === 'ENTRYPOINT')?.args ?? '[]',
    ) as string[];
    assert.equal(entrypoint[0], 'node');
    assert.equal(entrypoint.at(-1), 'dist/operator.mjs');
    // Between them, flags for Node itself only (memory settings: the README's scale benchmark).
    assert.ok(
      entrypoint.slice(1, -1).every((a) => a.startsWith('--')),
      entrypoint.join(' '),
    );
    assert.deepEqual(dockerfileEntrypoint(), entrypoint, 'the playground reads the same ENTRYPOINT');
  });

  it('matches what deploy/ and the chart run as: runAsNonRoot with the image user, numerically', () => {
    const [uid] = imageUser();
    const operator = (
      loadAll(readFileSync(join(repoRoot, 'deploy', 'operator.yaml'), 'utf8')) as {
        kind?: string;
        spec?: { template?: { spec?: { securityContext?: Record<string, unknown> } } };
      }[]
    ).find((o) => o.kind === 'Deployment');
    const chart = load(readFileSync(join(repoRoot, 'charts', 'stacked-operator', 'values.yaml'), 'utf8')) as {
      podSecurityContext?: Record<string, unknown>;
    };
    for (const [where, ctx] of [
      ['deploy/operator.yaml', operator?.spec?.template?.spec?.securityContext],
      ['the chart', chart.podSecurityContext],
    ] as const) {
      assert.equal(ctx?.['runAsNonRoot'], true, `${where}: runAsNonRoot`);
      // The kubelet refuses runAsNonRoot for an image whose user it cannot verify; a numeric
      // runAsUser makes the check independent of the image.
      assert.equal(ctx['runAsUser'], uid, `${where}: runAsUser ${String(uid)}`);
    }
  });

  it('has every package src/ imports among the production dependencies', () => {
    const files = (readdirSync(join(repoRoot, 'src'), { recursive: true }) as string[]).filter((f) =>
      f.endsWith('.ts'),
    );
    const missing = new Set<string>();
    for (const f of files) {
      const text = readFileSync(join(repoRoot, 'src', f), 'utf8');
      for (const m of text.matchAll(/(?:from|import\()\s*'([^.'][^']*)'/g)) {
        const spec = m[1]!;
        if (spec.startsWith('node:')) continue;
        const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!;
        if (pkg.dependencies[name] === undefined) missing.add(`${name} (src/${f})`);
      }
    }
    assert.deepEqual([...missing], []);
  });

  describe('entry points, started from a tree holding only what the image copies', () => {
    let tree: string;
    before(async function () {
      this.timeout(60_000);
      await ensureBundles();
      // What the final stage copies, and nothing else: a bundle that still needed node_modules or a
      // file of src/ fails here.
      tree = mkdtempSync(join(tmpdir(), 'image-tree-'));
      cpSync(join(repoRoot, 'dist'), join(tree, 'dist'), { recursive: true });
      assert.ok(existsSync(join(tree, NOTICES)), 'the licences of the bundled packages');
    });
    after(() => {
      rmSync(tree, { recursive: true, force: true });
    });

    const commands: [string, string[]][] = [
      ['operator', dockerfileEntrypoint()],
      ['fetch agent', [...AGENT_COMMAND]],
      ['router', [...ROUTER_COMMAND]],
    ];
    for (const [name, command] of commands) {
      it(`${name}: \`${command.join(' ')} --help\` prints its usage and exits 0`, () => {
        // process.execPath: the Node 24 of the `node` devDependency, as in the image.
        const r = spawnSync(process.execPath, [...command.slice(1), '--help'], {
          cwd: tree,
          encoding: 'utf8',
          env: { ...process.env, NODE_ENV: 'production' },
          timeout: 30_000,
        });
        assert.equal(r.status, 0, r.stderr);
        const script = command.find((a) => a.endsWith('.mjs')) ?? '';
        assert.match(r.stdout, new RegExp(`Usage: node ${script.replaceAll('.', '\\.')}`));
      });
    }

    it('fetch agent: serves /healthz and exits 0 on SIGTERM (its own handler: PID 1 has no default one)', async () => {
      const root = mkdtempSync(join(tmpdir(), 'image-agent-'));
      const child = spawn(
        process.execPath,
        [...AGENT_COMMAND.slice(1), '--host=127.0.0.1', '--port=0', `--root=${root}`],
        { cwd: tree, stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, NODE_ENV: 'production' } },
      );
      try {
        let port: number | undefined;
        for await (const line of createInterface({ input: child.stdout })) {
          const l = JSON.parse(line) as { message?: string; port?: number };
          if (l.message === 'listening') {
            port = l.port;
            break;
          }
        }
        assert.ok(port !== undefined, 'the agent logged its port');
        const res = await fetch(`http://127.0.0.1:${String(port)}/healthz`);
        assert.equal(res.status, 200);
        await res.body?.cancel();
        const exited = once(child, 'exit');
        child.kill('SIGTERM');
        const [code, signal] = (await exited) as [number | null, NodeJS.Signals | null];
        assert.deepEqual({ code, signal }, { code: 0, signal: null }, 'a clean exit, not death by signal');
      } finally {
        child.kill('SIGKILL');
        rmSync(root, { recursive: true, force: true });
      }
    });
  });
});
