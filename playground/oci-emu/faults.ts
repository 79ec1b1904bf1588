// Injected failures. Probabilistic ones strike before the operation runs (no side effect);
// deterministic ones (`once`) strike before it, or after it was performed (`afterCommit`: the lost
// response that retry tokens exist for). Status 0 destroys the socket without an answer.

import { defaultCodeFor } from './errors.ts';
import type { FaultController, FaultSpec, OnceOptions } from './types.ts';
import { seeded } from '../seeded.ts';

export interface FaultHit {
  status: number;
  code: string;
  message: string;
}

interface OnceEntry {
  operation: string;
  status: number;
  remaining: number;
  afterCommit: boolean;
  code: string | undefined;
}

const DEFAULT_STATUSES = [429, 500, 503];

function checkStatus(status: number, allowZero: boolean): void {
  const ok = Number.isInteger(status) && ((status >= 400 && status <= 599) || (allowZero && status === 0));
  if (!ok) throw new Error(`fault status must be 400..599${allowZero ? ' or 0' : ''}, got ${status}`);
}

export class Faults implements FaultController {
  readonly #operations: ReadonlySet<string>;
  #spec: FaultSpec | undefined;
  #random: () => number = Math.random;
  #queue: OnceEntry[] = [];

  constructor(operations: ReadonlySet<string>) {
    this.#operations = operations;
  }

  #checkOperation(op: string): void {
    // A misspelt operation would make a fault test pass vacuously.
    if (!this.#operations.has(op))
      throw new Error(`unknown operation '${op}': one of ${[...this.#operations].join(', ')}`);
  }

  set(f: FaultSpec): void {
    if (!(f.rate >= 0 && f.rate <= 1)) throw new Error(`fault rate must be within 0..1, got ${f.rate}`);
    for (const s of f.statuses ?? []) checkStatus(s, false);
    if (f.statuses?.length === 0) throw new Error('fault statuses must not be empty');
    for (const op of f.operations ?? []) this.#checkOperation(op);
    this.#spec = { ...f };
    this.#random = f.seed === undefined ? Math.random : seeded(f.seed);
  }

  once(operation: string, status: number, opts: OnceOptions = {}): void {
    this.#checkOperation(operation);
    checkStatus(status, true);
    const count = opts.count ?? 1;
    if (!Number.isInteger(count) || count < 1)
      throw new Error(`fault count must be a positive integer, got ${count}`);
    this.#queue.push({
      operation,
      status,
      remaining: count,
      afterCommit: opts.afterCommit ?? false,
      code: opts.code,
    });
  }

  clear(): void {
    this.#spec = undefined;
    this.#queue = [];
  }

  #matches(op: string): FaultSpec | undefined {
    const s = this.#spec;
    return s && (s.operations === undefined || s.operations.includes(op)) ? s : undefined;
  }

  latencyFor(op: string): number {
    return this.#matches(op)?.latencyMs ?? 0;
  }

  #take(e: OnceEntry, when: string): FaultHit {
    e.remaining--;
    if (e.remaining === 0) this.#queue.splice(this.#queue.indexOf(e), 1);
    return {
      status: e.status,
      code: e.code ?? defaultCodeFor(e.status),
      message: `Injected fault on ${e.operation} ${when}`,
    };
  }

  /** The fault to answer with instead of running `op`, if any. */
  before(op: string): FaultHit | undefined {
    const head = this.#queue.find((e) => e.operation === op);
    if (head && !head.afterCommit) return this.#take(head, 'before it ran');
    const s = this.#matches(op);
    if (s && this.#random() < s.rate) {
      const statuses = s.statuses ?? DEFAULT_STATUSES;
      const status = statuses[Math.floor(this.#random() * statuses.length)] ?? 500;
      return { status, code: defaultCodeFor(status), message: `Injected fault on ${op} (rate ${s.rate})` };
    }
    return undefined;
  }

  /** The fault to answer with after `op` succeeded, if any (a failed operation leaves it queued). */
  after(op: string): FaultHit | undefined {
    const head = this.#queue.find((e) => e.operation === op);
    return head?.afterCommit ? this.#take(head, 'after it was performed') : undefined;
  }
}
