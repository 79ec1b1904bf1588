// POST {modelDeploymentUrl}/predict, answered vLLM-completion style by the group the deployment serves
// right now: the old group keeps answering through an update until it completes. A STACKED group
// routes by the body's "model" (base OCID, member OCID or inferenceKey); the other group types by
// the `model-key` header.

import { randomBytes } from 'node:crypto';
import { ApiError, incorrectState, invalid, missing, notFound } from './errors.ts';
import { type Call, type Reply, bodyOf } from './http.ts';
import { type Check, bool, int, num, str } from './schema.ts';
import type { Store } from './store.ts';
import type { MemberModel, ModelGroup } from './types.ts';

const DEFAULT_MAX_TOKENS = 16;

const prompt: Check = (v, at) => {
  if (typeof v === 'string') return;
  if (Array.isArray(v) && v.length > 0 && v.every((p) => typeof p === 'string')) return;
  throw invalid(`${at} must be a string or a non-empty array of strings`);
};

// The vLLM completion fields the emulator reads; anything else vLLM accepts passes through unread.
const KNOWN: Record<string, Check> = {
  model: str(),
  prompt,
  max_tokens: int({ min: 1 }),
  temperature: num({ min: 0 }),
  stream: bool,
};

function member(group: ModelGroup, model: string): MemberModel | undefined {
  const members = group.memberModelEntries.memberModelDetails;
  return members.find((m) => m.modelId === model) ?? members.find((m) => m.inferenceKey === model);
}

function words(p: string | string[]): number {
  const text = Array.isArray(p) ? p.join(' ') : p;
  return text.split(/\s+/).filter((w) => w !== '').length;
}

export function predict(store: Store, call: Call): Reply {
  const id = call.params.id ?? '';
  const rec = store.deployment(id);
  const body = bodyOf(call);
  for (const [k, check] of Object.entries(KNOWN)) {
    const v = body[k];
    if (v === null) throw invalid(`${k} must not be null`);
    if (v !== undefined) check(v, k);
  }
  if (body.prompt === undefined) throw missing('Missing required field prompt');
  if (body.stream === true) throw invalid('stream: true is not simulated; use /predictWithResponseStream');
  const state = rec.data.lifecycleState;
  if ((state !== 'ACTIVE' && state !== 'UPDATING') || rec.servingGroupId === undefined) {
    throw incorrectState(`Model deployment ${id} is ${state}; predict needs ACTIVE or UPDATING`);
  }
  const group = store.group(rec.servingGroupId).data;
  let addressed: string;
  if (group.modelGroupDetails.type === 'STACKED') {
    if (typeof body.model !== 'string') throw missing('Missing required field model');
    addressed = body.model;
  } else {
    const key = call.headers['model-key'];
    if (typeof key !== 'string' || key === '')
      throw missing(`A ${group.modelGroupDetails.type} group routes by the model-key header`);
    addressed = key;
  }
  const m = member(group, addressed);
  if (!m) throw notFound(`Model '${addressed}' is not served by model deployment ${id}`);
  if (rec.memberStates.get(m.modelId) === 'FAILED') {
    throw new ApiError(
      500,
      'InternalServerError',
      `Model ${m.modelId} failed to load in model deployment ${id}`,
    );
  }
  const maxTokens = typeof body.max_tokens === 'number' ? body.max_tokens : DEFAULT_MAX_TOKENS;
  const promptTokens = words(body.prompt as string | string[]);
  const label = m.inferenceKey ?? m.modelId;
  const text = Array.from({ length: maxTokens }, (_, i) => (i === 0 ? `[${label}]` : 'token')).join(' ');
  return {
    status: 200,
    body: {
      id: `cmpl-${randomBytes(16).toString('hex')}`,
      object: 'text_completion',
      created: Math.floor(store.now() / 1000),
      model: addressed,
      choices: [{ index: 0, text, logprobs: null, finish_reason: 'length', stop_reason: null }],
      usage: {
        prompt_tokens: promptTokens,
        completion_tokens: maxTokens,
        total_tokens: promptTokens + maxTokens,
      },
    },
  };
}
