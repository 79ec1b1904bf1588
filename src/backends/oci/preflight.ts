/** Pure: what the oci backend needs of a deployment and its group that admission cannot see. */
import type { StackedDeployment } from '../../api/v1alpha1/deployment.ts';
import type { StackedModelGroup } from '../../api/v1alpha1/modelgroup.ts';
import type { PrincipalAuthAllow } from '../../config.ts';
import { PRINCIPAL_AUTH_NOT_ALLOWED, principalAuthRefusal } from '../../oci/principals.ts';
import { listNames, type Verdict } from '../../runtime/ready.ts';

/**
 * The auth boundary first (an instance principal, a resource principal or the operator's workload
 * identity spends the operator's rights: only where --principal-auth-allow says), then the models:
 * OCI addresses every model by its OCID, so the group must name one for each.
 */
export function ociPreflight(
  d: StackedDeployment,
  group: StackedModelGroup,
  allow: PrincipalAuthAllow,
): Verdict | undefined {
  return ociAuthPreflight(d, allow) ?? modelIdsPreflight(group);
}

/** The refusal of spec.oci.auth, if its principal is not allowed for the namespace and compartment. */
export function ociAuthPreflight(d: StackedDeployment, allow: PrincipalAuthAllow): Verdict | undefined {
  const oci = d.spec.oci;
  if (oci === undefined) return undefined;
  const refused = principalAuthRefusal(allow, {
    namespace: d.metadata.namespace ?? '',
    type: oci.auth.type,
    compartmentId: oci.compartmentId,
    who: 'the operator',
  });
  return refused === undefined
    ? undefined
    : { ready: false, reason: PRINCIPAL_AUTH_NOT_ALLOWED, message: refused };
}

function modelIdsPreflight(group: StackedModelGroup): Verdict | undefined {
  const missing = [group.spec.baseModel, ...(group.spec.members ?? [])]
    .filter((m) => m.modelId === undefined)
    .map((m) => m.inferenceKey);
  if (missing.length === 0) return undefined;
  return {
    ready: false,
    reason: 'ModelIdMissing',
    message: `the oci backend needs modelId on every model; missing on ${listNames(missing)}`,
  };
}
