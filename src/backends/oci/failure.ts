/** Pure: what an error that ended a pass means for its status, or for the work queue. */
import { OciAuthError } from '../../oci/auth.ts';
import { OciTransientError, ociFailure } from './errors.ts';
import type { Step } from './status.ts';

/**
 * Credentials and refusals become a condition and wait for the poll interval (a spec or Secret
 * fix comes sooner through the watch); throttling and outages are thrown back to the work queue's
 * backoff.
 */
export function failureStep(err: unknown): Step {
  if (err instanceof OciAuthError) return problem('CredentialsInvalid', err.message);
  const f = ociFailure(err);
  if (f.transient) throw new OciTransientError('OCI call failed', f);
  if (f.status === 401) {
    return problem('NotAuthenticated', `OCI rejected the credentials (401 ${f.code}): ${f.message}`);
  }
  if (f.status === 404) {
    return problem('NotAuthorizedOrNotFound', `OCI answered 404 ${f.code}: ${f.message}`);
  }
  // A second 412 in one pass (the first reads again at once): the next pass reads again.
  if (f.status === 412) {
    return {
      kind: 'progressing',
      reason: 'Conflict',
      message: 'the OCI resource changed while we updated it; re-reading',
    };
  }
  return problem('OciRejected', `OCI refused the request (${String(f.status)} ${f.code}): ${f.message}`);
}

function problem(reason: string, message: string): Step {
  return { kind: 'problem', reason, message };
}
