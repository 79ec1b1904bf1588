// The Helm chart: lints strictly, validates its values, carries the same RBAC rules as deploy/, and
// runs for real: `helm install --wait` brings the operator's pods to Ready under the test kubelet
// (which runs our image's entry points as processes, image-runner.ts), the operator reconciles the
// samples under the chart's identity, `helm upgrade` upgrades the CRDs and rolls the pods, the
// identity is refused what it has no business doing, and `helm uninstall` leaves the CRDs and CRs.
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { dump, load, loadAll } from 'js-yaml';
import { parseConfig } from '../../src/config.ts';
import { writeAdapter } from '../../playground/adapters.ts';
import { sharedControlPlane, type ControlPlane } from '../../playground/controlplane.ts';
import { imageRunner, type ImageRunner } from '../../playground/image-runner.ts';
import { startKubelet, type Kubelet } from '../../playground/kubelet.ts';
import { helm, kubectl } from '../../playground/kubectl.ts';
import { installApi } from '../../playground/operator.ts';
import { eventually, waitForReady } from '../../playground/wait.ts';

const repoRoot = resolve(import.meta.dirname, '..', '..');
const chart = join(repoRoot, 'charts', 'stacked-operator');
const NS = 'helm-test';
/** Where the samples go: the operator watches every namespace. */
const ML = 'helm-ml';
const RELEASE = 'helmtest';
const FULLNAME = `${RELEASE}-stacked-operator`;
const IDENTITY = `system:serviceaccount:${NS}:${FULLNAME}`;
const CRDS = ['stackedmodelgroups.serving.stacked.dev', 'stackeddeployments.serving.stacked.dev'];
/** An image of ours that still said `USER node` (issue 11), for the kubelet's refusal. */
const NAMED_USER_IMAGE = 'ghcr.io/stacked-dev/stacked-operator:0.0.9-named-user';
const HELM_TIMEOUT_MS = 300_000;

interface Container {
  name: string;
  image?: string;
  args?: string[];
}
interface PodSpec {
  containers: Container[];
  securityContext?: Record<string, unknown>;
  [k: string]: unknown;
}
interface Manifest {
  kind: string;
  metadata: { name: string; namespace?: string; annotations?: Record<string, string> };
  rules?: unknown[];
  roleRef?: { kind: string; name: string };
  spec?: { template?: { spec?: PodSpec } };
}
interface Pod {
  metadata: { name: string; deletionTimestamp?: string };
  status?: {
    conditions?: { type: string; status: string }[];
    containerStatuses?: { state?: { waiting?: { reason?: string; message?: string } } }[];
  };
}
interface Crd {
  spec: { versions: { name: string; schema: { openAPIV3Schema: Schema } }[] };
}
interface Schema {
  properties?: Record<string, Schema>;
}

// loadAll yields null for the empty documents between helm's `---` separators.
const byKind = (docs: (Manifest | null)[], kind: string): Manifest[] =>
  docs.filter((d): d is Manifest => d !== null && d.kind === kind);

/** The operator pod's args as rendered with these --set flags. */
async function renderedArgs(cp: ControlPlane, ...set: string[]): Promise<string[]> {
  const r = await helm(cp, ['template', RELEASE, chart, '-n', NS, ...set.flatMap((s) => ['--set', s])]);
  const docs = loadAll(r.stdout) as Manifest[];
  return byKind(docs, 'Deployment')[0]?.spec?.template?.spec?.containers[0]?.args ?? [];
}

/** The schema of spec.oci in the StackedDeployment CRD (served or in a file). */
function ociSchema(crd: Crd): Schema | undefined {
  return crd.spec.versions[0]?.schema.openAPIV3Schema.properties?.['spec']?.properties?.['oci'];
}

describe('Helm chart', function () {
  this.timeout(120_000);
  let cp: ControlPlane;
  let kubelet: Kubelet | undefined;
  let runner: ImageRunner;
  let root: string;

  const operatorPods = async (): Promise<Pod[]> => {
    const r = await kubectl(cp, [
      'get',
      'pods',
      '-n',
      NS,
      '-l',
      `app.kubernetes.io/instance=${RELEASE}`,
      '-o',
      'json',
    ]);
    return (JSON.parse(r.stdout) as { items: Pod[] }).items;
  };
  const ready = (p: Pod) => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
  const operatorLines = () =>
    runner.started.filter((p) => p.podKey.startsWith(`${NS}/${FULLNAME}-`)).flatMap((p) => p.lines);
  const canI = async (verb: string, resource: string, ns: string, as = IDENTITY): Promise<boolean> => {
    const r = await kubectl(cp, ['auth', 'can-i', verb, resource, '-n', ns, `--as=${as}`], {
      allowFail: true,
    });
    return r.stdout.trim() === 'yes';
  };

  before(async function () {
    this.timeout(3_600_000);
    cp = await sharedControlPlane();
    // Other test files install the CRDs with kubectl apply; on a fresh control plane this does too.
    await installApi(cp);
    for (const ns of [NS, ML]) await kubectl(cp, ['create', 'namespace', ns]);
    root = mkdtempSync(join(tmpdir(), 'chart-test-'));
    // The samples' adapters, in the Hugging Face cache the simulators read.
    for (const k of ['sql-lora-1', 'sql-lora-2']) {
      writeAdapter(join(root, 'hf', 'example-org', k), 16, 'meta-llama/Llama-3.1-8B-Instruct');
    }
    runner = imageRunner(cp, {
      imageUsers: { [NAMED_USER_IMAGE]: 'node' },
      log: (line) => {
        if (process.env.OPERATOR_LOGS) process.stderr.write(`[pod] ${line}\n`);
      },
    });
    kubelet = await startKubelet({
      kubeconfigPath: cp.kubeconfigPath,
      nodes: Array.from({ length: 4 }, (_, i) => ({ name: `helm-gpu-${i + 1}`, gpus: 1 })),
      pvcRoot: join(root, 'pvc'),
      hfRoot: join(root, 'hf'),
      namespaces: [NS, ML],
      probeTimeScale: 0.1,
      runContainer: runner.run,
    });
  });

  after(async () => {
    await helm(cp, ['uninstall', RELEASE, '-n', NS, '--ignore-not-found', '--wait'], { allowFail: true });
    await kubectl(cp, ['delete', 'namespace', ML, NS, '--wait=false'], { allowFail: true });
    await kubelet?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  it('passes helm lint --strict', async () => {
    const r = await helm(cp, ['lint', '--strict', chart]);
    assert.match(r.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
  });

  it('refuses mistyped values through values.schema.json, at every level', async () => {
    for (const [set, bad] of [
      ['replicaCont=3', 'replicaCont'],
      ['imagee.tag=x', 'imagee'],
      ['agent.image.tagg=x', 'tagg'],
      ['podSecurityContext.runAsUsr=1000', 'runAsUsr'],
      ['resources.limit.cpu=1', 'limit'],
    ] as const) {
      const r = await helm(cp, ['template', RELEASE, chart, '--set', set], { allowFail: true });
      assert.notEqual(r.code, 0, set);
      assert.match(r.stderr, new RegExp(`additional properties? .*${bad}`, 'i'), set);
    }
    const digest = await helm(cp, ['template', RELEASE, chart, '--set', 'image.digest=sha256:abc'], {
      allowFail: true,
    });
    assert.notEqual(digest.code, 0, 'a digest that is not sha256:<64 hex>');
    const noLease = await helm(
      cp,
      ['template', RELEASE, chart, '--set', 'replicaCount=2', '--set', 'leaderElection.enabled=false'],
      { allowFail: true },
    );
    assert.match(noLease.stderr, /replicaCount > 1 needs leaderElection.enabled/);
  });

  it('passes the agent and router images to the operator, a digest winning over the tag', async () => {
    const sha = (c: string) => `sha256:${c.repeat(64)}`;
    const defaults = await renderedArgs(cp);
    assert.ok(defaults.includes('--agent-image=ghcr.io/stacked-dev/stacked-operator:0.1.0'));
    assert.ok(defaults.includes('--router-image=ghcr.io/stacked-dev/stacked-operator:0.1.0'));
    const pinned = await renderedArgs(
      cp,
      `image.digest=${sha('a')}`,
      'agent.image.repository=mirror.example/agent',
      'agent.image.tag=v2',
      `router.image.digest=${sha('b')}`,
    );
    assert.ok(pinned.includes('--agent-image=mirror.example/agent:v2'));
    assert.ok(pinned.includes(`--router-image=ghcr.io/stacked-dev/stacked-operator@${sha('b')}`));
    const r = await helm(cp, ['template', RELEASE, chart, '--set', `image.digest=${sha('a')}`]);
    const pod = byKind(loadAll(r.stdout) as Manifest[], 'Deployment')[0]?.spec?.template?.spec;
    assert.equal(pod?.containers[0]?.image, `ghcr.io/stacked-dev/stacked-operator@${sha('a')}`);
  });

  it('renders principalAuth.allow into the flag the operator parses, and refuses an entry without compartments', async () => {
    const args = await renderedArgs(
      cp,
      'principalAuth.allow[0].namespace=ml',
      'principalAuth.allow[0].compartments[0]=ocid1.compartment.oc1..a',
      'principalAuth.allow[0].compartments[1]=ocid1.compartment.oc1..b',
      'principalAuth.allow[1].namespace=lab',
      'principalAuth.allow[1].compartments[0]=*',
    );
    const flag = args.find((a) => a.startsWith('--principal-auth-allow='));
    assert.equal(flag, '--principal-auth-allow=ml=ocid1.compartment.oc1..a|ocid1.compartment.oc1..b,lab=*');
    const config = parseConfig([flag], {});
    assert.deepEqual(
      [...config.principalAuthAllow.entries()].map(([ns, c]) => [ns, c === '*' ? '*' : [...c]]),
      [
        ['ml', ['ocid1.compartment.oc1..a', 'ocid1.compartment.oc1..b']],
        ['lab', '*'],
      ],
    );
    assert.equal(
      (await renderedArgs(cp)).some((a) => a.startsWith('--principal-auth-allow')),
      false,
    );
    const bad = await helm(cp, ['template', RELEASE, chart, '--set', 'principalAuth.allow[0].namespace=ml'], {
      allowFail: true,
    });
    assert.notEqual(bad.code, 0);
  });

  it('renders the pod values: pull secrets, priority class, extra env, scheduling', async () => {
    const r = await helm(cp, [
      'template',
      RELEASE,
      chart,
      '--set',
      'imagePullSecrets[0].name=regcred',
      '--set',
      'priorityClassName=system-cluster-critical',
      '--set',
      'extraEnv[0].name=NODE_OPTIONS',
      '--set',
      'extraEnv[0].value=--max-old-space-size=400',
      '--set',
      'nodeSelector.pool=system',
      '--set',
      'tolerations[0].key=dedicated',
      '--set',
      'tolerations[0].operator=Exists',
    ]);
    const pod = byKind(loadAll(r.stdout) as Manifest[], 'Deployment')[0]?.spec?.template?.spec;
    assert.ok(pod);
    assert.deepEqual(pod['imagePullSecrets'], [{ name: 'regcred' }]);
    assert.equal(pod['priorityClassName'], 'system-cluster-critical');
    assert.deepEqual(pod['nodeSelector'], { pool: 'system' });
    assert.deepEqual(pod['tolerations'], [{ key: 'dedicated', operator: 'Exists' }]);
    const env = (pod.containers[0] as { env?: { name: string; value?: string }[] } | undefined)?.env;
    assert.deepEqual(env?.at(-1), { name: 'NODE_OPTIONS', value: '--max-old-space-size=400' });
  });

  it('ships the CRDs as templates (crds.install), kept on uninstall (crds.keep)', async () => {
    const render = async (...set: string[]) =>
      byKind(
        loadAll(
          (await helm(cp, ['template', RELEASE, chart, ...set.flatMap((s) => ['--set', s])])).stdout,
        ) as Manifest[],
        'CustomResourceDefinition',
      );
    const crds = await render();
    assert.deepEqual(crds.map((c) => c.metadata.name).sort(), [...CRDS].sort());
    for (const c of crds) {
      const annotations = c.metadata.annotations ?? {};
      assert.equal(annotations['helm.sh/resource-policy'], 'keep');
      assert.equal(annotations['argocd.argoproj.io/sync-wave'], '-1');
    }
    assert.equal(
      (await render('crds.keep=false'))[0]?.metadata.annotations?.['helm.sh/resource-policy'],
      undefined,
    );
    assert.deepEqual(await render('crds.install=false'), []);
  });

  it('grants exactly the rules of deploy/rbac.yaml', async () => {
    const rendered = loadAll((await helm(cp, ['template', RELEASE, chart, '-n', NS])).stdout) as Manifest[];
    const deployed = loadAll(readFileSync(join(repoRoot, 'deploy', 'rbac.yaml'), 'utf8')) as Manifest[];
    for (const kind of ['ClusterRole', 'Role']) {
      assert.deepEqual(
        byKind(rendered, kind)[0]?.rules,
        byKind(deployed, kind)[0]?.rules,
        `${kind} rules differ`,
      );
    }
    const args = byKind(rendered, 'Deployment')[0]?.spec?.template?.spec?.containers[0]?.args ?? [];
    assert.ok(args.includes('--leader-elect'));
    assert.ok(args.includes(`--leader-election-namespace=${NS}`));
    assert.ok(byKind(rendered, 'PodDisruptionBudget').length === 1, 'two replicas get a PDB');
  });

  it('grants list/watch on Secrets in watchNamespace only, when one is set', async () => {
    const rendered = loadAll(
      (await helm(cp, ['template', RELEASE, chart, '-n', NS, '--set', 'watchNamespace=ml'])).stdout,
    ) as Manifest[];
    const watchesSecrets = (m: Manifest | undefined) =>
      ((m?.rules ?? []) as { resources: string[]; verbs: string[] }[]).some(
        (r) => r.resources.includes('secrets') && r.verbs.includes('list') && r.verbs.includes('watch'),
      );
    assert.equal(watchesSecrets(byKind(rendered, 'ClusterRole')[0]), false, 'not cluster-wide');
    const roles = byKind(rendered, 'Role').filter(watchesSecrets);
    assert.deepEqual(
      roles.map((r) => r.metadata.namespace),
      ['ml'],
    );
    const bindings = byKind(rendered, 'RoleBinding').filter(
      (b) => b.metadata.name === roles[0]?.metadata.name,
    );
    assert.deepEqual(
      bindings.map((b) => b.metadata.namespace),
      ['ml'],
    );
    // The ClusterRole itself is bound in that namespace only.
    assert.deepEqual(byKind(rendered, 'ClusterRoleBinding'), []);
    const bound = byKind(rendered, 'RoleBinding').filter((b) => b.roleRef?.kind === 'ClusterRole');
    assert.deepEqual(
      bound.map((b) => b.metadata.namespace),
      ['ml'],
    );
  });

  it('installs an older chart whose CRD lacks a field (--wait: the operator pods run and turn Ready)', async function () {
    this.timeout(HELM_TIMEOUT_MS);
    // The CRDs exist already (kubectl apply, as deploy/ or the chart's former crds/ folder left
    // them): let Helm adopt them, as the chart's README says.
    for (const crd of CRDS) {
      await kubectl(cp, ['label', 'crd', crd, 'app.kubernetes.io/managed-by=Helm', '--overwrite']);
      await kubectl(cp, [
        'annotate',
        'crd',
        crd,
        `meta.helm.sh/release-name=${RELEASE}`,
        `meta.helm.sh/release-namespace=${NS}`,
        '--overwrite',
      ]);
    }
    // The older chart: this one with spec.oci.displayName missing from the StackedDeployment CRD.
    const older = join(root, 'older-chart');
    cpSync(chart, older, { recursive: true });
    const chartYaml = join(older, 'Chart.yaml');
    writeFileSync(chartYaml, readFileSync(chartYaml, 'utf8').replace(/^version: .*$/m, 'version: 0.0.9'));
    const crdFile = join(older, 'files', 'crds', 'serving.stacked.dev_stackeddeployments.yaml');
    const crd = load(readFileSync(crdFile, 'utf8')) as Crd;
    assert.ok(ociSchema(crd)?.properties?.['displayName'], 'the current CRD has spec.oci.displayName');
    delete ociSchema(crd)?.properties?.['displayName'];
    writeFileSync(crdFile, dump(crd));

    await helm(cp, ['install', RELEASE, older, '-n', NS, '--wait', '--timeout=4m'], {
      timeoutMs: HELM_TIMEOUT_MS,
    });
    const pods = await operatorPods();
    assert.equal(pods.length, 2);
    assert.ok(pods.every(ready), 'both operator pods Ready');
    // Really running: one operator process per pod, from the image's entry point.
    const running = [...runner.running.values()].filter((p) => p.entry === 'operator');
    assert.deepEqual(running.map((p) => p.podKey).sort(), pods.map((p) => `${NS}/${p.metadata.name}`).sort());
    const served = JSON.parse((await kubectl(cp, ['get', 'crd', CRDS[1] ?? '', '-o', 'json'])).stdout) as Crd;
    assert.equal(ociSchema(served)?.properties?.['displayName'], undefined, 'the older CRD is served');
  });

  it('helm upgrade to this chart upgrades the CRD: the new field is served', async function () {
    this.timeout(HELM_TIMEOUT_MS);
    await helm(cp, ['upgrade', RELEASE, chart, '-n', NS, '--reuse-values', '--wait', '--timeout=4m'], {
      timeoutMs: HELM_TIMEOUT_MS,
    });
    const served = JSON.parse((await kubectl(cp, ['get', 'crd', CRDS[1] ?? '', '-o', 'json'])).stdout) as Crd;
    assert.ok(ociSchema(served)?.properties?.['displayName'], 'spec.oci.displayName is served');
  });

  it('refuses, as the kubelet does, a pod with runAsNonRoot and a non-numeric image user', async () => {
    // The chart's pod as it was in issue 11: no runAsUser, on an image whose USER was `node`.
    const r = await helm(cp, [
      'template',
      RELEASE,
      chart,
      '-n',
      NS,
      '--set',
      'podSecurityContext.runAsUser=null',
      '--set',
      'image.tag=0.0.9-named-user',
      '--show-only',
      'templates/deployment.yaml',
    ]);
    const spec = (load(r.stdout) as Manifest).spec?.template?.spec;
    assert.ok(spec);
    const pod = (name: string, podSpec: PodSpec) => ({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace: NS },
      spec: podSpec,
    });
    await kubectl(cp, ['apply', '-f', '-'], { input: JSON.stringify(pod('named-user', spec)) });
    await kubectl(cp, ['apply', '-f', '-'], {
      input: JSON.stringify(
        pod('root-user', { ...spec, securityContext: { ...spec.securityContext, runAsUser: 0 } }),
      ),
    });
    const waiting = (name: string) =>
      eventually(`${name} waiting in CreateContainerConfigError`, async () => {
        const p = JSON.parse(
          (await kubectl(cp, ['get', 'pod', '-n', NS, name, '-o', 'json'])).stdout,
        ) as Pod & { metadata: { uid: string } };
        const w = p.status?.containerStatuses?.[0]?.state?.waiting;
        return w?.reason === 'CreateContainerConfigError'
          ? { message: w.message, uid: p.metadata.uid }
          : undefined;
      });
    const named = await waiting('named-user');
    assert.equal(
      named.message,
      'container has runAsNonRoot and image has non-numeric user (node), cannot verify user is non-root ' +
        `(pod: "named-user_${NS}(${named.uid})", container: operator)`,
    );
    const rooted = await waiting('root-user');
    assert.equal(
      rooted.message,
      `container's runAsUser breaks non-root policy (pod: "root-user_${NS}(${rooted.uid})", container: operator)`,
    );
    assert.ok(![...runner.running.keys()].some((k) => k.endsWith('-user')), 'no process was started');
    await kubectl(cp, ['delete', 'pod', '-n', NS, 'named-user', 'root-user', '--wait=false']);
  });

  it('reconciles the samples as the chart identity, with no 403', async function () {
    this.timeout(240_000);
    const since = Date.now();
    for (const file of ['modelgroup.yaml', 'deployment-vllm.yaml']) {
      await kubectl(cp, ['apply', '-n', ML, '-f', join(repoRoot, 'deploy', 'samples', file)]);
    }
    await waitForReady(cp, ML, 'smg', 'sql-assistants', 'True', undefined, 60_000);
    await waitForReady(cp, ML, 'sdep', 'sql-prod', 'True', undefined, 180_000);
    // The vLLM pods ran as simulators and the router as a process of our image.
    assert.ok(
      [...runner.running.values()].some((p) => p.entry === 'router' && p.podKey.startsWith(`${ML}/`)),
      'the router runs',
    );
    // Everything was written by the chart's ServiceAccount, from inside its pods.
    const writes = await cp.writesBy(IDENTITY, since);
    assert.ok(
      writes.some((w) => w.objectRef?.resource === 'deployments' && w.objectRef.namespace === ML),
      'the chart identity applied the vLLM Deployment',
    );
    const denied = writes.filter((w) => w.responseStatus?.code === 403);
    assert.deepEqual(denied, [], 'the chart must grant everything the operator uses');
    const forbidden = operatorLines().filter((l) => /forbidden|\b403\b/i.test(l));
    assert.deepEqual(forbidden, [], 'no 403 in the operator logs');
  });

  it('helm upgrade with changed values rolls the pods', async function () {
    this.timeout(HELM_TIMEOUT_MS);
    const before = (await operatorPods()).map((p) => p.metadata.name);
    await helm(
      cp,
      [
        'upgrade',
        RELEASE,
        chart,
        '-n',
        NS,
        '--reuse-values',
        '--set',
        'logLevel=debug',
        '--wait',
        '--timeout=4m',
      ],
      { timeoutMs: HELM_TIMEOUT_MS },
    );
    const after = await eventually(
      'the old pods gone',
      async () => {
        const pods = await operatorPods();
        return pods.some((p) => before.includes(p.metadata.name)) ? undefined : pods;
      },
      120_000,
    );
    assert.equal(after.length, 2);
    assert.ok(after.every(ready), 'the new pods are Ready');
    const running = [...runner.running.values()].filter((p) => p.entry === 'operator');
    assert.deepEqual(
      running.map((p) => p.podKey).sort(),
      after.map((p) => `${NS}/${p.metadata.name}`).sort(),
    );
    // The new value reached the processes: debug lines appear.
    await eventually('a debug line from a new pod', () =>
      Promise.resolve(
        running.some((p) => p.lines.some((l) => l.includes('"level":"debug"'))) ? true : undefined,
      ),
    );
    // And the samples stay Ready under the new leader.
    await waitForReady(cp, ML, 'sdep', 'sql-prod', 'True');
  });

  it('cannot do what it has no business doing', async () => {
    // Secrets: get (an oci deployment's api-key Secret) and list/watch (metadata only), nothing more.
    assert.equal(await canI('get', 'secrets', ML), true);
    for (const verb of ['create', 'update', 'patch', 'delete']) {
      assert.equal(await canI(verb, 'secrets', ML), false, `${verb} secrets`);
    }
    // Never the users' specs, never pods directly, never more RBAC than it holds.
    assert.equal(await canI('update', 'stackeddeployments.serving.stacked.dev', ML), false);
    assert.equal(await canI('create', 'pods', ML), false);
    assert.equal(await canI('escalate', 'roles.rbac.authorization.k8s.io', ML), false);
    assert.equal(await canI('bind', 'clusterroles.rbac.authorization.k8s.io', ML), false);
    assert.equal(await canI('create', 'clusterroles.rbac.authorization.k8s.io', ''), false);

    // With watchNamespace set, the same rules hold in that namespace and nowhere else: a second
    // identity from the chart's RBAC (release `scoped`, watching ML), tried for real.
    const scopedNs = 'helm-scoped';
    const scoped = `system:serviceaccount:${scopedNs}:scoped-stacked-operator`;
    await kubectl(cp, ['create', 'namespace', scopedNs]);
    const rbac = await helm(cp, [
      'template',
      'scoped',
      chart,
      '-n',
      scopedNs,
      '--set',
      `watchNamespace=${ML}`,
      '--show-only',
      'templates/serviceaccount.yaml',
      '--show-only',
      'templates/rbac.yaml',
    ]);
    await kubectl(cp, ['apply', '-f', '-'], { input: rbac.stdout });
    try {
      await kubectl(cp, ['create', 'secret', 'generic', 'not-yours', '-n', 'default', '--from-literal=k=v']);
      assert.equal(await canI('create', 'deployments.apps', ML, scoped), true);
      assert.equal(await canI('create', 'deployments.apps', 'default', scoped), false);
      assert.equal(await canI('patch', 'deployments.apps', 'kube-system', scoped), false);
      assert.equal(await canI('get', 'secrets', 'default', scoped), false);
      // A real request with the identity's token.
      const kubeconfig = await cp.mintServiceAccountKubeconfig(scopedNs, 'scoped-stacked-operator', 600);
      const get = await kubectl(cp, ['get', 'secret', 'not-yours', '-n', 'default'], {
        kubeconfig,
        allowFail: true,
      });
      assert.notEqual(get.code, 0);
      assert.match(get.stderr, /forbidden/);
      const create = await kubectl(
        cp,
        ['create', 'deployment', 'intruder', '-n', 'default', '--image=busybox', '--dry-run=server'],
        { kubeconfig, allowFail: true },
      );
      assert.match(create.stderr, /forbidden/);
    } finally {
      await kubectl(cp, ['delete', '-f', '-', '--ignore-not-found'], {
        input: rbac.stdout,
        allowFail: true,
      });
      await kubectl(cp, ['delete', 'secret', 'not-yours', '-n', 'default', '--ignore-not-found']);
      await kubectl(cp, ['delete', 'namespace', scopedNs, '--wait=false']);
    }
  });

  it('helm uninstall removes the operator and leaves the CRDs and every CR (crds.keep)', async function () {
    this.timeout(HELM_TIMEOUT_MS);
    await helm(cp, ['uninstall', RELEASE, '-n', NS, '--wait', '--timeout=4m'], {
      timeoutMs: HELM_TIMEOUT_MS,
    });
    await eventually('the operator pods gone', async () =>
      (await operatorPods()).length === 0 && ![...runner.running.values()].some((p) => p.entry === 'operator')
        ? true
        : undefined,
    );
    const gone = await kubectl(cp, ['get', 'clusterrole', FULLNAME], { allowFail: true });
    assert.match(gone.stderr, /NotFound/);
    for (const crd of CRDS) await kubectl(cp, ['get', 'crd', crd]);
    await kubectl(cp, ['get', '-n', ML, 'smg/sql-assistants', 'sdep/sql-prod']);
    // What the operator made stays too, owned by the CRs: nothing deletes them without it.
    const children = await kubectl(cp, ['get', '-n', ML, 'deployments', '-o', 'name']);
    assert.notEqual(children.stdout.trim(), '', 'the vLLM and router Deployments stay');
  });
});
