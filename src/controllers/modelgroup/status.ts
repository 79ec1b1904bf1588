/** Pure: the status a StackedModelGroup should have, given its spec, the facts and the clock. */
import type { ModelGroupStatus, StackedModelGroup } from '../../api/v1alpha1/modelgroup.ts';
import { formatIssues, type ValidationIssue } from '../../api/v1alpha1/validate.ts';
import { withReady } from '../../runtime/ready.ts';
import { groupVerdict, memberStatuses, type GroupFacts } from './checks.ts';

/**
 * Desired status. `issues` are the validator's findings: an object the API server should have refused
 * (stored before a CRD upgrade, say) is reported, never reconciled further.
 */
export function desiredGroupStatus(
  group: StackedModelGroup,
  facts: GroupFacts,
  issues: readonly ValidationIssue[],
  now: Date,
): ModelGroupStatus {
  const generation = group.metadata.generation ?? 0;
  const current = group.status?.conditions ?? [];
  const memberCount = group.spec.members?.length ?? 0;
  if (issues.length > 0) {
    const verdict = { ready: false, reason: 'InvalidSpec', message: formatIssues(issues) };
    return {
      observedGeneration: generation,
      memberCount,
      conditions: withReady(current, verdict, generation, now),
    };
  }
  const members = memberStatuses(group, facts);
  const verdict = groupVerdict(group, members, facts);
  return {
    observedGeneration: generation,
    memberCount,
    conditions: withReady(current, verdict, generation, now),
    members,
  };
}
