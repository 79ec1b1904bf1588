// "No drift" under Argo CD, on the real control plane: the samples (deploy/samples/) are applied as
// Argo CD applies them with ServerSideApply=true (server-side apply, field manager argocd-controller,
// its tracking annotation), the operator reconciles them, and then a server-side dry-run re-apply
// with the same manager changes nothing: no schema default, no operator write fights a user's field,
// so the application stays Synced instead of flapping OutOfSync.
//
// The vllm sample becomes Ready (the test kubelet runs its pods as vLLM simulators and the router
// as a process). The oci sample cannot: there is no OCI here and its api-key Secret is absent, so
// the test waits until the operator has written its status for the current generation (Ready False,
// CredentialsInvalid) — which is where a status write could still fight the spec.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { load } from 'js-yaml';
import { writeAdapter } from '../../playground/adapters.ts';
import type { ControlPlane } from '../../playground/controlplane.ts';
import { startKubelet, type Kubelet } from '../../playground/kubelet.ts';
import { kubectl } from '../../playground/kubectl.ts';
import { controlPlaneWithNamespace, startOperator, type OperatorProcess } from '../../playground/operator.ts';
import { condition, eventually, getObject, type Obj } from '../../playground/wait.ts';

const NS = 'argocd-nodrift';
const MANAGER = 'argocd-controller';
const APP = 'stacked-samples';
const root = join(import.meta.dirname, '..', '..');
const samples = join(root, 'deploy', 'samples');

interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; annotations?: Record<string, string> };
  spec?: unknown;
}

/** A sample as Argo CD sends it: its tracking annotation added (the default tracking method). */
function asArgo(file: string): Manifest {
  const m = load(readFileSync(join(samples, file), 'utf8')) as Manifest;
  const group = m.apiVersion.split('/')[0] ?? '';
  m.metadata.annotations = {
    ...m.metadata.annotations,
    'argocd.argoproj.io/tracking-id': `${APP}:${group}/${m.kind}:${NS}/${m.metadata.name}`,
  };
  return m;
}

/** What a re-apply may legitimately change: bookkeeping only. */
function comparable(o: Obj): unknown {
  const {
    managedFields: _m,
    resourceVersion: _r,
    generation: _g,
    ...metadata
  } = o.metadata as Record<string, unknown>;
  return { ...o, metadata };
}

describe('Argo CD: the samples show no drift after the operator reconciled them', function () {
  this.timeout(300_000);
  let cp: ControlPlane;
  let kubelet: Kubelet;
  let operator: OperatorProcess;
  let tmp: string;
  const manifests = ['modelgroup.yaml', 'deployment-vllm.yaml', 'deployment-oci.yaml'].map(asArgo);

  const ssa = (m: Manifest, extra: string[] = []) =>
    kubectl(
      cp,
      ['apply', '--server-side', `--field-manager=${MANAGER}`, '-n', NS, '-o', 'json', ...extra, '-f', '-'],
      { input: JSON.stringify(m) },
    );
  const short = (m: Manifest) => (m.kind === 'StackedModelGroup' ? 'smg' : 'sdep');

  before(async function () {
    this.timeout(3_600_000);
    cp = await controlPlaneWithNamespace(NS);
    tmp = mkdtempSync(join(tmpdir(), 'argocd-nodrift-'));
    // The sample's adapters are Hugging Face ids; the simulator finds them under hfRoot, at the
    // sample's rank (16).
    for (const id of ['example-org/sql-lora-1', 'example-org/sql-lora-2']) {
      writeAdapter(join(tmp, 'hf', id), 16, 'meta-llama/Llama-3.1-8B-Instruct');
    }
    kubelet = await startKubelet({
      kubeconfigPath: cp.kubeconfigPath,
      nodes: [
        { name: 'argocd-gpu-1', gpus: 1 },
        { name: 'argocd-gpu-2', gpus: 1 },
      ],
      pvcRoot: join(tmp, 'pvc'),
      hfRoot: join(tmp, 'hf'),
      namespaces: [NS],
      probeTimeScale: 0.1,
    });
    operator = await startOperator(cp, {
      identity: 'argocd-nodrift',
      namespace: NS,
      extraArgs: ['--leader-election-id=argocd-nodrift'],
    });
  });

  after(async () => {
    await operator.stop();
    await kubelet.stop();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('CRDs carry sync-wave -1, so Argo CD syncs them before the samples', async () => {
    const r = await kubectl(cp, [
      'get',
      'crd',
      '-l',
      'app.kubernetes.io/part-of=stacked-operator',
      '-o',
      'json',
    ]);
    const crds = (
      JSON.parse(r.stdout) as {
        items: { metadata: { name: string; annotations?: Record<string, string> } }[];
      }
    ).items;
    assert.equal(crds.length, 2);
    for (const c of crds) {
      assert.equal(c.metadata.annotations?.['argocd.argoproj.io/sync-wave'], '-1', c.metadata.name);
    }
  });

  it('applies the samples server-side as argocd-controller; the operator reconciles them', async () => {
    for (const m of manifests) await ssa(m);
    // vllm: Ready, every adapter loaded, through the router.
    await eventually(
      'the vllm sample Ready for its generation',
      async () => {
        const d = await getObject(cp, NS, 'sdep', 'sql-prod');
        return condition(d, 'Ready')?.status === 'True' &&
          d?.status?.observedGeneration === d?.metadata.generation
          ? d
          : undefined;
      },
      180_000,
    );
    // oci: no OCI and no Secret here; the status the operator writes is what matters.
    const oci = await eventually('the oci sample has a status of its generation', async () => {
      const d = await getObject(cp, NS, 'sdep', 'sql-oci');
      const ready = condition(d, 'Ready');
      return ready !== undefined && d?.status?.observedGeneration === d?.metadata.generation ? d : undefined;
    });
    assert.equal(condition(oci, 'Ready')?.status, 'False');
    assert.equal(condition(oci, 'Ready')?.reason, 'CredentialsInvalid');
    const g = await getObject(cp, NS, 'smg', 'sql-assistants');
    assert.equal(condition(g, 'Ready')?.status, 'True');
  });

  it('a server-side dry-run re-apply by argocd-controller changes nothing', async () => {
    for (const m of manifests) {
      // The operator may write status meanwhile: compare with reads on both sides of the dry run
      // that agree with each other.
      const [live, dry] = await eventually(`a stable read of ${m.metadata.name}`, async () => {
        const before = await getObject(cp, NS, short(m), m.metadata.name);
        const dryRun = JSON.parse((await ssa(m, ['--dry-run=server'])).stdout) as Obj;
        const after = await getObject(cp, NS, short(m), m.metadata.name);
        if (before === undefined || after === undefined) return undefined;
        return before.metadata.resourceVersion === after.metadata.resourceVersion
          ? ([before, dryRun] as const)
          : undefined;
      });
      assert.deepEqual(comparable(dry), comparable(live), `${m.kind} ${m.metadata.name} would change`);
      assert.equal(dry.metadata.generation, live.metadata.generation, `${m.metadata.name}: generation`);
    }
    // The comparison sees a change when there is one: a user's edit shows.
    const edited = structuredClone(manifests[1]) as Manifest & { spec: { engine: { maxLoras: number } } };
    edited.spec.engine.maxLoras = 8;
    const dry = JSON.parse((await ssa(edited, ['--dry-run=server'])).stdout) as Obj;
    const live = await getObject(cp, NS, 'sdep', edited.metadata.name);
    assert.notDeepEqual(comparable(dry), live && comparable(live));
  });

  it('the operator owns no field of the spec, so a real re-apply is a no-op without conflicts', async () => {
    for (const m of manifests) {
      const live = await getObject(cp, NS, short(m), m.metadata.name);
      const meta = live?.metadata as
        | { managedFields?: { manager: string; subresource?: string; fieldsV1?: Record<string, unknown> }[] }
        | undefined;
      const mf = meta?.managedFields ?? [];
      for (const f of mf.filter((x) => x.manager !== MANAGER)) {
        // Status (its subresource) and the finalizer are the operator's; a spec field would be a fight.
        const owns = Object.keys(f.fieldsV1 ?? {});
        assert.ok(
          f.subresource === 'status' || owns.every((k) => k === 'f:metadata'),
          `${m.metadata.name}: ${f.manager} owns ${owns.join(', ')}`,
        );
      }
      // Without --force-conflicts: a conflict would fail the apply, as it fails Argo CD's sync.
      const res = JSON.parse((await ssa(m)).stdout) as Obj;
      assert.equal(
        res.metadata.generation,
        live?.metadata.generation,
        `${m.metadata.name}: generation moved`,
      );
    }
  });
});
