/**
 * An error the agent answers with a specific HTTP status; anything else becomes a 500. The message
 * is sent to the caller as is, so it must never carry credentials.
 */
export class AgentError extends Error {
  readonly status: number;

  constructor(status: number, message: string) {
    super(message);
    this.name = 'AgentError';
    this.status = status;
  }
}

/** The request itself is wrong (the operator should not retry it unchanged). */
export const badRequest = (message: string): AgentError => new AgentError(400, message);

/** The archive was read but is refused: checksum, size, unsafe entries, not an adapter. */
export const unacceptable = (message: string): AgentError => new AgentError(422, message);

/** The remote failed or could not be reached: worth retrying later. */
export const badGateway = (message: string): AgentError => new AgentError(502, message);

/** Text for an unknown thrown value (the operator's helper, under the agent's name for it). */
export { errorText as errorMessage } from '../runtime/errors.ts';

/**
 * A uri fit for logs and error messages: the query string of a pre-signed URL is a credential, so
 * it is replaced by "?…" (the caller knows the full uri it sent). oci:// locations and model OCIDs
 * hold no credentials (the agent signs with its own key) and are shown as they are.
 */
export function displayUri(uri: string | URL): string {
  if (typeof uri === 'string' && (uri.startsWith('oci://') || uri.startsWith('ocid1.'))) return uri;
  try {
    const u = new URL(uri);
    const query = u.search ? '?…' : '';
    return `${u.protocol}//${u.host}${u.pathname}${query}`;
  } catch {
    return '(invalid uri)';
  }
}
