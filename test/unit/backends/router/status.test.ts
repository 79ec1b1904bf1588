import assert from 'node:assert/strict';
import {
  withRouter,
  type RouterState,
  type StatusAndVerdict,
} from '../../../../src/backends/router/status.ts';

const ROUTER = 'http://chat-router.ml.svc:8080';
const VLLM = 'http://chat-vllm.ml.svc:8000';
const NOW = new Date('2026-12-02T00:00:00Z');

function backend(ready: boolean, endpoint = VLLM): StatusAndVerdict {
  return {
    status: { endpoint, replicas: 1, readyReplicas: ready ? 1 : 0 },
    verdict: ready
      ? { ready: true, reason: 'Serving', message: 'serves' }
      : { ready: false, reason: 'NoReplicaReady', message: 'no replica' },
  };
}

function on(readyReplicas: number, replicas = 1, extra: Partial<RouterState> = {}): RouterState {
  return {
    enabled: true,
    endpoint: ROUTER,
    deployment: 'ml/chat-router',
    replicas,
    readyReplicas,
    ...extra,
  };
}

describe('router: status (pure)', () => {
  it('names the router as the endpoint while it is enabled, and keeps Ready once a replica is ready', () => {
    const r = withRouter(backend(true), on(1), NOW);
    assert.equal(r.status.endpoint, ROUTER);
    assert.equal(r.verdict.reason, 'Serving');
    assert.equal(r.status.readyReplicas, 1, 'the backend fields stay');
  });

  it('is not Ready while an enabled router has no ready replica', () => {
    const r = withRouter(backend(true), on(0), NOW);
    assert.equal(r.verdict.ready, false);
    assert.equal(r.verdict.reason, 'RouterNotReady');
    assert.match(r.verdict.message, /ml\/chat-router/);
  });

  it("keeps the backend's own not-ready reason: the deeper cause", () => {
    assert.equal(withRouter(backend(false), on(0), NOW).verdict.reason, 'NoReplicaReady');
    assert.equal(withRouter(backend(false), on(0), NOW).status.endpoint, ROUTER);
  });

  it('takes a router scaled to 0 at its word: Ready, saying so, and not Available', () => {
    const r = withRouter(backend(true), on(0, 0), NOW);
    assert.equal(r.verdict.ready, true);
    assert.equal(r.verdict.reason, 'RouterScaledToZero');
    assert.match(r.verdict.message, /scaled to 0/);
    const available = r.status.conditions?.find((c) => c.type === 'Available');
    assert.equal(available?.status, 'False');
    assert.equal(available.reason, 'RouterScaledToZero');
  });

  it('reports a refused router object instead of Ready', () => {
    const problem = { ready: false, reason: 'RouterApplyFailed', message: 'forbidden' };
    assert.deepEqual(withRouter(backend(true), on(1, 1, { problem }), NOW).verdict, problem);
  });

  it("leaves the backend's endpoint when disabled, and drops a stale router endpoint", () => {
    assert.equal(withRouter(backend(true), { enabled: false, endpoint: ROUTER }, NOW).status.endpoint, VLLM);
    const stale = withRouter(backend(true, ROUTER), { enabled: false, endpoint: ROUTER }, NOW);
    assert.equal(stale.status.endpoint, undefined);
    const problem = { ready: false, reason: 'RouterDeleteFailed', message: 'forbidden' };
    assert.deepEqual(
      withRouter(backend(true), { enabled: false, endpoint: ROUTER, problem }, NOW).verdict,
      problem,
    );
  });
});
