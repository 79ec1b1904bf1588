// The part of kube-scheduler the test kubelet needs, as pure functions: a pod's effective resource
// requests, the filters of the default profile that matter here (NodeUnschedulable, TaintToleration,
// NodeAffinity with nodeSelector, NodeResourcesFit), node choice and the FitError message.
import type { V1Container, V1Node, V1NodeSelectorRequirement, V1Pod, V1Taint } from '@kubernetes/client-node';

export const GPU = 'nvidia.com/gpu';

/** Resources the fit check counts; `pods` is the per-node pod count. */
export const FIT_RESOURCES = ['cpu', 'memory', GPU] as const;

const DECIMAL_SUFFIX: Record<string, number> = {
  m: 1e-3,
  '': 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
};
const BINARY_SUFFIX: Record<string, number> = {
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};

/** A resource.Quantity as a number (cpu in cores, memory in bytes); throws on a malformed value. */
export function parseQuantity(q: string | number): number {
  if (typeof q === 'number') return q;
  const m = /^([+-]?(?:\d+\.?\d*|\.\d+))(?:([eE][+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E)?)$/.exec(
    q.trim(),
  );
  if (!m) throw new Error(`invalid quantity ${JSON.stringify(q)}`);
  const base = Number(m[1]);
  if (m[2] !== undefined) return base * 10 ** Number(m[2].slice(1));
  const suffix = m[3] ?? '';
  return base * (BINARY_SUFFIX[suffix] ?? DECIMAL_SUFFIX[suffix] ?? 1);
}

function containerRequest(c: V1Container, resource: string): number {
  // The API server defaults a missing request to the limit; read the limit too for objects that
  // never went through defaulting.
  const v = c.resources?.requests?.[resource] ?? c.resources?.limits?.[resource];
  return v === undefined ? 0 : parseQuantity(v);
}

/**
 * The pod's effective request of each resource, as the scheduler computes it: the sum over app
 * containers (and restartable init containers, i.e. sidecars), or the largest single init container
 * if that is larger, plus the pod overhead.
 */
export function podRequests(pod: V1Pod): Record<string, number> {
  const out: Record<string, number> = {};
  const spec = pod.spec;
  const resources = new Set<string>(FIT_RESOURCES);
  for (const c of [...(spec?.containers ?? []), ...(spec?.initContainers ?? [])]) {
    for (const r of Object.keys(c.resources?.requests ?? {})) resources.add(r);
    for (const r of Object.keys(c.resources?.limits ?? {})) resources.add(r);
  }
  for (const r of resources) {
    let sum = 0;
    for (const c of spec?.containers ?? []) sum += containerRequest(c, r);
    let initMax = 0;
    for (const c of spec?.initContainers ?? []) {
      const v = containerRequest(c, r);
      if (c.restartPolicy === 'Always') {
        sum += v;
        initMax = Math.max(initMax, sum);
      } else {
        initMax = Math.max(initMax, sum + v);
      }
    }
    const overhead = spec?.overhead?.[r];
    out[r] = Math.max(sum, initMax) + (overhead === undefined ? 0 : parseQuantity(overhead));
  }
  return out;
}

/** Pods that no longer hold resources on their node. */
export function isTerminal(pod: V1Pod): boolean {
  return pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed';
}

function matchRequirement(value: string | undefined, r: V1NodeSelectorRequirement): boolean {
  const values = r.values ?? [];
  switch (r.operator) {
    case 'In':
      return value !== undefined && values.includes(value);
    case 'NotIn':
      return value === undefined || !values.includes(value);
    case 'Exists':
      return value !== undefined;
    case 'DoesNotExist':
      return value === undefined;
    case 'Gt':
    case 'Lt': {
      if (value === undefined || values.length !== 1) return false;
      const a = Number.parseInt(value, 10);
      const b = Number.parseInt(values[0] ?? '', 10);
      if (Number.isNaN(a) || Number.isNaN(b)) return false;
      return r.operator === 'Gt' ? a > b : a < b;
    }
    default:
      return false;
  }
}

/** nodeSelector and required node affinity (NodeAffinity filter). */
export function matchesNodeSelector(pod: V1Pod, node: V1Node): boolean {
  const labels = node.metadata?.labels ?? {};
  for (const [k, v] of Object.entries(pod.spec?.nodeSelector ?? {})) {
    if (labels[k] !== v) return false;
  }
  const required = pod.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution;
  if (required === undefined) return true;
  return required.nodeSelectorTerms.some((term) => {
    const exprs = term.matchExpressions ?? [];
    const fields = term.matchFields ?? [];
    if (exprs.length === 0 && fields.length === 0) return false;
    return (
      exprs.every((r) => matchRequirement(labels[r.key], r)) &&
      fields.every((r) => r.key === 'metadata.name' && matchRequirement(node.metadata?.name, r))
    );
  });
}

/** The first NoSchedule/NoExecute taint of the node that the pod does not tolerate. */
export function untoleratedTaint(pod: V1Pod, node: V1Node): V1Taint | undefined {
  const tolerations = pod.spec?.tolerations ?? [];
  return (node.spec?.taints ?? []).find((taint) => {
    if (taint.effect !== 'NoSchedule' && taint.effect !== 'NoExecute') return false;
    return !tolerations.some((t) => {
      if (t.effect && t.effect !== taint.effect) return false;
      const op = t.operator ?? 'Equal';
      if (!t.key) return op === 'Exists';
      if (t.key !== taint.key) return false;
      return op === 'Exists' || (t.value ?? '') === (taint.value ?? '');
    });
  });
}

/** What is already taken on a node: summed requests and the pod count. */
export interface NodeUsage {
  requests: Record<string, number>;
  pods: number;
}

export function addUsage(usage: NodeUsage, requests: Record<string, number>): void {
  usage.pods += 1;
  for (const [r, v] of Object.entries(requests)) usage.requests[r] = (usage.requests[r] ?? 0) + v;
}

/** Allocatable minus usage, per resource the node advertises. */
export function freeResources(node: V1Node, usage: NodeUsage): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [r, q] of Object.entries(node.status?.allocatable ?? {})) {
    out[r] = parseQuantity(q) - (r === 'pods' ? usage.pods : (usage.requests[r] ?? 0));
  }
  return out;
}

/**
 * Why the pod does not fit the node, as the failing filter's reasons (the framework stops at the
 * first filter that fails); an empty list means it fits.
 */
export function unfitReasons(
  pod: V1Pod,
  requests: Record<string, number>,
  node: V1Node,
  usage: NodeUsage,
): string[] {
  if (node.spec?.unschedulable) {
    const tolerated = (pod.spec?.tolerations ?? []).some(
      (t) =>
        (t.key === 'node.kubernetes.io/unschedulable' && (t.operator === 'Exists' || !t.operator)) ||
        (!t.key && t.operator === 'Exists'),
    );
    if (!tolerated) return ['node(s) were unschedulable'];
  }
  const taint = untoleratedTaint(pod, node);
  if (taint) return [`node(s) had untolerated taint {${taint.key}: ${taint.value ?? ''}}`];
  if (!matchesNodeSelector(pod, node)) return ["node(s) didn't match Pod's node affinity/selector"];
  const free = freeResources(node, usage);
  const reasons: string[] = [];
  if ((free['pods'] ?? 0) < 1) reasons.push('Too many pods');
  for (const [r, want] of Object.entries(requests)) {
    if (want <= 0) continue;
    // A resource the node does not advertise at all is insufficient too.
    if ((free[r] ?? 0) < want) reasons.push(`Insufficient ${r}`);
  }
  return reasons;
}

/** The scheduler's FitError text: "0/N nodes are available: <count> <reason>, ... ." (sorted). */
export function fitErrorMessage(nodeCount: number, reasonsByNode: string[][]): string {
  if (nodeCount === 0) return 'no nodes available to schedule pods';
  const histogram = new Map<string, number>();
  for (const reasons of reasonsByNode) {
    for (const r of reasons) histogram.set(r, (histogram.get(r) ?? 0) + 1);
  }
  const parts = [...histogram].map(([r, n]) => `${n} ${r}`).sort();
  return `0/${nodeCount} nodes are available: ${parts.join(', ')}.`;
}

/** Score: most free GPUs, then fewest pods, then name (LeastAllocated-like and deterministic). */
export function pickNode(
  candidates: { node: V1Node; usage: NodeUsage }[],
): { node: V1Node; usage: NodeUsage } | undefined {
  return [...candidates].sort((a, b) => {
    const ga = freeResources(a.node, a.usage)[GPU] ?? 0;
    const gb = freeResources(b.node, b.usage)[GPU] ?? 0;
    if (ga !== gb) return gb - ga;
    if (a.usage.pods !== b.usage.pods) return a.usage.pods - b.usage.pods;
    const na = a.node.metadata?.name ?? '';
    const nb = b.node.metadata?.name ?? '';
    return na < nb ? -1 : na > nb ? 1 : 0;
  })[0];
}
