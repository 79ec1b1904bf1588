// HTTP plumbing shaped like vLLM's FastAPI/Starlette server: JSON and plain-text replies, the nested
// OpenAI error body, FastAPI's `{"detail": ...}` for unknown routes and methods, and request-body
// validation that answers like vLLM's RequestValidationError handler (400, message in pydantic's words).

import type { IncomingMessage, ServerResponse } from 'node:http';

export interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: number };
}

export function errorBody(
  message: string,
  type: string,
  code: number,
  param: string | null = null,
): ErrorBody {
  return { error: { message, type, param, code } };
}

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    ...headers,
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(text)),
  });
  res.end(text);
}

export function sendText(res: ServerResponse, status: number, text: string, contentType: string): void {
  res.writeHead(status, { 'content-type': contentType, 'content-length': String(Buffer.byteLength(text)) });
  res.end(text);
}

/** Starlette's `Response(status_code=...)`: no body, no content type. */
export function sendEmpty(res: ServerResponse, status: number): void {
  res.writeHead(status, { 'content-length': '0' });
  res.end();
}

export function sendError(res: ServerResponse, status: number, body: ErrorBody): void {
  sendJson(res, status, body);
}

// ---- pydantic-style validation ------------------------------------------------------------------

export interface FieldError {
  type: string;
  loc: string;
  msg: string;
  input: unknown;
}

/** A field check: undefined when the value is acceptable, else the pydantic error type and message. */
export type FieldCheck = (v: unknown) => { type: string; msg: string } | undefined;

export interface FieldSpec {
  required: boolean;
  check: FieldCheck;
}

export const isStr: FieldCheck = (v) =>
  typeof v === 'string' ? undefined : { type: 'string_type', msg: 'Input should be a valid string' };
// Stricter than pydantic's lax mode, which also takes "true"/"yes"/1 and "5"/5.0: JSON types only.
export const isBool: FieldCheck = (v) =>
  typeof v === 'boolean' ? undefined : { type: 'bool_type', msg: 'Input should be a valid boolean' };
export const isInt: FieldCheck = (v) =>
  typeof v === 'number' && Number.isInteger(v)
    ? undefined
    : { type: 'int_type', msg: 'Input should be a valid integer' };
export const isNumber: FieldCheck = (v) =>
  typeof v === 'number' ? undefined : { type: 'float_type', msg: 'Input should be a valid number' };
export const nullable =
  (check: FieldCheck): FieldCheck =>
  (v) =>
    v === null ? undefined : check(v);

/** Python-ish rendering of one error, bounded like vLLM's `_format_error`. */
function pyRepr(v: unknown): string {
  if (v === null || v === undefined) return 'None';
  if (typeof v === 'boolean') return v ? 'True' : 'False';
  if (typeof v === 'number') return String(v);
  if (typeof v === 'string') return `'${v.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`;
  if (Array.isArray(v)) return `'<list of ${v.length} items>'`;
  return `'<dict of ${Object.keys(v).length} items>'`;
}

function summarise(v: unknown): unknown {
  return typeof v === 'string' && v.length > 200 ? v.slice(0, 200) + '...[truncated]' : v;
}

export function formatErrors(errors: readonly FieldError[]): string {
  const label = errors.length === 1 ? 'error' : 'errors';
  const lines = errors.map(
    (e) =>
      `  {'type': '${e.type}', 'loc': '${e.loc}', 'msg': '${e.msg}', 'input': ${pyRepr(summarise(e.input))}}`,
  );
  return `${errors.length} validation ${label}:\n${lines.join('\n')}`;
}

/**
 * vLLM's RequestValidationError handler: 400, the pydantic errors as the message, `param` the first
 * error's location. The reference names the type `BadRequestError` (newest vLLM says `Bad Request`).
 */
export function validationError(errors: readonly FieldError[]): ErrorBody {
  return errorBody(formatErrors(errors), 'BadRequestError', 400, errors[0]?.loc ?? null);
}

export function validateObject(body: unknown, spec: Record<string, FieldSpec>): FieldError[] {
  if (body === null || body === undefined) {
    return [{ type: 'missing', loc: 'body', msg: 'Field required', input: null }];
  }
  if (typeof body !== 'object' || Array.isArray(body)) {
    return [
      {
        type: 'model_attributes_type',
        loc: 'body',
        msg: 'Input should be a valid dictionary or object to extract fields from',
        input: body,
      },
    ];
  }
  const o = body as Record<string, unknown>;
  const errors: FieldError[] = [];
  for (const [name, f] of Object.entries(spec)) {
    if (!(name in o)) {
      if (f.required)
        errors.push({ type: 'missing', loc: `body.${name}`, msg: 'Field required', input: body });
      continue;
    }
    const bad = f.check(o[name]);
    if (bad) errors.push({ ...bad, loc: `body.${name}`, input: o[name] });
  }
  return errors;
}

/**
 * vLLM's `validate_json_request` dependency plus FastAPI's body parsing: a media type other than
 * application/json, or a body that is not JSON, is a 400 validation error. Returns the parsed body
 * (undefined for an empty body) or the error to send.
 */
export function parseJsonBody(
  req: IncomingMessage,
  raw: Buffer,
): { ok: true; body: unknown } | { ok: false; error: ErrorBody } {
  const mediaType = (req.headers['content-type'] ?? '').toLowerCase().split(';', 1)[0]?.trim() ?? '';
  if (mediaType !== 'application/json') {
    return {
      ok: false,
      error: errorBody(
        "1 validation error:\n  Unsupported Media Type: Only 'application/json' is allowed",
        'BadRequestError',
        400,
      ),
    };
  }
  if (raw.length === 0) return { ok: true, body: undefined };
  try {
    return { ok: true, body: JSON.parse(raw.toString('utf8')) as unknown };
  } catch (e) {
    const detail = e instanceof Error ? e.message : String(e);
    return {
      ok: false,
      error: validationError([
        { type: 'json_invalid', loc: 'body', msg: `JSON decode error: ${detail}`, input: {} },
      ]),
    };
  }
}
