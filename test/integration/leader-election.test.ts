// Two operator processes share one Lease: one reconciles, the other waits; when the leader dies the
// other takes over, and a graceful stop hands over at once. A leader frozen past its lease and then
// resumed writes nothing more (the API server's audit log is the witness) and exits non-zero.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AuditEvent, ControlPlane } from '../../playground/controlplane.ts';
import { kubectl } from '../../playground/kubectl.ts';
import { sampleGroup } from '../support/objects.ts';
import {
  OPERATOR_NAMESPACE,
  OPERATOR_USER,
  controlPlaneWithNamespace,
  startOperator,
  type OperatorProcess,
} from '../../playground/operator.ts';
import { condition, eventually, getObject, waitForReady } from '../../playground/wait.ts';

const NS = 'leader-test';
const LEASE = 'leader-test';

interface Lease {
  spec: {
    holderIdentity?: string;
    leaseTransitions?: number;
    leaseDurationSeconds?: number;
    /** RFC 3339 with microseconds, as the API server returns a MicroTime. */
    acquireTime?: string;
    renewTime?: string;
  };
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

  const start = async (identity: string, namespace = NS, lease = LEASE, extraArgs: string[] = []) => {
    const o = await startOperator(cp, {
      identity,
      namespace,
      extraArgs: [`--leader-election-id=${lease}`, ...extraArgs],
    });
    operators.push(o);
    return o;
  };
  const leaseOf = async (lease = LEASE) => {
    const r = await kubectl(cp, ['get', 'lease', '-n', OPERATOR_NAMESPACE, lease, '-o', 'json'], {
      allowFail: true,
    });
    return r.code === 0 ? (JSON.parse(r.stdout) as Lease) : undefined;
  };
  const holder = async (lease = LEASE) => (await leaseOf(lease))?.spec.holderIdentity;
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

  it('hands the lease over at once on SIGTERM: released, not expired', async () => {
    // Its own lease and namespace, and a lease long enough (15 s) that a successor that took over
    // only because the lease expired could not do so before the old renewTime plus 15 s.
    const lease = 'leader-handover-test';
    const ns = 'leader-handover';
    await kubectl(cp, ['create', 'namespace', ns]);
    const long = ['--lease-duration=15', '--renew-deadline=10', '--retry-period=1'];
    const b = await start('handover-b', ns, lease, long);
    await waitForHolder('handover-b', 30_000, lease);
    const c = await start('handover-c', ns, lease, long);
    await c.waitForLog((l) => l.message === 'waiting to acquire leader lease');
    // b renews every second: read its lease after a renewal, right before the SIGTERM, so the bound
    // below uses (at worst) a renewTime slightly older than b's last one, which only tightens it.
    const before = await leaseOf(lease);
    assert.ok(before, 'the lease');
    assert.equal(before.spec.holderIdentity, 'handover-b');
    const renewedAt = Date.parse(before.spec.renewTime ?? '');
    const durationMs = (before.spec.leaseDurationSeconds ?? 0) * 1000;
    assert.equal(durationMs, 15_000);
    const t0 = Date.now();
    const code = await b.stop('SIGTERM');
    assert.equal(code, 0, 'a graceful stop exits 0');
    assert.ok(
      b.lines.some((l) => l.message === 'released leader lease'),
      'b says it released the lease',
    );
    await waitForHolder('handover-c', 30_000, lease);
    const handover = Date.now() - t0;
    const after = await leaseOf(lease);
    assert.ok(after, 'the lease');
    const acquiredAt = Date.parse(after.spec.acquireTime ?? '');
    console.log(
      `      handover after SIGTERM: ${String(handover)} ms; acquired ${String(acquiredAt - renewedAt)} ms after b's last seen renewal (lease duration ${String(durationMs)} ms)`,
    );
    assert.ok(
      acquiredAt < renewedAt + durationMs,
      `c acquired at ${after.spec.acquireTime ?? '?'}, before b's lease (renewed ${before.spec.renewTime ?? '?'}) could expire: it was released`,
    );
    assert.equal(after.spec.leaseTransitions, (before.spec.leaseTransitions ?? 0) + 1);
    await createGroup('third', ns);
    await waitForReady(cp, ns, 'smg', 'third', 'True');
    assert.ok(c.lines.some((l) => typeof l.key === 'string' && l.key === `${ns}/third`));
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
