/**
 * Pure: error bodies in the shape vLLM's OpenAI server answers with
 * (`{"error":{"message","type","param","code"}}`), so a client written against vLLM cannot tell a
 * router answer from an engine one. Messages name only what the client sent or what the spec
 * declares; never a pod address, a path or a credential.
 */

export interface OpenAIErrorBody {
  error: { message: string; type: string; param: string | null; code: number };
}

/** An answer the router gives itself, instead of forwarding. */
export interface RouterError {
  status: number;
  body: OpenAIErrorBody;
  /** Extra response headers, e.g. Retry-After on a 503. */
  headers?: Record<string, string>;
}

function routerError(
  status: number,
  type: string,
  message: string,
  param: string | null = null,
  headers?: Record<string, string>,
): RouterError {
  return {
    status,
    body: { error: { message, type, param, code: status } },
    ...(headers !== undefined ? { headers } : {}),
  };
}

/** Exactly vLLM's answer to an unknown `model` (reference/vllm-lora-api.md section 7). */
export function modelNotFound(model: string): RouterError {
  return routerError(404, 'NotFoundError', `The model \`${model}\` does not exist.`, 'model');
}

/** Seconds a client should wait before retrying a 503: adapter loads take a few seconds. */
export const RETRY_AFTER_SECONDS = 1;

/**
 * A name the spec declares but that no Ready pod can serve right now (a member still loading, every
 * replica down or refusing connections). 503 rather than vLLM's 404: the name is valid and will
 * answer soon, and a 404 would tell clients and their retry policies that it never will.
 */
export function serviceUnavailable(message: string): RouterError {
  return routerError(503, 'ServiceUnavailableError', message, null, {
    'Retry-After': String(RETRY_AFTER_SECONDS),
  });
}

export function badRequest(message: string, param: string | null = null): RouterError {
  return routerError(400, 'BadRequestError', message, param);
}

export function payloadTooLarge(limitBytes: number): RouterError {
  return routerError(413, 'PayloadTooLargeError', `The request body exceeds ${limitBytes} bytes.`);
}

export function routeNotFound(path: string): RouterError {
  // The path is echoed only up to a bound, so a log or a client never sees a huge string back.
  return routerError(404, 'NotFoundError', `No route ${path.slice(0, 200)}.`);
}

export function methodNotAllowed(method: string, allowed: readonly string[]): RouterError {
  return routerError(405, 'MethodNotAllowedError', `Method ${method.slice(0, 16)} is not allowed.`, null, {
    Allow: allowed.join(', '),
  });
}

/** The upstream failed before answering (connection reset after the request was sent, timeout). */
export function badGateway(message: string): RouterError {
  return routerError(502, 'BadGatewayError', message);
}
