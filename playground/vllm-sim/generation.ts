// Time in the engine: one engine step per generated token, every unfinished choice of a request
// advancing by one token per step (the way vLLM batches the prompts of one completions request).

import { setTimeout as delay } from 'node:timers/promises';
import type { PlannedChoice } from './completions.ts';
import type { FinishReason } from './metrics.ts';

export interface TokenTiming {
  /** Extra time before the first token (the prefill). */
  firstTokenMs: number;
  /** Time of each engine step, the first one included. */
  tokenMs: number;
}

export interface TokenOut {
  /** The choice (prompt) index. */
  index: number;
  token: string;
  /** Set on the choice's last token. */
  finishReason: FinishReason | null;
  /** Tokens generated for this choice so far, this one included. */
  generated: number;
}

/**
 * Yields each step's tokens after the step's time has passed. With zero times nothing waits (the
 * default keeps tests that never look at timing fast). Throws the signal's reason once aborted.
 */
export async function* engineSteps(
  choices: readonly PlannedChoice[],
  timing: TokenTiming,
  signal: AbortSignal,
): AsyncGenerator<TokenOut[]> {
  const steps = Math.max(0, ...choices.map((c) => c.tokens.length));
  for (let k = 0; k < steps; k++) {
    const wait = (k === 0 ? timing.firstTokenMs : 0) + timing.tokenMs;
    if (wait > 0) await delay(wait, undefined, { signal });
    signal.throwIfAborted();
    const out: TokenOut[] = [];
    choices.forEach((c, index) => {
      const token = c.tokens[k];
      if (token === undefined) return;
      const last = k === c.tokens.length - 1;
      out.push({ index, token, finishReason: last ? c.finishReason : null, generated: k + 1 });
    });
    yield out;
  }
}
