import assert from 'node:assert/strict';
import { Counter, Registry } from 'prom-client';
import { ControllerMetrics, createRegistry } from '../../../src/runtime/metrics.ts';

describe('runtime/metrics', () => {
  it('registers controller-runtime style metrics', async () => {
    const registry = new Registry();
    const m = new ControllerMetrics(registry);
    m.reconcileTotal.inc({ controller: 'c', result: 'success' });
    m.queueDepth.set({ name: 'c' }, 3);
    m.leaderStatus.set({ name: 'ns/lease' }, 1);
    const text = await registry.metrics();
    assert.match(text, /controller_runtime_reconcile_total\{controller="c",result="success"\} 1/);
    assert.match(text, /workqueue_depth\{name="c"\} 3/);
    assert.match(text, /leader_election_master_status\{name="ns\/lease"\} 1/);
    assert.match(text, /# TYPE controller_runtime_reconcile_time_seconds histogram/);
  });

  it('shares the metrics when constructed twice on one registry', () => {
    const registry = new Registry();
    const a = new ControllerMetrics(registry);
    const b = new ControllerMetrics(registry);
    assert.equal(a.reconcileTotal, b.reconcileTotal);
    assert.equal(a.queueDepth, b.queueDepth);
  });

  it('refuses a same-named metric of another type', () => {
    const registry = new Registry();
    new Counter({ name: 'workqueue_depth', help: 'x', registers: [registry] });
    assert.throws(() => new ControllerMetrics(registry), /another type/);
  });

  it('createRegistry includes the default process metrics', async () => {
    const text = await createRegistry().metrics();
    assert.match(text, /process_cpu_user_seconds_total/);
    assert.match(text, /nodejs_eventloop_lag_seconds/);
  });
});
