import assert from 'node:assert/strict';
import { request } from 'node:http';
import { KubeConfig } from '@kubernetes/client-node';
import { Registry } from 'prom-client';
import { LeaseLostError } from '../../../src/runtime/fence.ts';
import { LeaderElectionLostError, type ManagedInformer, Manager } from '../../../src/runtime/manager.ts';
import { FakeClock, flush } from './helpers/fake-clock.ts';
import { FakeLeaseStore } from './helpers/fake-lease.ts';
import { isPending, silentLogger } from './helpers/util.ts';

class FakeInformer implements ManagedInformer {
  synced = false;
  stopped = false;
  starts = 0;
  private resolve: (() => void) | undefined;
  private reject: ((err: Error) => void) | undefined;
  private readonly log: string[];
  private readonly name: string;

  constructor(name: string, log: string[]) {
    this.name = name;
    this.log = log;
  }

  start(): Promise<void> {
    this.starts++;
    this.log.push(`${this.name} start`);
    return new Promise((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }

  sync(): void {
    this.synced = true;
    this.resolve?.();
  }

  stop(): void {
    this.stopped = true;
    this.log.push(`${this.name} stop`);
    if (!this.synced) this.reject?.(new Error('stopped before it synced'));
  }

  hasSynced(): boolean {
    return this.synced;
  }
}

class FakeController {
  running = false;
  signal: AbortSignal | undefined;
  private readonly log: string[];
  constructor(log: string[]) {
    this.log = log;
  }
  start(signal?: AbortSignal): void {
    this.running = true;
    this.signal = signal;
    this.log.push('controller start');
  }
  async stop(): Promise<void> {
    await Promise.resolve();
    this.running = false;
    this.log.push('controller stop');
  }
}

function readyz(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port, path: '/readyz' }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    })
      .on('error', reject)
      .end();
  });
}

describe('runtime/manager', () => {
  const kc = new KubeConfig();

  describe('without leader election', () => {
    it('starts informers, waits for sync, then starts controllers', async () => {
      const log: string[] = [];
      const m = new Manager({
        kc,
        logger: silentLogger(),
        registry: new Registry(),
        healthPort: 0,
        healthHost: '127.0.0.1',
      });
      assert.equal(m.fence, undefined, 'no lease, nothing to fence against');
      const i1 = new FakeInformer('i1', log);
      const i2 = new FakeInformer('i2', log);
      const c = new FakeController(log);
      m.addInformer(i1);
      m.addInformer(i2);
      m.addController(c);
      const started = m.start();
      await flush();
      assert.equal(await isPending(started), true);
      assert.deepEqual(log, ['i1 start', 'i2 start']);
      assert.equal(m.isReady(), false);
      assert.equal(await readyz(m.healthPort!), 500);
      i1.sync();
      await flush();
      assert.equal(c.running, false, 'controllers wait for every informer');
      i2.sync();
      await started;
      assert.equal(c.running, true);
      assert.equal(m.isReady(), true);
      assert.equal(await readyz(m.healthPort!), 200);
      assert.throws(() => {
        m.addController(new FakeController(log));
      }, /after start/);

      await m.stop();
      await m.done;
      assert.deepEqual(log.slice(3), ['controller stop', 'i1 stop', 'i2 stop']);
      assert.equal(m.isReady(), false);
    });

    it('stop() during the initial sync ends start() without starting controllers', async () => {
      const log: string[] = [];
      const m = new Manager({ kc, logger: silentLogger(), registry: new Registry() });
      const inf = new FakeInformer('i', log);
      const c = new FakeController(log);
      m.addInformer(inf);
      m.addController(c);
      const started = m.start();
      await flush();
      await m.stop();
      await started;
      assert.equal(c.running, false);
      assert.deepEqual(log, ['i start', 'controller stop', 'i stop']);
      assert.equal(m.stop(), m.stop(), 'stop() is idempotent');
    });
  });

  describe('with leader election', () => {
    let clock: FakeClock;
    let store: FakeLeaseStore;
    beforeEach(() => {
      clock = new FakeClock();
      store = new FakeLeaseStore();
    });

    function manager(log: string[]): {
      m: Manager;
      inf: FakeInformer;
      c: FakeController;
      registry: Registry;
    } {
      const registry = new Registry();
      const m = new Manager({
        kc,
        logger: silentLogger(),
        registry,
        leaderElection: { namespace: 'ns', name: 'lease', identity: 'me', api: store.api(), clock },
      });
      const inf = new FakeInformer('i', log);
      const c = new FakeController(log);
      m.addInformer(inf);
      m.addController(c);
      return { m, inf, c, registry };
    }

    it('stands by (ready, idle) while another replica leads, then takes over', async () => {
      store.setHolder('other');
      const log: string[] = [];
      const { m, inf, c, registry } = manager(log);
      await m.start();
      await clock.advanceAsync(5_000);
      assert.equal(m.isReady(), true, 'a standby is ready');
      assert.deepEqual(log, [], 'no informers while standing by');
      store.setHolder('');
      await clock.advanceAsync(5_000);
      assert.deepEqual(log, ['i start']);
      assert.equal(m.isReady(), false, 'leading but not synced yet');
      inf.sync();
      await flush();
      assert.equal(c.running, true);
      assert.equal(m.isReady(), true);
      assert.match(await registry.metrics(), /leader_election_master_status\{name="ns\/lease"\} 1/);
      await m.stop();
      await m.done;
      assert.equal(store.holder(), '', 'the lease is released on graceful stop');
      assert.deepEqual(log, ['i start', 'controller start', 'controller stop', 'i stop']);
    });

    it('owns a fence that is closed until leading and aborts the controllers’ signal when lost', async () => {
      const { m, inf, c } = manager([]);
      assert.ok(m.fence, 'a fence with leader election');
      assert.equal(m.fence.isHeld(), false);
      await m.start();
      await clock.advanceAsync(0);
      assert.equal(m.fence.isHeld(), true, 'open once the lease is acquired');
      inf.sync();
      await flush();
      assert.equal(c.signal, m.fence.signal, 'controllers get the fence signal');
      // A renewal hangs: the fence closes at the renew deadline, before the elector's own check.
      store.hang = true;
      await clock.advanceAsync(10_000);
      assert.equal(m.fence.isHeld(), false);
      assert.equal(c.signal.aborted, true);
      await assert.rejects(m.done, LeaderElectionLostError);
      assert.throws(() => {
        m.fence!.assertHeld();
      }, LeaseLostError);
      store.hang = false;
      await m.stop();
      assert.equal(c.running, false);
    });

    it('a graceful stop closes the fence without reporting a lost lease', async () => {
      const { m, inf } = manager([]);
      await m.start();
      await clock.advanceAsync(0);
      inf.sync();
      await flush();
      await m.stop();
      await m.done;
      assert.equal(m.fence?.isHeld(), false, 'no write after the lease is released');
    });

    it('rejects done and stops everything when the lease is lost', async () => {
      const log: string[] = [];
      const { m, inf, c } = manager(log);
      await m.start();
      await clock.advanceAsync(0);
      inf.sync();
      await flush();
      assert.equal(c.running, true);
      store.fail = true;
      await clock.advanceAsync(12_000);
      await assert.rejects(m.done, LeaderElectionLostError);
      await m.stop();
      assert.equal(c.running, false);
      assert.equal(inf.stopped, true);
    });
  });
});
