// A cluster at rest sees zero writes from the operator. The writes are counted from the API server's
// own audit log (by the operator's ServiceAccount), not from anything the operator says about itself.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AuditEvent, ControlPlane } from '../support/controlplane.ts';
import { kubectl } from '../support/kubectl.ts';
import { sampleDeployment, sampleGroup } from '../support/objects.ts';
import {
  OPERATOR_USER,
  controlPlaneWithNamespace,
  startOperator,
  type OperatorProcess,
} from '../support/operator.ts';
import { eventually, getObject } from '../support/wait.ts';

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

  before(async function () {
    this.timeout(3_600_000);
    cp = await controlPlaneWithNamespace(NS);
  });

  after(() => operator?.stop());

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
    ];
    for (const o of objects) await kubectl(cp, ['apply', '-n', NS, '-f', '-'], { input: JSON.stringify(o) });
    const names: [string, string][] = [
      ['smg', 'rest-ready'],
      ['smg', 'rest-broken'],
      ['sdep', 'rest-vllm'],
      ['sdep', 'rest-oci'],
      ['sdep', 'rest-orphan'],
    ];

    operator = await startOperator(cp, {
      identity: 'at-rest-1',
      namespace: NS,
      extraArgs: ['--leader-election-id=at-rest'],
    });
    await settled(names);
    // The vllm backend has made its Deployment (pods stay Pending: no kubelet here), so the window
    // also covers the backend's idempotence, not only status writes.
    await kubectl(cp, ['get', 'deployment', '-n', NS, 'rest-vllm-vllm']);
    await sleep(3000); // let the last status write and its echo through the informers pass
    const start = Date.now();
    await sleep(REST_SECONDS * 1000);
    const writes = await cp.writesBy(OPERATOR_USER, start);
    assert.ok(
      writes.some(isLease),
      'the audit log must show the lease renewals, or it is not counting this user',
    );
    assert.deepEqual(writes.filter((e) => !isLease(e)).map(describeWrite), [], 'writes at rest');

    // A new process starts from nothing in memory: level-triggered, it must find nothing to write.
    await operator.stop();
    operator = await startOperator(cp, {
      identity: 'at-rest-2',
      namespace: NS,
      extraArgs: ['--leader-election-id=at-rest'],
    });
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
