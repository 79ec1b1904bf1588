// POST /v1/completions and /v1/chat/completions: request checks, what is generated, and the
// non-streaming answer (streaming chunks: stream.ts). Generation is deterministic: the text names the
// model the request addressed (a base name or an adapter), so tests can tell adapters apart.
// "Tokens" are whitespace-separated words; a generated token is a word with its leading space.

import { randomBytes } from 'node:crypto';
import {
  type ErrorBody,
  type FieldCheck,
  type FieldSpec,
  type FieldError,
  errorBody,
  isBool,
  isInt,
  isNumber,
  isStr,
  nullable,
} from './http.ts';
import type { FinishReason } from './metrics.ts';

export type CompletionKind = 'completion' | 'chat';

const isPrompt: FieldCheck = (v) => {
  const ok =
    typeof v === 'string' ||
    (Array.isArray(v) &&
      v.length > 0 &&
      (v.every((x) => typeof x === 'string') ||
        v.every((x) => Number.isInteger(x)) ||
        v.every((x) => Array.isArray(x) && x.every((y) => Number.isInteger(y)))));
  return ok
    ? undefined
    : { type: 'union_type', msg: 'Input should be a string, a list of strings or a list of token ids' };
};

const isMessages: FieldCheck = (v) => {
  const ok =
    Array.isArray(v) &&
    v.every(
      (m) =>
        typeof m === 'object' &&
        m !== null &&
        !Array.isArray(m) &&
        typeof (m as { role?: unknown }).role === 'string',
    );
  return ok ? undefined : { type: 'list_type', msg: 'Input should be a valid list of messages with a role' };
};

// vLLM's StreamOptions: both fields `bool | None`.
const isStreamOptions: FieldCheck = (v) => {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    return { type: 'model_type', msg: 'Input should be a valid dictionary or instance of StreamOptions' };
  }
  const o = v as Record<string, unknown>;
  for (const k of ['include_usage', 'continuous_usage_stats']) {
    const bad = k in o ? nullable(isBool)(o[k]) : undefined;
    if (bad) return bad;
  }
  return undefined;
};

const common: Record<string, FieldSpec> = {
  model: { required: false, check: nullable(isStr) },
  max_tokens: { required: false, check: nullable(isInt) },
  temperature: { required: false, check: nullable(isNumber) },
  stream: { required: false, check: nullable(isBool) },
  stream_options: { required: false, check: nullable(isStreamOptions) },
};

export const COMPLETION_SPEC: Record<string, FieldSpec> = {
  ...common,
  prompt: { required: true, check: isPrompt },
};

export const CHAT_SPEC: Record<string, FieldSpec> = {
  ...common,
  messages: { required: true, check: isMessages },
  max_completion_tokens: { required: false, check: nullable(isInt) },
};

function words(text: string): number {
  return text.split(/\s+/).filter((w) => w !== '').length;
}

function contentWords(content: unknown): number {
  if (typeof content === 'string') return words(content);
  if (Array.isArray(content)) {
    return content.reduce<number>((n, part) => {
      const text = (part as { text?: unknown } | null)?.text;
      return n + (typeof text === 'string' ? words(text) : 0);
    }, 0);
  }
  return 0;
}

/** The prompts of a request (one per choice) with their token counts. */
export function promptTokens(kind: CompletionKind, body: Record<string, unknown>): number[] {
  if (kind === 'chat') {
    const msgs = body.messages as { content?: unknown }[];
    return [msgs.reduce((n, m) => n + contentWords(m.content), 0)];
  }
  const p = body.prompt;
  if (typeof p === 'string') return [words(p)];
  const list = p as unknown[];
  if (list.every((x) => typeof x === 'number')) return [list.length];
  return list.map((x) => (typeof x === 'string' ? words(x) : (x as unknown[]).length));
}

/** Checks vLLM makes after the model check; undefined when the request can be served. */
export function checkRequest(
  kind: CompletionKind,
  body: Record<string, unknown>,
  prompts: number[],
  maxModelLen: number,
): ErrorBody | undefined {
  const requested = requestedMaxTokens(kind, body);
  if (requested !== undefined && requested < 1) {
    return errorBody(
      `max_tokens must be at least 1, got ${requested}.`,
      'BadRequestError',
      400,
      'max_tokens',
    );
  }
  for (const input of prompts) {
    if (input >= maxModelLen) {
      return errorBody(
        `This model's maximum context length is ${maxModelLen} tokens. However, your request has ${input} input tokens. Please reduce the length of the input messages.`,
        'BadRequestError',
        400,
        'input_tokens',
      );
    }
    if (requested !== undefined && input + requested > maxModelLen) {
      return errorBody(
        `'max_tokens' or 'max_completion_tokens' is too large: ${requested}. This model's maximum context length is ${maxModelLen} tokens and your request has ${input} input tokens (${requested} > ${maxModelLen} - ${input}).`,
        'BadRequestError',
        400,
        'max_tokens',
      );
    }
  }
  return undefined;
}

function requestedMaxTokens(kind: CompletionKind, body: Record<string, unknown>): number | undefined {
  const pick = (v: unknown): number | undefined => (typeof v === 'number' ? v : undefined);
  if (kind === 'chat') return pick(body.max_completion_tokens) ?? pick(body.max_tokens);
  // /v1/completions: max_tokens defaults to 16; null means "up to the context length".
  return body.max_tokens === undefined ? 16 : pick(body.max_tokens);
}

/** Python's truthiness of a JSON value, as vLLM's `data.get(...)` checks see it. */
function truthy(v: unknown): boolean {
  if (v === null || v === undefined || v === false || v === 0 || v === '') return false;
  if (Array.isArray(v)) return v.length > 0;
  if (typeof v === 'object') return Object.keys(v).length > 0;
  return true;
}

/**
 * The request model's `validate_stream_options` (a pydantic "before" validator, so it runs ahead of
 * the field checks and is the only error when it fails): stream_options without stream is a 400.
 * An empty `{}` passes, as it is falsy in Python.
 */
export function streamOptionsError(body: unknown): FieldError | undefined {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return undefined;
  const o = body as Record<string, unknown>;
  if (!truthy(o.stream_options) || truthy(o.stream)) return undefined;
  return {
    type: 'value_error',
    loc: 'body',
    msg: 'Value error, Stream options can only be defined when `stream=True`.',
    input: body,
  };
}

/** should_include_usage: StreamOptions.include_usage defaults to True, continuous_usage_stats to False. */
export function usageOptions(body: Record<string, unknown>): { include: boolean; continuous: boolean } {
  const so = body.stream_options;
  if (typeof so !== 'object' || so === null) return { include: false, continuous: false };
  const o = so as { include_usage?: boolean | null; continuous_usage_stats?: boolean | null };
  const include = 'include_usage' in o ? o.include_usage === true : true;
  return { include, continuous: include && o.continuous_usage_stats === true };
}

export interface PlannedChoice {
  /** The generated tokens in order; joined they are the choice's text. */
  tokens: string[];
  finishReason: FinishReason;
}

/** What the engine generates for each prompt (one choice per prompt), before any time passes. */
export function plan(
  kind: CompletionKind,
  body: Record<string, unknown>,
  prompts: number[],
  addressed: string,
  maxModelLen: number,
): PlannedChoice[] {
  const words = `${addressed}: simulated completion`.split(' ');
  const requested = requestedMaxTokens(kind, body);
  // vLLM's `ignore_eos` sampling parameter: generate up to the limit whatever the model would stop
  // at (benchmarks use it for fixed-length outputs); here the text then repeats its last word.
  const ignoreEos = body.ignore_eos === true;
  return prompts.map((input) => {
    const limit = Math.min(requested ?? Infinity, maxModelLen - input);
    const out = ignoreEos
      ? Array.from({ length: limit }, (_, i) => words[Math.min(i, words.length - 1)] ?? '')
      : words.slice(0, limit);
    return {
      tokens: out.map((w, i) => (i === 0 ? w : ` ${w}`)),
      finishReason: ignoreEos || out.length < words.length ? 'length' : 'stop',
    };
  });
}

/** UsageInfo as vLLM dumps it in full (prompt_tokens_details null). */
export function usageInfo(promptTokens: number, completionTokens: number): Record<string, unknown> {
  return {
    prompt_tokens: promptTokens,
    total_tokens: promptTokens + completionTokens,
    completion_tokens: completionTokens,
    prompt_tokens_details: null,
  };
}

/** A request id like vLLM's (`cmpl-`/`chatcmpl-` and a uuid4 hex). */
export function requestId(kind: CompletionKind): string {
  return `${kind === 'completion' ? 'cmpl' : 'chatcmpl'}-${randomBytes(16).toString('hex')}`;
}

/**
 * The non-streaming answer. `responseModel` is what vLLM puts in `model`: the adapter name, or the
 * FIRST served name for any base name.
 */
export function completionBody(
  kind: CompletionKind,
  choices: readonly PlannedChoice[],
  promptTokens: number,
  responseModel: string,
  createdSeconds: number,
): unknown {
  const completionTokens = choices.reduce((n, c) => n + c.tokens.length, 0);
  const usage = usageInfo(promptTokens, completionTokens);
  const id = requestId(kind);
  if (kind === 'completion') {
    return {
      id,
      object: 'text_completion',
      created: createdSeconds,
      model: responseModel,
      choices: choices.map((c, index) => ({
        index,
        text: c.tokens.join(''),
        logprobs: null,
        finish_reason: c.finishReason,
        stop_reason: null,
        prompt_logprobs: null,
      })),
      service_tier: null,
      system_fingerprint: null,
      usage,
      kv_transfer_params: null,
    };
  }
  return {
    id,
    object: 'chat.completion',
    created: createdSeconds,
    model: responseModel,
    choices: choices.map((c, index) => ({
      index,
      message: {
        role: 'assistant',
        content: c.tokens.join(''),
        refusal: null,
        annotations: null,
        audio: null,
        function_call: null,
        tool_calls: [],
        reasoning_content: null,
      },
      logprobs: null,
      finish_reason: c.finishReason,
      stop_reason: null,
    })),
    service_tier: null,
    system_fingerprint: null,
    usage,
    prompt_logprobs: null,
    kv_transfer_params: null,
  };
}
