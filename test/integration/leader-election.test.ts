// Two operator processes share one Lease: one reconciles, the other waits; when the leader dies the
// other takes over, and a graceful stop hands over at once.
import assert from 'node:assert/strict';
import type { ControlPlane } from '../support/controlplane.ts';
import { kubectl } from '../support/kubectl.ts';
import { sampleGroup } from '../support/objects.ts';
import {
  OPERATOR_NAMESPACE,
  controlPlaneWithNamespace,
  startOperator,
  type OperatorProcess,
} from '../support/operator.ts';
import { eventually, waitForReady } from '../support/wait.ts';

const NS = 'leader-test';
const LEASE = 'leader-test';

interface Lease {
  spec: { holderIdentity?: string; leaseTransitions?: number };
}

describe('leader election', function () {
  this.timeout(120_000);
  let cp: ControlPlane;
  const operators: OperatorProcess[] = [];

  before(async function () {
    this.timeout(3_600_000);
    cp = await controlPlaneWithNamespace(NS);
  });

  after(() => Promise.all(operators.map((o) => o.stop('SIGKILL'))));

  const start = async (identity: string) => {
    const o = await startOperator(cp, {
      identity,
      namespace: NS,
      extraArgs: [`--leader-election-id=${LEASE}`],
    });
    operators.push(o);
    return o;
  };
  const holder = async () => {
    const r = await kubectl(cp, ['get', 'lease', '-n', OPERATOR_NAMESPACE, LEASE, '-o', 'json'], {
      allowFail: true,
    });
    return r.code === 0 ? (JSON.parse(r.stdout) as Lease).spec.holderIdentity : undefined;
  };
  const waitForHolder = (identity: string, timeoutMs = 30_000) =>
    eventually(
      `${identity} to hold the lease`,
      async () => ((await holder()) === identity ? true : undefined),
      timeoutMs,
    );
  const reconciled = (o: OperatorProcess, name: string) =>
    o.lines.some((l) => typeof l.key === 'string' && l.key === `${NS}/${name}`);
  const createGroup = (name: string) =>
    kubectl(cp, ['apply', '-n', NS, '-f', '-'], { input: JSON.stringify(sampleGroup(name)) });

  it('lets only the leader reconcile, and fails over when it dies', async () => {
    const a = await start('leader-a');
    await waitForHolder('leader-a');
    const b = await start('leader-b');
    await b.waitForLog((l) => l.message === 'waiting to acquire leader lease');

    await createGroup('first');
    await waitForReady(cp, NS, 'smg', 'first', 'True');
    assert.ok(reconciled(a, 'first'), 'the leader reconciled');
    assert.equal(reconciled(b, 'first'), false, 'the standby must not reconcile');
    assert.equal(await holder(), 'leader-a');

    await a.stop('SIGKILL'); // a crash: no release, b must wait for the lease to expire
    await waitForHolder('leader-b', 30_000);
    await createGroup('second');
    await waitForReady(cp, NS, 'smg', 'second', 'True');
    assert.ok(reconciled(b, 'second'), 'the new leader reconciled');
  });

  it('hands the lease over at once on SIGTERM', async () => {
    const c = await start('leader-c');
    const b = operators.find((o) => o.identity === 'leader-b')!;
    await c.waitForLog((l) => l.message === 'waiting to acquire leader lease');
    const t0 = Date.now();
    const code = await b.stop('SIGTERM');
    assert.equal(code, 0, 'a graceful stop exits 0');
    await waitForHolder('leader-c', 30_000);
    const handover = Date.now() - t0;
    console.log(`      handover after SIGTERM: ${handover} ms (lease duration 4000 ms)`);
    await createGroup('third');
    await waitForReady(cp, NS, 'smg', 'third', 'True');
    assert.ok(reconciled(c, 'third'));
  });
});
