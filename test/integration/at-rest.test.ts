// A cluster at rest sees zero writes from the operator. The writes are counted from the API server's
// own audit log (by the operator's ServiceAccount), not from anything the operator says about itself.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AuditEvent, ControlPlane } from '../../playground/controlplane.ts';
import { writeAdapter } from '../../playground/adapters.ts';
import { startKubelet, type Kubelet } from '../../playground/kubelet.ts';
import { kubectl } from '../../playground/kubectl.ts';
import { sampleDeployment, sampleGroup } from '../support/objects.ts';
import {
  OPERATOR_USER,
  controlPlaneWithNamespace,
  startOperator,
  type OperatorProcess,
} from '../../playground/operator.ts';
import { startOciEmulator, type OciEmulator } from '../../playground/oci-emulator.ts';
import { apiKeySecret, makeApiKey } from '../../playground/oci-keys.ts';
import { eventually, getObject, waitForReady } from '../../playground/wait.ts';

const NS = 'at-rest-test';
// How long the cluster is watched at rest; REST_SECONDS overrides it for a longer soak.
const REST_SECONDS = Number(process.env.REST_SECONDS ?? 120);

const isLease = (e: AuditEvent) => e.objectRef?.resource === 'leases';
const describeWrite = (e: AuditEvent) =>
  `${e.verb} ${e.objectRef?.resource ?? ''}${e.objectRef?.subresource ? `/${e.objectRef.subresource}` : ''} ${e.objectRef?.name ?? ''}`;

describe('a cluster at rest', function () {
  this.timeout(REST_SECONDS * 1000 + 180_000);
  let cp: ControlPlane;
  let operator: OperatorProcess | undefined;
  let kubelet: Kubelet;
  let root: string;
  let emu: OciEmulator;

  before(async function () {
    this.timeout(3_600_000);
    cp = await controlPlaneWithNamespace(NS);
    // The vllm deployment really runs: two simulated GPU pods with the sample's adapters, so the
    // window covers adapter re-verification and readiness gates too, not only status writes.
    root = mkdtempSync(join(tmpdir(), 'at-rest-'));
    for (const m of ['sql-lora-1', 'sql-lora-2']) writeAdapter(join(root, 'hf', 'example-org', m), 16);
    kubelet = await startKubelet({
      kubeconfigPath: cp.kubeconfigPath,
      nodes: [1, 2].map((i) => ({ name: `rest-gpu-${i}`, gpus: 1 })),
      pvcRoot: join(root, 'pvc'),
      hfRoot: join(root, 'hf'),
      namespaces: [NS],
    });
    // And an oci deployment really serves, on the OCI emulator, so its polls are in the window too.
    const key = makeApiKey();
    emu = await startOciEmulator({
      keys: { [key.keyId]: key.publicKeyPem },
      models: ['base', 'lora1', 'lora2'].map((m) => `ocid1.datasciencemodel.oc1.iad.aaaaaaaa${m}`),
    });
    await kubectl(cp, ['apply', '-n', NS, '-f', '-'], {
      input: JSON.stringify(apiKeySecret('oci-api-key', key)),
    });
  });

  after(async () => {
    await operator?.stop();
    await kubelet.stop();
    await emu.close();
    rmSync(root, { recursive: true, force: true });
  });

  async function settled(names: [string, string][]): Promise<void> {
    for (const [resource, name] of names) {
      await eventually(`${resource}/${name} reconciled`, async () => {
        const o = await getObject(cp, NS, resource, name);
        return o?.status?.observedGeneration === o?.metadata.generation && o?.status?.conditions?.length
          ? o
          : undefined;
      });
    }
  }

  it(`sees zero writes from the operator in ${REST_SECONDS} s after the first reconcile, and none after a restart`, async () => {
    const objects: object[] = [
      sampleGroup('rest-ready'),
      sampleGroup('rest-broken', (g) => (g.spec.members![0]!.source = { pvc: { claimName: 'absent' } })),
      sampleDeployment(
        'deployment-vllm.yaml',
        'rest-vllm',
        (d) => (d.spec.modelGroupRef.name = 'rest-ready'),
      ),
      sampleDeployment('deployment-oci.yaml', 'rest-oci', (d) => (d.spec.modelGroupRef.name = 'rest-broken')),
      sampleDeployment('deployment-vllm.yaml', 'rest-orphan', (d) => (d.spec.modelGroupRef.name = 'nowhere')),
      sampleDeployment('deployment-oci.yaml', 'rest-oci-live', (d) => {
        d.spec.modelGroupRef.name = 'rest-ready';
        d.spec.oci!.endpoint = emu.url;
      }),
    ];
    for (const o of objects) await kubectl(cp, ['apply', '-n', NS, '-f', '-'], { input: JSON.stringify(o) });
    const names: [string, string][] = [
      ['smg', 'rest-ready'],
      ['smg', 'rest-broken'],
      ['sdep', 'rest-vllm'],
      ['sdep', 'rest-oci'],
      ['sdep', 'rest-orphan'],
      ['sdep', 'rest-oci-live'],
    ];

    // Short re-verification and OCI poll intervals, so the window sees many rounds of them.
    const args = ['--leader-election-id=at-rest', '--adapter-verify-interval=5', '--oci-poll-interval=5'];
    operator = await startOperator(cp, { identity: 'at-rest-1', namespace: NS, extraArgs: args });
    await settled(names);
    await waitForReady(cp, NS, 'sdep', 'rest-vllm', 'True', undefined, 90_000);
    await waitForReady(cp, NS, 'sdep', 'rest-oci-live', 'True', 'Serving', 90_000);
    await eventually(
      'both replicas serving',
      async () => {
        const d = await getObject(cp, NS, 'sdep', 'rest-vllm');
        return d?.status?.readyReplicas === 2 ? true : undefined;
      },
      60_000,
    );
    await sleep(3000); // let the last status write and its echo through the informers pass
    const start = Date.now();
    await sleep(REST_SECONDS * 1000);
    const writes = await cp.writesBy(OPERATOR_USER, start);
    assert.ok(
      writes.some(isLease),
      'the audit log must show the lease renewals, or it is not counting this user',
    );
    assert.deepEqual(writes.filter((e) => !isLease(e)).map(describeWrite), [], 'writes at rest');
    const ociCalls = emu.requests().filter((r) => r.at >= start);
    assert.ok(ociCalls.length > 0, 'the OCI deployment was polled');
    assert.deepEqual(
      ociCalls.filter((r) => r.method !== 'GET').map((r) => r.operation),
      [],
      'mutating OCI calls at rest',
    );

    // A new process starts from nothing in memory: level-triggered, it must find nothing to write.
    await operator.stop();
    operator = await startOperator(cp, { identity: 'at-rest-2', namespace: NS, extraArgs: args });
    const restart = Date.now();
    await eventually('the new operator to lead and sync', async () =>
      (await cp.writesBy(OPERATOR_USER, restart)).some(isLease) ? true : undefined,
    );
    await sleep(10_000);
    const afterRestart = await cp.writesBy(OPERATOR_USER, restart);
    assert.deepEqual(
      afterRestart.filter((e) => !isLease(e)).map(describeWrite),
      [],
      'writes after a restart at rest',
    );
  });
});
