// A strict OCI Data Science emulator for integration tests: model groups (CREATE/CLONE, stacked),
// version histories, model-group deployments with LIVE/ZDT updates, work requests, and predict, per
// /work/shared/reference/oci-datascience-api.md. Requests are signature-checked like the service;
// where the reference is silent the emulator is stricter, never kinder. Clients point the real SDK at
// it with `client.endpoint = emu.url`.
//
// Parts (oci-emu/): dispatch.ts (request pipeline), signature.ts (reusable verifier), routes.ts,
// model-groups.ts, version-history.ts, model-deployments.ts, deployment-lifecycle.ts, model-states.ts,
// work-requests.ts, predict.ts, faults.ts, retry-tokens.ts, lists.ts, schema.ts (+ *-schema.ts), store.ts.
//
// Choices the reference does not make (see the modules for more):
//   - Lists default to 10 items a page (max 100): callers must follow opc-next-page.
//   - Unknown body fields and unknown query parameters are 400 InvalidParameter; null is never a value.
//   - compartmentId may be a compartment or tenancy OCID (the root compartment is the tenancy).
//   - Creates take opc-retry-token of 1-64 characters; only 2xx answers are remembered.
//   - UpdateModelDeployment answers 202, DeleteModelDeployment 202, DeleteModelGroup 204.
//   - Activate/deactivate of a deployment go through UPDATING; a work request only ACCEPTED (the first
//     fifth of the delay) can be canceled, which undoes its operation.
//   - The catalog holds model OCIDs only; ListModelGroupModels derives the other fields.
//
// OCI's unkind habits are switches, off by default so that unit tests stay exact and benchmarks fast,
// and on in the integration tests (REALISTIC): timeScale over OCI_TYPICAL_DELAYS_MS, readLagMs,
// deletedRetentionMs, limits and capacity; outOfBand.failDeployment, failNextWork and beforeNext are
// the hooks a test triggers. Each is checked against test/fixtures/oci-behaviour.md.

import { type KeyObject, createPublicKey } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dispatch, type Emulated } from './oci-emu/dispatch.ts';
import { Faults } from './oci-emu/faults.ts';
import { isOcidOf } from './oci-emu/ids.ts';
import { outOfBand } from './oci-emu/out-of-band.ts';
import { RetryTokens } from './oci-emu/retry-tokens.ts';
import { OPERATIONS } from './oci-emu/routes.ts';
import { keyFingerprint } from './oci-emu/signature.ts';
import { Store, copy } from './oci-emu/store.ts';
import type {
  OciEmulator,
  OciEmulatorCounts,
  OciEmulatorDelays,
  OciEmulatorOptions,
} from './oci-emu/types.ts';

export type * from './oci-emu/types.ts';
export { keyFingerprint, verifySignedRequest, type VerifyResult } from './oci-emu/signature.ts';
export { OPERATIONS } from './oci-emu/routes.ts';

const DEFAULT_DELAY_MS = 50;

/**
 * How long OCI really takes, in its orders of magnitude (test/fixtures/oci-behaviour.md says where
 * each comes from): a model deployment provisions instances and pulls a multi-GB image (minutes), a
 * model group is a catalog record (about a minute at most). Scale them with `timeScale`.
 */
export const OCI_TYPICAL_DELAYS_MS: Required<OciEmulatorDelays> = {
  groupCreateMs: 60_000,
  groupDeleteMs: 30_000,
  deploymentCreateMs: 15 * 60_000,
  deploymentUpdateMs: 8 * 60_000,
  deploymentDeleteMs: 3 * 60_000,
};

/**
 * OCI's unkind habits, each a switch of its own, as the integration tests turn them on: OCI's delays
 * at 1/500 (15 min -> 1.8 s), reads lagging writes by 400 ms, DELETED records gone after 3 s.
 */
export const REALISTIC: Pick<
  OciEmulatorOptions,
  'delays' | 'timeScale' | 'readLagMs' | 'deletedRetentionMs'
> = {
  delays: OCI_TYPICAL_DELAYS_MS,
  timeScale: 1 / 500,
  readLagMs: 400,
  deletedRetentionMs: 3000,
};
const MUTATING = new Set(['POST', 'PUT', 'DELETE', 'PATCH']);

function checkedKey(keyId: string, pem: string): KeyObject {
  const key = createPublicKey(pem);
  const fingerprint = keyId.split('/')[2];
  if (keyId.split('/').length !== 3 || fingerprint !== keyFingerprint(key)) {
    throw new Error(
      `keyId ${keyId} must be <tenancy>/<user>/<fingerprint> with the key's fingerprint ${keyFingerprint(key)}`,
    );
  }
  return key;
}

function nonNegative(name: string, v: number | undefined): void {
  if (v !== undefined && !(Number.isFinite(v) && v >= 0))
    throw new Error(`${name} must be a non-negative number, got ${v}`);
}

export async function startOciEmulator(opts: OciEmulatorOptions = {}): Promise<OciEmulator> {
  const delays = {
    groupCreateMs: DEFAULT_DELAY_MS,
    groupDeleteMs: DEFAULT_DELAY_MS,
    deploymentCreateMs: DEFAULT_DELAY_MS,
    deploymentUpdateMs: DEFAULT_DELAY_MS,
    deploymentDeleteMs: DEFAULT_DELAY_MS,
    ...opts.delays,
  };
  for (const [k, v] of Object.entries(delays)) {
    if (!Number.isInteger(v) || v < 0)
      throw new Error(`delays.${k} must be a non-negative integer, got ${v}`);
  }
  const scale = opts.timeScale ?? 1;
  if (!(Number.isFinite(scale) && scale > 0)) throw new Error(`timeScale must be positive, got ${scale}`);
  for (const k of Object.keys(delays) as (keyof typeof delays)[]) delays[k] = Math.round(delays[k] * scale);
  nonNegative('readLagMs', opts.readLagMs);
  nonNegative('deletedRetentionMs', opts.deletedRetentionMs);
  const keys = new Map<string, KeyObject>();
  for (const [keyId, pem] of Object.entries(opts.keys ?? {})) keys.set(keyId, checkedKey(keyId, pem));

  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const store = new Store(url, opts.region ?? 'us-ashburn-1', delays, {
    readLagMs: opts.readLagMs ?? 0,
    deletedRetentionMs: opts.deletedRetentionMs,
  });
  store.limits = structuredClone(opts.limits ?? {});
  const setCapacity = (shape: string, instances: number | undefined): void => {
    if (instances === undefined) store.capacity.delete(shape);
    else if (Number.isInteger(instances) && instances >= 0) store.capacity.set(shape, instances);
    else throw new Error(`capacity of ${shape} must be a non-negative integer, got ${instances}`);
  };
  for (const [shape, n] of Object.entries(opts.capacity ?? {})) setCapacity(shape, n);
  const addModel = (modelId: string): void => {
    if (!isOcidOf(modelId, 'datasciencemodel')) throw new Error(`not a Data Science model OCID: ${modelId}`);
    store.models.add(modelId);
  };
  for (const m of opts.models ?? []) addModel(m);
  const emu: Emulated = {
    store,
    keys,
    strict: opts.strict ?? true,
    faults: new Faults(OPERATIONS),
    tokens: new RetryTokens(),
    log: [],
    listeners: new Set(),
  };
  server.on('request', (req, res) => void dispatch(emu, req, res));

  return {
    url,
    addKey(keyId: string, publicKeyPem: string): void {
      keys.set(keyId, checkedKey(keyId, publicKeyPem));
    },
    addModel,
    faults: emu.faults,
    counts(): OciEmulatorCounts {
      const byOperation: Record<string, number> = {};
      for (const r of emu.log) byOperation[r.operation] = (byOperation[r.operation] ?? 0) + 1;
      return {
        modelGroupsCreated: store.created.modelGroups,
        modelDeploymentsCreated: store.created.modelDeployments,
        requests: emu.log.length,
        mutating: emu.log.filter((r) => MUTATING.has(r.method) && r.operation !== 'Predict').length,
        byOperation,
      };
    },
    requests: () => copy(emu.log),
    onRequest(listener) {
      emu.listeners.add(listener);
      return () => {
        emu.listeners.delete(listener);
      };
    },
    modelGroups: () => [...store.groups.values()].map((r) => copy(r.data)),
    modelDeployments: () => [...store.deployments.values()].map((r) => copy(r.data)),
    workRequests: () => [...store.workRequests.values()].map((r) => copy(r.data)),
    modelGroupVersionHistories: () => [...store.histories.values()].map((r) => copy(r.data)),
    outOfBand: outOfBand(store),
    setLimits(limits): void {
      store.limits = structuredClone(limits);
    },
    setCapacity,
    async close(): Promise<void> {
      store.close();
      const closed = new Promise<void>((resolve) => {
        server.close(() => {
          resolve();
        });
      });
      server.closeAllConnections();
      await closed;
    },
  };
}
