import assert from 'node:assert/strict';
import { withDefaults } from '../../../src/api/v1alpha1/validate.ts';
import { engineArgs } from '../../../src/backends/engine-args.ts';
import { params } from '../../../src/backends/oci/desired.ts';
import { vllmArgs } from '../../../src/backends/vllm/desired.ts';
import { sampleDeployment, sampleGroup } from '../../support/objects.ts';

const vllm = () => withDefaults('StackedDeployment', sampleDeployment('deployment-vllm.yaml', 'sql-prod'));
const oci = () => withDefaults('StackedDeployment', sampleDeployment('deployment-oci.yaml', 'sql-oci'));

describe('vLLM engine flags (pure, shared by both backends)', () => {
  it('are the same flags in the same order on both backends', () => {
    const g = sampleGroup('sql-assistants');
    const d = vllm();
    d.spec.engine.maxCpuLoras = 8;
    d.spec.engine.extraArgs = ['--enable-prefix-caching'];
    const o = oci();
    o.spec.engine = d.spec.engine;
    const shared = engineArgs(d.spec.engine, g.spec.baseModel);
    assert.deepEqual(vllmArgs(d, g).slice(-shared.length), shared, 'the vllm container ends with them');
    assert.equal(params(o, g), shared.join(' '), 'the oci PARAMS are exactly them');
  });

  it('leaves --max-cpu-loras to vLLM (= max-loras) unless it is set', () => {
    const g = sampleGroup('sql-assistants');
    const e = { ...vllm().spec.engine, extraArgs: ['--enable-prefix-caching'] };
    delete e.maxCpuLoras;
    assert.equal(engineArgs(e, g.spec.baseModel).includes('--max-cpu-loras'), false);
    const args = engineArgs({ ...e, maxCpuLoras: 16 }, g.spec.baseModel);
    assert.deepEqual(args.slice(args.indexOf('--enable-lora')), [
      '--enable-lora',
      '--max-lora-rank',
      String(e.maxLoraRank),
      '--max-loras',
      String(e.maxLoras),
      '--max-cpu-loras',
      '16',
      '--enable-prefix-caching',
    ]);
  });

  it('serves a base without a model OCID under its inference key alone', () => {
    const g = sampleGroup('sql-assistants', (x) => delete x.spec.baseModel.modelId);
    const e = vllm().spec.engine;
    delete e.maxModelLen;
    assert.deepEqual(engineArgs(e, g.spec.baseModel).slice(0, 3), [
      '--served-model-name',
      'basemodel',
      '--enable-lora',
    ]);
  });
});
