/**
 * Pure checks of a StackedDeployment against its StackedModelGroup: what admission cannot see because
 * it spans two objects (rank above the engine's limit, OCI model ids, experiments naming members).
 */
import type { StackedDeployment } from '../../api/v1alpha1/deployment.ts';
import type { StackedModelGroup } from '../../api/v1alpha1/modelgroup.ts';
import { findCondition } from '../../runtime/conditions.ts';
import type { Verdict } from '../../runtime/ready.ts';
import { adapterSource, baseSource, readsFromOci } from '../../backends/vllm/desired.ts';

const MAX_NAMED = 5;

function listNames(names: readonly string[]): string {
  const shown = names.slice(0, MAX_NAMED).join(', ');
  return names.length > MAX_NAMED ? `${shown} and ${names.length - MAX_NAMED} more` : shown;
}

/**
 * The first problem that keeps the deployment from being served, in the order a user would fix them:
 * the group must exist and be valid, then fit this deployment's engine and backend.
 */
export function groupProblem(
  d: StackedDeployment,
  group: StackedModelGroup | undefined,
): Verdict | undefined {
  const groupName = d.spec.modelGroupRef.name;
  if (group === undefined) {
    return {
      ready: false,
      reason: 'ModelGroupNotFound',
      message: `StackedModelGroup "${groupName}" not found in namespace ${d.metadata.namespace ?? ''}`,
    };
  }
  const groupReady = findCondition(group.status?.conditions, 'Ready');
  if (groupReady?.status === 'False') {
    return {
      ready: false,
      reason: 'ModelGroupNotReady',
      message: `StackedModelGroup "${groupName}" is not ready: ${groupReady.message}`,
    };
  }
  const members = group.spec.members ?? [];
  const maxRank = d.spec.engine.maxLoraRank;
  const tooHigh = members.filter((m) => m.rank !== undefined && m.rank > maxRank);
  if (tooHigh.length > 0) {
    return {
      ready: false,
      reason: 'RankTooHigh',
      message:
        `member ${listNames(tooHigh.map((m) => `${m.inferenceKey} (rank ${m.rank ?? 0})`))} ` +
        `exceeds engine.maxLoraRank ${maxRank}`,
    };
  }
  if (d.spec.backend === 'oci') {
    const missing = [group.spec.baseModel, ...members]
      .filter((m) => m.modelId === undefined)
      .map((m) => m.inferenceKey);
    if (missing.length > 0) {
      return {
        ready: false,
        reason: 'ModelIdMissing',
        message: `the oci backend needs modelId on every model; missing on ${listNames(missing)}`,
      };
    }
  }
  if (d.spec.backend === 'vllm') {
    // OCI Object Storage and the Model Catalog are read by the fetch agent in each pod, with the
    // region and credentials of spec.vllm.oci.
    const base = group.spec.baseModel;
    const fromOci = [base, ...members].filter((m) => readsFromOci(m.source)).map((m) => m.inferenceKey);
    if (fromOci.length > 0 && d.spec.vllm?.oci === undefined) {
      return {
        ready: false,
        reason: 'OciAccessMissing',
        message:
          `${listNames(fromOci)} ${fromOci.length === 1 ? 'reads' : 'read'} from OCI (oci:// or modelCatalog): ` +
          'set spec.vllm.oci (region and auth) so the fetch agent can reach it',
      };
    }
    // Defensive: the schema admits no other source today, but a new kind must not reach the pods.
    const unsupported = [
      ...(base.source !== undefined && baseSource(base) === undefined ? [base.inferenceKey] : []),
      ...members
        .filter((m) => m.source !== undefined && adapterSource(m) === undefined)
        .map((m) => m.inferenceKey),
    ];
    if (unsupported.length > 0) {
      return {
        ready: false,
        reason: 'SourceNotSupported',
        message: `the vllm backend cannot read the source of ${listNames(unsupported)}`,
      };
    }
  }
  const keys = new Set(members.map((m) => m.inferenceKey));
  for (const e of d.spec.experiments ?? []) {
    if (keys.has(e.name) || e.name === group.spec.baseModel.inferenceKey) {
      return {
        ready: false,
        reason: 'ExperimentInvalid',
        message: `experiment ${e.name}: its name is an inference key of group "${groupName}"`,
      };
    }
    const unknown = e.variants.map((v) => v.inferenceKey).filter((k) => !keys.has(k));
    if (unknown.length > 0) {
      return {
        ready: false,
        reason: 'ExperimentInvalid',
        message: `experiment ${e.name}: variant ${listNames(unknown)} is not a member of group "${groupName}"`,
      };
    }
  }
  return undefined;
}
