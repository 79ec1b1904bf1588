/** Names, labels and paths shared by the vllm backend's builders and its tests. */
import { createHash } from 'node:crypto';
import { MANAGED_BY_LABEL, MANAGER_NAME } from '../../runtime/apply.ts';

/** Pods (and the Deployment and Service) carry the StackedDeployment's name in this label. */
export const DEPLOYMENT_LABEL = 'serving.stacked.dev/deployment';
/** The pod condition the operator sets when every adapter is loaded there (a readiness gate). */
export const ADAPTERS_LOADED = 'serving.stacked.dev/adapters-loaded';
export const VLLM_CONTAINER = 'vllm';
export const PVC_MOUNT_ROOT = '/mnt/pvc';

/** Name of the Deployment and the Service of a StackedDeployment. */
export function workloadName(sdepName: string): string {
  return dnsLabel(`${sdepName}-vllm`);
}

/** Labels that select the pods of one StackedDeployment. */
export function selectorLabels(sdepName: string): Record<string, string> {
  return {
    'app.kubernetes.io/name': 'vllm',
    [MANAGED_BY_LABEL]: MANAGER_NAME,
    [DEPLOYMENT_LABEL]: sdepName,
  };
}

/** A volume name for a PVC: DNS label, at most 63 characters, stable for the same claim. */
export function pvcVolumeName(claimName: string): string {
  return dnsLabel(`pvc-${claimName}`);
}

/** Where a PVC is mounted in the vLLM container (read-only). */
export function pvcMountPath(claimName: string): string {
  return `${PVC_MOUNT_ROOT}/${claimName}`;
}

/**
 * Shortens a name to a DNS label: names that fit stay as they are; longer ones keep a readable
 * prefix and gain a hash suffix, so two long names never collide.
 */
export function dnsLabel(name: string): string {
  const clean = name.toLowerCase().replaceAll(/[^a-z0-9-]/g, '-');
  if (clean.length <= 63) return clean;
  const hash = createHash('sha256').update(name).digest('hex').slice(0, 8);
  return `${clean.slice(0, 54).replace(/-+$/, '')}-${hash}`;
}

/** The fetch agent: a sidecar from the operator's own image that downloads uri sources. */
export const AGENT_CONTAINER = 'fetcher';
export { AGENT_COMMAND, AGENT_PORT } from '../../api/agent/v1.ts';
export const FETCHED_VOLUME = 'fetched';
export const FETCHED_ROOT = '/mnt/fetched';
export const AGENT_SECRETS_ROOT = '/var/run/secrets/stacked';

/** A volume name for a Secret the agent reads credentials from. */
export function secretVolumeName(secretName: string): string {
  return dnsLabel(`secret-${secretName}`);
}

/** A base model from a uri or the Model Catalog: an init container fetches it here before vLLM starts. */
export const MODEL_FETCH_CONTAINER = 'fetch-model';
export const MODEL_VOLUME = 'model';
export const MODEL_ROOT = '/mnt/model';
