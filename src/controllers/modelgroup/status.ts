/** Pure: the status a StackedModelGroup should have, given its spec, the facts and the clock. */
import type { ModelGroupStatus, StackedModelGroup } from '../../api/v1alpha1/modelgroup.ts';
import { formatIssues, type ValidationIssue } from '../../api/v1alpha1/validate.ts';
import { setCondition, type Condition } from '../../runtime/conditions.ts';
import { groupVerdict, memberStatuses, type GroupFacts } from './checks.ts';

export const READY = 'Ready';

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
  const current = (group.status?.conditions ?? []) as Condition[];
  if (issues.length > 0) {
    return {
      observedGeneration: generation,
      memberCount: group.spec.members?.length ?? 0,
      conditions: setCondition(
        current,
        {
          type: READY,
          status: 'False',
          reason: 'InvalidSpec',
          message: formatIssues(issues),
          observedGeneration: generation,
        },
        now,
      ),
    };
  }
  const members = memberStatuses(group, facts);
  const verdict = groupVerdict(group, members, facts);
  return {
    observedGeneration: generation,
    memberCount: members.length,
    conditions: setCondition(
      current,
      {
        type: READY,
        status: verdict.ready ? 'True' : 'False',
        reason: verdict.reason,
        message: verdict.message,
        observedGeneration: generation,
      },
      now,
    ),
    members,
  };
}
