// The StackedModelGroup and StackedDeployment controllers on a real control plane, with the operator
// running as its own process under the RBAC identity of deploy/rbac.yaml.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ControlPlane } from '../../playground/controlplane.ts';
import { kubectl } from '../../playground/kubectl.ts';
import { sampleDeployment, sampleGroup } from '../support/objects.ts';
import { controlPlaneWithNamespace, startOperator, type OperatorProcess } from '../../playground/operator.ts';
import { condition, eventsFor, eventually, getObject, waitForReady } from '../../playground/wait.ts';

const NS = 'controllers-test';

describe('controllers on a real control plane', function () {
  this.timeout(120_000);
  let cp: ControlPlane;
  let operator: OperatorProcess;

  before(async function () {
    this.timeout(3_600_000); // a cold build of the control plane takes tens of minutes
    cp = await controlPlaneWithNamespace(NS);
    operator = await startOperator(cp, {
      identity: 'controllers-test',
      namespace: NS,
      extraArgs: ['--leader-election-id=controllers-test'],
    });
  });

  after(async () => {
    await operator.stop();
    const errors = operator.lines.filter((l) => l.level === 'error');
    assert.deepEqual(errors, [], 'the operator logged errors');
  });

  const apply = (obj: object) => kubectl(cp, ['apply', '-n', NS, '-f', '-'], { input: JSON.stringify(obj) });

  it('makes a valid group Ready, so kubectl wait succeeds, and reports every member', async () => {
    await apply(sampleGroup('ready-group'));
    await kubectl(cp, ['wait', '-n', NS, '--for=condition=Ready', '--timeout=60s', 'smg/ready-group']);
    const g = await waitForReady(cp, NS, 'smg', 'ready-group', 'True');
    assert.equal(g.status?.memberCount, 2);
    const members = g.status.members as { inferenceKey: string; valid: boolean }[] | undefined;
    assert.deepEqual(
      members?.map((m) => [m.inferenceKey, m.valid]),
      [
        ['sql-lora-1', true],
        ['sql-lora-2', true],
      ],
    );
    assert.equal(condition(g, 'Ready')?.reason, 'Valid');
    const row = await kubectl(cp, ['get', '-n', NS, 'smg', 'ready-group', '--no-headers']);
    assert.match(row.stdout, /^ready-group\s+True\s+basemodel\s+2\s+/);
  });

  it('reports a problem the schema cannot see, and flips to Ready once fixed, moving lastTransitionTime once', async () => {
    const group = sampleGroup(
      'pvc-group',
      (g) => (g.spec.members![1]!.source = { pvc: { claimName: 'adapters', path: 'sql-lora-2' } }),
    );
    await apply(group);
    const broken = await waitForReady(cp, NS, 'smg', 'pvc-group', 'False', 'MemberInvalid');
    const notReady = condition(broken, 'Ready')!;
    assert.match(notReady.message, /member sql-lora-2: PersistentVolumeClaim "adapters" not found/);
    const members = broken.status?.members as { inferenceKey: string; valid: boolean; message?: string }[];
    assert.deepEqual(
      members.map((m) => m.valid),
      [true, false],
    );

    await sleep(1100); // lastTransitionTime has one-second precision
    await kubectl(cp, ['apply', '-n', NS, '-f', '-'], {
      input: JSON.stringify({
        apiVersion: 'v1',
        kind: 'PersistentVolumeClaim',
        metadata: { name: 'adapters' },
        spec: { accessModes: ['ReadOnlyMany'], resources: { requests: { storage: '1Gi' } } },
      }),
    });
    const fixed = await waitForReady(cp, NS, 'smg', 'pvc-group', 'True', 'Valid');
    const ready = condition(fixed, 'Ready')!;
    assert.notEqual(
      ready.lastTransitionTime,
      notReady.lastTransitionTime,
      'the flip moves lastTransitionTime',
    );

    // A later spec change that keeps it Ready must not move lastTransitionTime again.
    await sleep(1100);
    group.spec.description = 'changed';
    await apply(group);
    const changed = await waitForReady(cp, NS, 'smg', 'pvc-group', 'True', 'Valid');
    assert.equal(changed.metadata.generation, 2);
    assert.equal(condition(changed, 'Ready')!.lastTransitionTime, ready.lastTransitionTime);

    const reasons = (await eventsFor(cp, NS, 'pvc-group')).map((e) => `${e.type}/${e.reason}`);
    assert.ok(reasons.includes('Warning/MemberInvalid'), `events: ${reasons.join(', ')}`);
    assert.ok(reasons.includes('Normal/Valid'), `events: ${reasons.join(', ')}`);
  });

  it('reports a deployment honestly and re-queues it when its group appears or changes', async () => {
    await apply(
      sampleDeployment('deployment-oci.yaml', 'early', (d) => (d.spec.modelGroupRef.name = 'late-group')),
    );
    const missing = await waitForReady(cp, NS, 'sdep', 'early', 'False', 'ModelGroupNotFound');
    assert.match(condition(missing, 'Ready')!.message, /StackedModelGroup "late-group" not found/);

    const late = sampleGroup('late-group');
    await apply(late);
    // The sample's api-key Secret does not exist here: the oci backend says so and creates nothing,
    // so no finalizer holds the object.
    const honest = await waitForReady(cp, NS, 'sdep', 'early', 'False', 'CredentialsInvalid');
    assert.match(condition(honest, 'Ready')!.message, /Secret "oci-api-key" not found/);
    assert.deepEqual((honest.metadata as { finalizers?: string[] }).finalizers ?? [], []);

    late.spec.members!.push({ inferenceKey: 'big-lora', source: { huggingface: 'org/big' }, rank: 128 });
    await apply(late);
    const tooHigh = await eventually('RankTooHigh', async () => {
      const d = await getObject(cp, NS, 'sdep', 'early');
      return condition(d, 'Ready')?.reason === 'RankTooHigh' ? d : undefined;
    });
    assert.match(
      condition(tooHigh, 'Ready')!.message,
      /member big-lora \(rank 128\) exceeds engine.maxLoraRank 64/,
    );
  });

  it('checks what spans the deployment and its group: OCI model ids and experiment variants', async () => {
    await apply(sampleGroup('no-ids', (g) => delete g.spec.members![0]!.modelId));
    await apply(
      sampleDeployment('deployment-oci.yaml', 'oci-no-ids', (d) => (d.spec.modelGroupRef.name = 'no-ids')),
    );
    const d = await waitForReady(cp, NS, 'sdep', 'oci-no-ids', 'False', 'ModelIdMissing');
    assert.match(condition(d, 'Ready')!.message, /missing on sql-lora-1/);

    await apply(
      sampleDeployment('deployment-vllm.yaml', 'bad-variant', (x) => {
        x.spec.modelGroupRef.name = 'ready-group';
        x.spec.experiments![0]!.variants[1]!.inferenceKey = 'nope';
      }),
    );
    const v = await waitForReady(cp, NS, 'sdep', 'bad-variant', 'False', 'ExperimentInvalid');
    assert.match(condition(v, 'Ready')!.message, /variant nope is not a member of group "ready-group"/);
  });

  it('serves /healthz, /readyz and Prometheus /metrics with reconcile counts', async () => {
    const listening = await operator.waitForLog((l) => l.message === 'health server listening');
    const base = `http://127.0.0.1:${String(listening.port)}`;
    assert.equal((await fetch(`${base}/healthz`)).status, 200);
    assert.equal((await fetch(`${base}/readyz`)).status, 200);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    const reconciles =
      /controller_runtime_reconcile_total\{controller="stackedmodelgroup",result="success"\} (\d+)/.exec(
        metrics,
      );
    assert.ok(reconciles && Number(reconciles[1]) > 0, 'reconciles were counted');
    assert.match(metrics, /controller_runtime_reconcile_time_seconds_bucket\{/);
    assert.match(metrics, /workqueue_depth\{name="stackeddeployment"\} 0/);
  });

  it('logs every reconcile line with the object key', () => {
    const lifecycle = ['controller started', 'controller stopped'];
    const reconcileLines = operator.lines.filter(
      (l) => l.controller !== undefined && !lifecycle.includes(l.message),
    );
    assert.ok(reconcileLines.length > 0);
    for (const l of reconcileLines) assert.equal(typeof l.key, 'string', JSON.stringify(l));
  });
});
