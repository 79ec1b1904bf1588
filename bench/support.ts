/** What every benchmark prints and waits with. */
import { setTimeout as sleep } from 'node:timers/promises';

export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
export const fmt = (xs: number[]) => xs.map((x) => x.toFixed(0)).join(', ');

/** Polls `check` every `everyMs` until it holds; the poll interval bounds the timing error. */
export async function until(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 60_000,
  everyMs = 5,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}
