import assert from 'node:assert/strict';
import type { KubernetesListObject, KubernetesObject } from '@kubernetes/client-node';
import type { StackedDeployment } from '../../../src/api/v1alpha1/deployment.ts';
import type { StackedModelGroup } from '../../../src/api/v1alpha1/modelgroup.ts';
import {
  DEPLOYMENTS_BY_GROUP,
  DEPLOYMENTS_BY_SECRET,
  GROUPS_BY_SECRET,
  deploymentGroupKeys,
  deploymentSecretKeys,
  deploymentsUsingSecret,
  groupSecretKeys,
  groupsOfChange,
  resourceVersionChanged,
  servedByInputsChanged,
  secretMetadataInformer,
} from '../../../src/controllers/indexes.ts';
import { Informer, METADATA_LIST_ACCEPT, METADATA_WATCH_ACCEPT } from '../../../src/runtime/informer.ts';
import { sampleDeployment, sampleGroup } from '../../support/objects.ts';
import { FakeApiServer } from '../runtime/helpers/fake-apiserver.ts';
import { FakeListWatch } from '../runtime/helpers/fake-listwatch.ts';
import { silentLogger, waitFor } from '../runtime/helpers/util.ts';

const ociDeployment = (name: string, secret: string) =>
  sampleDeployment('deployment-oci.yaml', name, (d) => {
    d.metadata.namespace = 'ml';
    d.spec.oci!.auth.secretRef = { name: secret };
  });

const tokenGroup = (name: string, secret: string) =>
  sampleGroup(name, (g) => {
    g.metadata.namespace = 'ml';
    g.spec.members![0]!.source = {
      uri: 'https://models.example.com/a.tar.gz',
      secretRef: { name: secret, key: 'token' },
    };
    g.spec.members![1]!.source = {
      uri: 'https://models.example.com/b.tar.gz',
      secretRef: { name: secret, key: 'other' },
    };
  });

/** A started informer holding `items`, on a scripted list (no API server). */
async function informerOf<T extends KubernetesObject>(items: T[]): Promise<Informer<T>> {
  const list: KubernetesListObject<T> = { metadata: { resourceVersion: '1' }, items };
  const inf = new Informer<T>({
    kc: undefined as never,
    path: '/x',
    list: () => Promise.resolve(structuredClone(list)),
    logger: silentLogger(),
    watchdogMs: 0,
    createListWatch: (l) => new FakeListWatch(l),
  });
  await inf.start();
  return inf;
}

describe('controllers/indexes: Secrets', () => {
  it('indexes a deployment by the Secrets of spec.oci.auth and spec.vllm.oci.auth', () => {
    assert.deepEqual(deploymentSecretKeys(ociDeployment('d', 'oci-api-key')), ['ml/oci-api-key']);
    const vllm = sampleDeployment('deployment-vllm.yaml', 'v', (d) => {
      d.metadata.namespace = 'ml';
    });
    assert.deepEqual(deploymentSecretKeys(vllm), [], 'no Secret named');
    vllm.spec.vllm!.oci = {
      region: 'us-ashburn-1',
      auth: { type: 'apiKey', secretRef: { name: 'agent-key' } },
    };
    assert.deepEqual(deploymentSecretKeys(vllm), ['ml/agent-key']);
  });

  it("indexes a group by its sources' bearer-token Secrets, once each", () => {
    assert.deepEqual(groupSecretKeys(tokenGroup('g', 'hub-token')), ['ml/hub-token']);
    assert.deepEqual(groupSecretKeys(sampleGroup('plain')), []);
  });

  it('maps a Secret to the deployments naming it and to those serving a group that names it', async () => {
    const viaGroup = sampleDeployment('deployment-vllm.yaml', 'via-group', (d) => {
      d.metadata.namespace = 'ml';
      d.spec.modelGroupRef.name = 'tokens';
    });
    const deployments = await informerOf<StackedDeployment>([
      ociDeployment('direct', 'shared'),
      ociDeployment('other', 'unrelated'),
      viaGroup,
    ]);
    deployments.addIndex(DEPLOYMENTS_BY_SECRET, deploymentSecretKeys);
    deployments.addIndex(DEPLOYMENTS_BY_GROUP, deploymentGroupKeys);
    const groups = await informerOf<StackedModelGroup>([tokenGroup('tokens', 'shared')]);
    groups.addIndex(GROUPS_BY_SECRET, groupSecretKeys);
    assert.deepEqual(deploymentsUsingSecret(deployments, groups, 'ml/shared'), ['ml/direct', 'ml/via-group']);
    assert.deepEqual(deploymentsUsingSecret(deployments, groups, 'ml/unrelated'), ['ml/other']);
    assert.deepEqual(
      deploymentsUsingSecret(deployments, groups, 'other-ns/shared'),
      [],
      'same namespace only',
    );
  });

  it('passes adds, deletes and new resourceVersions only', () => {
    const s = (rv: string): KubernetesObject => ({ metadata: { name: 's', resourceVersion: rv } });
    assert.equal(resourceVersionChanged(undefined, s('1')), true);
    assert.equal(resourceVersionChanged(s('1'), s('2')), true);
    assert.equal(resourceVersionChanged(s('2'), s('2')), false);
  });
});

describe('controllers/indexes: which deployment changes reach a group', () => {
  const withAdapters = (d: StackedDeployment, loaded: string[], loading: string[] = []) =>
    ({
      ...d,
      status: {
        ...d.status,
        adapters: [
          ...loaded.map((inferenceKey) => ({ inferenceKey, state: 'Loaded' })),
          ...loading.map((inferenceKey) => ({ inferenceKey, state: 'Loading' })),
        ],
      },
    }) as StackedDeployment;
  const base = ociDeployment('sql-oci', 'oci-api-key');

  it('passes adds, deletes, a move to another group and a change of the members served', () => {
    assert.equal(servedByInputsChanged(undefined, base), true);
    const moved = { ...base, spec: { ...base.spec, modelGroupRef: { name: 'other' } } } as StackedDeployment;
    assert.equal(servedByInputsChanged(base, moved), true);
    assert.equal(servedByInputsChanged(withAdapters(base, ['a']), withAdapters(base, ['a', 'b'])), true);
    assert.equal(servedByInputsChanged(withAdapters(base, ['a', 'b']), withAdapters(base, ['b'])), true);
  });

  it('drops progress that changes no member served: loading, conditions, OCI ids, key order', () => {
    assert.equal(servedByInputsChanged(withAdapters(base, ['a']), withAdapters(base, ['a'], ['b'])), false);
    const progressed = {
      ...base,
      status: { ...base.status, oci: { modelGroupVersionHistoryId: 'ocid1.h' } },
    } as StackedDeployment;
    assert.equal(servedByInputsChanged(base, progressed), false);
    const conditioned = {
      ...base,
      status: {
        ...base.status,
        conditions: [{ type: 'Ready', status: 'False', reason: 'DeploymentCreating', message: 'm' }],
      },
    } as StackedDeployment;
    assert.equal(servedByInputsChanged(base, conditioned), false);
    assert.equal(
      servedByInputsChanged(withAdapters(base, ['a', 'b']), withAdapters(base, ['b', 'a'])),
      false,
    );
  });

  it('maps a move to both groups, so the one left drops the deployment from servedBy', () => {
    const moved = { ...base, spec: { ...base.spec, modelGroupRef: { name: 'other' } } } as StackedDeployment;
    assert.deepEqual(
      groupsOfChange(moved, base).sort(),
      ['ml/other', `ml/${base.spec.modelGroupRef.name}`].sort(),
    );
    assert.deepEqual(groupsOfChange(base), [`ml/${base.spec.modelGroupRef.name}`]);
  });
});

describe('controllers/indexes: the metadata-only Secret informer (fake API server)', () => {
  const server = new FakeApiServer();
  before(() => server.start());
  after(() => server.stop());

  it('asks for metadata only on list and watch, and keeps only name, namespace, uid and version', async () => {
    const PATH = '/api/v1/namespaces/ml/secrets';
    // A server that ignores the Accept header (or a kubectl-applied annotation) must still leak nothing.
    const leaky = (name: string, rv: string) => ({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: {
        name,
        namespace: 'ml',
        uid: `uid-${name}`,
        resourceVersion: rv,
        annotations: {
          'kubectl.kubernetes.io/last-applied-configuration': '{"data":{"privateKey":"c2VjcmV0"}}',
        },
        managedFields: [{ manager: 'kubectl' }],
      },
      data: { privateKey: 'c2VjcmV0' },
    });
    server.route = (req, res) => {
      if (req.path !== PATH) return undefined;
      if (req.query.get('watch') !== 'true') {
        return {
          status: 200,
          body: {
            kind: 'SecretList',
            apiVersion: 'v1',
            metadata: { resourceVersion: '10' },
            items: [leaky('a', '5')],
          },
        };
      }
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.write(`${JSON.stringify({ type: 'ADDED', object: leaky('b', '11') })}\n`);
      return 'handled';
    };
    const inf = secretMetadataInformer(server.kubeConfig(), 'ml', silentLogger());
    try {
      await inf.start();
      await waitFor(() => inf.get('ml/b') !== undefined, 'the watched Secret');
      const list = server.requests.find((r) => r.path === PATH && r.query.get('watch') === null);
      const watch = server.requests.find((r) => r.path === PATH && r.query.get('watch') === 'true');
      assert.equal(list?.headers.accept, METADATA_LIST_ACCEPT);
      assert.equal(watch?.headers.accept, METADATA_WATCH_ACCEPT);
      for (const name of ['a', 'b']) {
        const cached = inf.get(`ml/${name}`);
        assert.deepEqual(
          JSON.parse(JSON.stringify(cached)),
          {
            apiVersion: 'v1',
            kind: 'Secret',
            metadata: {
              name,
              namespace: 'ml',
              uid: `uid-${name}`,
              resourceVersion: name === 'a' ? '5' : '11',
            },
          },
          `only the identity of ${name}`,
        );
        assert.ok(!JSON.stringify(cached).includes('c2VjcmV0'), 'no data, not even in an annotation');
      }
    } finally {
      inf.stop();
    }
  });

  it('watches every namespace when the operator does, and syncs on an empty list', async () => {
    server.route = (req, res) => {
      if (req.path !== '/api/v1/secrets') return undefined;
      if (req.query.get('watch') !== 'true') {
        // What the API server sends for an empty PartialObjectMetadataList: items null, not [].
        return {
          status: 200,
          body: {
            kind: 'PartialObjectMetadataList',
            apiVersion: 'meta.k8s.io/v1',
            metadata: { resourceVersion: '1' },
            items: null,
          },
        };
      }
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.write('\n');
      return 'handled';
    };
    const inf = secretMetadataInformer(server.kubeConfig(), undefined, silentLogger());
    try {
      await inf.start();
      await waitFor(
        () => server.requests.some((r) => r.path === '/api/v1/secrets' && r.query.get('watch') === 'true'),
        'the cluster-wide watch',
      );
    } finally {
      inf.stop();
    }
  });
});
