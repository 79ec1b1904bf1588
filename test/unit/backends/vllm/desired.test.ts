import assert from 'node:assert/strict';
import { join } from 'node:path';
import { withDefaults } from '../../../../src/api/v1alpha1/validate.ts';
import {
  buildDeployment,
  buildService,
  claimsOf,
  adapterSource,
  baseSource,
  directPath,
  readsFromOci,
  mergeEnv,
  vllmArgs,
} from '../../../../src/backends/vllm/desired.ts';
import { dnsLabel } from '../../../../src/backends/vllm/names.ts';
import { isSubset } from '../../../../src/runtime/apply.ts';
import { goldenFiles } from '../../../support/golden.ts';
import { sampleDeployment, sampleGroup } from '../../../support/objects.ts';

const testdata = join(import.meta.dirname, 'testdata');

const golden = goldenFiles(testdata);

function fixture() {
  const d = withDefaults(
    'StackedDeployment',
    sampleDeployment('deployment-vllm.yaml', 'sql-prod', (x) => {
      x.metadata.namespace = 'ml';
      x.metadata.uid = '5f0c7b7e-0000-4000-8000-000000000001';
      x.spec.engine.extraArgs = ['--enable-prefix-caching'];
      x.spec.vllm!.env = [{ name: 'HF_HOME', value: '/cache' }];
      x.spec.vllm!.nodeSelector = { 'nvidia.com/gpu.product': 'NVIDIA-A10G' };
      x.spec.vllm!.tolerations = [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }];
    }),
  );
  d.apiVersion = 'serving.stacked.dev/v1alpha1';
  d.kind = 'StackedDeployment';
  const g = sampleGroup('sql-assistants', (x) => {
    x.spec.members!.push({
      inferenceKey: 'sql-lora-3',
      source: { pvc: { claimName: 'adapters', path: '/sql/3/' } },
    });
  });
  return { d, g };
}

describe('vllm backend: desired state (pure)', () => {
  it('builds the Deployment of the golden file', () => {
    const { d, g } = fixture();
    golden(
      'deployment.golden.yaml',
      buildDeployment(d, g, {
        defaultImage: 'vllm/vllm-openai:v0.11.0',
        agentImage: 'ghcr.io/stacked-dev/stacked-operator:0.1.0',
      }),
    );
  });

  it("runs the pods as spec.vllm.serviceAccountName (the fetch agent's workload identity), else as the namespace's default", () => {
    const opts = {
      defaultImage: 'vllm/vllm-openai:v0.11.0',
      agentImage: 'ghcr.io/stacked-dev/stacked-operator:0.1.0',
    };
    const { d, g } = fixture();
    assert.equal(buildDeployment(d, g, opts).spec!.template.spec!.serviceAccountName, undefined);
    d.spec.vllm!.serviceAccountName = 'sql-fetcher';
    assert.equal(buildDeployment(d, g, opts).spec!.template.spec!.serviceAccountName, 'sql-fetcher');
  });

  it('builds the Service of the golden file', () => {
    golden('service.golden.yaml', buildService(fixture().d));
  });

  it('passes the engine settings to vLLM and serves the base under its key and model id', () => {
    const { d, g } = fixture();
    // Placement first (this backend's own flags), then the engine flags shared with the oci backend.
    assert.deepEqual(vllmArgs(d, g), [
      '--model',
      'meta-llama/Llama-3.1-8B-Instruct',
      '--port',
      '8000',
      '--tensor-parallel-size',
      '1',
      '--served-model-name',
      'basemodel',
      'ocid1.datasciencemodel.oc1.iad.aaaaaaaabase',
      '--max-model-len',
      '4096',
      '--enable-lora',
      '--max-lora-rank',
      '64',
      '--max-loras',
      '4',
      '--enable-prefix-caching',
    ]);
  });

  it('mounts each PVC once, read-only, and points vLLM at the member folder', () => {
    const { g } = fixture();
    assert.deepEqual(claimsOf(g), ['adapters']);
    assert.equal(directPath({ pvc: { claimName: 'adapters', path: '/sql/3/' } }), '/mnt/pvc/adapters/sql/3');
    assert.equal(directPath({ huggingface: 'org/x' }), 'org/x');
    assert.equal(directPath({ uri: 'https://h/x.tgz' }), undefined);
  });

  it('lets a user env entry replace ours by name, never duplicating it (SSA refuses duplicates)', () => {
    const merged = mergeEnv(
      [{ name: 'VLLM_ALLOW_RUNTIME_LORA_UPDATING', value: 'true' }],
      [
        { name: 'HF_HOME', value: '/cache' },
        { name: 'VLLM_ALLOW_RUNTIME_LORA_UPDATING', value: 'false' },
      ],
    );
    assert.deepEqual(merged, [
      { name: 'VLLM_ALLOW_RUNTIME_LORA_UPDATING', value: 'false' },
      { name: 'HF_HOME', value: '/cache' },
    ]);
  });

  it('sends https archives through the fetch agent, into a folder named by key and source digest', () => {
    const m = {
      inferenceKey: 'sql-x',
      source: { uri: 'https://h/x.tgz', sha256: 'a'.repeat(64), secretRef: { name: 'hub', key: 'token' } },
    };
    const src = adapterSource(m);
    assert.match(src?.path ?? '', /^\/mnt\/fetched\/sql-x-[0-9a-f]{10}$/);
    assert.deepEqual(src?.fetch, {
      name: src?.path.slice('/mnt/fetched/'.length),
      uri: 'https://h/x.tgz',
      sha256: 'a'.repeat(64),
      secret: { name: 'hub', key: 'token' },
    });
    const moved = adapterSource({ ...m, source: { ...m.source, uri: 'https://h/x2.tgz' } });
    assert.notEqual(moved?.path, src.path, 'a new source is a new folder, reloaded in place');
    const { d, g } = fixture();
    g.spec.members!.push(m);
    const pod = buildDeployment(d, g, { defaultImage: 'img', agentImage: 'agent' }).spec!.template.spec!;
    const agent = pod.containers.find((c) => c.name === 'fetcher');
    assert.deepEqual(
      agent?.volumeMounts?.map((v) => v.mountPath),
      ['/mnt/fetched', '/var/run/secrets/stacked/hub'],
    );
    assert.ok(pod.volumes?.some((v) => v.secret?.secretName === 'hub'));
    const vllm = pod.containers.find((c) => c.name === 'vllm');
    assert.ok(
      vllm?.volumeMounts?.some((v) => v.mountPath === '/mnt/fetched' && v.readOnly === true),
      'vLLM only reads',
    );
    assert.ok(
      !vllm?.volumeMounts?.some((v) => v.mountPath.startsWith('/var/run/secrets/stacked')),
      'vLLM never sees the secret',
    );
  });

  it('fetches oci:// and Model Catalog members through the agent, which signs with spec.vllm.oci', () => {
    const oci = adapterSource({ inferenceKey: 'o', source: { uri: 'oci://b@ns/p/' } });
    assert.match(oci?.path ?? '', /^\/mnt\/fetched\/o-[0-9a-f]{10}$/);
    assert.deepEqual(oci?.fetch, { name: oci?.path.slice('/mnt/fetched/'.length), uri: 'oci://b@ns/p/' });
    const id = 'ocid1.datasciencemodel.oc1.iad.aaaaaaaalora9';
    const catalog = adapterSource({
      inferenceKey: 'c',
      modelId: id,
      source: { modelCatalog: {}, maxBytes: 5 },
    });
    assert.deepEqual(catalog?.fetch, {
      name: catalog?.path.slice('/mnt/fetched/'.length),
      modelId: id,
      maxBytes: 5,
    });
    assert.equal(readsFromOci({ uri: 'oci://b@ns/p/' }), true);
    assert.equal(readsFromOci({ modelCatalog: {} }), true);
    assert.equal(readsFromOci({ uri: 'https://h/a.tgz' }), false);

    const { d, g } = fixture();
    d.spec.vllm!.oci = { region: 'us-ashburn-1', auth: { type: 'apiKey', secretRef: { name: 'oci-key' } } };
    const pod = buildDeployment(d, g, { defaultImage: 'img', agentImage: 'agent' }).spec!.template.spec!;
    assert.equal(pod.initContainers, undefined, 'a direct base needs no init container');
    const agent = pod.containers.find((c) => c.name === 'fetcher')!;
    assert.deepEqual(agent.args?.slice(3), [
      '--oci-region=us-ashburn-1',
      '--oci-auth=apiKey',
      '--oci-secret=oci-key',
    ]);
    assert.ok(
      agent.volumeMounts?.some((v) => v.mountPath === '/var/run/secrets/stacked/oci-key' && v.readOnly),
    );
    assert.ok(
      !pod.containers.some((c) => (c.env ?? []).some((e) => e.valueFrom?.secretKeyRef !== undefined)),
      'never env',
    );
  });

  it('fetches a base model from a uri or the Model Catalog in an init container, before vLLM starts', () => {
    const { d, g } = fixture();
    g.spec.baseModel.source = { modelCatalog: {}, maxBytes: 20 * 1024 ** 3 };
    g.spec.members!.push({ inferenceKey: 'sql-oci', source: { uri: 'oci://adapters@ns/sql-oci/' } });
    d.spec.vllm!.oci = {
      region: 'us-ashburn-1',
      endpoint: 'https://proxy.example',
      auth: { type: 'apiKey', secretRef: { name: 'oci-key' } },
    };
    d.spec.vllm!.serviceAccountName = 'sql-fetcher';
    const built = buildDeployment(d, g, {
      defaultImage: 'vllm/vllm-openai:v0.11.0',
      agentImage: 'ghcr.io/stacked-dev/stacked-operator:0.1.0',
    });
    golden('deployment-fetched-base.golden.yaml', built);
    const pod = built.spec!.template.spec!;
    const base = baseSource(g.spec.baseModel)!;
    assert.match(base.path, /^\/mnt\/model\/basemodel-[0-9a-f]{10}$/);
    assert.equal(vllmArgs(d, g)[1], base.path, 'vLLM serves the fetched folder');
    const init = pod.initContainers?.[0];
    assert.ok(init);
    assert.equal(init.name, 'fetch-model');
    const request = JSON.parse(
      init.args?.find((a) => a.startsWith('--fetch='))?.slice('--fetch='.length) ?? '{}',
    );
    assert.deepEqual(request, { ...base.fetch, content: 'model' });
    assert.equal(request.modelId, 'ocid1.datasciencemodel.oc1.iad.aaaaaaaabase');
    assert.deepEqual(
      init.volumeMounts?.map((v) => v.mountPath),
      ['/mnt/model', '/var/run/secrets/stacked/oci-key'],
    );
    const vllm = pod.containers.find((c) => c.name === 'vllm');
    assert.ok(vllm?.volumeMounts?.some((v) => v.mountPath === '/mnt/model' && v.readOnly === true));
    assert.ok(pod.volumes?.some((v) => v.name === 'model' && v.emptyDir !== undefined));
    const https = fixture();
    https.g.spec.baseModel.source = { uri: 'https://h/base.tgz', secretRef: { name: 'hub', key: 'token' } };
    const httpsPod = buildDeployment(https.d, https.g, { defaultImage: 'img', agentImage: 'agent' }).spec!
      .template.spec!;
    assert.deepEqual(
      httpsPod.initContainers?.[0]?.volumeMounts?.map((v) => v.mountPath),
      ['/mnt/model', '/var/run/secrets/stacked/hub'],
      'only the Secret the base needs',
    );
  });

  it('keeps generated names within 63 characters without collisions', () => {
    const a = dnsLabel(`${'a'.repeat(70)}-one`);
    const b = dnsLabel(`${'a'.repeat(70)}-two`);
    assert.ok(a.length <= 63 && b.length <= 63);
    assert.notEqual(a, b);
  });

  it('recognises a live object that already has every desired field (no write at rest)', () => {
    const { d, g } = fixture();
    const desired = buildDeployment(d, g, { defaultImage: 'img', agentImage: 'agent' });
    const live = structuredClone(desired) as Record<string, unknown> & typeof desired;
    // What the API server adds or omits: defaults, status, and empty lists dropped.
    live.metadata!.resourceVersion = '42';
    live.spec!.revisionHistoryLimit = 10;
    live.spec!.template.spec!.containers[0]!.imagePullPolicy = 'IfNotPresent';
    (live as { status?: object }).status = { replicas: 2 };
    assert.ok(isSubset(desired, live));
    live.spec!.template.spec!.containers[0]!.args = ['--model', 'other'];
    assert.ok(!isSubset(desired, live), 'a changed field must be applied again');
    assert.ok(isSubset({ a: [], b: {} }, {}), 'omitted empty lists and maps match');
  });
});
