import assert from 'node:assert/strict';
import { join } from 'node:path';
import { ROUTER_COMMAND, ROUTER_CONTAINER, ROUTER_PORT, routerArgs } from '../../../../src/api/router/v1.ts';
import type { StackedDeployment } from '../../../../src/api/v1alpha1/deployment.ts';
import { withDefaults } from '../../../../src/api/v1alpha1/validate.ts';
import {
  ROUTER_APP,
  buildRole,
  buildRoleBinding,
  buildRouterDeployment,
  buildRouterService,
  buildServiceAccount,
  routerEndpoint,
  routerLabels,
  routerName,
  routerObjects,
  routerRules,
  routerSettings,
} from '../../../../src/backends/router/desired.ts';
import { buildService, serviceEndpoint } from '../../../../src/backends/vllm/desired.ts';
import { DEPLOYMENT_LABEL, selectorLabels } from '../../../../src/backends/vllm/names.ts';
import { isSubset } from '../../../../src/runtime/apply.ts';
import { goldenFiles } from '../../../support/golden.ts';
import { sampleDeployment } from '../../../support/objects.ts';

const golden = goldenFiles(join(import.meta.dirname, 'testdata'));
const IMAGE = 'ghcr.io/stacked-dev/stacked-operator:0.1.0';

function withIdentity(d: StackedDeployment): StackedDeployment {
  d.metadata.namespace = 'ml';
  d.metadata.uid = '5f0c7b7e-0000-4000-8000-000000000001';
  d.apiVersion = 'serving.stacked.dev/v1alpha1';
  d.kind = 'StackedDeployment';
  return d;
}

function vllm(mutate: (d: StackedDeployment) => void = () => undefined): StackedDeployment {
  return withIdentity(
    withDefaults('StackedDeployment', sampleDeployment('deployment-vllm.yaml', 'sql-prod', mutate)),
  );
}

function oci(mutate: (d: StackedDeployment) => void = () => undefined): StackedDeployment {
  return withIdentity(
    withDefaults('StackedDeployment', sampleDeployment('deployment-oci.yaml', 'sql-oci', mutate)),
  );
}

/** Sets spec.oci.router whether or not the API's type has it yet. */
function ociRouter(
  d: StackedDeployment,
  router: NonNullable<StackedDeployment['spec']['oci']>['router'],
): void {
  d.spec.oci!.router = router;
}

describe('router: desired state (pure)', () => {
  it('builds the ServiceAccount, Role, RoleBinding, Deployment and Service of the golden files', () => {
    const d = vllm();
    golden('serviceaccount.golden.yaml', buildServiceAccount(d));
    golden('role.golden.yaml', buildRole(d));
    golden('rolebinding.golden.yaml', buildRoleBinding(d));
    golden('deployment.golden.yaml', buildRouterDeployment(d, { image: IMAGE }));
    golden('service.golden.yaml', buildRouterService(d));
  });

  it('names every object <name>-router, owned by the StackedDeployment as its controller', () => {
    for (const o of routerObjects(vllm(), { image: IMAGE })) {
      assert.equal(o.metadata?.name, 'sql-prod-router', o.kind);
      assert.equal(o.metadata.namespace, 'ml', o.kind);
      assert.deepEqual(
        o.metadata.ownerReferences?.map((r) => [r.kind, r.name, r.uid, r.controller]),
        [['StackedDeployment', 'sql-prod', '5f0c7b7e-0000-4000-8000-000000000001', true]],
        o.kind,
      );
    }
    assert.equal(routerName('x'.repeat(70)).length <= 63, true, 'a DNS label even for a long name');
  });

  it('runs the contract of src/api/router/v1.ts under the ServiceAccount it builds', () => {
    const dep = buildRouterDeployment(vllm(), { image: IMAGE });
    const pod = dep.spec?.template.spec;
    const c = pod?.containers[0];
    assert.equal(pod?.serviceAccountName, 'sql-prod-router');
    assert.equal(pod.automountServiceAccountToken, true);
    assert.equal(c?.name, ROUTER_CONTAINER);
    assert.equal(c.image, IMAGE);
    assert.deepEqual(c.command, [...ROUTER_COMMAND]);
    assert.deepEqual(
      c.args,
      routerArgs({ namespace: 'ml', deployment: 'sql-prod', port: ROUTER_PORT, affinityMargin: 4 }),
    );
    assert.deepEqual(c.ports, [{ name: 'http', containerPort: ROUTER_PORT, protocol: 'TCP' }]);
    assert.equal(c.readinessProbe?.httpGet?.path, '/readyz');
    assert.equal(c.livenessProbe?.httpGet?.path, '/healthz');
    assert.deepEqual(pod.securityContext, {
      runAsNonRoot: true,
      runAsUser: 1000,
      runAsGroup: 1000,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    assert.deepEqual(c.securityContext, {
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
    });
  });

  it('keeps its pods out of the vLLM selectors (Service, Deployment, adapter-sync index)', () => {
    const labels = routerLabels('sql-prod');
    assert.equal(labels['app.kubernetes.io/name'], ROUTER_APP);
    assert.equal(labels[DEPLOYMENT_LABEL], undefined, 'the vLLM pod index reads this label');
    const vllmSelector = buildService(vllm()).spec?.selector ?? {};
    assert.equal(isSubset(vllmSelector, labels), false, 'the vLLM Service must not select a router pod');
    assert.equal(isSubset(selectorLabels('sql-prod'), labels), false);
    assert.deepEqual(buildRouterService(vllm()).spec?.selector, labels);
  });

  it('follows spec.vllm.router: on by default, its replicas', () => {
    assert.deepEqual(routerSettings(vllm()), { enabled: true, replicas: 1, affinityMargin: 4 });
    const d = vllm((x) => (x.spec.vllm!.router = { enabled: true, replicas: 3, affinityMargin: 0 }));
    assert.deepEqual(routerSettings(d), { enabled: true, replicas: 3, affinityMargin: 0 });
    const deployment = buildRouterDeployment(d, { image: IMAGE });
    assert.equal(deployment.spec?.replicas, 3);
    assert.ok(deployment.spec.template.spec!.containers[0]!.args!.includes('--affinity-margin=0'));
    assert.equal(
      routerSettings(vllm((x) => (x.spec.vllm!.router = { enabled: false, replicas: 1, affinityMargin: 4 })))
        .enabled,
      false,
    );
  });

  it('follows spec.oci.router: off by default', () => {
    assert.equal(routerSettings(oci()).enabled, false);
    const d = oci((x) => {
      ociRouter(x, { enabled: true, replicas: 2, affinityMargin: 4 });
    });
    assert.deepEqual(routerSettings(d), { enabled: true, replicas: 2, affinityMargin: 4 });
  });

  it('names the router Service as the endpoint', () => {
    assert.equal(routerEndpoint(vllm()), `http://sql-prod-router.ml.svc:${ROUTER_PORT}`);
    assert.notEqual(routerEndpoint(vllm()), serviceEndpoint(vllm()));
  });

  it('grants read access to our kinds and pods, and nothing else for vllm', () => {
    assert.deepEqual(routerRules(vllm()), [
      {
        apiGroups: ['serving.stacked.dev'],
        resources: ['stackeddeployments', 'stackedmodelgroups'],
        verbs: ['get', 'list', 'watch'],
      },
      { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch'] },
    ]);
    // A vllm deployment's fetch agent Secret is the agent's, never the router's.
    const fetching = vllm((x) => {
      x.spec.vllm!.oci = { region: 'us-ashburn-1', auth: { type: 'apiKey', secretRef: { name: 'k' } } };
    });
    assert.equal(JSON.stringify(routerRules(fetching)).includes('secrets'), false);
  });

  it('adds get on the one API-key Secret of an oci deployment, by name', () => {
    const d = oci((x) => {
      ociRouter(x, { enabled: true, replicas: 1, affinityMargin: 4 });
    });
    golden('role-oci.golden.yaml', buildRole(d));
    assert.deepEqual(routerRules(d).at(-1), {
      apiGroups: [''],
      resources: ['secrets'],
      resourceNames: ['oci-api-key'],
      verbs: ['get'],
    });
    const principal = oci((x) => {
      x.spec.oci!.auth = { type: 'instancePrincipal' };
    });
    assert.equal(JSON.stringify(routerRules(principal)).includes('secrets'), false);
  });

  it('binds the Role to the ServiceAccount without an empty apiGroup (the server drops it)', () => {
    const rb = buildRoleBinding(vllm());
    assert.deepEqual(rb.roleRef, {
      apiGroup: 'rbac.authorization.k8s.io',
      kind: 'Role',
      name: 'sql-prod-router',
    });
    assert.deepEqual(rb.subjects, [{ kind: 'ServiceAccount', name: 'sql-prod-router', namespace: 'ml' }]);
  });
});
