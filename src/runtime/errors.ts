/**
 * Helpers to read errors thrown by @kubernetes/client-node 2.0.1. Duck-typed rather than
 * `instanceof ApiException` so they also work on errors from a second copy of the library and on
 * the plain `Error & { statusCode }` its Watch throws.
 */

function field(err: unknown, name: string): unknown {
  return typeof err === 'object' && err !== null ? (err as Record<string, unknown>)[name] : undefined;
}

/**
 * HTTP status of a failed API call: ApiException.code, or statusCode on watch errors.
 * Returns undefined for network errors (whose `code` is a string like 'ECONNREFUSED').
 */
export function apiErrorCode(err: unknown): number | undefined {
  const code = field(err, 'code');
  if (typeof code === 'number') return code;
  const statusCode = field(err, 'statusCode');
  return typeof statusCode === 'number' ? statusCode : undefined;
}

/**
 * Reason and message of the metav1.Status in an ApiException. client-node 2.0.1 stores the response
 * body as raw JSON text (undefined on 401), so it has to be parsed; an already parsed object is
 * accepted too.
 */
export function apiErrorStatus(err: unknown): { reason?: string; message?: string } | undefined {
  let body = field(err, 'body');
  if (typeof body === 'string') {
    try {
      body = JSON.parse(body) as unknown;
    } catch {
      return undefined;
    }
  }
  const reason = field(body, 'reason');
  const message = field(body, 'message');
  if (typeof reason !== 'string' && typeof message !== 'string') return undefined;
  const out: { reason?: string; message?: string } = {};
  if (typeof reason === 'string') out.reason = reason;
  if (typeof message === 'string') out.message = message;
  return out;
}

/** True for 404 NotFound. */
export function isNotFound(err: unknown): boolean {
  return apiErrorCode(err) === 404;
}

/** True for 409 (optimistic-concurrency Conflict or AlreadyExists). */
export function isConflict(err: unknown): boolean {
  return apiErrorCode(err) === 409;
}

/**
 * Log metadata for an error: HTTP code, Status reason and a one-line message. It deliberately never
 * includes ApiException.message (which embeds response headers and the whole body) or request
 * details, so credentials and object payloads don't end up in logs.
 */
export function errorMeta(err: unknown): { error: string; code?: number; reason?: string } {
  const code = apiErrorCode(err);
  const status = apiErrorStatus(err);
  let error: string;
  if (status?.message !== undefined) {
    error = status.message;
  } else if (code !== undefined && field(err, 'body') !== undefined) {
    error = `HTTP ${code}`;
  } else if (err instanceof Error) {
    error = err.message.split('\n', 1)[0] ?? err.name;
  } else {
    error = String(err);
  }
  const out: { error: string; code?: number; reason?: string } = { error };
  if (code !== undefined) out.code = code;
  if (status?.reason !== undefined) out.reason = status.reason;
  return out;
}

/**
 * Text of any thrown value: an Error's message; for the plain `{code, message}` objects some
 * libraries throw (the OCI SDK on network failures), both; String() otherwise.
 */
export function errorText(err: unknown): string {
  if (err instanceof Error) return err.message;
  const code = field(err, 'code');
  const message = field(err, 'message');
  if (typeof message === 'string') {
    return typeof code === 'string' || typeof code === 'number' ? `${String(code)}: ${message}` : message;
  }
  return String(err);
}
