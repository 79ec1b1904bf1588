/**
 * Pure: the token usage of a response, read from the bytes on their way to the client (they pass
 * through unchanged; this only watches).
 *
 * A JSON response carries `usage` at its top level. An event stream (`stream: true`) carries it in
 * the chunk vLLM sends last when the request set `stream_options.include_usage` (and in every chunk
 * with `continuous_usage_stats`, cumulative, so the last one counts); other chunks have
 * `"usage": null` or none.
 */

export interface Usage {
  promptTokens: number;
  completionTokens: number;
}

/** A non-streaming body larger than this is not kept for its usage (completions are far smaller). */
const MAX_JSON_BYTES = 8 * 1024 * 1024;
/** An event line longer than this is skipped rather than held. */
const MAX_LINE_BYTES = 1024 * 1024;
/**
 * A usage object, as vLLM's chunks write it (pydantic's compact JSON; Python's json.dumps spacing
 * too): the bytes are searched for these before any is decoded or split into lines.
 */
const USAGE_OBJECT = [Buffer.from('"usage":{'), Buffer.from('"usage": {')];
const EMPTY = Buffer.alloc(0);

function usageOf(v: unknown): Usage | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const u = (v as { usage?: unknown }).usage;
  if (typeof u !== 'object' || u === null) return undefined;
  const { prompt_tokens: p, completion_tokens: c } = u as {
    prompt_tokens?: unknown;
    completion_tokens?: unknown;
  };
  if (typeof p !== 'number' || !Number.isFinite(p) || p < 0) return undefined;
  return { promptTokens: p, completionTokens: typeof c === 'number' && Number.isFinite(c) && c >= 0 ? c : 0 };
}

function parse(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

export class UsageReader {
  private readonly sse: boolean;
  private readonly chunks: Buffer[] = [];
  private size = 0;
  private overflow = false;
  /** SSE: the incomplete line at the end of what was seen so far. */
  private partial: Buffer = EMPTY;
  private last: Usage | undefined;

  /** sse: the response is an event stream (text/event-stream) rather than one JSON document. */
  constructor(sse: boolean) {
    this.sse = sse;
  }

  push(chunk: Buffer): void {
    if (!this.sse) {
      this.size += chunk.length;
      if (this.size > MAX_JSON_BYTES) {
        this.overflow = true;
        this.chunks.length = 0;
      }
      if (!this.overflow) this.chunks.push(chunk);
      return;
    }
    const data = this.partial.length === 0 ? chunk : Buffer.concat([this.partial, chunk]);
    const end = data.lastIndexOf(0x0a);
    // Copied: the chunk may be a view of a socket buffer that is reused.
    const rest = data.subarray(end + 1);
    this.partial = rest.length === 0 || rest.length > MAX_LINE_BYTES ? EMPTY : Buffer.from(rest);
    if (end < 0) return;
    // Most chunks carry no usage, or (vLLM's completion chunks dump every field) `"usage":null`:
    // they are passed over without decoding, since this runs for every token of every stream.
    const whole = data.subarray(0, end);
    if (!USAGE_OBJECT.some((u) => whole.includes(u))) return;
    for (const line of whole.toString('utf8').split('\n')) this.line(line);
  }

  /** The usage of the whole response, once it has ended. */
  end(): Usage | undefined {
    if (!this.sse)
      return this.overflow ? undefined : usageOf(parse(Buffer.concat(this.chunks).toString('utf8')));
    if (this.partial.length > 0) this.line(this.partial.toString('utf8'));
    this.partial = EMPTY;
    return this.last;
  }

  private line(raw: string): void {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (!line.startsWith('data:')) return;
    if (!line.includes('"usage"') || line.includes('"usage":null') || line.includes('"usage": null')) return;
    const usage = usageOf(parse(line.slice(5).trim()));
    if (usage !== undefined) this.last = usage;
  }
}
