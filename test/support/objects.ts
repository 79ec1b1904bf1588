// Sample objects for tests, read from deploy/samples so the tests exercise what users copy.
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { load } from 'js-yaml';
import type { StackedDeployment } from '../../src/api/v1alpha1/deployment.ts';
import type { StackedModelGroup } from '../../src/api/v1alpha1/modelgroup.ts';

export const samplesDir = resolve(import.meta.dirname, '..', '..', 'deploy', 'samples');

function sample(file: string): unknown {
  return load(readFileSync(join(samplesDir, file), 'utf8'));
}

/** The sample group, renamed and changed by `mutate`. */
export function sampleGroup(
  name: string,
  mutate: (g: StackedModelGroup) => void = () => undefined,
): StackedModelGroup {
  const g = sample('modelgroup.yaml') as StackedModelGroup;
  g.metadata.name = name;
  mutate(g);
  return g;
}

export function sampleDeployment(
  file: 'deployment-vllm.yaml' | 'deployment-oci.yaml',
  name: string,
  mutate: (d: StackedDeployment) => void = () => undefined,
): StackedDeployment {
  const d = sample(file) as StackedDeployment;
  d.metadata.name = name;
  mutate(d);
  return d;
}

/**
 * A read-only claim for adapter weights (the test kubelet mounts `<pvcRoot>/<namespace>/<name>`); no
 * namespace: the caller applies it in its own.
 */
export function adaptersClaim(name = 'adapters', namespace?: string) {
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: { name, ...(namespace !== undefined ? { namespace } : {}) },
    spec: { accessModes: ['ReadOnlyMany'], resources: { requests: { storage: '1Gi' } } },
  };
}
