/**
 * Pure checks of a StackedModelGroup against facts the schema cannot see (which PVCs exist, which
 * deployments serve it). The gatherer in reconciler.ts collects the facts; nothing here does I/O.
 */
import type { StackedDeployment } from '../../api/v1alpha1/deployment.ts';
import type { MemberStatus, ModelSource, StackedModelGroup } from '../../api/v1alpha1/modelgroup.ts';
import type { Verdict } from '../../runtime/ready.ts';

/** What the reconciler found in the cluster, as plain data. */
export interface GroupFacts {
  /** Names of the PersistentVolumeClaims that exist in the group's namespace. */
  claims: ReadonlySet<string>;
  /** StackedDeployments in the namespace whose modelGroupRef names this group. */
  deployments: readonly StackedDeployment[];
}

/** Why a model's source cannot be used, or undefined when it can. */
export function sourceProblem(
  source: ModelSource | undefined,
  claims: ReadonlySet<string>,
): string | undefined {
  if (source?.pvc && !claims.has(source.pvc.claimName)) {
    return `PersistentVolumeClaim "${source.pvc.claimName}" not found`;
  }
  return undefined;
}

/** Deployments that report the member loaded (on every ready replica), sorted by name. */
export function servedBy(inferenceKey: string, deployments: readonly StackedDeployment[]): string[] {
  return deployments
    .filter((d) => d.status?.adapters?.some((a) => a.inferenceKey === inferenceKey && a.state === 'Loaded'))
    .map((d) => d.metadata.name ?? '')
    .sort();
}

/** One status entry per member, in spec order. */
export function memberStatuses(group: StackedModelGroup, facts: GroupFacts): MemberStatus[] {
  return (group.spec.members ?? []).map((m) => {
    const problem = sourceProblem(m.source, facts.claims);
    const entry: MemberStatus = { inferenceKey: m.inferenceKey, valid: problem === undefined };
    if (m.modelId !== undefined) entry.modelId = m.modelId;
    if (problem !== undefined) entry.message = problem;
    const served = servedBy(m.inferenceKey, facts.deployments);
    if (served.length > 0) entry.servedBy = served;
    return entry;
  });
}

export function groupVerdict(
  group: StackedModelGroup,
  members: readonly MemberStatus[],
  facts: GroupFacts,
): Verdict {
  const baseProblem = sourceProblem(group.spec.baseModel.source, facts.claims);
  if (baseProblem !== undefined) {
    return {
      ready: false,
      reason: 'SourceNotFound',
      message: `baseModel ${group.spec.baseModel.inferenceKey}: ${baseProblem}`,
    };
  }
  const invalid = members.filter((m) => !m.valid);
  if (invalid.length > 0) {
    const shown = invalid.slice(0, 5).map((m) => `member ${m.inferenceKey}: ${m.message ?? 'invalid'}`);
    const more = invalid.length > 5 ? `; and ${invalid.length - 5} more` : '';
    return { ready: false, reason: 'MemberInvalid', message: shown.join('; ') + more };
  }
  const n = members.length;
  return {
    ready: true,
    reason: 'Valid',
    message: `base model ${group.spec.baseModel.inferenceKey} and ${n} member${n === 1 ? '' : 's'} are valid`,
  };
}
