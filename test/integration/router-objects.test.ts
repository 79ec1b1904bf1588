// The operator's side of the router (issue 9): per StackedDeployment a ServiceAccount, a Role, a
// RoleBinding, a Deployment and a Service, owner-referenced, least-privilege, removed when the
// router is disabled and made again when it is enabled, with no write at rest. The test kubelet
// reports the router's container running and ready without running it: this is about the objects,
// not about routing.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { writeAdapter } from '../../playground/adapters.ts';
import type { AuditEvent, ControlPlane } from '../../playground/controlplane.ts';
import { startKubelet, type Kubelet } from '../../playground/kubelet.ts';
import { kubectl } from '../../playground/kubectl.ts';
import {
  OPERATOR_USER,
  controlPlaneWithNamespace,
  startOperator,
  type OperatorProcess,
} from '../../playground/operator.ts';
import { sampleDeployment, sampleGroup, adaptersClaim } from '../support/objects.ts';
import { condition, eventually, getObject, waitForReady, type Obj } from '../../playground/wait.ts';

const NS = 'router-objects-test';
const SDEP = 'chat';
const GROUP = 'chat-adapters';
const ROUTER = `${SDEP}-router`;
const ROUTER_ENDPOINT = `http://${ROUTER}.${NS}.svc:8080`;
const VLLM_ENDPOINT = `http://${SDEP}-vllm.${NS}.svc:8000`;
const KINDS = ['serviceaccount', 'role', 'rolebinding', 'deployment', 'service'];

interface Owned extends Obj {
  metadata: Obj['metadata'] & {
    labels?: Record<string, string>;
    ownerReferences?: { kind: string; name: string; uid: string; controller?: boolean }[];
  };
  rules?: unknown[];
  roleRef?: unknown;
  subjects?: unknown[];
}

const isLease = (e: AuditEvent) => e.objectRef?.resource === 'leases';
const describeWrite = (e: AuditEvent) =>
  `${e.verb} ${e.objectRef?.resource ?? ''}${e.objectRef?.subresource ? `/${e.objectRef.subresource}` : ''} ${e.objectRef?.name ?? ''}`;

describe('router objects on a real control plane', function () {
  this.timeout(240_000);
  let cp: ControlPlane;
  let kubelet: Kubelet;
  let operator: OperatorProcess;
  let root: string;

  const apply = (obj: object) => kubectl(cp, ['apply', '-n', NS, '-f', '-'], { input: JSON.stringify(obj) });
  const get = async (kind: string, name = ROUTER): Promise<Owned | undefined> =>
    getObject(cp, NS, kind, name);
  const routerEnabled = (enabled: boolean) =>
    kubectl(cp, [
      'patch',
      '-n',
      NS,
      'sdep',
      SDEP,
      '--type=merge',
      '-p',
      JSON.stringify({ spec: { vllm: { router: { enabled } } } }),
    ]);
  /** `kubectl auth can-i` as the router's ServiceAccount: "yes" or "no". */
  const canI = async (...args: string[]) => {
    const r = await kubectl(cp, ['auth', 'can-i', `--as=system:serviceaccount:${NS}:${ROUTER}`, ...args], {
      allowFail: true,
    });
    return r.stdout.trim();
  };
  /** Waits for the deployment to be Ready for its generation, with status.endpoint as given. */
  const servedAt = (endpoint: string) =>
    eventually(
      `Ready with endpoint ${endpoint}`,
      async () => {
        const d = await waitForReady(cp, NS, 'sdep', SDEP, 'True', undefined, 5_000).catch(() => undefined);
        return d?.status?.endpoint === endpoint ? d : undefined;
      },
      90_000,
    );
  const nonLeaseWrites = async (since: number) =>
    (await cp.writesBy(OPERATOR_USER, since)).filter((e) => !isLease(e)).map(describeWrite);

  before(async function () {
    this.timeout(3_600_000);
    cp = await controlPlaneWithNamespace(NS);
    root = mkdtempSync(join(tmpdir(), 'router-objects-'));
    writeAdapter(join(root, 'pvc', NS, 'adapters', 'chat-1'), 8);
    kubelet = await startKubelet({
      kubeconfigPath: cp.kubeconfigPath,
      nodes: [{ name: 'router-objects-gpu-1', gpus: 1 }],
      pvcRoot: join(root, 'pvc'),
      hfRoot: join(root, 'hf'),
      namespaces: [NS],
    });
    operator = await startOperator(cp, {
      identity: 'router-objects',
      namespace: NS,
      extraArgs: ['--leader-election-id=router-objects'],
    });
    await apply(adaptersClaim());
    await apply({
      apiVersion: 'serving.stacked.dev/v1alpha1',
      kind: 'StackedModelGroup',
      metadata: { name: GROUP },
      spec: {
        baseModel: { inferenceKey: 'basemodel', source: { huggingface: 'org/base' } },
        members: [{ inferenceKey: 'chat-1', source: { pvc: { claimName: 'adapters', path: 'chat-1' } } }],
      },
    });
  });

  after(async () => {
    await operator.stop();
    await kubelet.stop();
    rmSync(root, { recursive: true, force: true });
  });

  it('deploys the router by default: five owned objects, and status.endpoint names its Service', async () => {
    await apply({
      apiVersion: 'serving.stacked.dev/v1alpha1',
      kind: 'StackedDeployment',
      metadata: { name: SDEP },
      spec: {
        modelGroupRef: { name: GROUP },
        backend: 'vllm',
        engine: { maxLoraRank: 16 },
        vllm: { replicas: 1, image: 'vllm/vllm-openai:v0.11.0' },
      },
    });
    const d = await servedAt(ROUTER_ENDPOINT);
    assert.equal(condition(d, 'Ready')?.reason, 'Serving');
    for (const kind of KINDS) {
      const o = await get(kind);
      assert.ok(o, `${kind} ${ROUTER}`);
      assert.deepEqual(
        o.metadata.ownerReferences?.map((r) => [r.kind, r.name, r.uid, r.controller]),
        [['StackedDeployment', SDEP, d.metadata.uid, true]],
        kind,
      );
      assert.equal(o.metadata.labels?.['app.kubernetes.io/managed-by'], 'stacked-operator', kind);
      assert.equal(o.metadata.labels['serving.stacked.dev/router'], SDEP, kind);
    }
    const svc = (await get('service')) as Owned & { spec: { ports: { port: number }[] } };
    assert.deepEqual(
      svc.spec.ports.map((p) => p.port),
      [8080],
    );
    const rb = await get('rolebinding');
    assert.deepEqual(rb?.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: ROUTER });
    assert.deepEqual(rb.subjects, [{ kind: 'ServiceAccount', name: ROUTER, namespace: NS }]);

    // The router's pod is not a vLLM replica: the vLLM label selects one pod, the status counts one.
    const vllmPods = await kubectl(cp, [
      'get',
      'pods',
      '-n',
      NS,
      '-l',
      `serving.stacked.dev/deployment=${SDEP}`,
      '-o',
      'name',
    ]);
    assert.equal(vllmPods.stdout.trim().split('\n').length, 1, vllmPods.stdout);
    const routerPods = await kubectl(cp, [
      'get',
      'pods',
      '-n',
      NS,
      '-l',
      `serving.stacked.dev/router=${SDEP}`,
      '-o',
      'name',
    ]);
    assert.equal(routerPods.stdout.trim().split('\n').length, 1, routerPods.stdout);
    assert.equal(d.status?.replicas, 1);
    assert.equal(d.status.readyReplicas, 1);
  });

  it("grants the router's ServiceAccount read access to what it watches, in its namespace, and nothing else", async () => {
    assert.deepEqual((await get('role'))?.rules, [
      {
        apiGroups: ['serving.stacked.dev'],
        resources: ['stackeddeployments', 'stackedmodelgroups'],
        verbs: ['get', 'list', 'watch'],
      },
      { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch'] },
    ]);
    const allowed = [
      ['watch', 'pods'],
      ['list', 'pods'],
      ['get', 'stackeddeployments.serving.stacked.dev'],
      ['watch', 'stackedmodelgroups.serving.stacked.dev'],
    ];
    const denied = [
      ['list', 'secrets'],
      ['get', 'secrets'],
      ['create', 'deployments.apps'],
      ['delete', 'pods'],
      ['patch', 'stackeddeployments.serving.stacked.dev'],
      ['update', 'stackeddeployments.serving.stacked.dev/status'],
      ['list', 'services'],
    ];
    for (const [verb, resource] of allowed)
      assert.equal(await canI(verb!, resource!, '-n', NS), 'yes', `${verb} ${resource}`);
    for (const [verb, resource] of denied)
      assert.equal(await canI(verb!, resource!, '-n', NS), 'no', `${verb} ${resource}`);
    assert.equal(await canI('watch', 'pods', '-n', 'default'), 'no', 'not outside its namespace');
  });

  it('makes no write at rest', async () => {
    await sleep(3000); // the last status write and its echo through the informers
    const since = Date.now();
    await sleep(10_000);
    assert.deepEqual(await nonLeaseWrites(since), [], 'writes at rest');
  });

  it('makes an object deleted by hand again', async () => {
    await kubectl(cp, ['delete', '-n', NS, 'role', ROUTER]);
    await eventually(
      'the Role made again',
      async () => (await get('role'))?.rules?.length === 2 || undefined,
    );
  });

  it('removes the objects when disabled, and status.endpoint moves to the vLLM Service', async () => {
    const since = Date.now();
    await routerEnabled(false);
    const d = await servedAt(VLLM_ENDPOINT);
    assert.equal(condition(d, 'Ready')?.reason, 'Serving');
    await eventually('every router object gone', async () => {
      for (const kind of KINDS) if ((await get(kind)) !== undefined) return undefined;
      return true;
    });
    const deletes = (await nonLeaseWrites(since)).filter((w) => w.startsWith('delete'));
    assert.deepEqual(deletes.sort(), [
      `delete deployments ${ROUTER}`,
      `delete rolebindings ${ROUTER}`,
      `delete roles ${ROUTER}`,
      `delete serviceaccounts ${ROUTER}`,
      `delete services ${ROUTER}`,
    ]);
    // The vLLM Deployment and Service are untouched.
    assert.ok(await get('deployment', `${SDEP}-vllm`));
    assert.ok(await get('service', `${SDEP}-vllm`));
  });

  it('brings them back when enabled again, then rests', async () => {
    await routerEnabled(true);
    await servedAt(ROUTER_ENDPOINT);
    for (const kind of KINDS) assert.ok(await get(kind), kind);
    await sleep(3000);
    const since = Date.now();
    await sleep(10_000);
    assert.deepEqual(await nonLeaseWrites(since), [], 'writes at rest');
  });

  it("gives an oci deployment's router get on its API-key Secret alone, once spec.oci.router.enabled", async () => {
    await apply(sampleGroup('oci-group'));
    // No Secret and an endpoint nobody answers: the oci backend is not Ready, and never calls OCI.
    await apply(
      sampleDeployment('deployment-oci.yaml', 'oci-chat', (d) => {
        d.spec.modelGroupRef.name = 'oci-group';
        d.spec.oci!.endpoint = 'https://127.0.0.1:9';
      }),
    );
    await eventually('the oci deployment reconciled', async () => {
      const d = await getObject(cp, NS, 'sdep', 'oci-chat');
      return d?.status?.observedGeneration === d?.metadata.generation ? d : undefined;
    });
    for (const kind of KINDS)
      assert.equal(await get(kind, 'oci-chat-router'), undefined, `off by default: ${kind}`);
    await kubectl(cp, [
      'patch',
      '-n',
      NS,
      'sdep',
      'oci-chat',
      '--type=merge',
      '-p',
      JSON.stringify({ spec: { oci: { router: { enabled: true } } } }),
    ]);
    const role = await eventually('the oci router Role', async () => get('role', 'oci-chat-router'));
    assert.deepEqual(role.rules?.at(-1), {
      apiGroups: [''],
      resources: ['secrets'],
      resourceNames: ['oci-api-key'],
      verbs: ['get'],
    });
    const as = `--as=system:serviceaccount:${NS}:oci-chat-router`;
    const can = async (...args: string[]) =>
      (await kubectl(cp, ['auth', 'can-i', as, '-n', NS, ...args], { allowFail: true })).stdout.trim();
    // The RoleBinding is applied after the Role: the grant holds once both exist.
    await eventually('the router may get its Secret', async () =>
      (await can('get', 'secrets/oci-api-key')) === 'yes' ? true : undefined,
    );
    assert.equal(await can('get', 'secrets/another'), 'no');
    assert.equal(await can('list', 'secrets'), 'no');
    await eventually('status.endpoint names the router', async () => {
      const d = await getObject(cp, NS, 'sdep', 'oci-chat');
      return d?.status?.endpoint === `http://oci-chat-router.${NS}.svc:8080` ? d : undefined;
    });
  });
});
