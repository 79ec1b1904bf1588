/**
 * The boundary of principal-based OCI auth. instancePrincipal, resourcePrincipal and the operator's
 * workloadIdentity authenticate as the operator (or its node), not as the namespace: a namespace
 * that could pick them would spend the operator's cloud rights, in any compartment. The cluster
 * admin lists in --principal-auth-allow which namespaces may, and in which compartments; anything
 * else is refused before any OCI call. API keys come from the namespace's own Secret and need no
 * entry. Pure, so that both backends' preflights and the finalizer can ask it.
 */
import type { PrincipalAuthAllow } from '../config.ts';
import type { OciAuthType } from './auth.ts';

/** The reason both backends' preflights give when the boundary refuses a deployment. */
export const PRINCIPAL_AUTH_NOT_ALLOWED = 'PrincipalAuthNotAllowed';

export const PRINCIPAL_AUTH_FLAG = '--principal-auth-allow';

/** The auth types that need an entry: every one but apiKey. */
export function isPrincipalAuth(type: OciAuthType): boolean {
  return type !== 'apiKey';
}

export interface PrincipalUse {
  namespace: string;
  type: OciAuthType;
  /**
   * The compartment the calls act in; undefined when the caller cannot name one before its calls
   * (the fetch agent reads buckets and catalog models of any compartment): then only '*' allows it.
   */
  compartmentId: string | undefined;
  /** Who would authenticate, for the message: "the operator", "the fetch agent". */
  who: string;
}

/**
 * Undefined when the use is allowed; else why not, naming the namespace, the type, the compartment
 * and the flag: the message of the PrincipalAuthNotAllowed condition the backends' preflights set.
 */
export function principalAuthRefusal(allow: PrincipalAuthAllow, use: PrincipalUse): string | undefined {
  if (!isPrincipalAuth(use.type)) return undefined;
  const entry = allow.get(use.namespace);
  if (entry === '*') return undefined;
  if (entry !== undefined && use.compartmentId !== undefined && entry.includes(use.compartmentId)) {
    return undefined;
  }
  const where =
    use.compartmentId === undefined ? 'in any compartment' : `in compartment ${use.compartmentId}`;
  const why =
    entry === undefined
      ? `${PRINCIPAL_AUTH_FLAG} does not list namespace "${use.namespace}"`
      : use.compartmentId === undefined
        ? `${PRINCIPAL_AUTH_FLAG} allows namespace "${use.namespace}" only in ${entry.join(', ')}, and ${use.who} names no compartment (it would need "${use.namespace}=*")`
        : `${PRINCIPAL_AUTH_FLAG} allows namespace "${use.namespace}" only in ${entry.join(', ')}`;
  return (
    `namespace "${use.namespace}" may not use ${use.type} auth ${where}: ${why}. ` +
    `Use an apiKey Secret of the namespace, or ask the cluster admin to allow it in ${PRINCIPAL_AUTH_FLAG}`
  );
}
