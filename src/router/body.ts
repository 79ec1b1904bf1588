/** Reading a request body into memory, up to a limit. */
import type { IncomingMessage } from 'node:http';

/** Prompts are text; 16 MiB is far above any context window's worth. */
export const DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024;

export class BodyTooLargeError extends Error {
  constructor(limit: number) {
    super(`request body exceeds ${limit} bytes`);
  }
}

/**
 * The whole body, or a BodyTooLargeError as soon as it (or its Content-Length) exceeds the limit.
 * Request bodies are buffered because the model field must be rewritten and a signed upstream (OCI)
 * signs over the body before sending it; responses are never buffered.
 */
export async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) throw new BodyTooLargeError(limit);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buf = chunk as Buffer;
    size += buf.length;
    if (size > limit) throw new BodyTooLargeError(limit);
    chunks.push(buf);
  }
  return Buffer.concat(chunks);
}
