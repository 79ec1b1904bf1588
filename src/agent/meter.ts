/**
 * Measuring what streams to disk: bytes against a limit, SHA-256 (and MD5, when the remote states
 * one) on the way, so a too-large or corrupt download is stopped without being held in memory. One
 * budget can span several files: the objects under an oci:// prefix share their fetch's maxBytes.
 */
import { createHash, type Hash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { type Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/** Bytes left for one fetch; `exceeded` builds the error to fail with once the limit is crossed. */
export class Budget {
  readonly max: number;
  used = 0;
  readonly exceeded: () => Error;

  constructor(max: number, exceeded: () => Error) {
    this.max = max;
    this.exceeded = exceeded;
  }
}

/** Bytes written so far by one fetch, whatever its source: what its job status shows while it runs. */
export class Progress {
  bytes = 0;
}

export interface MeterOptions {
  /** Also compute the MD5 (OCI states one for single-part objects). */
  md5?: boolean;
  progress?: Progress;
}

/** Counts and hashes what passes, and fails the pipeline as soon as the budget is spent. */
export class Meter extends Transform {
  readonly hash = createHash('sha256');
  readonly md5: Hash | undefined;
  bytes = 0;
  private readonly budget: Budget;
  private readonly progress: Progress | undefined;

  constructor(budget: Budget, opts: MeterOptions = {}) {
    super();
    this.budget = budget;
    this.md5 = opts.md5 === true ? createHash('md5') : undefined;
    this.progress = opts.progress;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length;
    this.budget.used += chunk.length;
    if (this.progress !== undefined) this.progress.bytes += chunk.length;
    if (this.budget.used > this.budget.max) {
      done(this.budget.exceeded());
      return;
    }
    this.hash.update(chunk);
    this.md5?.update(chunk);
    done(null, chunk);
  }
}

export interface Saved {
  /** Hex SHA-256 of the file. */
  sha256: string;
  /** Base64 MD5 (the form OCI's Content-MD5 takes), when asked for. */
  md5?: string;
  bytes: number;
}

/** Streams `source` into the new file `dest` (it must not exist) through a Meter on `budget`. */
export async function saveStream(
  source: Readable,
  dest: string,
  budget: Budget,
  opts: MeterOptions = {},
): Promise<Saved> {
  const meter = new Meter(budget, opts);
  await pipeline(source, meter, createWriteStream(dest, { flags: 'wx', mode: 0o644 }));
  const saved: Saved = { sha256: meter.hash.digest('hex'), bytes: meter.bytes };
  if (meter.md5 !== undefined) saved.md5 = meter.md5.digest('base64');
  return saved;
}
