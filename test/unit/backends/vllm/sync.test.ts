import assert from 'node:assert/strict';
import { AgentClient } from '../../../../src/backends/vllm/agent-client.ts';
import { VllmClient } from '../../../../src/backends/vllm/client.ts';
import type { PodAdapterState } from '../../../../src/backends/vllm/pod-state.ts';
import type { PodView } from '../../../../src/backends/vllm/pods.ts';
import { syncPod } from '../../../../src/backends/vllm/sync.ts';
import { fakePodView } from './helpers/pod-view.ts';

const POD_URL = 'http://10.0.0.1:8000';

function podView(state: PodAdapterState | undefined): PodView {
  return fakePodView('p', { url: POD_URL, agentUrl: undefined, state });
}

/**
 * vLLM as the sync sees it over HTTP, answering when the test says so: every call is logged in
 * order, and GET /v1/models waits for `listModels` to be released.
 */
class ScriptedVllm {
  readonly calls: string[] = [];
  /** name -> path of the adapters vLLM holds. */
  readonly held = new Map<string, string>();
  inFlightLoads = 0;
  maxInFlightLoads = 0;
  private releaseList: (() => void) | undefined;
  private readonly listGate = new Promise<void>((resolve) => {
    this.releaseList = resolve;
  });

  release(): void {
    this.releaseList?.();
  }

  readonly fetch: typeof fetch = async (input, init) => {
    const url = new URL(typeof input === 'string' ? input : input instanceof URL ? input.href : input.url);
    if (url.pathname === '/v1/models') {
      this.calls.push('list');
      await this.listGate;
      const data = [
        { id: 'base', root: 'org/base', parent: null },
        ...[...this.held].map(([id, root]) => ({ id, root, parent: 'base' })),
      ];
      return Response.json({ object: 'list', data });
    }
    const body = JSON.parse(typeof init?.body === 'string' ? init.body : '{}') as {
      lora_name: string;
      lora_path: string;
      load_inplace?: boolean;
    };
    this.calls.push(`${body.load_inplace ? 'reload' : 'load'} ${body.lora_name}`);
    this.inFlightLoads++;
    this.maxInFlightLoads = Math.max(this.maxInFlightLoads, this.inFlightLoads);
    await new Promise((resolve) => setTimeout(resolve, 5));
    this.inFlightLoads--;
    if (this.held.has(body.lora_name) && body.load_inplace !== true) {
      const message = `The lora adapter '${body.lora_name}' has already been loaded. If you want to load the adapter in place, set 'load_inplace' to True.`;
      return Response.json({ error: { message, type: 'InvalidUserInput', code: 400 } }, { status: 400 });
    }
    this.held.set(body.lora_name, body.lora_path);
    return new Response(`Success: LoRA adapter '${body.lora_name}' added successfully.`);
  };
}

const settled = (loaded: string[]): PodAdapterState => ({
  restartCount: 0,
  loaded,
  failed: {},
  fetching: [],
});
const member = (name: string) => ({ name, path: `/mnt/${name}` });

describe('vllm backend: adapter sync of one pod', () => {
  it('sends a new member to a settled pod before its model list answers, and reports it loaded', async () => {
    const vllm = new ScriptedVllm();
    vllm.held.set('a', '/mnt/a');
    const clients = { vllm: new VllmClient({ fetch: vllm.fetch }), agent: new AgentClient() };
    const sync = syncPod(
      clients,
      podView(settled(['a'])),
      [member('a'), member('b')],
      4,
      AbortSignal.timeout(5000),
    );
    // The list is held back: the load of b must already be out.
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.deepEqual(vllm.calls, ['load b', 'list']);
    vllm.release();
    const result = await sync;
    assert.deepEqual(result?.state.loaded, ['a', 'b']);
    assert.deepEqual(vllm.calls, ['load b', 'list'], 'b is not loaded a second time');
  });

  it('sends nothing before the list to a container with no state of its own, and keeps to the per-pod limit', async () => {
    const vllm = new ScriptedVllm();
    const clients = { vllm: new VllmClient({ fetch: vllm.fetch }), agent: new AgentClient() };
    const wanted = ['a', 'b', 'c', 'd', 'e', 'f'].map(member);
    const sync = syncPod(clients, podView(undefined), wanted, 2, AbortSignal.timeout(5000));
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.deepEqual(vllm.calls, ['list']);
    vllm.release();
    const result = await sync;
    assert.deepEqual(result?.state.loaded, ['a', 'b', 'c', 'd', 'e', 'f']);
    assert.equal(vllm.maxInFlightLoads, 2);
  });

  it('keeps early loads within the per-pod limit too', async () => {
    const vllm = new ScriptedVllm();
    const clients = { vllm: new VllmClient({ fetch: vllm.fetch }), agent: new AgentClient() };
    const wanted = ['a', 'b', 'c', 'd', 'e'].map(member);
    const sync = syncPod(clients, podView(settled([])), wanted, 2, AbortSignal.timeout(5000));
    await new Promise((resolve) => setTimeout(resolve, 1));
    vllm.release();
    const result = await sync;
    assert.deepEqual(result?.state.loaded, ['a', 'b', 'c', 'd', 'e']);
    assert.equal(vllm.maxInFlightLoads, 2);
  });

  it('reloads in place a new member that vLLM already holds from another path, rather than take it as loaded', async () => {
    const vllm = new ScriptedVllm();
    vllm.held.set('b', '/by/hand/b');
    const clients = { vllm: new VllmClient({ fetch: vllm.fetch }), agent: new AgentClient() };
    const sync = syncPod(clients, podView(settled([])), [member('b')], 4, AbortSignal.timeout(5000));
    vllm.release();
    const result = await sync;
    assert.deepEqual(vllm.calls, ['load b', 'list', 'reload b']);
    assert.equal(vllm.held.get('b'), '/mnt/b');
    assert.deepEqual(result?.state.loaded, ['b']);
  });

  it('tells the caller what the pod lists before it loads what is missing (the gate closes first)', async () => {
    const vllm = new ScriptedVllm();
    vllm.held.set('a', '/mnt/a');
    const clients = {
      vllm: new VllmClient({ fetch: vllm.fetch }),
      agent: new AgentClient(),
      onListed: (present: readonly string[]) => {
        vllm.calls.push(`listed ${present.join(',')}`);
        return Promise.resolve();
      },
    };
    const sync = syncPod(
      clients,
      podView(undefined),
      [member('a'), member('b')],
      4,
      AbortSignal.timeout(5000),
    );
    vllm.release();
    await sync;
    assert.deepEqual(vllm.calls, ['list', 'listed a', 'load b']);
  });

  it('refuses an early load when the lease is lost, and sends nothing', async () => {
    const vllm = new ScriptedVllm();
    const clients = {
      vllm: new VllmClient({ fetch: vllm.fetch }),
      agent: new AgentClient(),
      beforeWrite: () => {
        throw new Error('leader lease lost');
      },
    };
    const sync = syncPod(clients, podView(settled([])), [member('b')], 4, AbortSignal.timeout(5000));
    vllm.release();
    const result = await sync;
    assert.deepEqual(vllm.calls, ['list']);
    assert.deepEqual(result?.state.loaded, []);
    assert.match(result.state.error ?? 'no error', /leader lease lost/);
  });
});
