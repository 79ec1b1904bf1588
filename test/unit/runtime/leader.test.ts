import assert from 'node:assert/strict';
import { KubeConfig, V1LeaseSpec, V1MicroTime } from '@kubernetes/client-node';
import { LeaseFence } from '../../../src/runtime/fence.ts';
import { model } from '../../../src/runtime/model.ts';
import { LeaderElector, isLeaseExpired, leaseDecision, nextLeaseSpec } from '../../../src/runtime/leader.ts';
import { FakeApiServer } from './helpers/fake-apiserver.ts';
import { FakeLeaseStore } from './helpers/fake-lease.ts';
import { FakeClock } from './helpers/fake-clock.ts';
import { silentLogger, waitFor } from './helpers/util.ts';

const MICRO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/;

interface Candidate {
  elector: LeaderElector;
  log: string[];
  run: Promise<void>;
}

function candidate(
  store: FakeLeaseStore,
  clock: FakeClock,
  identity: string,
  releaseOnCancel = true,
  fence?: LeaseFence,
): Candidate {
  const log: string[] = [];
  const elector = new LeaderElector({
    ...(fence ? { fence } : {}),
    kc: new KubeConfig(),
    namespace: 'ns',
    name: 'lease',
    identity,
    logger: silentLogger(),
    api: store.api(),
    clock,
    random: () => 0,
    releaseOnCancel,
  });
  const run = elector.run({
    onStartedLeading: () => log.push('started'),
    onStoppedLeading: () => log.push('stopped'),
    onNewLeader: (id) => log.push(`leader ${id}`),
  });
  return { elector, log, run };
}

describe('runtime/leader', () => {
  describe('pure decisions', () => {
    it('isLeaseExpired measures from our own observation time', () => {
      assert.equal(isLeaseExpired(1000, 15, 15_999), false);
      assert.equal(isLeaseExpired(1000, 15, 16_000), true);
      assert.equal(isLeaseExpired(1000, 15, 20_000), true);
    });

    const base = { identity: 'me', defaultLeaseDurationSeconds: 15, observedAtMs: 0 };
    it('renews a lease it holds, even if expired', () => {
      assert.equal(
        leaseDecision({ ...base, holderIdentity: 'me', leaseDurationSeconds: 15, nowMs: 99_000 }),
        'renew',
      );
    });

    it('acquires a free (released) lease at once', () => {
      assert.equal(
        leaseDecision({ ...base, holderIdentity: '', leaseDurationSeconds: 1, nowMs: 0 }),
        'acquire',
      );
      assert.equal(
        leaseDecision({ ...base, holderIdentity: undefined, leaseDurationSeconds: undefined, nowMs: 0 }),
        'acquire',
      );
    });

    it('waits while another holder’s lease is valid and acquires once expired', () => {
      assert.equal(
        leaseDecision({ ...base, holderIdentity: 'other', leaseDurationSeconds: 15, nowMs: 14_999 }),
        'wait',
      );
      assert.equal(
        leaseDecision({ ...base, holderIdentity: 'other', leaseDurationSeconds: 15, nowMs: 15_000 }),
        'acquire',
      );
    });

    it('uses the lease’s own duration, falling back to ours', () => {
      assert.equal(
        leaseDecision({ ...base, holderIdentity: 'other', leaseDurationSeconds: 60, nowMs: 30_000 }),
        'wait',
      );
      assert.equal(
        leaseDecision({ ...base, holderIdentity: 'other', leaseDurationSeconds: undefined, nowMs: 15_000 }),
        'acquire',
      );
    });

    it('nextLeaseSpec counts a transition on acquire and keeps acquireTime on renew', () => {
      const acquired = nextLeaseSpec(
        'acquire',
        model(V1LeaseSpec, { holderIdentity: 'other', leaseTransitions: 4 }),
        'me',
        15,
        1_000,
      );
      assert.equal(acquired.holderIdentity, 'me');
      assert.equal(acquired.leaseTransitions, 5);
      assert.equal(acquired.leaseDurationSeconds, 15);
      assert.ok(acquired.renewTime instanceof V1MicroTime);
      assert.match(JSON.parse(JSON.stringify(acquired.renewTime)) as string, MICRO);
      const renewed = nextLeaseSpec('renew', acquired, 'me', 15, 5_000);
      assert.equal(renewed.acquireTime, acquired.acquireTime);
      assert.equal(renewed.leaseTransitions, 5);
      assert.equal(renewed.renewTime?.getTime(), 5_000);
      const fresh = nextLeaseSpec('acquire', undefined, 'me', 15, 0);
      assert.equal(fresh.leaseTransitions, 1);
    });
  });

  describe('LeaderElector', () => {
    let clock: FakeClock;
    let store: FakeLeaseStore;
    const running: Candidate[] = [];
    beforeEach(() => {
      clock = new FakeClock();
      store = new FakeLeaseStore();
    });
    afterEach(async () => {
      store.hang = false;
      store.fail = false;
      await Promise.all(running.splice(0).map((c) => c.elector.stop()));
    });
    const start = (id: string, releaseOnCancel = true): Candidate => {
      const c = candidate(store, clock, id, releaseOnCancel);
      running.push(c);
      return c;
    };

    it('validates its timing like client-go', () => {
      const opts = {
        kc: new KubeConfig(),
        namespace: 'ns',
        name: 'l',
        identity: 'a',
        logger: silentLogger(),
      };
      assert.throws(
        () => new LeaderElector({ ...opts, leaseDurationSeconds: 10, renewDeadlineSeconds: 10 }),
        /greater/,
      );
      assert.throws(
        () => new LeaderElector({ ...opts, renewDeadlineSeconds: 2, retryPeriodSeconds: 2 }),
        /1\.2/,
      );
      assert.throws(() => new LeaderElector({ ...opts, identity: '' }), /identity/);
    });

    it('creates a missing lease, leads, and renews every retry period', async () => {
      const a = start('a');
      await clock.advanceAsync(0);
      assert.deepEqual(a.log, ['leader a', 'started']);
      assert.equal(a.elector.isLeader(), true);
      assert.equal(store.holder(), 'a');
      const spec = store.writes[0]!['spec'] as Record<string, unknown>;
      assert.match(spec['renewTime'] as string, MICRO, 'MicroTime with 6 decimals on the wire');
      assert.match(spec['acquireTime'] as string, MICRO);
      assert.equal(spec['leaseDurationSeconds'], 15);
      await clock.advanceAsync(2000);
      assert.equal(store.writes.length, 2);
      await clock.advanceAsync(2000);
      assert.equal(store.writes.length, 3);
      const renewed = store.writes[2]!['spec'] as Record<string, unknown>;
      assert.equal(renewed['acquireTime'], spec['acquireTime'], 'acquireTime kept');
      assert.notEqual(renewed['renewTime'], spec['renewTime']);
      assert.match(renewed['renewTime'] as string, MICRO);
      assert.equal((store.writes[2]!['metadata'] as Record<string, unknown>)['managedFields'], undefined);
    });

    it('lets a standby take over at once when the leader releases on stop', async () => {
      const a = start('a');
      await clock.advanceAsync(0);
      const b = start('b');
      await clock.advanceAsync(10_000);
      assert.equal(b.elector.isLeader(), false);
      assert.deepEqual(b.log, ['leader a']);
      await a.elector.stop();
      assert.deepEqual(a.log, ['leader a', 'started', 'stopped']);
      assert.equal(store.holder(), '');
      await clock.advanceAsync(2000);
      assert.equal(b.elector.isLeader(), true, 'b acquired within one retry period');
      assert.deepEqual(b.log, ['leader a', 'leader b', 'started']);
      assert.equal((store.lease!['spec'] as Record<string, unknown>)['leaseTransitions'], 2);
    });

    it('takes over an abandoned lease only after leaseDuration of our own observation', async () => {
      store.setHolder('dead', 15);
      const b = start('b');
      await clock.advanceAsync(14_000);
      assert.equal(b.elector.isLeader(), false, 'the remote renewTime (epoch 0) is not trusted');
      await clock.advanceAsync(3_000);
      assert.equal(b.elector.isLeader(), true);
      assert.equal(store.holder(), 'b');
    });

    it('keeps waiting while the holder keeps renewing', async () => {
      store.setHolder('alive', 15);
      const b = start('b');
      for (let i = 0; i < 10; i++) {
        await clock.advanceAsync(5_000);
        store.setHolder('alive', 15);
      }
      assert.equal(b.elector.isLeader(), false);
    });

    it('loses leadership when renewals fail past the renew deadline', async () => {
      const a = start('a');
      await clock.advanceAsync(0);
      store.fail = true;
      await clock.advanceAsync(8_000);
      assert.equal(a.elector.isLeader(), true, 'still within the 10 s deadline');
      await clock.advanceAsync(2_000);
      assert.equal(a.elector.isLeader(), false);
      assert.deepEqual(a.log, ['leader a', 'started', 'stopped']);
      await a.run;
    });

    it('loses leadership when a renewal hangs past the deadline', async () => {
      const a = start('a');
      await clock.advanceAsync(0);
      store.hang = true;
      await clock.advanceAsync(12_000);
      assert.equal(a.elector.isLeader(), false);
      assert.deepEqual(a.log, ['leader a', 'started', 'stopped']);
    });

    it('sends no write after a renewal whose read is answered only past the renew deadline', async () => {
      const api = store.api();
      const read = api.readNamespacedLease.bind(api);
      let late: (() => void) | undefined;
      const a = new LeaderElector({
        kc: new KubeConfig(),
        namespace: 'ns',
        name: 'lease',
        identity: 'a',
        logger: silentLogger(),
        api: {
          ...api,
          // After the acquire, the next read is answered only when the test says: the answer the
          // paused process finds waiting when it resumes, still naming it the holder.
          readNamespacedLease: async (p: never) => {
            const lease = await read(p);
            if (store.writes.length === 0) return lease;
            return new Promise((resolve) => {
              late ??= () => {
                resolve(lease);
              };
            });
          },
        },
        clock,
        random: () => 0,
      });
      const log: string[] = [];
      const run = a.run({
        onStartedLeading: () => log.push('started'),
        onStoppedLeading: () => log.push('stopped'),
      });
      await clock.advanceAsync(0);
      assert.equal(a.isLeader(), true);
      const calls = store.writeCalls;
      await clock.advanceAsync(12_000);
      assert.equal(a.isLeader(), false, 'the renew deadline passed: leadership lost');
      assert.ok(late, 'a renewal read was pending');
      late();
      await clock.advanceAsync(0);
      assert.equal(store.writeCalls, calls, 'the late read was not followed by a replace');
      await a.stop();
      await run;
      assert.deepEqual(log, ['started', 'stopped']);
    });

    it('loses leadership at once when another holder shows up', async () => {
      const a = start('a');
      await clock.advanceAsync(0);
      store.setHolder('usurper');
      await clock.advanceAsync(2_000);
      assert.equal(a.elector.isLeader(), false);
      assert.deepEqual(a.log, ['leader a', 'started', 'leader usurper', 'stopped']);
    });

    it('does not win a lease changed between its read and its write (409)', async () => {
      store.setHolder('', 1);
      const api = store.api();
      const read = api.readNamespacedLease.bind(api);
      let raced = false;
      (api as { readNamespacedLease: unknown }).readNamespacedLease = async (p: never) => {
        const lease = await read(p);
        if (!raced) {
          raced = true;
          store.setHolder('winner');
        }
        return lease;
      };
      const log: string[] = [];
      const e = new LeaderElector({
        kc: new KubeConfig(),
        namespace: 'ns',
        name: 'lease',
        identity: 'b',
        logger: silentLogger(),
        api,
        clock,
        random: () => 0,
      });
      const run = e.run({
        onStartedLeading: () => log.push('started'),
        onStoppedLeading: () => log.push('stopped'),
      });
      await clock.advanceAsync(2_000);
      assert.equal(e.isLeader(), false);
      assert.equal(store.holder(), 'winner');
      await e.stop();
      await run;
      assert.deepEqual(log, []);
    });

    it('stop() while standing by ends run() without callbacks or writes', async () => {
      store.setHolder('other');
      const b = start('b');
      await clock.advanceAsync(1_000);
      const writes = store.writes.length;
      await b.elector.stop();
      await b.run;
      assert.deepEqual(b.log, ['leader other']);
      assert.equal(store.writes.length, writes);
    });

    it('does not release on stop when releaseOnCancel is false', async () => {
      const a = start('a', false);
      await clock.advanceAsync(0);
      await a.elector.stop();
      assert.equal(store.holder(), 'a');
      assert.deepEqual(a.log, ['leader a', 'started', 'stopped']);
    });

    describe('feeding the lease fence', () => {
      const fenced = (id: string): { c: Candidate; fence: LeaseFence } => {
        const fence = new LeaseFence({ clock });
        const c = candidate(store, clock, id, true, fence);
        running.push(c);
        return { c, fence };
      };

      it('opens it on acquire, extends it on every renewal, and closes it before releasing', async () => {
        const { c, fence } = fenced('a');
        assert.equal(fence.isHeld(), false, 'closed while acquiring');
        const t0 = clock.now();
        await clock.advanceAsync(0);
        assert.equal(fence.isHeld(), true);
        assert.equal(fence.heldUntil(), t0 + 10_000, 'renew deadline after the acquire was sent');
        await clock.advanceAsync(2_000);
        assert.equal(fence.heldUntil(), t0 + 12_000, 'extended by the renewal');
        let holderWhenClosed: string | undefined;
        fence.signal.addEventListener('abort', () => {
          holderWhenClosed = store.holder();
        });
        await c.elector.stop();
        assert.equal(fence.isHeld(), false);
        assert.match((fence.signal.reason as Error).message, /released/);
        assert.equal(holderWhenClosed, 'a', 'closed while the lease was still ours');
        assert.equal(store.holder(), '', 'then released');
      });

      it('closes it at the renew deadline while a renewal hangs, and then the elector has lost', async () => {
        const { c, fence } = fenced('a');
        await clock.advanceAsync(0);
        store.hang = true;
        const writes = store.writes.length;
        await clock.advanceAsync(9_999);
        assert.equal(fence.isHeld(), true);
        await clock.advanceAsync(1);
        assert.equal(fence.isHeld(), false);
        assert.equal(c.elector.isLeader(), false, 'the fence closing ends leadership at once');
        assert.deepEqual(c.log, ['leader a', 'started', 'stopped']);
        store.hang = false;
        await clock.advanceAsync(5_000);
        assert.equal(store.writes.length, writes, 'a lost lease is not released: no write at all');
        assert.equal(store.holder(), 'a');
      });

      it('loses at once when the fence closed while the loop slept (a paused process)', async () => {
        const { c, fence } = fenced('a');
        await clock.advanceAsync(0);
        // What a resumed process sees first: the fence closed by its deadline check.
        fence.lose('renew deadline passed without a successful renewal');
        await clock.advanceAsync(0);
        assert.equal(c.elector.isLeader(), false);
        assert.deepEqual(c.log, ['leader a', 'started', 'stopped']);
        await clock.advanceAsync(5_000);
        assert.equal(store.holder(), 'a', 'no release, no renewal');
      });
    });

    it('refuses a second run()', async () => {
      const a = start('a');
      assert.throws(() =>
        a.elector.run({ onStartedLeading: () => undefined, onStoppedLeading: () => undefined }),
      );
      await clock.advanceAsync(0);
    });
  });

  describe('through client-node 2.0.1 (fake API server)', () => {
    const server = new FakeApiServer();
    before(() => server.start());
    after(() => server.stop());

    it('creates, then releases the Lease with MicroTime timestamps', async () => {
      let stored: Record<string, unknown> | undefined;
      let lastServedRv: string | undefined;
      server.requests.length = 0;
      server.route = (req) => {
        if (!req.path.startsWith('/apis/coordination.k8s.io/v1/namespaces/ns/leases')) return undefined;
        if (req.method === 'GET') {
          if (!stored) return undefined;
          lastServedRv = (stored['metadata'] as Record<string, unknown>)['resourceVersion'] as string;
          return { status: 200, body: stored };
        }
        const body = JSON.parse(req.body) as Record<string, unknown>;
        (body['metadata'] as Record<string, unknown>)['resourceVersion'] = String(server.requests.length);
        stored = body;
        return { status: req.method === 'POST' ? 201 : 200, body };
      };
      const log: string[] = [];
      const e = new LeaderElector({
        kc: server.kubeConfig(),
        namespace: 'ns',
        name: 'op-lock',
        identity: 'pod-a',
        logger: silentLogger(),
      });
      const run = e.run({
        onStartedLeading: () => log.push('started'),
        onStoppedLeading: () => log.push('stopped'),
      });
      await waitFor(() => e.isLeader(), 'leadership');
      await e.stop();
      await run;
      assert.deepEqual(log, ['started', 'stopped']);
      const post = server.requests.find((r) => r.method === 'POST')!;
      assert.equal(post.path, '/apis/coordination.k8s.io/v1/namespaces/ns/leases');
      const created = JSON.parse(post.body) as {
        spec: Record<string, unknown>;
        metadata: Record<string, unknown>;
      };
      assert.equal(created.metadata['name'], 'op-lock');
      assert.equal(created.spec['holderIdentity'], 'pod-a');
      assert.match(created.spec['renewTime'] as string, MICRO);
      assert.match(created.spec['acquireTime'] as string, MICRO);
      const put = server.requests.filter((r) => r.method === 'PUT').at(-1)!;
      assert.equal(put.path, '/apis/coordination.k8s.io/v1/namespaces/ns/leases/op-lock');
      const released = JSON.parse(put.body) as {
        spec: Record<string, unknown>;
        metadata: Record<string, unknown>;
      };
      assert.equal(released.spec['holderIdentity'], '');
      assert.equal(released.spec['leaseDurationSeconds'], 1);
      assert.match(released.spec['renewTime'] as string, MICRO);
      assert.equal(
        released.metadata['resourceVersion'],
        lastServedRv,
        'the PUT carries the resourceVersion read',
      );
    });
  });
});
