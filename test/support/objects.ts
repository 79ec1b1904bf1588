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

/** The compartment and project the OCI emulator's tests and benchmarks use. */
export const OCI_COMPARTMENT = 'ocid1.compartment.oc1..aaaaaaaacompartment';
export const OCI_PROJECT = 'ocid1.datascienceproject.oc1.iad.aaaaaaaaproject';

/**
 * An oci StackedDeployment of group `group` (default: its own name) against the OCI endpoint given:
 * api-key auth from the Secret `oci-api-key`, one VM.GPU.A10.1, the ODSC vLLM container. `oci`
 * replaces those fields one by one (a `container` given replaces the whole container).
 */
export function ociDeployment(
  name: string,
  opts: { endpoint: string; group?: string; namespace?: string; oci?: Record<string, unknown> },
): StackedDeployment {
  return {
    apiVersion: 'serving.stacked.dev/v1alpha1',
    kind: 'StackedDeployment',
    metadata: { name, ...(opts.namespace !== undefined ? { namespace: opts.namespace } : {}) },
    spec: {
      modelGroupRef: { name: opts.group ?? name },
      backend: 'oci',
      engine: { maxModelLen: 4096, maxLoraRank: 64 },
      oci: {
        region: 'us-ashburn-1',
        endpoint: opts.endpoint,
        compartmentId: OCI_COMPARTMENT,
        projectId: OCI_PROJECT,
        auth: { type: 'apiKey', secretRef: { name: 'oci-api-key' } },
        infrastructure: { shape: 'VM.GPU.A10.1', instanceCount: 1 },
        container: { image: 'iad.ocir.io/namespace/odsc-vllm-serving:0.6.4.post1.1', serverPort: 8080 },
        ...opts.oci,
      },
    },
  } as unknown as StackedDeployment;
}
