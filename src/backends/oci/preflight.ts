/** Pure: what the oci backend needs of a group that admission cannot see. */
import type { StackedModelGroup } from '../../api/v1alpha1/modelgroup.ts';
import { listNames, type Verdict } from '../../runtime/ready.ts';

/** OCI addresses every model by its OCID: the group must name one for each. */
export function ociPreflight(group: StackedModelGroup): Verdict | undefined {
  const missing = [group.spec.baseModel, ...(group.spec.members ?? [])]
    .filter((m) => m.modelId === undefined)
    .map((m) => m.inferenceKey);
  if (missing.length === 0) return undefined;
  return {
    ready: false,
    reason: 'ModelIdMissing',
    message: `the oci backend needs modelId on every model; missing on ${listNames(missing)}`,
  };
}
