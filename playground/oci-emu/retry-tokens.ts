// opc-retry-token: a create's successful answer is kept 24 h under its token; the same token with the
// same operation and body gets that answer again (no second resource), with anything else 409.

import { createHash } from 'node:crypto';
import type { Reply } from './http.ts';
import { isRecord } from './schema.ts';

const TTL_MS = 24 * 60 * 60 * 1000;

interface Stored {
  operation: string;
  bodyHash: string;
  reply: Reply;
  expires: number;
}

function canonical(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(canonical);
  if (isRecord(v)) {
    return Object.fromEntries(
      Object.keys(v)
        .sort()
        .map((k) => [k, canonical(v[k])]),
    );
  }
  return v;
}

/** Equal for equal JSON whatever the key order (the service compares requests, not bytes). */
export function bodyHash(body: unknown): string {
  return createHash('sha256')
    .update(JSON.stringify(canonical(body ?? null)))
    .digest('hex');
}

export class RetryTokens {
  readonly #stored = new Map<string, Stored>();

  get(token: string, now: number): Stored | undefined {
    const s = this.#stored.get(token);
    if (s && s.expires <= now) {
      this.#stored.delete(token);
      return undefined;
    }
    return s;
  }

  put(token: string, operation: string, hash: string, reply: Reply, now: number): void {
    this.#stored.set(token, {
      operation,
      bodyHash: hash,
      reply: structuredClone(reply),
      expires: now + TTL_MS,
    });
  }
}
