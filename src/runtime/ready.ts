/** The summary `Ready` condition both controllers set, from a verdict their pure checks return. */
import { setCondition, type Condition } from './conditions.ts';

export const READY = 'Ready';

/** Whether an object is ready, and the reason and message a user reads in its condition. */
export interface Verdict {
  ready: boolean;
  reason: string;
  message: string;
}

/** The conditions with Ready set from the verdict; lastTransitionTime moves only on a flip. */
export function withReady(
  current: readonly Condition[],
  verdict: Verdict,
  generation: number,
  now: Date,
): Condition[] {
  return setCondition(
    current,
    {
      type: READY,
      status: verdict.ready ? 'True' : 'False',
      reason: verdict.reason,
      message: verdict.message,
      observedGeneration: generation,
    },
    now,
  );
}

const MAX_NAMED = 5;

/** Names in a condition message: the first few and a count, so a message stays readable. */
export function listNames(names: readonly string[]): string {
  const shown = names.slice(0, MAX_NAMED).join(', ');
  return names.length > MAX_NAMED ? `${shown} and ${names.length - MAX_NAMED} more` : shown;
}
