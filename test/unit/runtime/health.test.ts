import assert from 'node:assert/strict';
import { request } from 'node:http';
import { Registry } from 'prom-client';
import { type HealthServer, startHealthServer } from '../../../src/runtime/health.ts';
import { ControllerMetrics } from '../../../src/runtime/metrics.ts';

function get(
  port: number,
  path: string,
  method = 'GET',
): Promise<{ status: number; body: string; type: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        resolve({
          status: res.statusCode ?? 0,
          body: Buffer.concat(chunks).toString('utf8'),
          type: res.headers['content-type'] ?? '',
        });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

describe('runtime/health', () => {
  let server: HealthServer;
  let ready = false;
  let healthy = true;
  const registry = new Registry();
  new ControllerMetrics(registry).reconcileTotal.inc({ controller: 'x', result: 'success' });

  before(async () => {
    server = await startHealthServer({
      host: '127.0.0.1',
      port: 0,
      registry,
      readyz: () => ready,
      healthz: () => {
        if (!healthy) throw new Error('broken');
        return true;
      },
    });
  });
  after(() => server.close());

  it('answers /healthz', async () => {
    healthy = true;
    assert.deepEqual(await get(server.port, '/healthz'), {
      status: 200,
      body: 'ok',
      type: 'text/plain; charset=utf-8',
    });
    healthy = false;
    assert.equal((await get(server.port, '/healthz')).status, 500, 'a throwing check counts as unhealthy');
    healthy = true;
  });

  it('answers /readyz from the callback', async () => {
    ready = false;
    assert.deepEqual(await get(server.port, '/readyz'), {
      status: 500,
      body: 'not ready',
      type: 'text/plain; charset=utf-8',
    });
    ready = true;
    assert.equal((await get(server.port, '/readyz?verbose')).body, 'ok');
  });

  it('serves Prometheus text on /metrics', async () => {
    const res = await get(server.port, '/metrics');
    assert.equal(res.status, 200);
    assert.match(res.type, /^text\/plain; version=0\.0\.4/);
    assert.match(res.body, /controller_runtime_reconcile_total\{controller="x",result="success"\} 1/);
  });

  it('answers 404 and 405', async () => {
    assert.equal((await get(server.port, '/nope')).status, 404);
    assert.equal((await get(server.port, '/healthz', 'POST')).status, 405);
  });

  it('close() releases the port even with keep-alive clients', async () => {
    const s = await startHealthServer({ host: '127.0.0.1', port: 0, registry, readyz: () => true });
    assert.equal((await get(s.port, '/healthz')).status, 200);
    await s.close();
    await assert.rejects(get(s.port, '/healthz'));
  });
});
