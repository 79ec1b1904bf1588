// Streaming answers (`stream: true`) framed exactly as vLLM 0.11 frames them; the sources and
// commits are in test/fixtures/vllm-streaming.md. In short: a Starlette StreamingResponse with
// media type text/event-stream (so `content-type: text/event-stream; charset=utf-8`, chunked, no
// content-length), each event `data: <json>\n\n`, one chunk per generated token, the finish_reason
// on the chunk of the last token, an optional usage chunk with `choices: []`, then `data: [DONE]\n\n`.
// Completions chunks are dumped in full (every field, nulls included); chat chunks with
// exclude_unset, so they hold only the fields vLLM's code sets, in the model's field order.

import { once } from 'node:events';
import type { ServerResponse } from 'node:http';
import type { CompletionKind } from './completions.ts';
import type { FinishReason } from './metrics.ts';

export const SSE_CONTENT_TYPE = 'text/event-stream; charset=utf-8';

/** Sends the 200 and its headers at once: vLLM does so before the request is even scheduled. */
export function startStream(res: ServerResponse): void {
  res.writeHead(200, { 'content-type': SSE_CONTENT_TYPE });
  res.flushHeaders();
}

/**
 * Writes one event; when the socket's buffer is full, waits for it to drain (a slow reader slows
 * generation down, as in uvicorn). Rejects when `signal` is aborted meanwhile.
 */
export async function sendEvent(res: ServerResponse, data: string, signal: AbortSignal): Promise<void> {
  if (res.write(`data: ${data}\n\n`)) return;
  await once(res, 'drain', { signal });
}

export const DONE = '[DONE]';

/** Python's json.dumps of a str: ASCII only, with its separators. */
function pyStr(s: string): string {
  return JSON.stringify(s).replace(
    /[\u007f-\uffff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/**
 * create_streaming_error_response: `json.dumps(ErrorResponse(...).model_dump())`, so unlike the
 * chunks it has Python's `", "` and `": "` separators. vLLM sends it as one more event, then [DONE].
 */
export function streamingError(message: string, type = 'BadRequestError', code = 400): string {
  return `{"error": {"message": ${pyStr(message)}, "type": ${pyStr(type)}, "param": null, "code": ${code}}}`;
}

/** What every chunk of one streamed answer shares. */
export interface StreamContext {
  kind: CompletionKind;
  id: string;
  created: number;
  model: string;
  /** stream_options.include_usage: a last chunk with the usage and no choices. */
  includeUsage: boolean;
  /** stream_options.continuous_usage_stats: the usage so far in every chunk. */
  continuousUsage: boolean;
  /** Prompt tokens per prompt (choice). */
  promptTokens: number[];
}

/** UsageInfo with only the fields vLLM sets (what exclude_unset or exclude_none leave). */
function usageSet(prompt: number, completion: number): Record<string, number> {
  return { prompt_tokens: prompt, total_tokens: prompt + completion, completion_tokens: completion };
}

/** CompletionStreamResponse, dumped with exclude_unset=False: every field, nulls included. */
export function completionChunk(
  ctx: StreamContext,
  index: number,
  text: string,
  finishReason: FinishReason | null,
  completionTokens: number,
): string {
  const prompt = ctx.promptTokens[index] ?? 0;
  return JSON.stringify({
    id: ctx.id,
    object: 'text_completion',
    created: ctx.created,
    model: ctx.model,
    choices: [
      {
        index,
        text,
        logprobs: null,
        finish_reason: finishReason,
        stop_reason: null,
        prompt_token_ids: null,
        token_ids: null,
      },
    ],
    usage: ctx.continuousUsage
      ? { ...usageSet(prompt, completionTokens), prompt_tokens_details: null }
      : null,
  });
}

/** The first chat chunk, sent with the first token's output: the role and empty content. */
export function chatRoleChunk(ctx: StreamContext): string {
  const prompt = ctx.promptTokens[0] ?? 0;
  return JSON.stringify({
    id: ctx.id,
    object: 'chat.completion.chunk',
    created: ctx.created,
    model: ctx.model,
    choices: [{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }],
    ...(ctx.continuousUsage ? { usage: usageSet(prompt, 0) } : {}),
    prompt_token_ids: null,
  });
}

/** A chat token's chunk; the last one also carries finish_reason and stop_reason. */
export function chatContentChunk(
  ctx: StreamContext,
  content: string,
  finishReason: FinishReason | null,
  completionTokens: number,
): string {
  const prompt = ctx.promptTokens[0] ?? 0;
  const choice =
    finishReason === null
      ? { index: 0, delta: { content }, logprobs: null, finish_reason: null, token_ids: null }
      : {
          index: 0,
          delta: { content },
          logprobs: null,
          finish_reason: finishReason,
          stop_reason: null,
          token_ids: null,
        };
  return JSON.stringify({
    id: ctx.id,
    object: 'chat.completion.chunk',
    created: ctx.created,
    model: ctx.model,
    choices: [choice],
    ...(ctx.continuousUsage ? { usage: usageSet(prompt, completionTokens) } : {}),
  });
}

/** The last chunk when include_usage: no choices, the totals (exclude_none drops the nulls). */
export function usageChunk(ctx: StreamContext, completionTokens: number): string {
  const prompt = ctx.promptTokens.reduce((a, b) => a + b, 0);
  return JSON.stringify({
    id: ctx.id,
    object: ctx.kind === 'completion' ? 'text_completion' : 'chat.completion.chunk',
    created: ctx.created,
    model: ctx.model,
    choices: [],
    usage: usageSet(prompt, completionTokens),
  });
}
