// Two operator processes share one Lease: one reconciles, the other waits; when the leader dies the
// other takes over, and a graceful stop hands over at once. A leader frozen past its lease and then
// resumed writes nothing more (the API server's audit log is the witness) and exits non-zero.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AuditEvent, ControlPlane } from '../support/controlplane.ts';
import { kubectl } from '../support/kubectl.ts';
import { sampleGroup } from '../support/objects.ts';
import {
  OPERATOR_NAMESPACE,
  OPERATOR_USER,
  controlPlaneWithNamespace,
  startOperator,
  type OperatorProcess,
} from '../support/operator.ts';
import { condition, eventually, getObject, waitForReady } from '../support/wait.ts';

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

  const start = async (identity: string, namespace = NS, lease = LEASE) => {
    const o = await startOperator(cp, {
      identity,
      namespace,
      extraArgs: [`--leader-election-id=${lease}`],
    });
    operators.push(o);
    return o;
  };
  const holder = async (lease = LEASE) => {
    const r = await kubectl(cp, ['get', 'lease', '-n', OPERATOR_NAMESPACE, lease, '-o', 'json'], {
      allowFail: true,
    });
    return r.code === 0 ? (JSON.parse(r.stdout) as Lease).spec.holderIdentity : undefined;
  };
  const waitForHolder = (identity: string, timeoutMs = 30_000, lease = LEASE) =>
    eventually(
      `${identity} to hold the lease`,
      async () => ((await holder(lease)) === identity ? true : undefined),
      timeoutMs,
    );
  const reconciled = (o: OperatorProcess, name: string) =>
    o.lines.some((l) => typeof l.key === 'string' && l.key === `${NS}/${name}`);
  const createGroup = (name: string, namespace = NS) =>
    kubectl(cp, ['apply', '-n', namespace, '-f', '-'], { input: JSON.stringify(sampleGroup(name)) });

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

  it('a leader frozen past its lease writes nothing after it resumes, and exits non-zero', async () => {
    // Its own lease and namespaces: the processes of the tests above (still running, still
    // watching NS) must neither compete for this lease nor reconcile this test's objects.
    const lease = 'leader-fence-test';
    const nsA = 'leader-fence-a';
    const nsB = 'leader-fence-b';
    for (const ns of [nsA, nsB]) await kubectl(cp, ['create', 'namespace', ns]);
    // a watches nsA and b watches nsB: once b leads, what a finds to do in nsA nobody else does, so
    // a's writes would not be made redundant by b's; the test fails if a does any work at all.
    const a = await start('fence-a', nsA, lease);
    await waitForHolder('fence-a', 30_000, lease);
    const b = await start('fence-b', nsB, lease);
    await b.waitForLog((l) => l.message === 'waiting to acquire leader lease');
    await createGroup('before-pause', nsA);
    await waitForReady(cp, nsA, 'smg', 'before-pause', 'True');

    // Freeze a (a stopped VM, a GC pause, SIGSTOP) until b has taken the lease over.
    assert.equal(a.proc.kill('SIGSTOP'), true);
    await waitForHolder('fence-b', 30_000, lease);
    // Work for a when it wakes: its informer gets these as soon as it reads its watch again.
    const paused = ['while-paused-1', 'while-paused-2', 'while-paused-3'];
    for (const name of paused) await createGroup(name, nsA);
    // b leads for real: it reconciles in its own namespace.
    await createGroup('under-b', nsB);
    await waitForReady(cp, nsB, 'smg', 'under-b', 'True');

    const resumedAt = Date.now();
    assert.equal(a.proc.kill('SIGCONT'), true);
    const code = await Promise.race([a.exited, sleep(15_000, 'still running' as const)]);

    // Every write a ever made is tagged with its identity in the User-Agent (both processes use
    // the same ServiceAccount); none may have been received after it was resumed.
    const byA = (e: AuditEvent) => e.userAgent?.includes('(fence-a)') === true;
    const show = (e: AuditEvent) =>
      `${e.verb} ${e.requestURI} at ${e.requestReceivedTimestamp} (${String(e.responseStatus?.code)})`;
    const allByA = (await cp.writesBy(OPERATOR_USER)).filter(byA);
    assert.ok(
      allByA.some((e) => e.objectRef?.resource === 'leases') &&
        allByA.some((e) => e.objectRef?.name === 'before-pause'),
      `the audit log tells a's writes apart (lease and status): ${allByA.map(show).join('; ')}`,
    );
    const afterResume = (await cp.writesBy(OPERATOR_USER, resumedAt)).filter(byA);
    assert.deepEqual(afterResume.map(show), [], 'no write from the resumed process');
    assert.equal(code, 1, 'the resumed leader exits non-zero, promptly');

    // The work a found is still undone: nothing of it was written, by a or anyone.
    for (const name of paused) {
      assert.equal(condition(await getObject(cp, nsA, 'smg', name), 'Ready'), undefined, name);
    }
    assert.ok(
      a.lines.some((l) => l.message === 'lost leader lease' || l.message === 'leader lease lost; stopping'),
      'a says why it stopped',
    );
    assert.equal(await holder(lease), 'fence-b');
  });
});
