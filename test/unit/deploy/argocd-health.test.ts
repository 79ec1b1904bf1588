// Runs deploy/argocd/health.lua in a real Lua VM (fengari) against objects the operator writes, as
// Argo CD would, so the script shipped to users is tested, not a translation of it.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { lauxlib, lua, lualib, to_jsstring, to_luastring } from 'fengari';

const script = readFileSync(
  join(import.meta.dirname, '..', '..', '..', 'deploy', 'argocd', 'health.lua'),
  'utf8',
);

/** A JSON value as a Lua table constructor (what Argo CD hands the script as `obj`). */
function toLua(v: unknown): string {
  if (v === null || v === undefined) return 'nil';
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return `{${v.map(toLua).join(', ')}}`;
  return `{${Object.entries(v as Record<string, unknown>)
    .map(([k, x]) => `[${JSON.stringify(k)}] = ${toLua(x)}`)
    .join(', ')}}`;
}

function health(obj: object): { status: string; message: string } {
  const L = lauxlib.luaL_newstate();
  lualib.luaL_openlibs(L);
  const chunk = `obj = ${toLua(obj)}\nlocal hs = (function()\n${script}\nend)()\nreturn hs.status, hs.message`;
  if (lauxlib.luaL_dostring(L, to_luastring(chunk)) !== lua.LUA_OK) {
    throw new Error(to_jsstring(lua.lua_tostring(L, -1)));
  }
  return { status: to_jsstring(lua.lua_tostring(L, -2)), message: to_jsstring(lua.lua_tostring(L, -1)) };
}

const ready = (status: string, reason: string, message = 'm') => ({
  metadata: { name: 'x', generation: 2 },
  status: {
    observedGeneration: 2,
    conditions: [
      { type: 'Available', status: 'True', reason: 'A', message: '' },
      { type: 'Ready', status, reason, message },
    ],
  },
});

describe('Argo CD health script (deploy/argocd/health.lua)', () => {
  it('is Progressing until the operator has written a status for the current generation', () => {
    assert.equal(health({ metadata: { generation: 1 } }).status, 'Progressing');
    const stale = ready('True', 'Serving');
    stale.status.observedGeneration = 1;
    assert.deepEqual(health(stale), {
      status: 'Progressing',
      message: 'Waiting for the operator to observe generation 2',
    });
  });

  it('is Healthy when Ready is True', () => {
    assert.deepEqual(health(ready('True', 'Serving', '2 of 2 replicas serve')), {
      status: 'Healthy',
      message: 'Serving: 2 of 2 replicas serve',
    });
  });

  it('is Degraded when Ready is False for a reason that needs a user', () => {
    for (const reason of [
      'InvalidSpec',
      'RankTooHigh',
      'AdapterFailed',
      'ModelGroupNotFound',
      'RuntimeLoraUpdatesDisabled',
    ]) {
      assert.equal(health(ready('False', reason)).status, 'Degraded', reason);
    }
  });

  it('is Progressing while adapters load or replicas start', () => {
    for (const reason of ['LoadingAdapters', 'NoReplicaReady']) {
      assert.equal(health(ready('False', reason)).status, 'Progressing', reason);
    }
  });
});
