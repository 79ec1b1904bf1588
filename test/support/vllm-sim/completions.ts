// POST /v1/completions and /v1/chat/completions: request checks and OpenAI-shaped answers.
// Generation is deterministic: the text names the model the request addressed (a base name or an
// adapter), so tests can tell adapters apart. "Tokens" are whitespace-separated words.

import { randomBytes } from 'node:crypto';
import {
  type ErrorBody,
  type FieldCheck,
  type FieldSpec,
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

const common: Record<string, FieldSpec> = {
  model: { required: false, check: nullable(isStr) },
  max_tokens: { required: false, check: nullable(isInt) },
  temperature: { required: false, check: nullable(isNumber) },
  stream: { required: false, check: nullable(isBool) },
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
  if (body.stream === true) {
    // The simulator answers `stream: false` only; vLLM would stream server-sent events here.
    return errorBody(
      'The vLLM simulator does not support stream=true; send stream=false or leave it out.',
      'BadRequestError',
      400,
      'stream',
    );
  }
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

export interface Generated {
  body: unknown;
  finishReasons: FinishReason[];
  promptTokens: number;
  completionTokens: number;
}

/**
 * Builds the answer. `addressed` is the name the request used (goes into the text); `responseModel`
 * is what vLLM puts in `model`: the adapter name, or the FIRST served name for any base name.
 */
export function generate(
  kind: CompletionKind,
  body: Record<string, unknown>,
  prompts: number[],
  addressed: string,
  responseModel: string,
  maxModelLen: number,
  createdSeconds: number,
): Generated {
  const full = `${addressed}: simulated completion`.split(' ');
  const requested = requestedMaxTokens(kind, body);
  const finishReasons: FinishReason[] = [];
  let completionTokens = 0;
  const texts = prompts.map((input) => {
    const limit = Math.min(requested ?? Infinity, maxModelLen - input);
    const out = full.slice(0, limit);
    finishReasons.push(out.length < full.length ? 'length' : 'stop');
    completionTokens += out.length;
    return out.join(' ');
  });
  const inputTokens = prompts.reduce((a, b) => a + b, 0);
  const usage = {
    prompt_tokens: inputTokens,
    total_tokens: inputTokens + completionTokens,
    completion_tokens: completionTokens,
    prompt_tokens_details: null,
  };
  const id = randomBytes(16).toString('hex');
  const out =
    kind === 'completion'
      ? {
          id: `cmpl-${id}`,
          object: 'text_completion',
          created: createdSeconds,
          model: responseModel,
          choices: texts.map((text, index) => ({
            index,
            text,
            logprobs: null,
            finish_reason: finishReasons[index],
            stop_reason: null,
            prompt_logprobs: null,
          })),
          service_tier: null,
          system_fingerprint: null,
          usage,
          kv_transfer_params: null,
        }
      : {
          id: `chatcmpl-${id}`,
          object: 'chat.completion',
          created: createdSeconds,
          model: responseModel,
          choices: texts.map((content, index) => ({
            index,
            message: {
              role: 'assistant',
              content,
              refusal: null,
              annotations: null,
              audio: null,
              function_call: null,
              tool_calls: [],
              reasoning_content: null,
            },
            logprobs: null,
            finish_reason: finishReasons[index],
            stop_reason: null,
          })),
          service_tier: null,
          system_fingerprint: null,
          usage,
          prompt_logprobs: null,
          kv_transfer_params: null,
        };
  return { body: out, finishReasons, promptTokens: inputTokens, completionTokens };
}
