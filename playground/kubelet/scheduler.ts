// The scheduler half of the test kubelet: binds pending pods to fake nodes that fit, or reports them
// Unschedulable with kube-scheduler's message. Decisions are in scheduling.ts; this does the I/O and
// keeps the "assumed" pods (bound, but not yet seen bound in the cache) so that two pods never get the
// same GPU.
import {
  type CoreV1Api,
  PatchStrategy,
  V1Binding,
  setHeaderOptions,
  type V1Node,
  type V1Pod,
} from '@kubernetes/client-node';
import { apiErrorCode } from '../../src/runtime/errors.ts';
import type { Informer } from '../../src/runtime/informer.ts';
import { objectKey } from '../../src/runtime/keys.ts';
import { model } from '../../src/runtime/model.ts';
import { rfc3339, timeString } from './podstatus.ts';
import {
  addUsage,
  fitErrorMessage,
  isTerminal,
  pickNode,
  podRequests,
  unfitReasons,
  type NodeUsage,
} from './scheduling.ts';

export const SCHEDULER_FIELD_MANAGER = 'default-scheduler';

export interface SchedulerOptions {
  core: CoreV1Api;
  pods: Informer<V1Pod>;
  nodes: Informer<V1Node>;
  /** The nodes this scheduler places pods on. */
  nodeNames: ReadonlySet<string>;
  /** Namespaces whose pods it schedules; undefined: all. */
  namespaces: ReadonlySet<string> | undefined;
  log: (line: string) => void;
}

export class Scheduler {
  readonly #o: SchedulerOptions;
  /** Pods bound by us that the cache does not show bound yet, by uid. */
  readonly #assumed = new Map<string, { node: string; requests: Record<string, number> }>();
  stopped = false;

  constructor(opts: SchedulerOptions) {
    this.#o = opts;
  }

  /** Read through a call: TypeScript would otherwise keep its narrowing from before an await. */
  #halted(): boolean {
    return this.stopped;
  }

  schedulable(pod: V1Pod): boolean {
    const spec = pod.spec;
    if (!spec || spec.nodeName || pod.metadata?.deletionTimestamp || isTerminal(pod)) return false;
    const scheduler = spec.schedulerName ?? 'default-scheduler';
    if (scheduler !== 'default-scheduler') return false;
    if ((spec.schedulingGates ?? []).length > 0) return false;
    return this.#o.namespaces === undefined || this.#o.namespaces.has(pod.metadata?.namespace ?? '');
  }

  /** Pods waiting for a node: unbound, ours to schedule, not bound by us already. */
  pendingPods(): V1Pod[] {
    return this.#o.pods
      .list()
      .filter((p) => this.schedulable(p) && !this.#assumed.has(p.metadata?.uid ?? ''));
  }

  /** One pass over every pending pod, highest priority and oldest first. */
  async scheduleAll(): Promise<void> {
    if (this.stopped) return;
    const pods = this.#o.pods.list();
    const byUid = new Map(pods.map((p) => [p.metadata?.uid ?? '', p]));
    for (const [uid] of this.#assumed) {
      const p = byUid.get(uid);
      if (!p || p.spec?.nodeName || p.metadata?.deletionTimestamp) this.#assumed.delete(uid);
    }
    const nodes = this.#o.nodes.list().filter((n) => this.#o.nodeNames.has(n.metadata?.name ?? ''));
    const usage = new Map<string, NodeUsage>(
      nodes.map((n) => [n.metadata?.name ?? '', { requests: {}, pods: 0 }]),
    );
    for (const p of pods) {
      const u = usage.get(p.spec?.nodeName ?? '');
      if (u && !isTerminal(p)) addUsage(u, podRequests(p));
    }
    for (const a of this.#assumed.values()) {
      const u = usage.get(a.node);
      if (u) addUsage(u, a.requests);
    }
    const pending = this.pendingPods().sort((a, b) => {
      const pa = a.spec?.priority ?? 0;
      const pb = b.spec?.priority ?? 0;
      if (pa !== pb) return pb - pa;
      const ta = Date.parse(timeString(a.metadata?.creationTimestamp) ?? '') || 0;
      const tb = Date.parse(timeString(b.metadata?.creationTimestamp) ?? '') || 0;
      if (ta !== tb) return ta - tb;
      return objectKey(a) < objectKey(b) ? -1 : 1;
    });
    for (const pod of pending) {
      if (this.#halted()) return;
      const preFilter = await this.#preFilter(pod);
      if (preFilter !== undefined) {
        await this.#markUnschedulable(pod, `0/${nodes.length} nodes are available: ${preFilter}.`);
        continue;
      }
      const requests = podRequests(pod);
      const reasons: string[][] = [];
      const fits: { node: V1Node; usage: NodeUsage }[] = [];
      for (const node of nodes) {
        const u = usage.get(node.metadata?.name ?? '') ?? { requests: {}, pods: 0 };
        const r = unfitReasons(pod, requests, node, u);
        if (r.length === 0) fits.push({ node, usage: u });
        else reasons.push(r);
      }
      const chosen = pickNode(fits);
      if (!chosen) {
        await this.#markUnschedulable(pod, fitErrorMessage(nodes.length, reasons));
        continue;
      }
      const nodeName = chosen.node.metadata?.name ?? '';
      if (await this.#bind(pod, nodeName)) {
        addUsage(chosen.usage, requests);
        this.#assumed.set(pod.metadata?.uid ?? '', { node: nodeName, requests });
      }
    }
  }

  /** The VolumeBinding pre-filter: every PVC the pod mounts must exist and not be terminating. */
  async #preFilter(pod: V1Pod): Promise<string | undefined> {
    const namespace = pod.metadata?.namespace ?? '';
    for (const v of pod.spec?.volumes ?? []) {
      const claim = v.persistentVolumeClaim?.claimName;
      if (!claim) continue;
      try {
        const pvc = await this.#o.core.readNamespacedPersistentVolumeClaim({ name: claim, namespace });
        if (pvc.metadata?.deletionTimestamp) return `persistentvolumeclaim "${claim}" is being deleted`;
      } catch (err) {
        if (apiErrorCode(err) === 404) return `persistentvolumeclaim "${claim}" not found`;
        throw err;
      }
    }
    return undefined;
  }

  async #bind(pod: V1Pod, nodeName: string): Promise<boolean> {
    const name = pod.metadata?.name ?? '';
    const namespace = pod.metadata?.namespace ?? '';
    try {
      await this.#o.core.createNamespacedPodBinding({
        name,
        namespace,
        body: model(V1Binding, {
          apiVersion: 'v1',
          kind: 'Binding',
          metadata: { name, namespace, uid: pod.metadata?.uid ?? '' },
          target: { apiVersion: 'v1', kind: 'Node', name: nodeName },
        }),
        fieldManager: SCHEDULER_FIELD_MANAGER,
      });
    } catch (err) {
      const code = apiErrorCode(err);
      // Gone, or bound meanwhile (a conflict): the next event shows what happened.
      if (code === 404 || code === 409) return false;
      throw err;
    }
    this.#o.log(`bound ${namespace}/${name} to ${nodeName}`);
    return true;
  }

  async #markUnschedulable(pod: V1Pod, message: string): Promise<void> {
    const current = (pod.status?.conditions ?? []).find((c) => c.type === 'PodScheduled');
    if (current?.status === 'False' && current.reason === 'Unschedulable' && current.message === message)
      return;
    const time =
      current?.status === 'False' ? (timeString(current.lastTransitionTime) ?? rfc3339()) : rfc3339();
    const name = pod.metadata?.name ?? '';
    const namespace = pod.metadata?.namespace ?? '';
    try {
      await this.#o.core.patchNamespacedPodStatus(
        {
          name,
          namespace,
          body: {
            status: {
              conditions: [
                {
                  type: 'PodScheduled',
                  status: 'False',
                  reason: 'Unschedulable',
                  message,
                  lastProbeTime: null,
                  lastTransitionTime: time,
                },
              ],
            },
          },
          fieldManager: SCHEDULER_FIELD_MANAGER,
        },
        setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
      );
    } catch (err) {
      if (apiErrorCode(err) === 404) return;
      throw err;
    }
    this.#o.log(`${namespace}/${name} unschedulable: ${message}`);
  }
}
