// The oci backend end to end: the operator (its own process and RBAC) against the OCI emulator,
// which verifies every signature with the public half of the key in the Secret, keeps lifecycles
// asynchronous, replays retry tokens and enforces LIVE-update and immutability rules. The emulator
// runs with OCI's unkind habits on (REALISTIC): OCI's delays scaled from minutes to seconds, reads
// that lag writes, DELETED records that turn 404 (test/fixtures/oci-behaviour.md).
import assert from 'node:assert/strict';
import type { StackedDeployment } from '../../src/api/v1alpha1/deployment.ts';
import type { StackedModelGroup } from '../../src/api/v1alpha1/modelgroup.ts';
import type { ControlPlane } from '../../playground/controlplane.ts';
import { kubectl } from '../../playground/kubectl.ts';
import { REALISTIC, startOciEmulator, type OciEmulator } from '../../playground/oci-emulator.ts';
import { apiKeySecret, makeApiKey, predict, type ApiKey } from '../../playground/oci-keys.ts';
import { controlPlaneWithNamespace, startOperator, type OperatorProcess } from '../../playground/operator.ts';
import {
  condition,
  eventsFor,
  eventually,
  getObject,
  waitForReady,
  type Obj,
} from '../../playground/wait.ts';
import { ociDeployment } from '../support/objects.ts';

const NS = 'oci-test';
/** The failures block's own namespace: the first block's objects and operator stay out of it. */
const FAILURES_NS = 'oci-failures';
const BASE = 'ocid1.datasciencemodel.oc1.iad.aaaaaaaabase';
const lora = (n: number) => `ocid1.datasciencemodel.oc1.iad.aaaaaaaalora${String(n)}`;

/** The emulator's fast polls: an operator flag, so tests and benchmarks do not wait 2 s per step. */
const OPERATOR_ARGS = ['--oci-progress-interval-ms=100', '--oci-poll-interval=2'];

function group(name: string, members: number[]): StackedModelGroup {
  return {
    apiVersion: 'serving.stacked.dev/v1alpha1',
    kind: 'StackedModelGroup',
    metadata: { name },
    spec: {
      displayName: 'Model Group - Stacked',
      baseModel: { inferenceKey: 'basemodel', modelId: BASE },
      members: members.map((n) => ({ inferenceKey: `sql-lora-${String(n)}`, modelId: lora(n) })),
    },
  } as unknown as StackedModelGroup;
}

function deployment(
  name: string,
  groupName: string,
  emu: OciEmulator,
  mutate: (d: StackedDeployment) => void = () => undefined,
): StackedDeployment {
  const d = ociDeployment(name, {
    group: groupName,
    endpoint: emu.url,
    oci: {
      displayName: 'MMS Model Group Deployment - Stacked',
      description: 'mms',
      container: {
        image: 'iad.ocir.io/namespace/odsc-vllm-serving:0.6.4.post1.1',
        serverPort: 8080,
        environmentVariables: { MODEL_DEPLOY_PREDICT_ENDPOINT: '/v1/completions' },
      },
      retainModelGroups: 0,
    },
  });
  mutate(d);
  return d;
}

describe('oci backend against the OCI emulator', function () {
  // OCI's delays, scaled, make every step a few seconds.
  this.timeout(240_000);
  let cp: ControlPlane;
  let emu: OciEmulator;
  let key: ApiKey;
  let operator: OperatorProcess | undefined;

  const apply = (obj: object) => kubectl(cp, ['apply', '-n', NS, '-f', '-'], { input: JSON.stringify(obj) });
  const remove = (kind: string, name: string, wait = true) =>
    kubectl(cp, ['delete', kind, name, '-n', NS, `--wait=${String(wait)}`, '--timeout=120s']);
  const start = async (identity = 'oci-op') => {
    operator = await startOperator(cp, { identity, namespace: NS, extraArgs: OPERATOR_ARGS });
    return operator;
  };
  const liveDeployments = (uid: string) =>
    emu.modelDeployments().filter((m) => m.freeformTags['k8s-uid'] === uid && m.lifecycleState !== 'DELETED');
  const liveGroups = (uid: string) =>
    emu.modelGroups().filter((g) => g.freeformTags['k8s-uid'] === uid && g.lifecycleState !== 'DELETED');
  const ociStatus = (o: Obj | undefined) =>
    (o as { status?: { oci?: Record<string, unknown>; endpoint?: string } } | undefined)?.status;

  before(async () => {
    cp = await controlPlaneWithNamespace(NS);
    key = makeApiKey();
    emu = await startOciEmulator({
      keys: { [key.keyId]: key.publicKeyPem },
      models: [BASE, lora(1), lora(2), lora(3), lora(4)],
      ...REALISTIC,
    });
    await apply(apiKeySecret('oci-api-key', key));
  });

  afterEach(async () => {
    emu.faults.clear();
    emu.setLimits({});
    await operator?.stop();
    operator = undefined;
  });

  after(async () => {
    await emu.close();
  });

  it("runs the seed's scenario: Ready with the endpoint, a member change is a new group and a LIVE update, delete cleans OCI", async () => {
    await start();
    await apply(group('sql', [1, 2]));
    await apply(deployment('sql-oci', 'sql', emu));
    const ready = await waitForReady(cp, NS, 'sdep', 'sql-oci', 'True', 'Serving', 60_000);
    const uid = ready.metadata.uid ?? '';
    // A new object never sent a create, so OCI holds nothing of it to adopt: no list before its first.
    // Every create since is one this operator made and saw answered (src/backends/oci/journal.ts),
    // so it never looks for a deployment or a version history in the compartment on its way to Ready.
    const ops = emu.requests().map((r) => r.operation);
    const firstCreate = ops.findIndex((o) => o.startsWith('Create'));
    assert.ok(firstCreate >= 0, ops.join(', '));
    assert.deepEqual(
      ops.slice(0, firstCreate).filter((o) => o.startsWith('List')),
      [],
      ops.join(', '),
    );
    assert.deepEqual(
      ops.filter((o) => o === 'ListModelDeployments' || o === 'ListModelGroupVersionHistories'),
      [],
      ops.join(', '),
    );
    const [md] = liveDeployments(uid);
    assert.ok(md, 'one OCI model deployment');
    assert.equal(ociStatus(ready)?.endpoint, `${md.modelDeploymentUrl}/predict`);
    assert.equal(ociStatus(ready)?.oci?.modelDeploymentId, md.id);
    const firstGroup = ociStatus(ready)?.oci?.modelGroupId as string;
    const created = emu.modelGroups().find((g) => g.id === firstGroup);
    assert.ok(created, 'the first group');
    assert.equal(created.createType, 'CREATE');
    assert.deepEqual(
      created.memberModelEntries.memberModelDetails.map((m) => m.inferenceKey),
      ['basemodel', 'sql-lora-1', 'sql-lora-2'],
    );
    const params = (
      md.modelDeploymentConfigurationDetails as unknown as {
        environmentConfigurationDetails: { environmentVariables: Record<string, string> };
      }
    ).environmentConfigurationDetails.environmentVariables;
    assert.match(params.PARAMS ?? '', /--enable-lora --max-lora-rank 64/);
    assert.equal(params.VLLM_ALLOW_RUNTIME_LORA_UPDATING, 'true');
    // The endpoint answers the seed's predict calls: by inference key, and by OCID.
    const endpoint = ociStatus(ready)?.endpoint ?? '';
    for (const model of ['sql-lora-1', 'sql-lora-2', 'basemodel', BASE, lora(1)]) {
      assert.equal((await predict(key, endpoint, model)).status, 200, `predict ${model}`);
    }
    assert.equal((await predict(key, endpoint, 'sql-lora-3')).status, 404, 'not a member yet');

    // Add sql-lora-3, remove sql-lora-1: a CLONE with patches, a LIVE update, the old group deleted.
    await apply(group('sql', [2, 3]));
    // Sampled all along: a LIVE update never takes the deployment out of service.
    const unavailable: string[] = [];
    const updated = await eventually(
      'the deployment on a new group, Ready',
      async () => {
        const o = await getObject(cp, NS, 'sdep', 'sql-oci');
        const available = condition(o, 'Available');
        if (available?.status !== 'True') unavailable.push(available?.reason ?? 'none');
        const gid = ociStatus(o)?.oci?.modelGroupId;
        return gid !== firstGroup && condition(o, 'Ready')?.status === 'True' ? o : undefined;
      },
      60_000,
      50,
    );
    assert.deepEqual(unavailable, [], 'Available stayed True through the member change');
    assert.equal((await predict(key, endpoint, 'sql-lora-3')).status, 200, 'the new member answers');
    assert.equal((await predict(key, endpoint, 'sql-lora-1')).status, 404, 'the removed one does not');
    const newGroup = emu.modelGroups().find((g) => g.id === ociStatus(updated)?.oci?.modelGroupId);
    assert.ok(newGroup, 'the new group');
    assert.equal(newGroup.createType, 'CLONE');
    assert.equal(newGroup.sourceModelGroupId, firstGroup);
    assert.deepEqual(newGroup.memberModelEntries.memberModelDetails.map((m) => m.inferenceKey).sort(), [
      'basemodel',
      'sql-lora-2',
      'sql-lora-3',
    ]);
    const live = emu.requests().filter((r) => r.operation === 'UpdateModelDeployment');
    assert.equal(live.length, 1, 'one update: the LIVE one');
    await eventually('the superseded group deleted (retainModelGroups 0)', () =>
      Promise.resolve(
        emu.modelGroups().find((g) => g.id === firstGroup)?.lifecycleState === 'DELETED' || undefined,
      ),
    );
    assert.equal(liveDeployments(uid).length, 1, 'no second deployment');
    assert.equal(emu.counts().modelDeploymentsCreated, 1);
    const reasons = (await eventsFor(cp, NS, 'sql-oci')).map((e) => e.reason);
    assert.ok(reasons.includes('LiveUpdate'), reasons.join(', '));

    // A shape or count change cannot ride a LIVE update: it is a ZDT update of the same deployment.
    await apply(deployment('sql-oci', 'sql', emu, (d) => (d.spec.oci!.infrastructure.instanceCount = 2)));
    await eventually(
      'two instances, Ready',
      async () => {
        const o = await getObject(cp, NS, 'sdep', 'sql-oci');
        const m = emu.modelDeployments().find((x) => x.id === md.id);
        const count = (
          m?.modelDeploymentConfigurationDetails as unknown as {
            infrastructureConfigurationDetails: { scalingPolicy: { instanceCount: number } };
          }
        ).infrastructureConfigurationDetails.scalingPolicy.instanceCount;
        return count === 2 &&
          condition(o, 'Ready')?.status === 'True' &&
          o?.status?.observedGeneration === o?.metadata.generation
          ? true
          : undefined;
      },
      60_000,
    );
    const zdt = emu.requests().filter((r) => r.operation === 'UpdateModelDeployment');
    assert.equal(zdt.length, 2, 'the LIVE update, then one ZDT update');
    assert.equal(liveDeployments(uid).length, 1, 'still the same deployment');

    const history = emu
      .modelGroupVersionHistories()
      .find((h) => h.id === ociStatus(updated)?.oci?.modelGroupVersionHistoryId);
    assert.ok(history, 'the version history in status');
    assert.equal(history.latestModelGroupId, newGroup.id, 'the version history leads to the new group');
    assert.equal(newGroup.modelGroupVersionHistoryId, history.id);

    await remove('sdep', 'sql-oci');
    assert.equal(
      emu.modelGroupVersionHistories().find((h) => h.id === history.id)?.lifecycleState,
      'DELETED',
      'the version history is deleted last',
    );
    assert.deepEqual(liveDeployments(uid), [], 'the model deployment is deleted');
    assert.deepEqual(liveGroups(uid), [], 'every group this object made is deleted');
  });

  it('adopts what a lost response created, and converges through 30 % injected 429/5xx', async () => {
    await start();
    // The first create of each kind succeeds in OCI but its answer is lost.
    emu.faults.once('CreateModelGroup', 503, { afterCommit: true });
    emu.faults.once('CreateModelDeployment', 0, { afterCommit: true });
    emu.faults.set({ rate: 0.3, statuses: [429, 500, 502, 503, 504], seed: 42 });
    await apply(group('flaky', [1, 2]));
    await apply(deployment('flaky', 'flaky', emu));
    const ready = await waitForReady(cp, NS, 'sdep', 'flaky', 'True', 'Serving', 120_000);
    const uid = ready.metadata.uid ?? '';
    assert.equal(emu.modelDeployments().filter((m) => m.freeformTags['k8s-uid'] === uid).length, 1);
    assert.equal(emu.modelGroups().filter((g) => g.freeformTags['k8s-uid'] === uid).length, 1);
    const faulted = emu.requests().filter((r) => r.status >= 429).length;
    assert.ok(faulted > 0, 'faults were injected');
    // The lost answer is what lists exist for: the operator looked for what it may have made.
    const ops = emu.requests().map((r) => r.operation);
    const lost = ops.indexOf('CreateModelDeployment');
    assert.ok(ops.slice(lost + 1).includes('ListModelDeployments'), ops.join(', '));
    emu.faults.clear();

    // Deletion outlives an outage: every call fails for a while, the finalizer holds the object.
    emu.faults.set({ rate: 1, statuses: [503] });
    await remove('sdep', 'flaky', false);
    await new Promise((r) => setTimeout(r, 3000));
    const held = await getObject(cp, NS, 'sdep', 'flaky');
    assert.ok(held?.metadata.uid === uid, 'the object waits for OCI');
    assert.equal(liveDeployments(uid).length, 1, 'nothing could be deleted yet');
    emu.faults.clear();
    await eventually(
      'the object gone once OCI answers',
      async () => ((await getObject(cp, NS, 'sdep', 'flaky')) === undefined ? true : undefined),
      90_000,
    );
    assert.deepEqual(liveDeployments(uid), []);
    assert.deepEqual(liveGroups(uid), []);
  });

  it('reports a model group that FAILED, deletes it and makes a fresh one at the next poll', async () => {
    await start();
    emu.outOfBand.failNextGroupCreates(1, 'model ocid1.datasciencemodel.oc1.iad.aaaaaaaalora4 is not ACTIVE');
    await apply(group('failing', [4]));
    await apply(deployment('failing', 'failing', emu));
    const ready = await waitForReady(cp, NS, 'sdep', 'failing', 'True', 'Serving', 60_000);
    const uid = ready.metadata.uid ?? '';
    const made = emu.modelGroups().filter((g) => g.freeformTags['k8s-uid'] === uid);
    assert.deepEqual(
      made.map((g) => g.lifecycleState),
      ['DELETED', 'ACTIVE'],
      'the FAILED group deleted, a second one serving',
    );
    const reasons = (await eventsFor(cp, NS, 'failing')).map((e) => `${e.type}/${e.reason}`);
    assert.ok(reasons.includes('Warning/ModelGroupFailed'), reasons.join(', '));
    await remove('sdep', 'failing');
    assert.deepEqual(liveGroups(uid), []);
  });

  it('reports wrong credentials as a clear condition without a hot loop, and recovers when the Secret is fixed', async () => {
    // A 300 s poll: only the Secret watch can bring the fix within the few seconds asserted below.
    const op = await startOperator(cp, {
      identity: 'oci-op',
      namespace: NS,
      extraArgs: ['--oci-progress-interval-ms=100', '--oci-poll-interval=300'],
    });
    operator = op;
    const wrong = makeApiKey('stranger');
    await apply(apiKeySecret('wrong-key', wrong));
    await apply(group('creds', [1]));
    await apply(
      deployment('creds', 'creds', emu, (d) => (d.spec.oci!.auth.secretRef = { name: 'wrong-key' })),
    );
    const refused = await waitForReady(cp, NS, 'sdep', 'creds', 'False', 'NotAuthenticated', 60_000);
    const message = condition(refused, 'Ready')!.message;
    assert.match(message, /401/);
    // The fingerprint names a public key and may appear; the private key never does.
    assert.ok(!message.includes('PRIVATE KEY'), 'no key material');
    const before = emu.requests().length;
    await new Promise((r) => setTimeout(r, 5000));
    const calls = emu.requests().length - before;
    assert.ok(calls <= 6, `no hot loop: ${String(calls)} OCI calls in 5 s`);
    assert.equal(
      emu.modelGroups().filter((g) => g.freeformTags['k8s-uid'] === refused.metadata.uid).length,
      0,
      'nothing created',
    );
    assert.ok(!op.lines.some((l) => JSON.stringify(l).includes('PRIVATE KEY')), 'no key in the logs');

    // The fix: the Secret now holds the key the emulator knows (the emulator learns nothing).
    const fixedAt = Date.now();
    await apply(apiKeySecret('wrong-key', key));
    await waitForReady(cp, NS, 'sdep', 'creds', 'True', 'Serving', 30_000);
    const recoveryMs = Date.now() - fixedAt;
    assert.ok(recoveryMs < 10_000, `recovered ${String(recoveryMs)} ms after the Secret was fixed`);
    await remove('sdep', 'creds');
  });

  it('brings back a deployment deleted or changed in OCI, or only reports it under driftPolicy Observe', async () => {
    await start();
    await apply(group('drift', [1, 2]));
    await apply(deployment('drift', 'drift', emu));
    const ready = await waitForReady(cp, NS, 'sdep', 'drift', 'True', 'Serving', 60_000);
    const uid = ready.metadata.uid ?? '';
    const firstId = ociStatus(ready)?.oci?.modelDeploymentId as string;

    emu.outOfBand.updateDeployment(firstId, (m) => {
      const cfg = m.modelDeploymentConfigurationDetails as unknown as {
        infrastructureConfigurationDetails: { scalingPolicy: { instanceCount: number } };
      };
      cfg.infrastructureConfigurationDetails.scalingPolicy.instanceCount = 5;
    });
    await eventually(
      'the instance count brought back to 1',
      () => {
        const m = emu.modelDeployments().find((x) => x.id === firstId);
        const count = (
          m?.modelDeploymentConfigurationDetails as unknown as {
            infrastructureConfigurationDetails: { scalingPolicy: { instanceCount: number } };
          }
        ).infrastructureConfigurationDetails.scalingPolicy.instanceCount;
        return Promise.resolve(count === 1 && m?.lifecycleState === 'ACTIVE' ? true : undefined);
      },
      60_000,
    );

    emu.outOfBand.deleteDeployment(firstId);
    const recreated = await eventually(
      'a new deployment, Ready',
      async () => {
        const o = await getObject(cp, NS, 'sdep', 'drift');
        const id = ociStatus(o)?.oci?.modelDeploymentId;
        return id !== firstId && condition(o, 'Ready')?.status === 'True' ? o : undefined;
      },
      60_000,
    );
    assert.equal(liveDeployments(uid).length, 1);
    const reasons = (await eventsFor(cp, NS, 'drift')).map((e) => e.reason);
    assert.ok(reasons.includes('DeploymentRecreated'), reasons.join(', '));

    const observed = await getObject(cp, NS, 'sdep', 'drift');
    await kubectl(cp, [
      'patch',
      'sdep',
      'drift',
      '-n',
      NS,
      '--type=merge',
      '-p',
      '{"spec":{"oci":{"driftPolicy":"Observe"}}}',
    ]);
    const secondId = ociStatus(recreated)?.oci?.modelDeploymentId as string;
    await eventually('the Observe policy seen', async () => {
      const o = await getObject(cp, NS, 'sdep', 'drift');
      return o?.status?.observedGeneration !== observed?.status?.observedGeneration ? o : undefined;
    });
    emu.outOfBand.deleteDeployment(secondId);
    const reported = await waitForReady(cp, NS, 'sdep', 'drift', 'False', 'DeletedInOCI', 60_000);
    assert.match(condition(reported, 'Ready')!.message, /deleted outside the operator/);
    await new Promise((r) => setTimeout(r, 2500));
    assert.deepEqual(liveDeployments(uid), [], 'Observe does not recreate');
    await remove('sdep', 'drift');
    assert.deepEqual(liveGroups(uid), []);
  });
});

describe("oci backend against OCI's failures (emulator with the realistic switches on)", function () {
  this.timeout(240_000);
  let cp: ControlPlane;
  let emu: OciEmulator;
  let key: ApiKey;
  let operator: OperatorProcess | undefined;

  const apply = (obj: object) =>
    kubectl(cp, ['apply', '-n', FAILURES_NS, '-f', '-'], { input: JSON.stringify(obj) });
  const remove = (kind: string, name: string) =>
    kubectl(cp, ['delete', kind, name, '-n', FAILURES_NS, '--wait=true', '--timeout=120s']);
  const ociStatus = (o: Obj | undefined) =>
    (o as { status?: { oci?: Record<string, unknown> } } | undefined)?.status?.oci;
  const instanceCountOf = (id: string) =>
    (
      emu.modelDeployments().find((x) => x.id === id)?.modelDeploymentConfigurationDetails as unknown as
        { infrastructureConfigurationDetails: { scalingPolicy: { instanceCount: number } } } | undefined
    )?.infrastructureConfigurationDetails.scalingPolicy.instanceCount;
  /** Every Ready reason (and message) seen until `done` holds, sampled every 100 ms. */
  const readyReasonsUntil = async (name: string, what: string, done: (o: Obj | undefined) => boolean) => {
    const seen: string[] = [];
    await eventually(
      what,
      async () => {
        const o = await getObject(cp, FAILURES_NS, 'sdep', name);
        const r = condition(o, 'Ready');
        const line = `${r?.reason ?? 'none'}: ${r?.message ?? ''}`;
        if (seen.at(-1) !== line) seen.push(line);
        return done(o) ? true : undefined;
      },
      90_000,
      100,
    );
    return seen;
  };
  const ready = (o: Obj | undefined) =>
    condition(o, 'Ready')?.status === 'True' && o?.status?.observedGeneration === o?.metadata.generation;

  before(async () => {
    cp = await controlPlaneWithNamespace(FAILURES_NS);
    key = makeApiKey();
    emu = await startOciEmulator({
      keys: { [key.keyId]: key.publicKeyPem },
      models: [BASE, lora(1), lora(2), lora(3), lora(4)],
      ...REALISTIC,
    });
    await apply(apiKeySecret('oci-api-key', key));
    operator = await startOperator(cp, {
      identity: 'oci-failures',
      namespace: FAILURES_NS,
      extraArgs: OPERATOR_ARGS,
    });
  });

  afterEach(() => {
    emu.faults.clear();
    emu.setLimits({});
  });

  after(async () => {
    await operator?.stop();
    await emu.close();
  });

  it('a deployment that goes FAILED by itself is Degraded with its lifecycleDetails, Ready again when OCI brings it back ACTIVE, and re-created when it is deleted while FAILED', async () => {
    await apply(group('selffail', [1, 2]));
    await apply(deployment('selffail', 'selffail', emu));
    const first = await waitForReady(cp, FAILURES_NS, 'sdep', 'selffail', 'True', 'Serving', 60_000);
    const id = ociStatus(first)?.modelDeploymentId as string;

    const details = 'The model server container exited unexpectedly (exit code 137)';
    emu.outOfBand.failDeployment(id, { state: 'FAILED', details, recoverAfterMs: 6000 });
    const failed = await waitForReady(
      cp,
      FAILURES_NS,
      'sdep',
      'selffail',
      'False',
      'DeploymentFailed',
      30_000,
    );
    assert.equal(condition(failed, 'Ready')?.message, details);
    assert.equal(condition(failed, 'Degraded')?.status, 'True');
    assert.equal(condition(failed, 'Degraded')?.reason, 'DeploymentFailed');
    assert.equal(condition(failed, 'Degraded')?.message, details);
    assert.equal(condition(failed, 'Available')?.status, 'False');
    const mutatingBefore = emu.counts().mutating;
    // OCI heals it: Ready again, with nothing changed in OCI by the operator meanwhile.
    const healed = await waitForReady(cp, FAILURES_NS, 'sdep', 'selffail', 'True', 'Serving', 30_000);
    assert.equal(ociStatus(healed)?.modelDeploymentId, id, 'the same deployment');
    assert.equal(condition(healed, 'Degraded')?.status, 'False');
    assert.equal(emu.counts().mutating, mutatingBefore, 'the operator only watched a FAILED deployment');

    // FAILED for good; someone deletes it in the console: the operator makes a new one.
    emu.outOfBand.failDeployment(id, { state: 'FAILED', details });
    await waitForReady(cp, FAILURES_NS, 'sdep', 'selffail', 'False', 'DeploymentFailed', 30_000);
    emu.outOfBand.deleteDeployment(id);
    const recreated = await eventually(
      'a new deployment, Ready',
      async () => {
        const o = await getObject(cp, FAILURES_NS, 'sdep', 'selffail');
        return ociStatus(o)?.modelDeploymentId !== id && ready(o) ? o : undefined;
      },
      60_000,
    );
    const reasons = (await eventsFor(cp, FAILURES_NS, 'selffail')).map((e) => e.reason);
    assert.ok(reasons.includes('DeploymentRecreated'), reasons.join(', '));
    assert.notEqual(ociStatus(recreated)?.modelDeploymentId, id);
    await remove('sdep', 'selffail');
  });

  it('a LIVE update whose work request FAILS is reported WorkRequestFailed with the errors OCI lists, then retried until it succeeds', async () => {
    await apply(group('wrfail', [1, 2]));
    await apply(deployment('wrfail', 'wrfail', emu));
    const first = await waitForReady(cp, FAILURES_NS, 'sdep', 'wrfail', 'True', 'Serving', 60_000);
    const firstGroup = ociStatus(first)?.modelGroupId as string;
    const id = ociStatus(first)?.modelDeploymentId as string;
    const message = 'Model ocid1.datasciencemodel.oc1.iad.aaaaaaaalora3 could not be loaded by vLLM';
    emu.outOfBand.failNextWork('MODEL_DEPLOYMENT_UPDATE', { code: 'InternalServerError', message });
    await apply(group('wrfail', [1, 3]));
    const seen = await readyReasonsUntil('wrfail', 'Ready on the new group', (o) => {
      const gid = ociStatus(o)?.modelGroupId;
      return ready(o) && gid !== undefined && gid !== firstGroup;
    });
    assert.ok(
      seen.some((l) => l.startsWith('WorkRequestFailed:') && l.includes(`InternalServerError: ${message}`)),
      seen.join('\n'),
    );
    const updates = emu.requests().filter((r) => r.operation === 'UpdateModelDeployment' && r.status === 202);
    assert.ok(updates.length >= 2, `the failed update and its retry: ${String(updates.length)}`);
    const failedWork = emu
      .workRequests()
      .filter((w) => w.operationType === 'MODEL_DEPLOYMENT_UPDATE' && w.status === 'FAILED');
    assert.equal(failedWork.length, 1);
    assert.equal(emu.modelDeployments().find((m) => m.id === id)?.lifecycleState, 'ACTIVE');
    await remove('sdep', 'wrfail');
  });

  it('a 412 on update (a console edit between the read and the write) is re-read and the update succeeds', async () => {
    await apply(group('race', [1, 2]));
    await apply(deployment('race', 'race', emu));
    const first = await waitForReady(cp, FAILURES_NS, 'sdep', 'race', 'True', 'Serving', 60_000);
    const id = ociStatus(first)?.modelDeploymentId as string;
    // Someone scales it to 5 in the console; while the operator brings it back, someone else edits
    // its tags between the operator's read and its write.
    emu.outOfBand.beforeNext('UpdateModelDeployment', () => {
      emu.outOfBand.updateDeployment(id, (m) => {
        m.freeformTags = { ...m.freeformTags, 'cost-center': 'edited-in-console' };
      });
    });
    const since = Date.now();
    emu.outOfBand.updateDeployment(id, (m) => {
      (
        m.modelDeploymentConfigurationDetails as unknown as {
          infrastructureConfigurationDetails: { scalingPolicy: { instanceCount: number } };
        }
      ).infrastructureConfigurationDetails.scalingPolicy.instanceCount = 5;
    });
    await eventually(
      'the instance count brought back to 1, Ready',
      async () => {
        const o = await getObject(cp, FAILURES_NS, 'sdep', 'race');
        const m = emu.modelDeployments().find((x) => x.id === id);
        return instanceCountOf(id) === 1 && m?.lifecycleState === 'ACTIVE' && ready(o) ? true : undefined;
      },
      60_000,
    );
    const updates = emu.requests().filter((r) => r.operation === 'UpdateModelDeployment' && r.at >= since);
    assert.equal(updates[0]?.status, 412, updates.map((u) => u.status).join(', '));
    assert.ok(
      updates.slice(1).some((u) => u.status === 202),
      `re-read and updated: ${updates.map((u) => u.status).join(', ')}`,
    );
    await remove('sdep', 'race');
  });

  it('a create refused 400 LimitExceeded is reported, retried without a hot loop, and succeeds once the limit is lifted', async () => {
    emu.setLimits({ modelDeployments: 0 });
    await apply(group('limited', [1]));
    await apply(deployment('limited', 'limited', emu));
    const refused = await waitForReady(cp, FAILURES_NS, 'sdep', 'limited', 'False', 'OciRejected', 60_000);
    assert.match(condition(refused, 'Ready')!.message, /400 LimitExceeded/);
    const creates = () =>
      emu.requests().filter((r) => r.operation === 'CreateModelDeployment' && r.status === 400).length;
    const before = creates();
    await new Promise((r) => setTimeout(r, 6000));
    const retries = creates() - before;
    assert.ok(retries >= 1, 'retried while refused');
    assert.ok(retries <= 6, `no hot loop: ${String(retries)} creates in 6 s`);
    emu.setLimits({});
    await waitForReady(cp, FAILURES_NS, 'sdep', 'limited', 'True', 'Serving', 60_000);
    const uid = refused.metadata.uid ?? '';
    const made = emu.modelDeployments().filter((m) => m.freeformTags['k8s-uid'] === uid);
    assert.equal(made.length, 1, 'one deployment, made once the limit was lifted');
    await remove('sdep', 'limited');
  });
});
