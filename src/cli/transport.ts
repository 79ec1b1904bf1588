/**
 * How the plugin reaches an in-cluster Service, in this order (the first that works wins, and the
 * caller is told which, so a user can see why a call took the path it took):
 *  1. `service`: the Service's DNS name resolves (the plugin runs in the cluster): straight to it.
 *  2. `pod`: a ready pod behind the Service's selector answers a TCP connect at its IP (a flat
 *     network, a VPN into the pod network, or a test node whose pods live on this machine).
 *  3. `port-forward`: a local port forwarded to that pod through the API server (client-node's
 *     PortForward), as `kubectl port-forward svc/...` does, for a laptop outside the cluster.
 * An endpoint that is no in-cluster Service name (OCI's predict URL) is used as it is (`direct`).
 */
import { lookup } from 'node:dns/promises';
import { createConnection, createServer, type Socket } from 'node:net';
import { CoreV1Api, PortForward, type KubeConfig, type V1Pod, type V1Service } from '@kubernetes/client-node';
import type { ViaChoice } from './args.ts';

export type Via = 'direct' | 'service' | 'pod' | 'port-forward';

export interface Endpoint {
  /** Where to send requests: scheme, host and port, plus the endpoint's own path (e.g. OCI's /predict). */
  url: URL;
  via: Via;
  /** The pod the request goes to, for `pod` and `port-forward`. */
  pod?: string;
  close(): Promise<void>;
}

const CONNECT_TIMEOUT_MS = 1500;
const nothing = () => Promise.resolve();

/** `<service>.<namespace>.svc[.cluster.local]`, else undefined (not an in-cluster Service name). */
export function serviceOf(host: string): { name: string; namespace: string } | undefined {
  const m = /^([a-z0-9-]+)\.([a-z0-9-]+)\.svc(\.cluster\.local)?\.?$/.exec(host);
  return m?.[1] === undefined || m[2] === undefined ? undefined : { name: m[1], namespace: m[2] };
}

export function isReady(pod: V1Pod): boolean {
  return (
    pod.metadata?.deletionTimestamp === undefined &&
    pod.status?.podIP !== undefined &&
    (pod.status.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True')
  );
}

/** The container port a Service port sends to on this pod: a number, or a named container port. */
export function targetPort(svc: V1Service, port: number, pod: V1Pod): number | undefined {
  const sp = (svc.spec?.ports ?? []).find((p) => p.port === port) ?? svc.spec?.ports?.[0];
  const target = sp?.targetPort ?? sp?.port;
  // No Service port at all: nothing to look up (an unnamed container port would match `undefined`).
  if (target === undefined) return undefined;
  if (typeof target === 'number') return target;
  for (const c of pod.spec?.containers ?? []) {
    const named = (c.ports ?? []).find((p) => p.name === target);
    if (named !== undefined) return named.containerPort;
  }
  const n = Number(target);
  return Number.isInteger(n) ? n : undefined;
}

async function resolves(host: string): Promise<boolean> {
  try {
    await lookup(host);
    return true;
  } catch {
    return false;
  }
}

/** Whether a TCP connection to ip:port opens within the timeout. */
export function reachable(ip: string, port: number, timeoutMs = CONNECT_TIMEOUT_MS): Promise<boolean> {
  return new Promise((done) => {
    const socket = createConnection({ host: ip, port, timeout: timeoutMs });
    const finish = (ok: boolean) => {
      socket.destroy();
      done(ok);
    };
    socket.once('connect', () => {
      finish(true);
    });
    socket.once('timeout', () => {
      finish(false);
    });
    socket.once('error', () => {
      finish(false);
    });
  });
}

/** A local port whose connections are forwarded to the pod's port through the API server. */
async function portForward(
  kc: KubeConfig,
  namespace: string,
  pod: string,
  port: number,
): Promise<{ port: number; close: () => Promise<void> }> {
  const forward = new PortForward(kc);
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    forward
      .portForward(namespace, pod, [port], socket, null, socket)
      .then((ws) => {
        // Each local connection has a WebSocket of its own, which nothing else closes: open, it
        // keeps the pod's connection (and this process) alive after the local side has gone.
        const close = () => {
          (typeof ws === 'function' ? ws() : ws)?.close();
        };
        if (socket.destroyed) close();
        else socket.once('close', close);
      })
      .catch((err: unknown) => {
        socket.destroy(err instanceof Error ? err : new Error(String(err)));
      });
  });
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(0, '127.0.0.1', ok);
  });
  const address = server.address();
  return {
    port: typeof address === 'object' && address !== null ? address.port : 0,
    close: () =>
      new Promise<void>((done) => {
        server.close(() => {
          done();
        });
        // A kept-alive connection would hold close() open.
        for (const s of sockets) s.destroy();
      }),
  };
}

/** What {@link route} asks of the world; injected so the decision itself is testable. */
export interface Resolvers {
  /** Whether the host name resolves (in-cluster DNS). */
  resolves(host: string): Promise<boolean>;
  readService(name: { name: string; namespace: string }): Promise<V1Service>;
  listPods(namespace: string, labelSelector: string): Promise<V1Pod[]>;
  /** Whether a TCP connection to ip:port opens. */
  reachable(ip: string, port: number): Promise<boolean>;
}

/** Where a request to the endpoint goes, before anything is opened. */
export type Route =
  | { via: 'direct' | 'service'; url: URL }
  | { via: 'pod'; url: URL; pod: string }
  /** `url` is the endpoint's: its host and port become the local end of the forward. */
  | { via: 'port-forward'; url: URL; namespace: string; pod: string; port: number };

/**
 * The decision of {@link openEndpoint} (see the file's comment for the order). `choice` other than
 * auto takes that path only, and fails when it cannot be taken.
 */
export async function route(endpoint: string, r: Resolvers, choice: ViaChoice = 'auto'): Promise<Route> {
  const url = new URL(endpoint);
  const svcName = serviceOf(url.hostname);
  if (svcName === undefined) return { url, via: 'direct' };
  if (choice === 'service') return { url, via: 'service' };
  if (choice === 'auto' && (await r.resolves(url.hostname))) return { url, via: 'service' };
  const svc = await r.readService(svcName);
  const selector = Object.entries(svc.spec?.selector ?? {})
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
  if (selector === '') throw new Error(`Service ${svcName.namespace}/${svcName.name} has no selector`);
  const pods = (await r.listPods(svcName.namespace, selector)).filter(isReady);
  if (pods.length === 0) throw new Error(`no ready pod behind Service ${svcName.namespace}/${svcName.name}`);
  const servicePort = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
  for (const pod of choice === 'port-forward' ? [] : pods) {
    const port = targetPort(svc, servicePort, pod);
    const ip = pod.status?.podIP;
    if (port === undefined || ip === undefined) continue;
    if (await r.reachable(ip, port)) {
      const direct = new URL(url);
      direct.hostname = ip;
      direct.port = String(port);
      return { url: direct, via: 'pod', pod: pod.metadata?.name ?? '' };
    }
  }
  if (choice === 'pod') {
    throw new Error(`no ready pod behind Service ${svcName.namespace}/${svcName.name} answers at its IP`);
  }
  const [pod] = pods;
  if (pod === undefined) throw new Error('unreachable: pods is not empty');
  const port = targetPort(svc, servicePort, pod);
  if (port === undefined)
    throw new Error(`Service ${svcName.name}: no target port on pod ${pod.metadata?.name ?? ''}`);
  return { url, via: 'port-forward', namespace: svcName.namespace, pod: pod.metadata?.name ?? '', port };
}

/** Opens the endpoint (see the file's comment for the order); close() it when done. */
export async function openEndpoint(
  kc: KubeConfig,
  endpoint: string,
  choice: ViaChoice = 'auto',
): Promise<Endpoint> {
  const core = kc.makeApiClient(CoreV1Api);
  const r = await route(
    endpoint,
    {
      resolves,
      reachable: (ip, port) => reachable(ip, port),
      readService: (name) => core.readNamespacedService(name),
      listPods: async (namespace, labelSelector) =>
        (await core.listNamespacedPod({ namespace, labelSelector })).items,
    },
    choice,
  );
  if (r.via !== 'port-forward') return { ...r, close: nothing };
  const forward = await portForward(kc, r.namespace, r.pod, r.port);
  const local = new URL(r.url);
  local.hostname = '127.0.0.1';
  local.port = String(forward.port);
  return { url: local, via: 'port-forward', pod: r.pod, close: forward.close };
}
