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
import type { OciEmulator, OciEmulatorCounts, OciEmulatorOptions } from './oci-emu/types.ts';

export type * from './oci-emu/types.ts';
export { keyFingerprint, verifySignedRequest, type VerifyResult } from './oci-emu/signature.ts';
export { OPERATIONS } from './oci-emu/routes.ts';

const DEFAULT_DELAY_MS = 50;
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
  const store = new Store(url, opts.region ?? 'us-ashburn-1', delays);
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
    modelGroups: () => [...store.groups.values()].map((r) => copy(r.data)),
    modelDeployments: () => [...store.deployments.values()].map((r) => copy(r.data)),
    workRequests: () => [...store.workRequests.values()].map((r) => copy(r.data)),
    modelGroupVersionHistories: () => [...store.histories.values()].map((r) => copy(r.data)),
    outOfBand: outOfBand(store),
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
