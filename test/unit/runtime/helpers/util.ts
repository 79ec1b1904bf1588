import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../../../../src/runtime/logger.ts';

/** Resolves true if p is still pending after the event loop had a chance to settle it. */
export async function isPending(p: Promise<unknown>): Promise<boolean> {
  let settled = false;
  p.then(
    () => (settled = true),
    () => (settled = true),
  );
  for (let i = 0; i < 3; i++) await new Promise<void>((resolve) => setImmediate(resolve));
  return !settled;
}

/**
 * Polls cond on every turn of the event loop until it holds; fails after a generous wall-clock
 * bound, which only matters when the code under test is broken (not when the machine is slow).
 */
export async function waitFor(cond: () => boolean, what = 'condition', timeoutMs = 8000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise<void>((resolve) => setTimeout(resolve, 2));
  }
}

/** A logger whose JSON lines are collected in `lines` (parsed). */
export function captureLogger(level = 'debug'): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line.trim() !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
      }
      cb();
    },
  });
  return { logger: createLogger({ level, stream }), lines };
}

/** A logger that drops everything. */
export function silentLogger(): Logger {
  return createLogger({ silent: true });
}
