// The Helm chart: lints strictly, validates its values, carries the same RBAC rules as deploy/, and
// installs onto a real API server with an identity the operator can actually run under.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadAll } from 'js-yaml';
import { sharedControlPlane, type ControlPlane } from '../support/controlplane.ts';
import { helm, kubectl } from '../support/kubectl.ts';
import { sampleGroup } from '../support/objects.ts';
import { installApi, startOperator, type OperatorProcess } from '../support/operator.ts';
import { waitForReady } from '../support/wait.ts';

const repoRoot = resolve(import.meta.dirname, '..', '..');
const chart = join(repoRoot, 'charts', 'stacked-operator');
const NS = 'helm-test';
const RELEASE = 'helmtest';

interface Manifest {
  kind: string;
  metadata: { name: string; namespace?: string };
  rules?: unknown[];
  spec?: { template?: { spec?: { containers?: { args?: string[] }[] } } };
}

const byKind = (docs: Manifest[], kind: string) => docs.filter((d) => d.kind === kind);

describe('Helm chart', function () {
  this.timeout(120_000);
  let cp: ControlPlane;
  let operator: OperatorProcess | undefined;

  before(async function () {
    this.timeout(3_600_000);
    cp = await sharedControlPlane();
    await installApi(cp);
  });

  after(() => operator?.stop());

  it('passes helm lint --strict', async () => {
    const r = await helm(cp, ['lint', '--strict', chart]);
    assert.match(r.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
  });

  it('refuses a mistyped value through values.schema.json', async () => {
    const r = await helm(cp, ['template', RELEASE, chart, '--set', 'replicaCont=3'], { allowFail: true });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /additional properties? .*replicaCont/i);
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
    const args = byKind(rendered, 'Deployment')[0]?.spec?.template?.spec?.containers?.[0]?.args ?? [];
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
  });

  it('installs, and the operator runs under the identity it creates', async () => {
    await helm(cp, ['install', RELEASE, chart, '-n', NS, '--create-namespace', '--wait=false']);
    const sa = `${RELEASE}-stacked-operator`;
    await kubectl(cp, ['get', 'serviceaccount', '-n', NS, sa]);
    operator = await startOperator(cp, {
      identity: 'helm-test',
      namespace: NS,
      serviceAccount: { namespace: NS, name: sa },
      extraArgs: [`--leader-election-id=${sa}`],
    });
    await kubectl(cp, ['apply', '-n', NS, '-f', '-'], { input: JSON.stringify(sampleGroup('via-helm')) });
    await waitForReady(cp, NS, 'smg', 'via-helm', 'True');
    const denied = operator.lines.filter((l) => JSON.stringify(l).includes('forbidden'));
    assert.deepEqual(denied, [], 'the chart must grant everything the operator uses');
  });
});
