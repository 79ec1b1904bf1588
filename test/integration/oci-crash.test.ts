// Crashes of the leader in the middle of its OCI work. Two operator processes run at all times: one
// leads, one waits. The emulator (in this process) tells the test of every call as it is answered;
// when the leader's mutating call lands, the test may SIGKILL the leader at once or after a random
// delay, and starts a new standby. Objects are driven through every phase of the oci backend (create,
// a member change, an infrastructure change, deletion), so kills fall on each mutating call: create
// group, create deployment, live update, ZDT update, delete group, delete deployment. At each step
// and at the end, what OCI holds under each object's uid tag must be exactly what its status and
// finalizer say: no duplicate, no orphan.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import type { StackedDeployment } from '../../src/api/v1alpha1/deployment.ts';
import type { StackedModelGroup } from '../../src/api/v1alpha1/modelgroup.ts';
import type { ControlPlane } from '../../playground/controlplane.ts';
import { kubectl } from '../../playground/kubectl.ts';
import {
  REALISTIC,
  startOciEmulator,
  type OciEmulator,
  type RequestRecord,
} from '../../playground/oci-emulator.ts';
import { apiKeySecret, makeApiKey, type ApiKey } from '../../playground/oci-keys.ts';
import { controlPlaneWithNamespace, startOperator, type OperatorProcess } from '../../playground/operator.ts';
import { condition, eventually, getObject, type Obj } from '../../playground/wait.ts';
import { ociDeployment } from '../support/objects.ts';

const NS = 'oci-crash';
const BASE = 'ocid1.datasciencemodel.oc1.iad.aaaaaaaabase';
const lora = (n: number) => `ocid1.datasciencemodel.oc1.iad.aaaaaaaalora${String(n)}`;

/**
 * The shortest leases the elector accepts (retry < renew deadline < lease, whole seconds): a crashed
 * leader's successor takes over about 3 s after the last renewal. Its own Lease, so that nothing
 * else competes for it.
 */
const OPERATOR_ARGS = [
  '--oci-progress-interval-ms=100',
  '--oci-poll-interval=2',
  '--lease-duration=3',
  '--renew-deadline=2',
  '--retry-period=1',
  '--leader-election-id=oci-crash',
];

/** The phases the issue names, then the version history's own calls. */
const PHASES = [
  'create group',
  'create deployment',
  'live update',
  'ZDT update',
  'delete group',
  'delete deployment',
] as const;
const OTHER_PHASES = ['create history', 'delete history'] as const;
type Phase = (typeof PHASES)[number] | (typeof OTHER_PHASES)[number];

/** The phase a call that changed something in OCI belongs to; undefined for reads and refusals. */
function phaseOf(r: RequestRecord): Phase | undefined {
  if (r.status < 200 || r.status >= 300) return undefined;
  switch (r.operation) {
    case 'CreateModelGroup':
      return 'create group';
    case 'CreateModelDeployment':
      return 'create deployment';
    case 'UpdateModelDeployment':
      return r.updateType === 'LIVE' ? 'live update' : 'ZDT update';
    case 'DeleteModelGroup':
      return 'delete group';
    case 'DeleteModelDeployment':
      return 'delete deployment';
    case 'CreateModelGroupVersionHistory':
      return 'create history';
    case 'DeleteModelGroupVersionHistory':
      return 'delete history';
    default:
      return undefined;
  }
}

function group(name: string, members: number[]): StackedModelGroup {
  return {
    apiVersion: 'serving.stacked.dev/v1alpha1',
    kind: 'StackedModelGroup',
    metadata: { name },
    spec: {
      baseModel: { inferenceKey: 'basemodel', modelId: BASE },
      members: members.map((n) => ({ inferenceKey: `sql-lora-${String(n)}`, modelId: lora(n) })),
    },
  } as unknown as StackedModelGroup;
}

function deployment(name: string, emu: OciEmulator, instanceCount: number): StackedDeployment {
  return ociDeployment(name, {
    endpoint: emu.url,
    oci: { infrastructure: { shape: 'VM.GPU.A10.1', instanceCount }, retainModelGroups: 0 },
  });
}

/** A reproducible stream in [0, 1): the kills differ by timing, not by the choices made. */
function lcg(seed: number): () => number {
  let s = seed;
  return () => (s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
}

/**
 * A leader and a standby, always. Each kill falls right after a mutating call of the leader (at once,
 * or after a random delay of up to 800 ms, during the polls that follow it): every phase is killed
 * at least twice, then a call is killed with probability 0.35.
 */
class Fleet {
  readonly kills = new Map<Phase, number>();
  readonly killLog: string[] = [];
  private readonly alive = new Set<OperatorProcess>();
  private leader: OperatorProcess | undefined;
  private killing = false;
  private started = 0;
  private stopped = false;
  private readonly rand = lcg(11);
  private readonly unsubscribe: () => void;
  private readonly cp: ControlPlane;

  constructor(cp: ControlPlane, emu: OciEmulator) {
    this.cp = cp;
    this.unsubscribe = emu.onRequest((r) => {
      this.onCall(r);
    });
  }

  total(): number {
    return [...this.kills.values()].reduce((a, b) => a + b, 0);
  }

  /** Keeps two processes running. */
  async fill(): Promise<void> {
    while (!this.stopped && this.alive.size < 2) await this.spawn();
  }

  private async spawn(): Promise<void> {
    const identity = `crash-${String(this.started++)}`;
    const op = await startOperator(this.cp, { identity, namespace: NS, extraArgs: OPERATOR_ARGS });
    this.alive.add(op);
    void op.exited.then(() => this.alive.delete(op));
    op.waitForLog((l) => l.message === 'acquired leader lease', 600_000).then(
      () => {
        if (this.alive.has(op)) this.leader = op;
      },
      () => undefined,
    );
  }

  private onCall(r: RequestRecord): void {
    const phase = phaseOf(r);
    const leader = this.leader;
    if (phase === undefined || leader === undefined || this.killing || this.stopped) return;
    const needed = (PHASES as readonly string[]).includes(phase) && (this.kills.get(phase) ?? 0) < 2;
    if (!needed && this.rand() >= 0.35) return;
    this.killing = true;
    const delayMs = this.rand() < 0.4 ? 0 : Math.round(this.rand() * 800);
    void (async () => {
      if (delayMs > 0) await sleep(delayMs);
      this.leader = undefined;
      await leader.stop('SIGKILL');
      this.kills.set(phase, (this.kills.get(phase) ?? 0) + 1);
      this.killLog.push(`${leader.identity} after ${r.operation} ${r.path} (+${String(delayMs)} ms)`);
      this.killing = false;
      await this.fill();
    })();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe();
    await Promise.all([...this.alive].map((o) => o.stop('SIGKILL')));
  }
}

describe('oci backend: the leader killed in the middle of its OCI work', function () {
  this.timeout(360_000);
  let cp: ControlPlane;
  let emu: OciEmulator;
  let key: ApiKey;
  let fleet: Fleet | undefined;

  const apply = (obj: object) => kubectl(cp, ['apply', '-n', NS, '-f', '-'], { input: JSON.stringify(obj) });
  const ociOf = (o: Obj | undefined) =>
    (
      o as
        | {
            status?: {
              oci?: { modelDeploymentId?: string; modelGroupId?: string; modelGroupHistory?: string[] };
            };
          }
        | undefined
    )?.status?.oci;
  const gone = (state: string | undefined) => state === 'DELETED' || state === 'DELETING';
  const live = (uid: string) => ({
    deployments: emu
      .modelDeployments()
      .filter((m) => m.freeformTags['k8s-uid'] === uid && !gone(m.lifecycleState)),
    groups: emu.modelGroups().filter((g) => g.freeformTags['k8s-uid'] === uid && !gone(g.lifecycleState)),
  });
  /** What OCI holds under the uid tag is what status says: one deployment, its group, no other. */
  const matchesStatus = (o: Obj | undefined) => {
    const uid = o?.metadata.uid ?? '';
    const oci = ociOf(o);
    const { deployments, groups } = live(uid);
    return (
      deployments.length === 1 &&
      deployments[0]?.id === oci?.modelDeploymentId &&
      groups.map((g) => g.id).join() === [oci?.modelGroupId, ...(oci?.modelGroupHistory ?? [])].join()
    );
  };
  const ready = (o: Obj | undefined) =>
    condition(o, 'Ready')?.status === 'True' &&
    condition(o, 'Ready')?.observedGeneration === o?.metadata.generation &&
    o?.status?.observedGeneration === o?.metadata.generation;
  const instanceCountOf = (id: string | undefined) =>
    (
      emu.modelDeployments().find((m) => m.id === id)?.modelDeploymentConfigurationDetails as unknown as
        { infrastructureConfigurationDetails: { scalingPolicy: { instanceCount: number } } } | undefined
    )?.infrastructureConfigurationDetails.scalingPolicy.instanceCount;

  before(async () => {
    cp = await controlPlaneWithNamespace(NS);
    key = makeApiKey();
    emu = await startOciEmulator({
      keys: { [key.keyId]: key.publicKeyPem },
      models: [BASE, lora(1), lora(2), lora(3)],
      ...REALISTIC,
    });
    await apply(apiKeySecret('oci-api-key', key));
  });

  after(async () => {
    await fleet?.stop();
    await emu.close();
  });

  it('kills the leader at least 20 times across every mutating call: no duplicate, no orphan, every object Ready or gone as asked', async () => {
    const t0 = Date.now();
    const f = new Fleet(cp, emu);
    fleet = f;
    await f.fill();
    const created0 = { ...emu.counts() };
    const uids: string[] = [];
    const covered = () => PHASES.every((p) => (f.kills.get(p) ?? 0) > 0);
    let objects = 0;
    // An object at a time through every phase, until 20 kills have fallen and every phase has one.
    for (; objects < 8 && (f.total() < 20 || !covered()); objects++) {
      const name = `crash-${String(objects)}`;
      await apply(group(name, [1, 2]));
      await apply(deployment(name, emu, 1));
      const created = await eventually(
        `${name} Ready, and OCI holds what its status says`,
        async () => {
          const o = await getObject(cp, NS, 'sdep', name);
          return ready(o) && matchesStatus(o) ? o : undefined;
        },
        90_000,
        200,
      );
      const uid = created.metadata.uid ?? '';
      uids.push(uid);

      // A member change: a CLONE group, a LIVE update, the superseded group deleted.
      await apply(group(name, [2, 3]));
      await eventually(
        `${name} Ready on the new members, the old group deleted`,
        async () => {
          const o = await getObject(cp, NS, 'sdep', name);
          const members = live(uid)
            .groups.find((g) => g.id === ociOf(o)?.modelGroupId)
            ?.memberModelEntries.memberModelDetails.map((m) => m.inferenceKey);
          return ready(o) && matchesStatus(o) && members?.includes('sql-lora-3') === true ? o : undefined;
        },
        90_000,
        200,
      );

      // An infrastructure change: a ZDT update of the same deployment.
      await apply(deployment(name, emu, 2));
      await eventually(
        `${name} Ready on two instances`,
        async () => {
          const o = await getObject(cp, NS, 'sdep', name);
          return ready(o) && matchesStatus(o) && instanceCountOf(ociOf(o)?.modelDeploymentId) === 2
            ? o
            : undefined;
        },
        90_000,
        200,
      );

      // Deletion: the deployment, the group, the version history; then the finalizer lets go.
      await kubectl(cp, ['delete', 'sdep', name, '-n', NS, '--wait=false']);
      await eventually(
        `${name} gone`,
        async () => ((await getObject(cp, NS, 'sdep', name)) === undefined ? true : undefined),
        90_000,
        200,
      );
      const left = live(uid);
      assert.deepEqual(
        [...left.deployments.map((m) => m.id), ...left.groups.map((g) => g.id)],
        [],
        `${name}: the finalizer let go with nothing left in OCI`,
      );
      await kubectl(cp, ['delete', 'smg', name, '-n', NS, '--wait=false']);
    }
    await f.stop();
    const seconds = Math.round((Date.now() - t0) / 1000);
    const counts = [...PHASES, ...OTHER_PHASES].map((p) => `${p}: ${String(f.kills.get(p) ?? 0)}`);
    console.log(
      `      ${String(f.total())} kills of the leader over ${String(objects)} objects in ${String(seconds)} s: ${counts.join(', ')}`,
    );
    if (process.env.OCI_CRASH_LOG) console.log(f.killLog.map((l) => `        ${l}`).join('\n'));
    assert.ok(f.total() >= 20, `at least 20 kills, got ${String(f.total())}`);
    for (const p of PHASES) assert.ok((f.kills.get(p) ?? 0) > 0, `a kill after ${p}`);

    // No duplicate: one deployment per object and two groups (the first, the member change's clone),
    // however many times a create was cut short; no orphan: nothing under any uid still lives.
    const made = emu.counts();
    assert.equal(
      made.modelDeploymentsCreated - created0.modelDeploymentsCreated,
      objects,
      'deployments made',
    );
    assert.equal(made.modelGroupsCreated - created0.modelGroupsCreated, 2 * objects, 'groups made');
    for (const uid of uids) {
      const left = live(uid);
      assert.equal(left.deployments.length + left.groups.length, 0, `nothing left under ${uid}`);
    }
    const histories = emu
      .modelGroupVersionHistories()
      .filter((h) => uids.includes(h.freeformTags['k8s-uid'] ?? '') && !gone(h.lifecycleState));
    assert.deepEqual(
      histories.map((h) => h.id),
      [],
      'no version history left',
    );
  });
});
