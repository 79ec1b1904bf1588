/** What an OCI error means for a reconcile: wait and retry, or tell the user. */
import * as common from 'oci-common';
import { errorText } from '../../runtime/errors.ts';

export interface OciFailure {
  /** HTTP status; 0 when no answer came (network, timeout). */
  status: number;
  code: string;
  message: string;
  /** Retried by the work queue's backoff rather than reported: the cloud, not the spec, is at fault. */
  transient: boolean;
}

/** The service codes that say "try again later" (the SDK retries them too, a few times). */
const TRANSIENT_CODES = new Set(['IncorrectState', 'TooManyRequests']);

export function ociFailure(err: unknown): OciFailure {
  if (err instanceof common.OciError) {
    const status = err.statusCode;
    return {
      status,
      code: err.serviceCode,
      message: err.message,
      transient: status === 429 || status >= 500 || TRANSIENT_CODES.has(err.serviceCode) || status === -1,
    };
  }
  // Anything else is either the network (retry) or our own bug; neither is the user's to fix, and
  // the work queue's backoff keeps a bug from turning into a hot loop.
  return { status: 0, code: 'NoResponse', message: errorText(err), transient: true };
}

export function isOciNotFound(err: unknown): boolean {
  return err instanceof common.OciError && err.statusCode === 404;
}

/** Transient OCI trouble, thrown so the work queue retries the key with backoff. */
export class OciTransientError extends Error {
  override readonly name = 'OciTransientError';
  constructor(what: string, f: OciFailure) {
    super(`${what}: OCI answered ${String(f.status)} ${f.code}: ${f.message}`);
  }
}
