// Runs deploy/argocd/health.lua as Argo CD does: in gopher-lua (the Lua 5.1 dialect Argo CD embeds),
// with only the libraries Argo CD opens and `obj` decoded from the object's JSON, through the small
// Go harness in test/tools/lua (built once per machine from the Go module proxy and cached). So the
// script shipped to users is tested in its real dialect, not in a stock Lua.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REASONS } from '../../../src/api/v1alpha1/reasons.ts';
import { renderHealthLua } from '../../../scripts/docs.ts';

const root = join(import.meta.dirname, '..', '..', '..');
const scriptPath = join(root, 'deploy', 'argocd', 'health.lua');

interface Health {
  status?: string;
  message?: string;
  error?: string;
}

/** Argo CD's valid codes: anything else it shows as Unknown ("invalid health status"). */
const CODES = new Set(['Healthy', 'Progressing', 'Degraded', 'Suspended', 'Missing', 'Unknown']);

let harness = '';

/** The script's result for each object, in one harness process (one fresh Lua state per object). */
function health(...objs: object[]): Health[] {
  const out = execFileSync(harness, [scriptPath], {
    input: objs.map((o) => JSON.stringify(o)).join('\n') + '\n',
    encoding: 'utf8',
  });
  const results = out
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Health);
  for (const r of results) {
    assert.equal(r.error, undefined, `the script failed in gopher-lua: ${r.error ?? ''}`);
    assert.ok(CODES.has(r.status ?? ''), `not an Argo CD health code: ${String(r.status)}`);
  }
  return results;
}

const one = (obj: object): Health => {
  const [r] = health(obj);
  if (r === undefined) throw new Error('no result');
  return r;
};

const withReady = (status: string, reason: string, message = 'm') => ({
  apiVersion: 'serving.stacked.dev/v1alpha1',
  kind: 'StackedDeployment',
  metadata: { name: 'x', namespace: 'ns', generation: 2 },
  status: {
    observedGeneration: 2,
    conditions: [
      { type: 'Available', status: 'True', reason: 'MinimumReplicasAvailable', message: '' },
      { type: 'Ready', status, reason, message, observedGeneration: 2 },
    ],
  },
});

describe('Argo CD health script (deploy/argocd/health.lua, in gopher-lua)', function () {
  // The first build of the harness on a machine compiles gopher-lua (well under a minute).
  this.timeout(300_000);
  before(() => {
    harness = execFileSync('bash', [join(root, 'test', 'tools', 'lua', 'build.sh')], {
      encoding: 'utf8',
    }).trim();
  });

  it('is the script generation gives (its reasons come from src/api/v1alpha1/reasons.ts)', () => {
    assert.equal(
      readFileSync(scriptPath, 'utf8'),
      renderHealthLua(),
      'deploy/argocd/health.lua is stale: run `npm run generate`',
    );
  });

  it('is Progressing until the operator has written a status', () => {
    assert.deepEqual(one({ metadata: { name: 'x', generation: 1 } }), {
      status: 'Progressing',
      message: 'Waiting for the operator',
    });
    assert.equal(one({ metadata: { name: 'x', generation: 1 }, status: {} }).status, 'Progressing');
    assert.equal(
      one({ metadata: { name: 'x', generation: 1 }, status: { observedGeneration: 1, conditions: [] } })
        .status,
      'Progressing',
    );
  });

  it('is Progressing while the status is of an older generation (the object or Ready)', () => {
    const stale = withReady('True', 'Serving');
    stale.status.observedGeneration = 1;
    assert.deepEqual(one(stale), {
      status: 'Progressing',
      message: 'Waiting for the operator to observe generation 2',
    });
    const staleReady = withReady('False', 'RankTooHigh');
    const ready = staleReady.status.conditions[1];
    if (ready !== undefined) ready.observedGeneration = 1;
    assert.equal(one(staleReady).status, 'Progressing');
  });

  it('is Healthy when Ready is True', () => {
    assert.deepEqual(one(withReady('True', 'Serving', '2 of 2 replicas serve')), {
      status: 'Healthy',
      message: 'Serving: 2 of 2 replicas serve',
    });
    assert.deepEqual(one(withReady('True', 'ScaledToZero', '')), {
      status: 'Healthy',
      message: 'ScaledToZero',
    });
  });

  it("gives every listed reason its health when it is Ready's (False)", () => {
    const results = health(...REASONS.map((r) => withReady('False', r.reason, `why ${r.reason}`)));
    const got = REASONS.map((r, i) => `${r.reason}: ${results[i]?.status ?? '?'}`);
    // A reason whose condition holds (Healthy) cannot make a False Ready healthy: still in progress.
    const want = REASONS.map((r) => `${r.reason}: ${r.health === 'Healthy' ? 'Progressing' : r.health}`);
    assert.deepEqual(got, want);
    REASONS.forEach((r, i) => {
      assert.equal(results[i]?.message, `${r.reason}: why ${r.reason}`);
    });
    // The classes users rely on.
    for (const r of [
      'OciAccessMissing',
      'RankTooHigh',
      'ModelGroupNotFound',
      'DriftDetected',
      'WorkRequestFailed',
    ]) {
      assert.equal(one(withReady('False', r)).status, 'Degraded', r);
    }
    assert.equal(one(withReady('False', 'DeploymentInactive')).status, 'Suspended');
    for (const r of ['LoadingAdapters', 'NoReplicaReady', 'WorkRequestInProgress', 'RouterNotReady']) {
      assert.equal(one(withReady('False', r)).status, 'Progressing', r);
    }
  });

  it('reads an unknown reason, or Ready Unknown, as Progressing', () => {
    assert.equal(one(withReady('False', 'SomethingNewer')).status, 'Progressing');
    assert.equal(one(withReady('Unknown', 'RankTooHigh')).status, 'Progressing');
  });

  it('follows the finalizer while the object is being deleted', () => {
    const deleting = (reason?: string) => ({
      metadata: { name: 'x', generation: 2, deletionTimestamp: '2026-01-01T00:00:00Z', finalizers: ['f'] },
      status: {
        observedGeneration: 2,
        conditions: [
          { type: 'Ready', status: 'True', reason: 'Serving', message: 'm', observedGeneration: 2 },
          ...(reason === undefined
            ? []
            : [{ type: 'Progressing', status: 'True', reason, message: 'deleting', observedGeneration: 2 }]),
        ],
      },
    });
    assert.deepEqual(one(deleting()), { status: 'Progressing', message: 'Being deleted' });
    assert.deepEqual(one(deleting('Terminating')), {
      status: 'Progressing',
      message: 'Being deleted: Terminating: deleting',
    });
    assert.equal(one(deleting('CleanupBlocked')).status, 'Degraded');
  });

  it('runs without the string library, as Argo CD opens none', () => {
    // The harness opens what Argo CD opens; this proves the harness does not open more.
    const probe = execFileSync(harness, [join(root, 'test', 'tools', 'lua', 'testdata', 'uses-string.lua')], {
      input: '{}\n',
      encoding: 'utf8',
    });
    assert.match(probe, /"error"/);
  });
});
