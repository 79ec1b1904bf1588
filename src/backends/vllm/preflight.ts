/** Pure: what the vllm backend needs of a group that admission cannot see. */
import type { StackedDeployment } from '../../api/v1alpha1/deployment.ts';
import type { StackedModelGroup } from '../../api/v1alpha1/modelgroup.ts';
import type { PrincipalAuthAllow } from '../../config.ts';
import { PRINCIPAL_AUTH_NOT_ALLOWED, principalAuthRefusal } from '../../oci/principals.ts';
import { listNames, type Verdict } from '../../runtime/ready.ts';
import { adapterSource, baseSource, readsFromOci } from './desired.ts';

/** Sources the pods cannot read as the deployment is configured. */
export function vllmPreflight(
  d: StackedDeployment,
  group: StackedModelGroup,
  allow: PrincipalAuthAllow,
): Verdict | undefined {
  // The fetch agent's principal: an instance or resource principal is the node's or the cluster's,
  // not the namespace's; it reads buckets and catalog models of compartments it cannot name before
  // its calls, so only an entry of '*' allows it. Checked before any pod is made with it.
  const auth = d.spec.vllm?.oci?.auth;
  if (auth !== undefined) {
    const refused = principalAuthRefusal(allow, {
      namespace: d.metadata.namespace ?? '',
      type: auth.type,
      compartmentId: undefined,
      who: 'the fetch agent',
    });
    if (refused !== undefined) return { ready: false, reason: PRINCIPAL_AUTH_NOT_ALLOWED, message: refused };
  }
  const base = group.spec.baseModel;
  const members = group.spec.members ?? [];
  // OCI Object Storage and the Model Catalog are read by the fetch agent in each pod, with the
  // region and credentials of spec.vllm.oci.
  const fromOci = [base, ...members].filter((m) => readsFromOci(m.source)).map((m) => m.inferenceKey);
  if (fromOci.length > 0 && d.spec.vllm?.oci === undefined) {
    return {
      ready: false,
      reason: 'OciAccessMissing',
      message:
        `${listNames(fromOci)} ${fromOci.length === 1 ? 'reads' : 'read'} from OCI (oci:// or modelCatalog): ` +
        'set spec.vllm.oci (region and auth) so the fetch agent can reach it',
    };
  }
  // Defensive: the schema admits no other source today, but a new kind must not reach the pods.
  const unsupported = [
    ...(base.source !== undefined && baseSource(base) === undefined ? [base.inferenceKey] : []),
    ...members
      .filter((m) => m.source !== undefined && adapterSource(m) === undefined)
      .map((m) => m.inferenceKey),
  ];
  if (unsupported.length === 0) return undefined;
  return {
    ready: false,
    reason: 'SourceNotSupported',
    message: `the vllm backend cannot read the source of ${listNames(unsupported)}`,
  };
}
