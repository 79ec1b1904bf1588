import assert from 'node:assert/strict';
import type * as ds from 'oci-datascience';
import { fenced } from '../../../../src/backends/oci/fenced.ts';
import { LeaseLostError, type Fence } from '../../../../src/runtime/fence.ts';

/** A fence held until `lose()`. */
function fence(): Fence & { lose: () => void } {
  const ctl = new AbortController();
  let held = true;
  return {
    signal: ctl.signal,
    isHeld: () => held,
    assertHeld: () => {
      if (!held) throw new LeaseLostError('leader lease lost');
    },
    lose: () => {
      held = false;
      ctl.abort();
    },
  };
}

describe('oci backend: the client of a leader', () => {
  it('refuses every mutating call once the lease is lost, and still reads', async () => {
    const calls: string[] = [];
    const fake = {
      getModelDeployment: () => {
        calls.push('get');
        return Promise.resolve({});
      },
      createModelGroup: () => {
        calls.push('create');
        return Promise.resolve({});
      },
      updateModelDeployment: () => {
        calls.push('update');
        return Promise.resolve({});
      },
    } as unknown as ds.DataScienceClient;
    const f = fence();
    const client = fenced(fake, f);
    await client.createModelGroup({} as ds.requests.CreateModelGroupRequest);
    f.lose();
    assert.throws(() => client.createModelGroup({} as ds.requests.CreateModelGroupRequest), LeaseLostError);
    assert.throws(
      () => client.updateModelDeployment({} as ds.requests.UpdateModelDeploymentRequest),
      LeaseLostError,
    );
    await client.getModelDeployment({} as ds.requests.GetModelDeploymentRequest);
    assert.deepEqual(calls, ['create', 'get']);
  });
});
