import assert from 'node:assert/strict';
import type { V1Pod, V1Service } from '@kubernetes/client-node';
import type { ViaChoice } from '../../../src/cli/args.ts';
import {
  isReady,
  route,
  serviceOf,
  targetPort,
  type Resolvers,
  type Route,
} from '../../../src/cli/transport.ts';

function pod(
  name: string,
  ip: string | undefined,
  opts: { ready?: boolean; deleting?: boolean; ports?: { name?: string; containerPort: number }[] } = {},
): V1Pod {
  return {
    metadata: { name, ...(opts.deleting === true ? { deletionTimestamp: new Date() } : {}) },
    spec: { containers: [{ name: 'vllm', ports: opts.ports ?? [{ name: 'http', containerPort: 8000 }] }] },
    status: {
      ...(ip !== undefined ? { podIP: ip } : {}),
      conditions: [{ type: 'Ready', status: opts.ready === false ? 'False' : 'True' }],
    },
  };
}

function service(
  ports: { port: number; targetPort?: number | string }[],
  selector: Record<string, string> = { app: 'x' },
): V1Service {
  return { metadata: { name: 'x' }, spec: { selector, ports } };
}

describe('kubectl stacked: how it reaches a Service', () => {
  describe('serviceOf', () => {
    const cases: [string, { name: string; namespace: string } | undefined][] = [
      ['sql-prod-router.ml.svc', { name: 'sql-prod-router', namespace: 'ml' }],
      ['sql-prod-vllm.ml.svc.cluster.local', { name: 'sql-prod-vllm', namespace: 'ml' }],
      ['sql-prod-vllm.ml.svc.cluster.local.', { name: 'sql-prod-vllm', namespace: 'ml' }],
      ['sql.ml', undefined],
      ['a.b.c.svc', undefined],
      ['sql.ml.svc.example.com', undefined],
      ['modeldeployment.us-ashburn-1.oci.customer-oci.com', undefined],
      ['10.0.0.7', undefined],
      ['[::1]', undefined],
    ];
    for (const [host, want] of cases) {
      it(`${host} → ${want === undefined ? 'not a Service' : `${want.namespace}/${want.name}`}`, () => {
        assert.deepEqual(serviceOf(host), want);
      });
    }
  });

  describe('isReady', () => {
    const cases: [string, V1Pod, boolean][] = [
      ['Ready with an IP', pod('p', '10.0.0.1'), true],
      ['not Ready', pod('p', '10.0.0.1', { ready: false }), false],
      ['no IP yet', pod('p', undefined), false],
      ['being deleted', pod('p', '10.0.0.1', { deleting: true }), false],
      ['no conditions', { metadata: { name: 'p' }, status: { podIP: '10.0.0.1' } }, false],
    ];
    for (const [name, p, want] of cases) {
      it(`${name}: ${String(want)}`, () => {
        assert.equal(isReady(p), want);
      });
    }
  });

  describe('targetPort', () => {
    const named = pod('p', '10.0.0.1', {
      ports: [
        { name: 'metrics', containerPort: 9090 },
        { name: 'http', containerPort: 8000 },
      ],
    });
    const cases: [string, V1Service, number, V1Pod, number | undefined][] = [
      ['a numeric targetPort', service([{ port: 80, targetPort: 8000 }]), 80, named, 8000],
      ['the Service port itself when targetPort is unset', service([{ port: 8080 }]), 8080, named, 8080],
      [
        'a named targetPort, by the container port’s name',
        service([{ port: 80, targetPort: 'http' }]),
        80,
        named,
        8000,
      ],
      [
        'the matching Service port among several',
        service([
          { port: 9090, targetPort: 'metrics' },
          { port: 80, targetPort: 'http' },
        ]),
        80,
        named,
        8000,
      ],
      [
        'the first Service port when none matches',
        service([
          { port: 9090, targetPort: 'metrics' },
          { port: 80, targetPort: 'http' },
        ]),
        443,
        named,
        9090,
      ],
      ['a numeric string targetPort', service([{ port: 80, targetPort: '8001' }]), 80, named, 8001],
      ['a name no container has', service([{ port: 80, targetPort: 'grpc' }]), 80, named, undefined],
      [
        'a Service without ports, even beside an unnamed container port',
        service([]),
        80,
        pod('p', '10.0.0.1', { ports: [{ containerPort: 8000 }] }),
        undefined,
      ],
    ];
    for (const [name, svc, port, p, want] of cases) {
      it(`${name}: ${String(want)}`, () => {
        assert.equal(targetPort(svc, port, p), want);
      });
    }
  });

  describe('route: the decision, with the world injected', () => {
    interface World {
      resolves?: boolean;
      svc?: V1Service;
      pods?: V1Pod[];
      /** "ip:port" that accept a connection. */
      open?: string[];
    }
    function resolvers(w: World, calls: string[]): Resolvers {
      return {
        resolves: (host) => {
          calls.push(`resolve ${host}`);
          return Promise.resolve(w.resolves === true);
        },
        readService: (n) => {
          calls.push(`service ${n.namespace}/${n.name}`);
          return Promise.resolve(w.svc ?? service([{ port: 8080, targetPort: 'http' }]));
        },
        listPods: (ns, selector) => {
          calls.push(`pods ${ns} ${selector}`);
          return Promise.resolve(w.pods ?? []);
        },
        reachable: (ip, port) => {
          calls.push(`connect ${ip}:${String(port)}`);
          return Promise.resolve((w.open ?? []).includes(`${ip}:${String(port)}`));
        },
      };
    }
    const plain = (r: Route) => ({ ...r, url: r.url.href });
    const ROUTER = 'http://sql-router.ml.svc:8080';

    const cases: [string, string, World, ReturnType<typeof plain>, string[]][] = [
      [
        'an OCI predict URL is used as it is, nothing resolved',
        'https://modeldeployment.us-ashburn-1.oci.customer-oci.com/ocid1.x/predict',
        {},
        { via: 'direct', url: 'https://modeldeployment.us-ashburn-1.oci.customer-oci.com/ocid1.x/predict' },
        [],
      ],
      [
        'in the cluster the Service name resolves: straight to it',
        ROUTER,
        { resolves: true },
        { via: 'service', url: 'http://sql-router.ml.svc:8080/' },
        ['resolve sql-router.ml.svc'],
      ],
      [
        'outside, the first ready pod that answers, at its IP and target port',
        ROUTER,
        {
          svc: service([{ port: 8080, targetPort: 'http' }], {
            app: 'router',
            'serving.stacked.dev/router': 'sql',
          }),
          pods: [pod('r-0', '10.0.0.1', { ready: false }), pod('r-1', '10.0.0.2'), pod('r-2', '10.0.0.3')],
          open: ['10.0.0.1:8000', '10.0.0.3:8000'],
        },
        { via: 'pod', url: 'http://10.0.0.3:8000/', pod: 'r-2' },
        [
          'resolve sql-router.ml.svc',
          'service ml/sql-router',
          'pods ml app=router,serving.stacked.dev/router=sql',
          'connect 10.0.0.2:8000',
          'connect 10.0.0.3:8000',
        ],
      ],
      [
        'the endpoint’s path and https scheme kept, its default port 443 mapped',
        'https://sql-router.ml.svc/v1',
        {
          svc: service([{ port: 443, targetPort: 8443 }]),
          pods: [pod('r-0', '10.0.0.1')],
          open: ['10.0.0.1:8443'],
        },
        { via: 'pod', url: 'https://10.0.0.1:8443/v1', pod: 'r-0' },
        ['resolve sql-router.ml.svc', 'service ml/sql-router', 'pods ml app=x', 'connect 10.0.0.1:8443'],
      ],
      [
        'no pod answers: a port-forward to the first ready pod',
        ROUTER,
        {
          pods: [pod('r-0', '10.0.0.1', { deleting: true }), pod('r-1', '10.0.0.2'), pod('r-2', '10.0.0.3')],
        },
        {
          via: 'port-forward',
          url: 'http://sql-router.ml.svc:8080/',
          namespace: 'ml',
          pod: 'r-1',
          port: 8000,
        },
        [
          'resolve sql-router.ml.svc',
          'service ml/sql-router',
          'pods ml app=x',
          'connect 10.0.0.2:8000',
          'connect 10.0.0.3:8000',
        ],
      ],
    ];
    for (const [name, endpoint, world, want, wantCalls] of cases) {
      it(name, async () => {
        const calls: string[] = [];
        assert.deepEqual(plain(await route(endpoint, resolvers(world, calls))), want);
        assert.deepEqual(calls, wantCalls);
      });
    }

    const chosen: [string, ViaChoice, World, ReturnType<typeof plain>, string[]][] = [
      [
        '--via service: straight to the Service name, nothing resolved or read',
        'service',
        {},
        { via: 'service', url: 'http://sql-router.ml.svc:8080/' },
        [],
      ],
      [
        '--via port-forward: the first ready pod, no DNS lookup and no connect tried',
        'port-forward',
        { pods: [pod('r-0', '10.0.0.1')], open: ['10.0.0.1:8000'] },
        {
          via: 'port-forward',
          url: 'http://sql-router.ml.svc:8080/',
          namespace: 'ml',
          pod: 'r-0',
          port: 8000,
        },
        ['service ml/sql-router', 'pods ml app=x'],
      ],
      [
        '--via pod: a pod IP even where the Service name resolves',
        'pod',
        { resolves: true, pods: [pod('r-0', '10.0.0.1')], open: ['10.0.0.1:8000'] },
        { via: 'pod', url: 'http://10.0.0.1:8000/', pod: 'r-0' },
        ['service ml/sql-router', 'pods ml app=x', 'connect 10.0.0.1:8000'],
      ],
      [
        '--via port-forward leaves an OCI predict URL alone',
        'port-forward',
        {},
        { via: 'direct', url: 'https://modeldeployment.us-ashburn-1.oci.customer-oci.com/ocid1.x/predict' },
        [],
      ],
    ];
    for (const [name, choice, world, want, wantCalls] of chosen) {
      it(name, async () => {
        const calls: string[] = [];
        const endpoint = want.via === 'direct' ? want.url : ROUTER;
        assert.deepEqual(plain(await route(endpoint, resolvers(world, calls), choice)), want);
        assert.deepEqual(calls, wantCalls);
      });
    }

    it('refuses --via pod when no pod answers at its IP, rather than port-forward', async () => {
      await assert.rejects(
        route(ROUTER, resolvers({ pods: [pod('r-0', '10.0.0.1')] }, []), 'pod'),
        /no ready pod behind Service ml\/sql-router answers at its IP/,
      );
    });

    const refused: [string, World, RegExp][] = [
      [
        'a Service without a selector',
        { svc: service([{ port: 8080 }], {}) },
        /Service ml\/sql-router has no selector/,
      ],
      [
        'no ready pod',
        { pods: [pod('r-0', '10.0.0.1', { ready: false })] },
        /no ready pod behind Service ml\/sql-router/,
      ],
      [
        'a target port no pod has',
        { svc: service([{ port: 8080, targetPort: 'grpc' }]), pods: [pod('r-0', '10.0.0.1')] },
        /Service sql-router: no target port on pod r-0/,
      ],
    ];
    for (const [name, world, message] of refused) {
      it(`refuses ${name}`, async () => {
        await assert.rejects(route(ROUTER, resolvers(world, [])), message);
      });
    }
  });
});
