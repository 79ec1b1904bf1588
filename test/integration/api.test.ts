// The API as the real API server enforces it: the generated CRDs install, the samples apply, every
// CEL rule rejects what it should with its own message, and kubectl shows columns and descriptions.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { StackedDeployment } from '../../src/api/v1alpha1/deployment.ts';
import type { StackedModelGroup } from '../../src/api/v1alpha1/modelgroup.ts';
import type { ControlPlane } from '../../playground/controlplane.ts';
import { kubectl } from '../../playground/kubectl.ts';
import { sampleDeployment, sampleGroup, samplesDir } from '../support/objects.ts';
import { controlPlaneWithNamespace } from '../../playground/operator.ts';

const NS = 'api-test';

describe('API on a real API server', function () {
  this.timeout(180_000);
  let cp: ControlPlane;

  before(async function () {
    this.timeout(3_600_000); // a cold build of the control plane takes tens of minutes
    cp = await controlPlaneWithNamespace(NS);
  });

  const apply = (obj: object) =>
    kubectl(cp, ['apply', '-n', NS, '-f', '-'], { input: JSON.stringify(obj), allowFail: true });

  async function expectRejected(obj: object, message: string | RegExp): Promise<void> {
    const r = await apply(obj);
    assert.notEqual(r.code, 0, `expected the API server to reject:\n${JSON.stringify(obj, null, 1)}`);
    if (typeof message === 'string')
      assert.ok(r.stderr.includes(message), `stderr lacks "${message}":\n${r.stderr}`);
    else assert.match(r.stderr, message);
  }

  it('applies the samples', async () => {
    for (const f of ['modelgroup.yaml', 'deployment-vllm.yaml', 'deployment-oci.yaml']) {
      await kubectl(cp, ['apply', '-n', NS, '-f', join(samplesDir, f)]);
    }
    const r = await kubectl(cp, ['get', '-n', NS, 'sdep', 'sql-prod', '-o', 'json']);
    const d = JSON.parse(r.stdout) as StackedDeployment;
    assert.equal(d.spec.engine.maxLoras, 4, 'schema default');
    assert.equal(d.spec.vllm?.router.enabled, true, 'nested default');
    const o = JSON.parse(
      (await kubectl(cp, ['get', '-n', NS, 'sdep', 'sql-oci', '-o', 'json'])).stdout,
    ) as StackedDeployment;
    assert.deepEqual(
      o.spec.oci?.router,
      { enabled: false, replicas: 1, affinityMargin: 4 },
      'the oci router is opt-in',
    );
    const all = await kubectl(cp, ['get', 'stacked', '-n', NS, '-o', 'name']);
    assert.match(all.stdout, /stackedmodelgroup.serving.stacked.dev\/sql-assistants/);
    assert.match(all.stdout, /stackeddeployment.serving.stacked.dev\/sql-oci/);
  });

  it('shows printer columns in kubectl get', async () => {
    const smg = await kubectl(cp, ['get', 'smg', '-n', NS]);
    assert.match(smg.stdout.split('\n')[0]!, /^NAME\s+READY\s+BASE\s+MEMBERS\s+AGE$/);
    assert.match(smg.stdout, /sql-assistants\s+\S*\s+basemodel/);
    const wide = await kubectl(cp, ['get', 'sdep', '-n', NS, '-o', 'wide']);
    assert.match(
      wide.stdout.split('\n')[0]!,
      /^NAME\s+READY\s+BACKEND\s+GROUP\s+REPLICAS\s+ENDPOINT\s+REASON\s+AGE$/,
    );
    assert.match(wide.stdout, /sql-prod\s+\S*\s*vllm\s+sql-assistants/);
  });

  it('teaches the API through kubectl explain', async () => {
    const r = await kubectl(cp, ['explain', 'smg.spec.members']);
    assert.match(r.stdout, /The fine-tuned LoRA adapters/);
    assert.match(r.stdout, /inferenceKey\s+<string> -required-/);
    const e = await kubectl(cp, ['explain', 'sdep.spec.engine.maxLoraRank']);
    assert.match(e.stdout, /largest adapter rank/);
  });

  describe('rejects each class of invalid StackedModelGroup with a clear message', () => {
    const member = (g: StackedModelGroup, i = 0) => g.spec.members![i]!;
    const cases: [string, (g: StackedModelGroup) => void, string | RegExp][] = [
      [
        'a member keyed like the base',
        (g) => (member(g).inferenceKey = 'basemodel'),
        "a member's inferenceKey must differ from baseModel.inferenceKey",
      ],
      [
        'duplicate inference keys',
        (g) => (member(g, 1).inferenceKey = 'sql-lora-1'),
        'inferenceKey must be unique among members',
      ],
      [
        'a malformed inference key',
        (g) => (member(g).inferenceKey = 'SQL Lora'),
        'inferenceKey must be 1-32 characters',
      ],
      [
        'an inference key over 32 characters',
        (g) => (member(g).inferenceKey = 'a'.repeat(33)),
        /Too long: may not be (more than|longer than) 32/,
      ],
      [
        'two sources',
        (g) => (member(g).source = { huggingface: 'a/b', uri: 'https://h/x.tgz' }),
        'exactly one of huggingface, pvc, uri or modelCatalog must be set',
      ],
      [
        'no source in a source block',
        (g) => (member(g).source = {}),
        'exactly one of huggingface, pvc, uri or modelCatalog must be set',
      ],
      [
        'modelCatalog without modelId',
        (g) => {
          delete member(g).modelId;
          member(g).source = { modelCatalog: {} };
        },
        'source.modelCatalog needs modelId',
      ],
      [
        'a model id used twice',
        (g) => (member(g, 1).modelId = member(g).modelId!),
        'modelId must be unique in the group',
      ],
      [
        'a model id that is not a model OCID',
        (g) => (member(g).modelId = 'ocid1.bucket.oc1.iad.aaaa'),
        'must be an OCI datasciencemodel OCID',
      ],
      [
        'a plain-http uri',
        (g) => (member(g).source = { uri: 'http://h/x.tgz' }),
        'uri must be an https:// URL or oci://bucket@namespace/prefix',
      ],
      [
        'a PVC path escaping the volume',
        (g) => (member(g).source = { pvc: { claimName: 'c', path: '../x' } }),
        'path must be relative to the volume and must not contain ".."',
      ],
      ['a rank above 512', (g) => (member(g).rank = 1024), /should be less than or equal to 512/],
      [
        'a sha256 pinning an oci:// folder',
        (g) => (member(g).source = { uri: 'oci://b@ns/adapters/x/', sha256: 'a'.repeat(64) }),
        'sha256 with an oci:// uri needs the uri to name one .tar.gz, .tgz or .zip object',
      ],
      [
        'a token for an oci:// uri',
        (g) => (member(g).source = { uri: 'oci://b@ns/x.TGZ', secretRef: { name: 's', key: 'token' } }),
        'secretRef applies to an https:// uri only',
      ],
    ];
    for (const [name, mutate, message] of cases) {
      it(name, () =>
        expectRejected(
          sampleGroup(`bad-${name.replaceAll(/[^a-z0-9]+/g, '-')}`.slice(0, 60), mutate),
          message,
        ),
      );
    }
  });

  describe('rejects each class of invalid StackedDeployment with a clear message', () => {
    const vllm = (name: string, m: (d: StackedDeployment) => void) =>
      sampleDeployment('deployment-vllm.yaml', name, m);
    const oci = (name: string, m: (d: StackedDeployment) => void) =>
      sampleDeployment('deployment-oci.yaml', name, m);
    const exp = (d: StackedDeployment) => d.spec.experiments![0]!;
    const cases: [string, () => StackedDeployment, string | RegExp][] = [
      [
        'backend vllm without spec.vllm',
        () => vllm('a', (d) => delete d.spec.vllm),
        "backend 'vllm' requires spec.vllm and forbids spec.oci",
      ],
      [
        'backend oci with spec.vllm',
        () => oci('b', (d) => (d.spec.vllm = { replicas: 1 } as never)),
        "backend 'oci' requires spec.oci and forbids spec.vllm",
      ],
      [
        'an unknown backend',
        () => vllm('c', (d) => (d.spec.backend = 'tgi' as 'vllm')),
        /Unsupported value: "tgi"/,
      ],
      [
        'maxLoraRank not a vLLM value',
        () => vllm('d', (d) => (d.spec.engine.maxLoraRank = 48 as 64)),
        /Unsupported value: 48/,
      ],
      [
        'maxCpuLoras below maxLoras',
        () => vllm('e', (d) => (d.spec.engine.maxCpuLoras = 2)),
        'maxCpuLoras must be at least maxLoras',
      ],
      [
        'extraArgs setting a managed flag',
        () => vllm('f', (d) => (d.spec.engine.extraArgs = ['--served-model-name=x'])),
        'extraArgs must not set flags the operator manages',
      ],
      [
        'a zero A/B weight',
        () => vllm('g', (d) => (exp(d).variants[0]!.weight = 0)),
        'A/B weights must be positive',
      ],
      [
        'two experiments with one name',
        () => vllm('h', (d) => d.spec.experiments!.push(structuredClone(exp(d)))),
        'experiment names must be unique',
      ],
      [
        'one key in two variants',
        () => vllm('i', (d) => (exp(d).variants[1]!.inferenceKey = 'sql-lora-1')),
        'each variant of an experiment must name a different inferenceKey',
      ],
      [
        'an experiment named like a variant key',
        () => vllm('j', (d) => (exp(d).name = 'sql-lora-2')),
        'an experiment name must not be an inference key used by a variant',
      ],
      [
        'experiments with the vllm router disabled',
        () => vllm('j2', (d) => (d.spec.vllm!.router = { enabled: false, replicas: 1, affinityMargin: 4 })),
        'spec.experiments need the router: set spec.<backend>.router.enabled',
      ],
      [
        'experiments on the oci backend without its router (off by default)',
        () => oci('j3', (d) => (d.spec.experiments = vllm('x', () => undefined).spec.experiments)),
        'spec.experiments need the router: set spec.<backend>.router.enabled',
      ],
      [
        'vllm OCI access with apiKey auth but no secret',
        () => vllm('k2', (d) => (d.spec.vllm!.oci = { region: 'us-ashburn-1', auth: { type: 'apiKey' } })),
        'auth.secretRef is required for type apiKey',
      ],
      [
        'apiKey auth without a secret',
        () => oci('k', (d) => delete d.spec.oci!.auth.secretRef),
        'auth.secretRef is required for type apiKey',
      ],
      [
        'instanceCount and autoscaling',
        () =>
          oci(
            'l',
            (d) =>
              (d.spec.oci!.infrastructure.autoscaling = {
                minimumInstanceCount: 1,
                maximumInstanceCount: 2,
                cpuUtilizationPercent: 70,
              }),
          ),
        'set instanceCount or autoscaling, not both',
      ],
      [
        'autoscaling min above max',
        () =>
          oci('m', (d) => {
            delete d.spec.oci!.infrastructure.instanceCount;
            d.spec.oci!.infrastructure.autoscaling = {
              minimumInstanceCount: 3,
              maximumInstanceCount: 2,
              cpuUtilizationPercent: 70,
            };
          }),
        'autoscaling.minimumInstanceCount must not exceed maximumInstanceCount',
      ],
      [
        'PARAMS in the container env',
        () => oci('n', (d) => (d.spec.oci!.container.environmentVariables = { PARAMS: '--x' })),
        'environmentVariables must not set PARAMS',
      ],
      [
        'a plain-http endpoint',
        () => oci('o', (d) => (d.spec.oci!.endpoint = 'http://example.com')),
        'endpoint must be an https:// URL',
      ],
      [
        'two env entries of one name',
        () =>
          vllm('q', (d) => {
            d.spec.vllm!.env = [
              { name: 'A', value: '1' },
              { name: 'A', value: '2' },
            ];
          }),
        /spec.vllm.env\[1\]: Duplicate value/,
      ],
      [
        'a compartment that is not a compartment OCID',
        () => oci('p', (d) => (d.spec.oci!.compartmentId = 'ocid1.tenancy.oc1..aaaa')),
        'must be an OCI compartment OCID',
      ],
    ];
    for (const [name, build, message] of cases) {
      it(name, () => expectRejected(build(), message));
    }

    it('takes experiments once the backend runs the router, and no experiments without it', async () => {
      const experiments = vllm('x', () => undefined).spec.experiments;
      const on = await apply(
        oci('routed', (d) => {
          d.spec.experiments = experiments;
          d.spec.oci!.router = { enabled: true, replicas: 1, affinityMargin: 4 };
        }),
      );
      assert.equal(on.code, 0, on.stderr);
      const off = await apply(
        vllm('unrouted', (d) => {
          d.spec.experiments = [];
          d.spec.vllm!.router = { enabled: false, replicas: 1, affinityMargin: 4 };
        }),
      );
      assert.equal(off.code, 0, off.stderr);
    });

    it('refuses to move an existing deployment to another backend, region, compartment or project', async () => {
      await apply(oci('moving', () => undefined));
      await expectRejected(
        oci('moving', (d) => (d.spec.oci!.compartmentId = 'ocid1.compartment.oc1..aaaaaaaaother')),
        'oci.region, oci.compartmentId and oci.projectId are immutable',
      );
      await expectRejected(
        oci('moving', (d) => (d.spec.oci!.region = 'us-phoenix-1')),
        'oci.region, oci.compartmentId and oci.projectId are immutable',
      );
      await expectRejected(
        sampleDeployment(
          'deployment-vllm.yaml',
          'moving',
          (d) => (d.spec.modelGroupRef.name = 'sql-assistants'),
        ),
        'backend is immutable',
      );
      const kept = await apply(oci('moving', (d) => (d.spec.oci!.infrastructure.instanceCount = 2)));
      assert.equal(kept.code, 0, `other changes stay allowed: ${kept.stderr}`);
    });
  });
});
