import assert from 'node:assert/strict';
import {
  formatIssues,
  validateDeployment,
  validateModelGroup,
  withDefaults,
  type ValidationResult,
} from '../../../src/api/v1alpha1/validate.ts';
import type { StackedModelGroup } from '../../../src/api/v1alpha1/modelgroup.ts';
import type { StackedDeployment } from '../../../src/api/v1alpha1/deployment.ts';
import { sampleDeployment, sampleGroup } from '../../support/objects.ts';

function group(mutate: (g: StackedModelGroup) => void = () => undefined): StackedModelGroup {
  const g = withDefaults('StackedModelGroup', sampleGroup('sql-assistants'));
  mutate(g);
  return g;
}

function deployment(
  file: 'deployment-vllm.yaml' | 'deployment-oci.yaml',
  mutate: (d: StackedDeployment) => void = () => undefined,
): StackedDeployment {
  const d = withDefaults('StackedDeployment', sampleDeployment(file, 'd'));
  mutate(d);
  return d;
}

function messages(r: ValidationResult<unknown>): string {
  if (r.valid) assert.fail('expected the object to be invalid');
  return formatIssues(r.issues);
}

describe('API validation (ajv twins of the CRD schema and CEL rules)', () => {
  it('accepts the samples once defaulted', () => {
    assert.deepEqual(validateModelGroup(group()), { valid: true, value: group() });
    for (const f of ['deployment-vllm.yaml', 'deployment-oci.yaml'] as const) {
      const r = validateDeployment(deployment(f));
      assert.ok(r.valid, r.valid ? '' : formatIssues(r.issues));
    }
  });

  it('fills defaults the way the API server does', () => {
    const d = deployment('deployment-vllm.yaml');
    assert.equal(d.spec.engine.maxLoras, 4);
    assert.equal(d.spec.vllm!.port, 8000);
    assert.equal(d.spec.vllm!.router.enabled, true);
    assert.deepEqual(
      deployment('deployment-oci.yaml').spec.oci!.router,
      { enabled: false, replicas: 1, affinityMargin: 4 },
      'the oci router is opt-in',
    );
  });

  describe('StackedModelGroup', () => {
    it('rejects a member whose inferenceKey equals the base key', () => {
      const m = messages(validateModelGroup(group((g) => (g.spec.members![0]!.inferenceKey = 'basemodel'))));
      assert.match(m, /spec\.members: a member's inferenceKey must differ from baseModel\.inferenceKey/);
    });

    it('rejects duplicate inference keys', () => {
      const m = messages(validateModelGroup(group((g) => (g.spec.members![1]!.inferenceKey = 'sql-lora-1'))));
      assert.match(m, /inferenceKey must be unique among members/);
    });

    it('rejects a malformed or too long inference key', () => {
      assert.match(
        messages(validateModelGroup(group((g) => (g.spec.members![0]!.inferenceKey = 'SQL_Lora')))),
        /spec\.members\[0\]\.inferenceKey: inferenceKey must be 1-32 characters/,
      );
      assert.match(
        messages(validateModelGroup(group((g) => (g.spec.members![0]!.inferenceKey = 'a'.repeat(33))))),
        /must NOT have more than 32 characters/,
      );
    });

    it('requires exactly one source', () => {
      const m = messages(
        validateModelGroup(
          group((g) => (g.spec.members![0]!.source = { huggingface: 'a/b', uri: 'https://x/y.tgz' })),
        ),
      );
      assert.match(
        m,
        /spec\.members\[0\]\.source: exactly one of huggingface, pvc, uri or modelCatalog must be set/,
      );
      assert.match(
        messages(validateModelGroup(group((g) => (g.spec.members![0]!.source = {})))),
        /exactly one of/,
      );
    });

    it('rejects a modelCatalog source without modelId', () => {
      const m = messages(
        validateModelGroup(
          group((g) => {
            const member = g.spec.members![0]!;
            delete member.modelId;
            member.source = { modelCatalog: {} };
          }),
        ),
      );
      assert.match(m, /spec\.members\[0\]\.modelId: source\.modelCatalog needs modelId/);
    });

    it('rejects duplicate model ids, bad OCIDs, bad URIs and escaping PVC paths', () => {
      assert.match(
        messages(
          validateModelGroup(group((g) => (g.spec.members![1]!.modelId = g.spec.members![0]!.modelId!))),
        ),
        /modelId must be unique in the group/,
      );
      assert.match(
        messages(validateModelGroup(group((g) => (g.spec.members![0]!.modelId = 'ocid1.bucket.oc1.iad.x')))),
        /must be an OCI datasciencemodel OCID/,
      );
      assert.match(
        messages(validateModelGroup(group((g) => (g.spec.members![0]!.source = { uri: 'http://x/y.tgz' })))),
        /uri must be an https:\/\/ URL or oci:\/\/bucket@namespace\/prefix/,
      );
      assert.match(
        messages(
          validateModelGroup(
            group((g) => (g.spec.members![0]!.source = { pvc: { claimName: 'a', path: 'x/../../etc' } })),
          ),
        ),
        /path must be relative to the volume and must not contain "\.\."/,
      );
    });

    it('admits OCI sources, with a checksum only for one archive object and never a token', () => {
      const source = (src: NonNullable<StackedModelGroup['spec']['members']>[number]['source']) =>
        validateModelGroup(group((g) => (g.spec.members![0]!.source = src)));
      assert.ok(source({ uri: 'oci://b@ns/adapters/x/', maxBytes: 10 }).valid);
      assert.ok(source({ uri: 'oci://b@ns/adapters/x.tar.gz', sha256: 'a'.repeat(64) }).valid);
      assert.ok(source({ modelCatalog: {}, sha256: 'a'.repeat(64), maxBytes: 10 }).valid);
      assert.match(
        messages(source({ uri: 'oci://b@ns/adapters/x/', sha256: 'a'.repeat(64) })),
        /sha256 with an oci:\/\/ uri needs the uri to name one \.tar\.gz, \.tgz or \.zip object/,
      );
      assert.match(
        messages(source({ uri: 'oci://b@ns/x.zip', secretRef: { name: 's', key: 'token' } })),
        /secretRef applies to an https:\/\/ uri only/,
      );
      assert.match(
        messages(source({ huggingface: 'a/b', maxBytes: 10 })),
        /apply to a uri or modelCatalog source only/,
      );
    });

    it('reports unknown fields by path', () => {
      const g = group() as StackedModelGroup & { spec: { colour?: string } };
      g.spec.colour = 'blue';
      assert.match(messages(validateModelGroup(g)), /spec\.colour: unknown field/);
    });
  });

  describe('StackedDeployment', () => {
    it('requires the block of the chosen backend and forbids the other', () => {
      assert.match(
        messages(validateDeployment(deployment('deployment-vllm.yaml', (d) => delete d.spec.vllm))),
        /backend 'vllm' requires spec\.vllm and forbids spec\.oci/,
      );
      const both = deployment('deployment-oci.yaml', (d) => {
        d.spec.vllm = deployment('deployment-vllm.yaml').spec.vllm!;
      });
      assert.match(
        messages(validateDeployment(both)),
        /backend 'oci' requires spec\.oci and forbids spec\.vllm/,
      );
    });

    it('checks engine limits', () => {
      assert.match(
        messages(
          validateDeployment(deployment('deployment-vllm.yaml', (d) => (d.spec.engine.maxCpuLoras = 2))),
        ),
        /spec\.engine\.maxCpuLoras: maxCpuLoras must be at least maxLoras/,
      );
      assert.match(
        messages(
          validateDeployment(
            deployment('deployment-vllm.yaml', (d) => (d.spec.engine.maxLoraRank = 48 as 64)),
          ),
        ),
        /spec\.engine\.maxLoraRank: must be equal to one of the allowed values/,
      );
      assert.match(
        messages(
          validateDeployment(
            deployment('deployment-vllm.yaml', (d) => (d.spec.engine.extraArgs = ['--max-lora-rank=8'])),
          ),
        ),
        /extraArgs must not set flags the operator manages/,
      );
    });

    it('checks experiments', () => {
      const exp = (d: StackedDeployment) => d.spec.experiments![0]!;
      assert.match(
        messages(
          validateDeployment(deployment('deployment-vllm.yaml', (d) => (exp(d).variants[0]!.weight = 0))),
        ),
        /A\/B weights must be positive/,
      );
      assert.match(
        messages(
          validateDeployment(
            deployment('deployment-vllm.yaml', (d) => d.spec.experiments!.push(structuredClone(exp(d)))),
          ),
        ),
        /experiment names must be unique/,
      );
      assert.match(
        messages(
          validateDeployment(
            deployment('deployment-vllm.yaml', (d) => (exp(d).variants[1]!.inferenceKey = 'sql-lora-1')),
          ),
        ),
        /each variant of an experiment must name a different inferenceKey/,
      );
      assert.match(
        messages(validateDeployment(deployment('deployment-vllm.yaml', (d) => (exp(d).name = 'sql-lora-1')))),
        /an experiment name must not be an inference key used by a variant/,
      );
    });

    it('refuses experiments the router would not run', () => {
      const experiments = deployment('deployment-vllm.yaml').spec.experiments;
      const need =
        /spec\.experiments: spec\.experiments need the router: set spec\.<backend>\.router\.enabled/;
      const off = { enabled: false, replicas: 1, affinityMargin: 4 };
      const on = { enabled: true, replicas: 1, affinityMargin: 4 };
      const rows: [string, StackedDeployment, boolean][] = [
        ['vllm, router on (default)', deployment('deployment-vllm.yaml'), true],
        ['vllm, router off', deployment('deployment-vllm.yaml', (d) => (d.spec.vllm!.router = off)), false],
        [
          'vllm, router off, no experiments',
          deployment('deployment-vllm.yaml', (d) => {
            d.spec.vllm!.router = off;
            delete d.spec.experiments;
          }),
          true,
        ],
        [
          'vllm, router off, empty experiments',
          deployment('deployment-vllm.yaml', (d) => {
            d.spec.vllm!.router = off;
            d.spec.experiments = [];
          }),
          true,
        ],
        [
          'oci, router off (default)',
          deployment('deployment-oci.yaml', (d) => (d.spec.experiments = experiments)),
          false,
        ],
        [
          'oci, router on',
          deployment('deployment-oci.yaml', (d) => {
            d.spec.experiments = experiments;
            d.spec.oci!.router = on;
          }),
          true,
        ],
        ['oci, router off, no experiments', deployment('deployment-oci.yaml'), true],
      ];
      for (const [name, d, valid] of rows) {
        const r = validateDeployment(d);
        if (valid) assert.ok(r.valid, `${name}: ${r.valid ? '' : formatIssues(r.issues)}`);
        else assert.match(messages(r), need, name);
      }
    });

    it('takes OCI access for the vllm fetch agent', () => {
      const withOci = (oci: object) =>
        validateDeployment(deployment('deployment-vllm.yaml', (d) => (d.spec.vllm!.oci = oci as never)));
      assert.ok(
        withOci({ region: 'us-ashburn-1', auth: { type: 'apiKey', secretRef: { name: 'k' } } }).valid,
      );
      assert.ok(withOci({ region: 'us-ashburn-1', auth: { type: 'workloadIdentity' } }).valid);
      assert.match(
        messages(
          withOci({ region: 'us-ashburn-1', auth: { type: 'instancePrincipal', secretRef: { name: 'k' } } }),
        ),
        /not allowed for the other types/,
      );
      assert.match(
        messages(
          withOci({
            region: 'us-ashburn-1',
            endpoint: 'http://10.0.0.1',
            auth: { type: 'resourcePrincipal' },
          }),
        ),
        /endpoint must be an https:\/\/ URL/,
      );
    });

    it('checks OCI settings', () => {
      const oci = (d: StackedDeployment) => d.spec.oci!;
      assert.match(
        messages(validateDeployment(deployment('deployment-oci.yaml', (d) => delete oci(d).auth.secretRef))),
        /auth\.secretRef is required for type apiKey/,
      );
      assert.match(
        messages(
          validateDeployment(
            deployment(
              'deployment-oci.yaml',
              (d) =>
                (oci(d).infrastructure.autoscaling = {
                  minimumInstanceCount: 3,
                  maximumInstanceCount: 2,
                  cpuUtilizationPercent: 70,
                }),
            ),
          ),
        ),
        /set instanceCount or autoscaling, not both.*|autoscaling\.minimumInstanceCount must not exceed/,
      );
      assert.match(
        messages(
          validateDeployment(
            deployment(
              'deployment-oci.yaml',
              (d) => (oci(d).container.environmentVariables = { PARAMS: '--x' }),
            ),
          ),
        ),
        /must not set PARAMS/,
      );
    });
  });
});
