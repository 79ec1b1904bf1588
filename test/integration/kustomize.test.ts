// kustomize under deploy/: the default overlay renders exactly the objects of crds/ and the plain
// manifests deploy/{namespace,rbac,operator}.yaml (the two ways to install give one cluster), the
// samples render as their files, and `kubectl apply --server-side -k deploy/default` installs CRDs,
// namespace, RBAC and the operator Deployment on a real API server, with nothing left to change.
// The test kubelet then runs the installed operator pod for real (our image's entry point as a
// process, with the Deployment's ServiceAccount token) and it turns Ready.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadAll } from 'js-yaml';
import { startControlPlane, type ControlPlane } from '../../playground/controlplane.ts';
import { imageRunner } from '../../playground/image-runner.ts';
import { startKubelet, type Kubelet } from '../../playground/kubelet.ts';
import { kubectl } from '../../playground/kubectl.ts';
import { eventually } from '../../playground/wait.ts';

const repoRoot = join(import.meta.dirname, '..', '..');
const deploy = join(repoRoot, 'deploy');

interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  [k: string]: unknown;
}

const key = (m: Manifest) => `${m.kind}/${m.metadata.namespace ?? ''}/${m.metadata.name}`;

/** Objects by kind/namespace/name; a duplicate would hide a drift, so it fails. */
function byKey(docs: unknown[]): Map<string, Manifest> {
  const out = new Map<string, Manifest>();
  for (const d of docs as (Manifest | null)[]) {
    if (d === null) continue;
    assert.ok(!out.has(key(d)), `duplicate ${key(d)}`);
    out.set(key(d), d);
  }
  return out;
}

const readYaml = (path: string): unknown[] => loadAll(readFileSync(path, 'utf8'));

function plainManifests(): Map<string, Manifest> {
  const crds = readdirSync(join(repoRoot, 'crds'))
    .filter((f) => f.endsWith('.yaml'))
    .flatMap((f) => readYaml(join(repoRoot, 'crds', f)));
  const files = ['namespace.yaml', 'rbac.yaml', 'operator.yaml'].flatMap((f) => readYaml(join(deploy, f)));
  return byKey([...crds, ...files]);
}

function assertSameObjects(actual: Map<string, Manifest>, expected: Map<string, Manifest>): void {
  assert.deepEqual([...actual.keys()].sort(), [...expected.keys()].sort());
  for (const [k, m] of expected) assert.deepEqual(actual.get(k), m, `${k} differs`);
}

describe('kustomize (deploy/base, deploy/default, deploy/samples)', function () {
  this.timeout(120_000);
  let cp: ControlPlane;

  // Its own control plane: the shared one holds CRDs that Helm (the chart test) owns, and an install
  // that must leave nothing to change needs a cluster no other installer touched.
  before(async function () {
    this.timeout(600_000);
    cp = await startControlPlane();
  });

  let kubelet: Kubelet | undefined;
  after(async () => {
    await kubelet?.stop();
    await cp.stop();
  });

  const render = async (dir: string) =>
    byKey(loadAll((await kubectl(cp, ['kustomize', join(deploy, dir)])).stdout));

  it('renders deploy/default as exactly the objects of crds/ and deploy/{namespace,rbac,operator}.yaml', async () => {
    const rendered = await render('default');
    assertSameObjects(rendered, plainManifests());
    const kinds = new Set([...rendered.values()].map((m) => m.kind));
    for (const k of [
      'CustomResourceDefinition',
      'Namespace',
      'ServiceAccount',
      'ClusterRole',
      'Deployment',
    ]) {
      assert.ok(kinds.has(k), `renders a ${k}`);
    }
  });

  it('keeps the CRD base byte for byte the generated crds/', () => {
    for (const f of readdirSync(join(repoRoot, 'crds')).filter((x) => x.endsWith('.yaml'))) {
      assert.equal(
        readFileSync(join(deploy, 'base', 'crds', f), 'utf8'),
        readFileSync(join(repoRoot, 'crds', f), 'utf8'),
        `deploy/base/crds/${f} is stale: copy crds/${f} after npm run generate`,
      );
    }
  });

  it('renders deploy/samples as the sample files, with no namespace so that -n places them', async () => {
    const rendered = await render('samples');
    const files = readdirSync(join(deploy, 'samples'))
      .filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml')
      .flatMap((f) => readYaml(join(deploy, 'samples', f)));
    assertSameObjects(rendered, byKey(files));
    for (const m of rendered.values()) assert.equal(m.metadata.namespace, undefined, key(m));
  });

  it('installs with kubectl apply --server-side -k deploy/default, and a second apply changes nothing', async () => {
    await kubectl(cp, ['apply', '--server-side', '-k', join(deploy, 'default')]);
    await kubectl(cp, ['wait', '--for=condition=Established', '--timeout=60s', 'crd', '--all']);
    for (const m of plainManifests().values()) {
      const args = [
        'get',
        m.kind.toLowerCase() + (m.apiVersion.includes('/') ? `.${m.apiVersion.split('/')[0]!}` : ''),
      ];
      const ns = m.metadata.namespace;
      const live = JSON.parse(
        (await kubectl(cp, [...args, m.metadata.name, ...(ns ? ['-n', ns] : []), '-o', 'json'])).stdout,
      ) as Manifest;
      assert.equal(live.metadata.name, m.metadata.name, key(m));
    }
    const op = JSON.parse(
      (await kubectl(cp, ['get', 'deployment', 'stacked-operator', '-n', 'stacked-system', '-o', 'json']))
        .stdout,
    ) as {
      spec: { template: { spec: { securityContext: Record<string, unknown>; serviceAccountName: string } } };
    };
    const pod = op.spec.template.spec;
    assert.equal(pod.serviceAccountName, 'stacked-operator');
    assert.equal(pod.securityContext['runAsNonRoot'], true);
    assert.equal(pod.securityContext['runAsUser'], 1000, 'numeric, as the kubelet needs for runAsNonRoot');
    // The RBAC took effect: the operator's identity writes status, never a user's spec.
    const can = async (verb: string, resource: string) =>
      (
        await kubectl(
          cp,
          ['auth', 'can-i', verb, resource, '--as=system:serviceaccount:stacked-system:stacked-operator'],
          { allowFail: true },
        )
      ).stdout.trim();
    assert.equal(await can('patch', 'stackeddeployments.serving.stacked.dev/status'), 'yes');
    assert.equal(await can('update', 'stackeddeployments.serving.stacked.dev'), 'no');
    // No drift: what the API server holds is what the overlay applies (kubectl diff exits 0).
    const diff = await kubectl(cp, ['diff', '--server-side', '-k', join(deploy, 'default')], {
      allowFail: true,
    });
    assert.equal(diff.code, 0, `kubectl diff found changes:\n${diff.stdout}${diff.stderr}`);
  });

  it('runs the operator pods it installed: the test kubelet starts them from the image, and they turn Ready', async () => {
    const runner = imageRunner(cp);
    kubelet = await startKubelet({
      kubeconfigPath: cp.kubeconfigPath,
      nodes: [{ name: 'kustomize-node-1', gpus: 0 }],
      pvcRoot: join(repoRoot, '.no-pvc'),
      hfRoot: join(repoRoot, '.no-hf'),
      namespaces: ['stacked-system'],
      probeTimeScale: 0.1,
      runContainer: runner.run,
    });
    await eventually(
      'the operator pod Ready',
      async () => {
        const r = await kubectl(cp, ['get', 'pods', '-n', 'stacked-system', '-o', 'json']);
        const pods = (
          JSON.parse(r.stdout) as {
            items: { status?: { conditions?: { type: string; status: string }[] } }[];
          }
        ).items;
        // deploy/operator.yaml runs two replicas (a leader and a standby): both are Ready.
        return pods.length === 2 &&
          pods.every((p) => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'))
          ? true
          : undefined;
      },
      90_000,
    );
    assert.equal(runner.running.size, 2, 'an operator process per pod');
    assert.ok(!runner.lines.some((l) => /forbidden|\b403\b/i.test(l)), 'no 403 in its logs');
  });
});
