// OCIDs, etags and timestamps in the service's formats.

import { randomBytes, randomUUID } from 'node:crypto';

// The OCID region segment is the airport code for the regions tests are likely to name.
const REGION_KEYS: Record<string, string> = {
  'us-ashburn-1': 'iad',
  'us-phoenix-1': 'phx',
  'us-chicago-1': 'ord',
  'us-sanjose-1': 'sjc',
  'eu-frankfurt-1': 'fra',
  'eu-amsterdam-1': 'ams',
  'uk-london-1': 'lhr',
  'ap-tokyo-1': 'nrt',
  'ap-mumbai-1': 'bom',
  'ca-toronto-1': 'yyz',
};

export function regionKey(region: string): string {
  return REGION_KEYS[region] ?? region;
}

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';

/** `ocid1.<type>.oc1.<region>.<60-char unique part>`, shaped like the real ones. */
export function newOcid(type: string, region: string): string {
  const bytes = randomBytes(52);
  let unique = 'amaaaaaa';
  for (const b of bytes) unique += BASE32[b % 32] ?? 'a';
  return `ocid1.${type}.oc1.${regionKey(region)}.${unique}`;
}

/** True when `v` is an OCID of that resource type: ocid1.<type>.<realm>.[region][.future].<unique>. */
export function isOcidOf(v: unknown, ...types: string[]): boolean {
  if (typeof v !== 'string') return false;
  const parts = v.split('.');
  if (parts.length < 5 || parts[0] !== 'ocid1' || !types.includes(parts[1] ?? '')) return false;
  const realm = parts[2] ?? '';
  const unique = parts[parts.length - 1] ?? '';
  return /^oc[0-9]+$/.test(realm) && /^[a-zA-Z0-9_-]+$/.test(unique);
}

export function newEtag(): string {
  return randomBytes(32).toString('hex');
}

export function newRequestId(): string {
  return randomUUID().replaceAll('-', '').toUpperCase();
}

export function iso(ms: number): string {
  return new Date(ms).toISOString();
}
