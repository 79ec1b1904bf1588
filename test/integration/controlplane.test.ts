// Smoke test of the test harness itself: if this fails, every other integration test is suspect.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { sharedControlPlane, type AuditEvent, type ControlPlane } from '../../playground/controlplane.ts';
import { kubectl } from '../../playground/kubectl.ts';

describe('real control plane (test harness)', function () {
  const ns = `cp-smoke-${Date.now().toString(36)}`;
  let cp: ControlPlane | undefined;

  before(async function () {
    // A cold build of the binaries takes tens of minutes; a warm start takes seconds.
    this.timeout(60 * 60_000);
    cp = await sharedControlPlane();
    await kubectl(cp, ['create', 'namespace', ns]);
  });

  after(async function () {
    if (cp) await kubectl(cp, ['delete', 'namespace', ns, '--wait=false'], { allowFail: true });
  });

  it('serves Kubernetes v1.37.2', async function () {
    const { stdout } = await kubectl(cp!, ['version', '-o', 'json']);
    const version = JSON.parse(stdout);
    assert.equal(version.serverVersion.gitVersion, 'v1.37.2');
    assert.equal(version.clientVersion.gitVersion, 'v1.37.2');
  });

  it('runs the deployment and garbage-collector controllers', async function () {
    this.timeout(120_000);
    await kubectl(cp!, ['apply', '-n', ns, '-f', '-'], { input: JSON.stringify(deployment('smoke')) });
    const rs = await eventually('a ReplicaSet for the Deployment', 30_000, async () => {
      const { stdout } = await kubectl(cp!, ['get', 'rs', '-n', ns, '-l', 'app=smoke', '-o', 'json']);
      return (JSON.parse(stdout) as { items: Owned[] }).items[0];
    });
    assert.equal(rs.metadata.ownerReferences?.[0]?.kind, 'Deployment');

    await kubectl(cp!, ['delete', 'deployment', 'smoke', '-n', ns]);
    await eventually('the ReplicaSet to be garbage-collected', 60_000, async () => {
      const res = await kubectl(cp!, ['get', 'rs', rs.metadata.name, '-n', ns], { allowFail: true });
      return res.code !== 0 && res.stderr.includes('NotFound');
    });

    // The controllers write under their own name, so tests can count their own (admin) writes apart.
    const kcmWrites = await cp!.writesBy('system:kube-controller-manager');
    assert.ok(kcmWrites.some((e) => e.verb === 'create' && e.objectRef?.name === rs.metadata.name));
  });

  it('mints ServiceAccount tokens that authenticate but get only what RBAC grants', async function () {
    await kubectl(cp!, ['create', 'serviceaccount', 'smoke-sa', '-n', ns]);
    const kubeconfig = await cp!.mintServiceAccountKubeconfig(ns, 'smoke-sa', 600);
    const username = `system:serviceaccount:${ns}:smoke-sa`;

    const whoami = JSON.parse((await kubectl(cp!, ['auth', 'whoami', '-o', 'json'], { kubeconfig })).stdout);
    assert.equal(whoami.status.userInfo.username, username);

    const denied = await kubectl(cp!, ['create', 'configmap', 'nope', '-n', ns], {
      kubeconfig,
      allowFail: true,
    });
    assert.notEqual(denied.code, 0);
    assert.match(denied.stderr, /forbidden/i);
    const attempts = await cp!.writesBy(username);
    assert.deepEqual(
      attempts.map((e) => [e.verb, e.objectRef?.resource, e.responseStatus?.code]),
      [['create', 'configmaps', 403]],
    );
  });

  it('records the admin writes in the audit log', async function () {
    const since = Date.now();
    await kubectl(cp!, ['create', 'configmap', 'audit-probe', '-n', ns, '--from-literal=k=v']);
    const writes = await cp!.writesBy('admin', since);
    const probe = writes.filter((e) => e.objectRef?.name === 'audit-probe');
    assert.deepEqual(
      probe.map((e) => [e.verb, e.objectRef?.resource, e.objectRef?.namespace, e.responseStatus?.code]),
      [['create', 'configmaps', ns, 201]],
    );

    // The policy records writes only (plus the harness's own barrier read), so the log stays small.
    const logged = (await readFile(cp!.auditLogPath, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as AuditEvent);
    const reads = logged.filter(
      (e) => !['create', 'update', 'patch', 'delete', 'deletecollection'].includes(e.verb),
    );
    assert.ok(reads.length > 0);
    assert.ok(reads.every((e) => e.verb === 'get' && e.objectRef?.name === 'audit-barrier'));
  });
});

interface Owned {
  metadata: { name: string; ownerReferences?: { kind: string }[] };
}

function deployment(name: string): object {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, labels: { app: name } },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: { containers: [{ name: 'main', image: 'registry.invalid/smoke:1' }] },
      },
    },
  };
}

/** Polls until `probe` returns something truthy; nothing schedules Pods here, so only the API moves. */
async function eventually<T>(
  what: string,
  timeoutMs: number,
  probe: () => Promise<T>,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await sleep(250);
  }
}
