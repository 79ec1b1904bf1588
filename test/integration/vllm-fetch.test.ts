// Adapters from https archives: the operator asks each pod's fetch agent (our own code, run by the
// test kubelet as the pod's `fetcher` container) to download and verify the archive into the shared
// volume, then asks vLLM to load it from there; a removed member's files go too.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, symlinkSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create as createTar } from 'tar';
import { startAgentServer } from '../../src/agent/server.ts';
import { writeAdapter } from '../../playground/adapters.ts';
import type { ControlPlane } from '../../playground/controlplane.ts';
import { startFileServer, type FileServer } from '../support/https-server.ts';
import { startKubelet, type Kubelet } from '../../playground/kubelet.ts';
import { kubectl } from '../../playground/kubectl.ts';
import { controlPlaneWithNamespace, startOperator, type OperatorProcess } from '../../playground/operator.ts';
import { condition, eventually, getObject } from '../../playground/wait.ts';

const NS = 'fetch-test';
const TOKEN = 'hub-token-s3cr3t';

describe('vllm backend: adapters from https archives through the fetch agent', function () {
  this.timeout(180_000);
  let cp: ControlPlane;
  let kubelet: Kubelet;
  let operator: OperatorProcess;
  let files: FileServer;
  let root: string;
  let digest: string;

  const apply = (obj: object) => kubectl(cp, ['apply', '-n', NS, '-f', '-'], { input: JSON.stringify(obj) });
  const runningSims = () =>
    kubelet
      .runningPods()
      .filter((k) => k.startsWith(`${NS}/`))
      // vLLM pods only: the router's pod runs no simulator.
      .flatMap((k) => {
        const sim = kubelet.simulator(k);
        return sim === undefined ? [] : [{ key: k, sim }];
      });

  function group(members: object[], name = 'remote') {
    return {
      apiVersion: 'serving.stacked.dev/v1alpha1',
      kind: 'StackedModelGroup',
      metadata: { name },
      spec: { baseModel: { inferenceKey: 'base', source: { huggingface: 'org/base' } }, members },
    };
  }
  const remote = (key: string, path: string, extra: object = {}) => ({
    inferenceKey: key,
    source: { uri: `${files.url}${path}`, ...extra },
  });

  before(async function () {
    this.timeout(3_600_000);
    cp = await controlPlaneWithNamespace(NS);
    root = mkdtempSync(join(tmpdir(), 'fetch-test-'));
    writeAdapter(join(root, 'src', 'sql-remote'), 16);
    const archive = join(root, 'sql-remote.tgz');
    await createTar({ gzip: true, file: archive, cwd: join(root, 'src') }, ['sql-remote']);
    const bytes = readFileSync(archive);
    digest = createHash('sha256').update(bytes).digest('hex');
    files = await startFileServer(
      new Map([
        ['/adapters/sql-remote.tgz', bytes],
        ['/adapters/sql-other.tgz', bytes],
      ]),
    );
    files.stall.set('/adapters/slow.tgz', 512 * 1024 * 1024);
    // The Secret named in secretRef; the kubelet mounts it into the fetcher (and only there).
    await apply({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'hub' },
      stringData: { token: TOKEN },
    });

    kubelet = await startKubelet({
      kubeconfigPath: cp.kubeconfigPath,
      nodes: [1, 2, 3].map((i) => ({ name: `fetch-gpu-${i}`, gpus: 1 })),
      pvcRoot: join(root, 'pvc'),
      hfRoot: join(root, 'hf'),
      namespaces: [NS],
      runContainer: async (c, ctx) => {
        if (c.name !== 'fetcher') return undefined;
        const fetched = ctx.volumeDir('fetched');
        if (fetched === undefined) throw new Error('pod has no fetched volume');
        // The container sees each mounted Secret at <secrets dir>/<name>: link the kubelet's folders so.
        const secretsDir = mkdtempSync(join(root, 'secrets-'));
        for (const m of c.volumeMounts ?? []) {
          const dir = ctx.volumeDir(m.name);
          if (m.mountPath.startsWith('/var/run/secrets/stacked/') && dir !== undefined) {
            symlinkSync(dir, join(secretsDir, m.mountPath.slice('/var/run/secrets/stacked/'.length)));
          }
        }
        const agent = await startAgentServer({
          host: ctx.ip,
          port: 8089,
          root: fetched,
          ca: files.ca,
          secretsDir,
        });
        return { stop: () => agent.close() };
      },
    });
    operator = await startOperator(cp, {
      identity: 'fetch-test',
      namespace: NS,
      extraArgs: ['--leader-election-id=fetch-test'],
    });
  });

  after(async () => {
    await operator.stop();
    await kubelet.stop();
    await files.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('downloads, verifies and loads an https archive on every replica, with the token from a Secret', async () => {
    await apply(
      group([
        remote('sql-remote', '/adapters/sql-remote.tgz', { sha256: digest, secretRef: { name: 'hub' } }),
      ]),
    );
    await apply({
      apiVersion: 'serving.stacked.dev/v1alpha1',
      kind: 'StackedDeployment',
      metadata: { name: 'remote' },
      spec: { modelGroupRef: { name: 'remote' }, backend: 'vllm', engine: {}, vllm: { replicas: 2 } },
    });
    await eventually(
      'Ready',
      async () => {
        const d = await getObject(cp, NS, 'sdep', 'remote');
        return condition(d, 'Ready')?.status === 'True' ? d : undefined;
      },
      90_000,
    );
    // Ready means a replica serves every adapter; the second may still be starting.
    await eventually(
      'both replicas hold the adapter',
      () =>
        Promise.resolve(
          runningSims().length === 2 &&
            runningSims().every(({ sim }) => sim.loadedAdapters().join() === 'sql-remote')
            ? true
            : undefined,
        ),
      60_000,
    );
    assert.equal(files.authorizations.get('/adapters/sql-remote.tgz'), `Bearer ${TOKEN}`);
    const logs = operator.lines.map((l) => JSON.stringify(l)).join('\n');
    assert.ok(!logs.includes(TOKEN), 'the token never reaches the operator');
  });

  it('a download that never finishes holds no reconcile: another deployment changes meanwhile as usual', async () => {
    await apply(
      group([
        remote('sql-remote', '/adapters/sql-remote.tgz', { sha256: digest, secretRef: { name: 'hub' } }),
        remote('slow', '/adapters/slow.tgz'),
      ]),
    );
    await eventually(
      'slow shown downloading',
      async () => {
        const d = await getObject(cp, NS, 'sdep', 'remote');
        const a = (d?.status?.adapters as { inferenceKey: string; message?: string }[] | undefined)?.find(
          (x) => x.inferenceKey === 'slow',
        );
        return a?.message?.includes('downloading') ? true : undefined;
      },
      30_000,
    );
    // remote still serves sql-remote on both replicas: slow is served by no replica, so it closes no gate.
    assert.equal(condition(await getObject(cp, NS, 'sdep', 'remote'), 'Available')?.status, 'True');
    await apply(group([remote('sql-remote', '/adapters/sql-remote.tgz')], 'other'));
    await apply({
      apiVersion: 'serving.stacked.dev/v1alpha1',
      kind: 'StackedDeployment',
      metadata: { name: 'other' },
      spec: { modelGroupRef: { name: 'other' }, backend: 'vllm', engine: {}, vllm: { replicas: 1 } },
    });
    const otherHolds = async (keys: string[]) => {
      const r = await kubectl(cp, [
        'get',
        'pods',
        '-n',
        NS,
        '-l',
        'serving.stacked.dev/deployment=other',
        '-o',
        'name',
      ]);
      const names = r.stdout
        .trim()
        .split('\n')
        .filter(Boolean)
        .map((n) => n.replace('pod/', ''));
      return (
        names.length === 1 &&
        names.every((n) => kubelet.simulator(`${NS}/${n}`)?.loadedAdapters().join() === keys.join())
      );
    };
    await eventually(
      'other serves sql-remote',
      async () => ((await otherHolds(['sql-remote'])) ? true : undefined),
      60_000,
    );
    // The member change of the other deployment, while slow's download still hangs on remote's pods.
    const t0 = performance.now();
    await apply(
      group(
        [remote('sql-remote', '/adapters/sql-remote.tgz'), remote('sql-other', '/adapters/sql-other.tgz')],
        'other',
      ),
    );
    await eventually(
      'other serves sql-other',
      async () => ((await otherHolds(['sql-remote', 'sql-other'])) ? true : undefined),
      30_000,
    );
    const ms = performance.now() - t0;
    assert.ok((files.stalled.get('/adapters/slow.tgz') ?? 0) >= 1, 'slow was being downloaded meanwhile');
    for (const { key, sim } of runningSims()) {
      if (key.startsWith(`${NS}/remote-vllm-`)) assert.ok(!sim.loadedAdapters().includes('slow'), key);
    }
    assert.ok(ms < 15_000, `the other deployment's member change took ${ms.toFixed(0)} ms`);
    await kubectl(cp, ['delete', 'sdep', '-n', NS, 'other']);
    await eventually(
      "other's pod gone",
      () =>
        Promise.resolve(
          runningSims().some(({ key }) => key.startsWith(`${NS}/other-vllm-`)) ? undefined : true,
        ),
      60_000,
    );
  });

  it('refuses an archive whose checksum differs, naming the member, and keeps serving the rest', async () => {
    await apply(
      group([
        remote('sql-remote', '/adapters/sql-remote.tgz', { sha256: digest, secretRef: { name: 'hub' } }),
        remote('tampered', '/adapters/sql-remote.tgz', {
          sha256: '0'.repeat(64),
          secretRef: { name: 'hub' },
        }),
        remote('gone', '/adapters/missing.tgz'),
      ]),
    );
    const d = await eventually(
      'Degraded naming tampered',
      async () => {
        const obj = await getObject(cp, NS, 'sdep', 'remote');
        const c = condition(obj, 'Degraded');
        return c?.status === 'True' && c.message.includes('tampered') ? obj : undefined;
      },
      60_000,
    );
    const degraded = condition(d, 'Degraded')!;
    assert.match(
      degraded.message,
      /member gone: GET https:\/\/127\.0\.0\.1:\d+\/adapters\/missing\.tgz: 404 Not Found/,
    );
    assert.match(
      degraded.message,
      /member tampered: sha256 mismatch for tampered-[0-9a-f]+: expected 0{64}, got [0-9a-f]{64}/,
    );
    assert.equal(condition(d, 'Available')?.status, 'True');
    for (const { sim } of runningSims()) assert.ok(sim.loadedAdapters().includes('sql-remote'));
  });

  it('removes a member from vLLM and its files from the pod', async () => {
    const adapterFolders = () =>
      runningSims().flatMap(({ key }) => {
        const dir = kubelet.volumePath(key, 'fetched');
        return dir && existsSync(dir) ? readdirSync(dir).filter((n) => !n.startsWith('.')) : [];
      });
    assert.ok(adapterFolders().length > 0, 'the archive was unpacked into the pods');
    await apply(group([]));
    await eventually(
      'unloaded and deleted',
      () =>
        Promise.resolve(
          runningSims().every(({ sim }) => sim.loadedAdapters().length === 0) && adapterFolders().length === 0
            ? true
            : undefined,
        ),
      30_000,
    );
  });
});
