import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import {
  CoreV1Api,
  CustomObjectsApi,
  HttpMethod,
  KubeConfig,
  KubernetesObjectApi,
  PatchStrategy,
  RequestContext,
  Watch,
  setHeaderOptions,
} from '@kubernetes/client-node';
import type { Clock } from '../../../src/runtime/clock.ts';
import {
  FencedKubeConfig,
  LeaseFence,
  LeaseLostError,
  fenceOf,
  monotonicClock,
} from '../../../src/runtime/fence.ts';
import { selfSignedCert } from '../../../playground/tls.ts';
import { FakeApiServer } from './helpers/fake-apiserver.ts';
import { FakeClock } from './helpers/fake-clock.ts';

/** A KubeConfig for server that trusts ca (PEM), as a kubeconfig file with certificate-authority-data. */
function tlsKubeConfig(server: string, ca: string, cluster = 'tls'): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: cluster, server, caData: Buffer.from(ca).toString('base64'), skipTLSVerify: false }],
    users: [{ name: 'tls', token: 'secret-token-do-not-log' }],
    contexts: [{ name: 'tls', cluster, user: 'tls' }],
    currentContext: 'tls',
  });
  return kc;
}

/** The dispatcher client-node puts on a request made through kc. */
async function dispatcherOf(kc: KubeConfig, method: HttpMethod = HttpMethod.GET): Promise<unknown> {
  const context = new RequestContext(`${kc.getCurrentCluster()?.server ?? ''}/api/v1/namespaces`, method);
  await kc.applySecurityAuthentication(context);
  return context.getDispatcher();
}

/** A clock whose timers never fire: a process that was stopped and has not run its timers yet. */
class PausedClock implements Clock {
  t = 1_000;
  now(): number {
    return this.t;
  }
  setTimeout(): unknown {
    return undefined;
  }
  clearTimeout(): void {
    // nothing is ever scheduled
  }
}

describe('runtime/fence', () => {
  describe('LeaseFence', () => {
    it('refuses writes before the lease is first acquired', () => {
      const fence = new LeaseFence({ clock: new FakeClock() });
      assert.equal(fence.isHeld(), false);
      assert.throws(() => {
        fence.assertHeld();
      }, /not acquired yet/);
      assert.equal(fence.signal.aborted, false, 'not acquired is not lost');
    });

    it('allows writes until the renew deadline after the renewal was sent, and each renewal extends it', () => {
      const clock = new FakeClock();
      const fence = new LeaseFence({ clock });
      const sentAt = fence.now();
      clock.advance(200); // the acquire's round trip
      fence.renewed(sentAt, 10_000);
      assert.equal(fence.heldUntil(), sentAt + 10_000, 'measured from the send, not the answer');
      fence.assertHeld();
      clock.advance(9_000);
      fence.assertHeld();
      fence.renewed(fence.now(), 10_000);
      clock.advance(9_000);
      fence.assertHeld();
      assert.equal(fence.signal.aborted, false);
    });

    it('refuses writes once the deadline passes, and aborts the signal at the deadline', () => {
      const clock = new FakeClock();
      const fence = new LeaseFence({ clock });
      fence.renewed(fence.now(), 10_000);
      clock.advance(9_999);
      assert.equal(fence.signal.aborted, false);
      clock.advance(1);
      assert.equal(fence.signal.aborted, true, 'the timer closed it without any write');
      assert.ok(fence.signal.reason instanceof LeaseLostError);
      assert.equal(fence.isHeld(), false);
      assert.throws(
        () => {
          fence.assertHeld();
        },
        (err: unknown) => err instanceof LeaseLostError && /renew deadline passed/.test(err.message),
      );
    });

    it('refuses the first write of a process resumed past its deadline, before any timer runs', () => {
      const clock = new PausedClock();
      const fence = new LeaseFence({ clock });
      fence.renewed(clock.now(), 3_000);
      fence.assertHeld();
      clock.t += 60_000; // SIGSTOP ... SIGCONT
      assert.equal(fence.signal.aborted, false, 'no timer has run yet');
      assert.throws(() => {
        fence.assertHeld();
      }, LeaseLostError);
      assert.equal(fence.signal.aborted, true, 'the refused write also aborted the signal');
    });

    it('stays lost: neither a late renewal answer nor another loss reopens or rewrites it', () => {
      const clock = new FakeClock();
      const fence = new LeaseFence({ clock });
      fence.renewed(fence.now(), 10_000);
      fence.lose('leader lease released');
      fence.renewed(fence.now(), 10_000);
      fence.lose('something else');
      assert.equal(fence.isHeld(), false);
      assert.throws(() => {
        fence.assertHeld();
      }, /leader lease released; write refused/);
      assert.equal(clock.pending(), 0, 'no timer left behind');
    });

    it('ignores a renewal that would end earlier than the one already recorded', () => {
      const clock = new FakeClock();
      const fence = new LeaseFence({ clock });
      const early = fence.now();
      clock.advance(1_000);
      fence.renewed(fence.now(), 10_000);
      fence.renewed(early, 10_000);
      assert.equal(fence.heldUntil(), early + 11_000);
    });

    it('opened with a renewal whose deadline has already passed, it is lost at once', () => {
      const clock = new FakeClock();
      const fence = new LeaseFence({ clock });
      const sentAt = fence.now();
      clock.advance(10_000); // the acquire took the whole deadline
      fence.renewed(sentAt, 10_000);
      assert.equal(fence.signal.aborted, true);
    });

    it('measures on a monotonic clock by default', () => {
      const before = performance.now();
      const t = monotonicClock.now();
      assert.ok(t >= before && t <= performance.now());
    });
  });

  describe('FencedKubeConfig (client-node 2.0.1, fake API server)', () => {
    const server = new FakeApiServer();
    before(() => server.start());
    after(() => server.stop());
    beforeEach(() => {
      server.requests.length = 0;
      server.route = (req) => {
        if (req.method === 'GET' && req.path === '/api/v1') {
          // KubernetesObjectApi reads the resource list before its first call on a kind.
          const resources = [{ name: 'configmaps', kind: 'ConfigMap', namespaced: true, verbs: [] }];
          return { status: 200, body: { kind: 'APIResourceList', groupVersion: 'v1', resources } };
        }
        if (req.method === 'GET')
          return { status: 200, body: { kind: 'ConfigMap', metadata: { name: 'x' } } };
        return { status: 200, body: JSON.parse(req.body || '{}') as unknown };
      };
    });

    function fenced(): { kc: FencedKubeConfig; fence: LeaseFence; clock: FakeClock } {
      const clock = new FakeClock();
      const fence = new LeaseFence({ clock });
      fence.renewed(fence.now(), 10_000);
      const kc = new FencedKubeConfig(server.kubeConfig(), { fence, userAgent: 'stacked-operator (pod-a)' });
      return { kc, fence, clock };
    }

    const cm = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x', namespace: 'ns' } };

    it('lets every call through while the lease is held, with our User-Agent', async () => {
      const { kc } = fenced();
      const core = kc.makeApiClient(CoreV1Api);
      await core.readNamespacedConfigMap({ name: 'x', namespace: 'ns' });
      await core.createNamespacedConfigMap({ namespace: 'ns', body: cm });
      await kc
        .makeApiClient(CustomObjectsApi)
        .patchNamespacedCustomObjectStatus(
          { group: 'g', version: 'v1', namespace: 'ns', plural: 'things', name: 'x', body: {} },
          setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
        );
      assert.deepEqual(
        server.requests.map((r) => r.method),
        ['GET', 'POST', 'PATCH'],
      );
      for (const r of server.requests) assert.equal(r.headers['user-agent'], 'stacked-operator (pod-a)');
    });

    it('refuses writes, and only writes, once the lease is lost, before they leave the process', async () => {
      const { kc, clock } = fenced();
      const core = kc.makeApiClient(CoreV1Api);
      const objects = KubernetesObjectApi.makeApiClient(kc);
      clock.advance(10_000);
      await core.readNamespacedConfigMap({ name: 'x', namespace: 'ns' });
      await core.listNamespacedConfigMap({ namespace: 'ns' });
      await assert.rejects(core.createNamespacedConfigMap({ namespace: 'ns', body: cm }), LeaseLostError);
      await assert.rejects(
        core.replaceNamespacedConfigMap({ name: 'x', namespace: 'ns', body: cm }),
        LeaseLostError,
      );
      await assert.rejects(core.deleteNamespacedConfigMap({ name: 'x', namespace: 'ns' }), LeaseLostError);
      await assert.rejects(
        objects.patch(cm, undefined, undefined, 'test', true, PatchStrategy.ServerSideApply),
        LeaseLostError,
      );
      assert.deepEqual(
        server.requests.map((r) => `${r.method} ${r.path}`),
        ['GET /api/v1/namespaces/ns/configmaps/x', 'GET /api/v1/namespaces/ns/configmaps', 'GET /api/v1'],
        'no write reached the server',
      );
    });

    it('tags watches with the User-Agent too, and never fences them', async () => {
      const { kc, fence } = fenced();
      fence.lose('gone');
      const done = new Promise<unknown>((resolve) => {
        void new Watch(kc).watch('/api/v1/namespaces/ns/configmaps', {}, () => undefined, resolve);
      });
      await done;
      const watch = server.requests.find((r) => r.query.get('watch') === 'true');
      assert.ok(watch, 'the watch was sent');
      assert.equal(watch.headers['user-agent'], 'stacked-operator (pod-a)');
    });

    it('without a fence only sets the User-Agent (the leader elector’s client)', async () => {
      const kc = new FencedKubeConfig(server.kubeConfig(), { userAgent: 'stacked-operator (pod-b)' });
      await kc.makeApiClient(CoreV1Api).createNamespacedConfigMap({ namespace: 'ns', body: cm });
      assert.equal(server.requests[0]?.headers['user-agent'], 'stacked-operator (pod-b)');
      assert.equal(fenceOf(kc), undefined);
    });

    it('reuses one dispatcher for every request, and the leader elector’s unfenced config shares it', async () => {
      const { kc } = fenced();
      const first = await dispatcherOf(kc);
      assert.notEqual(first, undefined, 'client-node sets a dispatcher (skipTLSVerify is a TLS option)');
      assert.equal(await dispatcherOf(kc, HttpMethod.POST), first);
      assert.equal(await dispatcherOf(new FencedKubeConfig(server.kubeConfig(), { userAgent: 'b' })), first);
      assert.notEqual(await dispatcherOf(server.kubeConfig()), first, 'a plain KubeConfig: one per request');
      assert.notEqual(await dispatcherOf(server.kubeConfig()), await dispatcherOf(server.kubeConfig()));
    });

    it('fenceOf finds the fence of a fenced config only', () => {
      const { kc, fence } = fenced();
      assert.equal(fenceOf(kc), fence);
      assert.equal(fenceOf(new KubeConfig()), undefined);
    });
  });

  describe('FencedKubeConfig connection reuse (client-node 2.0.1, TLS API server)', () => {
    const tls = selfSignedCert();
    let server: Server;
    let url = '';
    let handshakes = 0;
    /** Open watch responses: written to, then ended, by the test. */
    const watches: import('node:http').ServerResponse[] = [];

    before(async () => {
      server = createServer(tls, (req, res) => {
        if (new URL(req.url ?? '/', 'https://x').searchParams.get('watch') === 'true') {
          res.writeHead(200, { 'Content-Type': 'application/json' });
          res.flushHeaders();
          watches.push(res);
          return;
        }
        req.resume();
        req.on('end', () => {
          res.writeHead(200, { 'Content-Type': 'application/json' });
          res.end(JSON.stringify({ kind: 'ConfigMap', apiVersion: 'v1', metadata: { name: 'x' } }));
        });
      });
      server.on('secureConnection', () => {
        handshakes++;
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      url = `https://127.0.0.1:${String((server.address() as AddressInfo).port)}`;
    });
    after(async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => {
        server.close(() => {
          resolve();
        });
      });
    });
    beforeEach(() => {
      handshakes = 0;
    });

    it('sends every request of a config over one TLS connection, with the cluster’s CA, beside an open watch', async () => {
      const kc = new FencedKubeConfig(tlsKubeConfig(url, tls.cert), {
        userAgent: 'stacked-operator (pod-a)',
      });
      const events: string[] = [];
      let ended: (err: unknown) => void = () => undefined;
      const done = new Promise<unknown>((resolve) => (ended = resolve));
      await new Watch(kc).watch('/api/v1/namespaces/ns/configmaps', {}, (type) => events.push(type), ended);
      // undici frees a connection a tick after its response is read; one request after another
      // (not all in one tick) is what reconciles do.
      const read = async (config: KubeConfig) => {
        await config.makeApiClient(CoreV1Api).readNamespacedConfigMap({ name: 'x', namespace: 'ns' });
        await new Promise((resolve) => setImmediate(resolve));
      };
      // The leader elector's config: unfenced, built from the same kubeconfig.
      const elector = new FencedKubeConfig(tlsKubeConfig(url, tls.cert), {
        userAgent: 'stacked-operator (pod-a)',
      });
      for (let i = 0; i < 3; i++) await read(kc);
      await read(elector);
      assert.equal(handshakes, 2, 'one connection for the watch, one for the four reads');
      // The watch still streams on its own connection.
      const [watch] = watches.splice(0);
      assert.ok(watch);
      watch.write(
        `${JSON.stringify({ type: 'ADDED', object: { kind: 'ConfigMap', metadata: { name: 'y' } } })}\n`,
      );
      watch.end();
      assert.equal(await done, null);
      assert.deepEqual(events, ['ADDED']);
    });

    it('opens a new pool when the TLS material changes, and a plain KubeConfig one per request', async () => {
      const kc = new FencedKubeConfig(tlsKubeConfig(url, tls.cert, 'rotating'));
      const first = await dispatcherOf(kc);
      assert.equal(await dispatcherOf(kc), first);
      // Same cluster and user names, another CA: what a rotated caFile looks like.
      const other = selfSignedCert();
      const rotated = new FencedKubeConfig(tlsKubeConfig(url, `${tls.cert}${other.cert}`, 'rotating'));
      const second = await dispatcherOf(rotated);
      assert.notEqual(second, first);
      assert.equal((first as { closed?: boolean }).closed, true, 'the old pool is closed (gracefully)');
      assert.equal(await dispatcherOf(rotated), second);
      await rotated.makeApiClient(CoreV1Api).readNamespacedConfigMap({ name: 'x', namespace: 'ns' });

      const plain = tlsKubeConfig(url, tls.cert, 'plain');
      for (let i = 0; i < 2; i++) {
        await plain.makeApiClient(CoreV1Api).readNamespacedConfigMap({ name: 'x', namespace: 'ns' });
        await new Promise((resolve) => setImmediate(resolve));
      }
      assert.equal(handshakes, 3, 'client-node alone: a handshake per request');
    });
  });
});
