// Weights from OCI: one member from an oci:// Object Storage prefix, one from the Model Catalog, and
// the base model from an oci:// archive. The test kubelet runs the pod's fetch agent (the `fetcher`
// sidecar, and the `fetch-model` init container in one-shot mode) in-process with the flags the
// operator gave them; they sign every call with the api key of a real Secret, which the loopback
// storage emulator verifies. vLLM (the simulator) starts only once the base model is on its volume.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { V1Container } from '@kubernetes/client-node';
import { create as createTar } from 'tar';
import { parseAgentArgs } from '../../src/agent/main.ts';
import { fetchOnce } from '../../src/agent/once.ts';
import { startAgentServer } from '../../src/agent/server.ts';
import { writeAdapter } from '../../playground/adapters.ts';
import type { ControlPlane } from '../../playground/controlplane.ts';
import { type ContainerContext, type Kubelet, startKubelet } from '../../playground/kubelet.ts';
import { kubectl } from '../../playground/kubectl.ts';
import { type ApiKey, apiKeySecret, makeApiKey } from '../../playground/oci-keys.ts';
import { type OciStorageEmulator, startOciStorageEmulator } from '../support/oci-storage-emulator.ts';
import { controlPlaneWithNamespace, startOperator, type OperatorProcess } from '../../playground/operator.ts';
import { condition, eventually, getObject } from '../../playground/wait.ts';
import { makeZip } from '../support/zip.ts';

const NS = 'oci-fetch-test';
const REGION = 'us-ashburn-1';
const TENANCY_NS = 'tenancyns';
const CATALOG_MODEL = 'ocid1.datasciencemodel.oc1.iad.amaaaaaasqlcatalog';
const SECRETS_ROOT = '/var/run/secrets/stacked/';

describe('vllm backend: weights from OCI Object Storage and the Model Catalog', function () {
  this.timeout(180_000);
  let cp: ControlPlane;
  let kubelet: Kubelet;
  let operator: OperatorProcess;
  let emu: OciStorageEmulator;
  let key: ApiKey;
  let root: string;
  let baseDigest: string;
  const consoleWarn = console.warn;
  const sdkWarnings: string[] = [];

  const apply = (obj: object) => kubectl(cp, ['apply', '-n', NS, '-f', '-'], { input: JSON.stringify(obj) });
  const runningSims = () =>
    kubelet
      .runningPods()
      .filter((k) => k.startsWith(`${NS}/`))
      .map((k) => ({ key: k, sim: kubelet.simulator(k) }))
      .filter((p) => p.sim !== undefined);

  /** The container sees each mounted Secret at <secrets dir>/<name>: link the kubelet's folders so. */
  function secretsDirFor(c: V1Container, ctx: ContainerContext): string {
    const dir = mkdtempSync(join(root, 'secrets-'));
    for (const m of c.volumeMounts ?? []) {
      const host = ctx.volumeDir(m.name);
      if (m.mountPath.startsWith(SECRETS_ROOT) && host !== undefined) {
        symlinkSync(host, join(dir, m.mountPath.slice(SECRETS_ROOT.length)));
      }
    }
    return dir;
  }

  const deployment = (oci: object | undefined) => ({
    apiVersion: 'serving.stacked.dev/v1alpha1',
    kind: 'StackedDeployment',
    metadata: { name: 'from-oci' },
    spec: {
      modelGroupRef: { name: 'from-oci' },
      backend: 'vllm',
      engine: {},
      vllm: { replicas: 2, ...(oci !== undefined ? { oci } : {}) },
    },
  });

  before(async function () {
    this.timeout(3_600_000);
    console.warn = (...args: unknown[]) => sdkWarnings.push(args.map(String).join(' '));
    cp = await controlPlaneWithNamespace(NS);
    root = mkdtempSync(join(tmpdir(), 'oci-fetch-test-'));
    emu = await startOciStorageEmulator();
    key = makeApiKey('fetchtest');
    emu.addKey(key);

    // Member 1: a folder of objects. Member 2: a Model Catalog zip. Base: one archive object.
    emu.createBucket(TENANCY_NS, 'adapters');
    writeAdapter(join(root, 'sql-oci'), 16);
    for (const f of ['adapter_config.json', 'adapter_model.safetensors']) {
      emu.putObject(TENANCY_NS, 'adapters', `sql-oci/${f}`, readFileSync(join(root, 'sql-oci', f)));
    }
    writeAdapter(join(root, 'sql-catalog'), 8);
    emu.putModelArtifact(
      CATALOG_MODEL,
      makeZip(
        ['adapter_config.json', 'adapter_model.safetensors'].map((f) => ({
          name: f,
          data: readFileSync(join(root, 'sql-catalog', f)),
        })),
      ),
    );
    emu.createBucket(TENANCY_NS, 'models');
    mkdirSync(join(root, 'base', 'llama'), { recursive: true });
    writeFileSync(join(root, 'base', 'llama', 'config.json'), '{"architectures": ["LlamaForCausalLM"]}');
    writeFileSync(join(root, 'base', 'llama', 'model.safetensors'), 'weights');
    await createTar({ gzip: true, file: join(root, 'base.tgz'), cwd: join(root, 'base') }, ['llama']);
    const base = readFileSync(join(root, 'base.tgz'));
    baseDigest = createHash('sha256').update(base).digest('hex');
    emu.putObject(TENANCY_NS, 'models', 'llama/base.tgz', base);

    await apply(apiKeySecret('oci-api-key', key, REGION));

    kubelet = await startKubelet({
      kubeconfigPath: cp.kubeconfigPath,
      nodes: [1, 2, 3].map((i) => ({ name: `oci-gpu-${i}`, gpus: 1 })),
      pvcRoot: join(root, 'pvc'),
      hfRoot: join(root, 'hf'),
      namespaces: [NS],
      runContainer: async (c, ctx) => {
        // Only the agent's containers run here (the router's pod is reported running, as is).
        if (c.name !== 'fetcher' && c.name !== 'fetch-model') return undefined;
        // The agent's own flag parsing reads what the operator put in the pod spec.
        const args = parseAgentArgs(c.args ?? [], {});
        const opts = { secretsDir: secretsDirFor(c, ctx), ...(args.oci ? { oci: args.oci } : {}) };
        if (ctx.init && c.name === 'fetch-model') {
          const dir = ctx.volumeDir('model');
          if (dir === undefined || args.fetch === undefined)
            throw new Error('fetch-model without volume or request');
          return {
            stop: () => Promise.resolve(),
            exited: fetchOnce({ root: dir, ...opts }, args.fetch).then(() => undefined),
          };
        }
        if (c.name !== 'fetcher') return undefined;
        const fetched = ctx.volumeDir('fetched');
        if (fetched === undefined) throw new Error('pod has no fetched volume');
        const agent = await startAgentServer({ host: ctx.ip, port: 8089, root: fetched, ...opts });
        return { stop: () => agent.close() };
      },
    });
    operator = await startOperator(cp, {
      identity: 'oci-fetch-test',
      namespace: NS,
      extraArgs: ['--leader-election-id=oci-fetch-test'],
    });
  });

  after(async () => {
    console.warn = consoleWarn;
    await operator.stop();
    await kubelet.stop();
    await emu.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('asks for spec.vllm.oci, naming the models that read from OCI, before any pod is made', async () => {
    await apply({
      apiVersion: 'serving.stacked.dev/v1alpha1',
      kind: 'StackedModelGroup',
      metadata: { name: 'from-oci' },
      spec: {
        baseModel: {
          inferenceKey: 'base',
          source: { uri: `oci://models@${TENANCY_NS}/llama/base.tgz`, sha256: baseDigest },
        },
        members: [
          { inferenceKey: 'sql-oci', source: { uri: `oci://adapters@${TENANCY_NS}/sql-oci/` } },
          { inferenceKey: 'sql-catalog', modelId: CATALOG_MODEL, source: { modelCatalog: {} } },
        ],
      },
    });
    await apply(deployment(undefined));
    const d = await eventually(
      'Ready False, OciAccessMissing',
      async () => {
        const o = await getObject(cp, NS, 'sdep', 'from-oci');
        return condition(o, 'Ready')?.reason === 'OciAccessMissing' ? o : undefined;
      },
      60_000,
    );
    assert.equal(condition(d, 'Ready')?.status, 'False');
    assert.match(
      condition(d, 'Ready')?.message ?? '',
      /^base, sql-oci, sql-catalog read from OCI .*spec\.vllm\.oci/,
    );
    assert.equal(runningSims().length, 0);
  });

  it('fetches the base before vLLM starts and the adapters into every replica, signed with the Secret key', async () => {
    await apply(
      deployment({
        region: REGION,
        endpoint: emu.url,
        auth: { type: 'apiKey', secretRef: { name: 'oci-api-key' } },
      }),
    );
    await eventually(
      'Ready',
      async () => {
        const o = await getObject(cp, NS, 'sdep', 'from-oci');
        return condition(o, 'Ready')?.status === 'True' ? o : undefined;
      },
      120_000,
    );
    await eventually(
      'both replicas hold both adapters',
      () =>
        Promise.resolve(
          runningSims().length === 2 &&
            runningSims().every(({ sim }) => sim!.loadedAdapters().sort().join() === 'sql-catalog,sql-oci')
            ? true
            : undefined,
        ),
      60_000,
    );
    for (const { key: podKey, sim } of runningSims()) {
      // vLLM serves the base from the folder the init container filled.
      const model = sim!.engineArgs.model;
      assert.match(model, /^\/mnt\/model\/base-[0-9a-f]{10}$/);
      const modelDir = kubelet.volumePath(podKey, 'model')!;
      assert.ok(existsSync(join(modelDir, model.slice('/mnt/model/'.length), 'config.json')));
      for (const adapter of ['sql-oci', 'sql-catalog']) {
        const res = await fetch(`${sim!.url}/v1/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ model: adapter, prompt: 'SELECT', max_tokens: 4 }),
        });
        assert.equal(res.status, 200, `${podKey}: ${adapter}`);
        assert.equal(((await res.json()) as { model: string }).model, adapter);
      }
    }
    // Every call to OCI was signed with the Secret's key; none went out unsigned.
    assert.ok(emu.requests.length > 0);
    assert.deepEqual(new Set(emu.requests.map((r) => r.keyId)), new Set([key.keyId]));
    const ops = new Set(emu.requests.map((r) => r.operation));
    for (const op of ['ListObjects', 'GetObject', 'GetModelArtifactContent']) assert.ok(ops.has(op), op);
  });

  it('says why a new base cannot be fetched, while the old pods keep serving', async () => {
    await apply({
      apiVersion: 'serving.stacked.dev/v1alpha1',
      kind: 'StackedModelGroup',
      metadata: { name: 'from-oci' },
      spec: {
        baseModel: {
          inferenceKey: 'base',
          source: { uri: `oci://models@${TENANCY_NS}/llama/base.tgz`, sha256: '0'.repeat(64) },
        },
        members: [
          { inferenceKey: 'sql-oci', source: { uri: `oci://adapters@${TENANCY_NS}/sql-oci/` } },
          { inferenceKey: 'sql-catalog', modelId: CATALOG_MODEL, source: { modelCatalog: {} } },
        ],
      },
    });
    const d = await eventually(
      'Degraded BaseModelFetchFailed',
      async () => {
        const o = await getObject(cp, NS, 'sdep', 'from-oci');
        return condition(o, 'Degraded')?.reason === 'BaseModelFetchFailed' ? o : undefined;
      },
      60_000,
    );
    assert.match(
      condition(d, 'Degraded')?.message ?? '',
      new RegExp(
        `^the base model cannot be fetched: sha256 mismatch for base-[0-9a-f]{10}: expected 0{64}, got ${baseDigest}$`,
      ),
    );
    assert.equal(condition(d, 'Available')?.status, 'True', 'the pods of the old base still serve');
  });

  it('keeps the key in the Secret: mounted read-only into the agent containers only, never in env or logs', async () => {
    const pods = JSON.parse(
      (
        await kubectl(cp, [
          'get',
          'pods',
          '-n',
          NS,
          '-o',
          'json',
          '-l',
          'serving.stacked.dev/deployment=from-oci',
        ])
      ).stdout,
    ) as { items: { spec: { containers: V1Container[]; initContainers?: V1Container[] } }[] };
    assert.ok(pods.items.length > 0);
    for (const p of pods.items) {
      for (const c of [...p.spec.containers, ...(p.spec.initContainers ?? [])]) {
        const mounts = (c.volumeMounts ?? []).filter((m) => m.name === 'secret-oci-api-key');
        if (c.name === 'vllm') assert.deepEqual(mounts, [], 'vLLM never sees the key');
        else
          assert.deepEqual(
            mounts.map((m) => m.readOnly),
            [true],
            `${c.name} mounts it read-only`,
          );
        assert.ok(!(c.env ?? []).some((e) => e.valueFrom?.secretKeyRef), 'no secret in env');
        assert.ok(!JSON.stringify(c).includes('PRIVATE KEY'));
      }
    }
    const logs = operator.lines.map((l) => JSON.stringify(l)).join('\n') + sdkWarnings.join('\n');
    for (const line of key.privateKeyPem.split('\n').filter((l) => l !== '' && !l.startsWith('-----'))) {
      assert.ok(!logs.includes(line), 'no key material in the logs');
    }
  });
});
