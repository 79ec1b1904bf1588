// One consistent record of what serves: an in-process, append-only event log that the test kubelet and
// the vLLM simulators write to as things happen, and pure replays of it that check the serving
// invariant. Checking from two reads (pods through the API, adapters through HTTP) taken at different
// moments misses short windows and can report ones that never existed; this log has one clock
// (performance.now, monotonic) and one order (append order, `seq`), so a replay sees every window.
//
// Who writes what:
//   - the test kubelet: `pod-ready` when a write of the pod's status with a new Ready value succeeds
//     (or the server already holds it), with the pod's labels; `pod-gone` when it starts tearing a pod
//     down (deleted, terminal, or the kubelet stops): from then on the pod serves nothing;
//   - each simulator (under its pod's key): `sim-serving` when it starts listening (with the adapters
//     it holds then: the static --lora-modules), `adapter-loaded` when a load has registered the
//     adapter (the moment it appears in /v1/models), `adapter-lost` when one goes (unload through the
//     API, `unloadDirect`, or the server stopping), `sim-stopped` when the process dies.
//
// The invariant (adapterViolations): a Ready pod whose simulator is running holds every adapter that
// any other Ready, running pod of the same deployment holds. A restarted container that is not Ready
// yet is out of scope; a Ready pod that lacks an adapter its peers serve is a violation for exactly
// the time it lasts.
import { performance } from 'node:perf_hooks';

/** Why an adapter went away. */
export type LossCause = 'unload' | 'unload-direct' | 'stopped';

/** The events of the log, each with its time (`at`, performance.now ms) and append order (`seq`). */
export type TimelineEvent =
  | {
      seq: number;
      at: number;
      kind: 'pod-ready';
      pod: string;
      ready: boolean;
      labels: Record<string, string>;
    }
  | { seq: number; at: number; kind: 'pod-gone'; pod: string }
  | { seq: number; at: number; kind: 'sim-serving'; pod: string; adapters: string[] }
  | { seq: number; at: number; kind: 'sim-stopped'; pod: string }
  | { seq: number; at: number; kind: 'adapter-loaded'; pod: string; adapter: string }
  | { seq: number; at: number; kind: 'adapter-lost'; pod: string; adapter: string; cause: LossCause }
  | { seq: number; at: number; kind: 'note'; text: string };

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** What append takes: an event without `seq`; `at` defaults to now. */
export type TimelineInput = DistributiveOmit<TimelineEvent, 'seq' | 'at'> & { at?: number };

/** The append-only log. */
export class Timeline {
  readonly #events: TimelineEvent[] = [];
  readonly #clock: () => number;

  /** `clock`: milliseconds, monotonic; default performance.now. */
  constructor(clock: () => number = () => performance.now()) {
    this.#clock = clock;
  }

  /** The time on this log's clock; pass it as `since` to check only what follows. */
  now(): number {
    return this.#clock();
  }

  append(e: TimelineInput): TimelineEvent {
    const event: TimelineEvent = { ...e, seq: this.#events.length + 1, at: e.at ?? this.#clock() };
    this.#events.push(event);
    return event;
  }

  /** A free-text marker (e.g. "member added"), to find one's way in a printed log. */
  note(text: string): void {
    this.append({ kind: 'note', text });
  }

  /** Every event so far (a copy), or those at or after `since`. */
  events(since?: number): TimelineEvent[] {
    return since === undefined ? [...this.#events] : this.#events.filter((e) => e.at >= since);
  }

  get size(): number {
    return this.#events.length;
  }
}

/** Every test kubelet and simulator of this process logs here unless given another Timeline. */
export const sharedTimeline = new Timeline();

/** A pod as the replay knows it: its key and its labels as last logged by the kubelet. */
export interface TimelinePod {
  /** "namespace/name" */
  key: string;
  namespace: string;
  name: string;
  labels: Readonly<Record<string, string>>;
}

/** The label the operator puts on the pods of a StackedDeployment. */
export const DEPLOYMENT_LABEL = 'serving.stacked.dev/deployment';

/** Groups pods by namespace and the value of a label; pods without it belong to no group. */
export function byLabel(label: string = DEPLOYMENT_LABEL): (pod: TimelinePod) => string | undefined {
  return (pod) => {
    const v = pod.labels[label];
    return v === undefined ? undefined : `${pod.namespace}/${v}`;
  };
}

export interface ReplayOptions {
  /** Only these pods take part: a key prefix (e.g. "ns/") or a predicate on the key. Default: all. */
  pods?: string | ((podKey: string) => boolean);
  /** Only these adapters are checked. Default: every adapter. */
  adapters?: Iterable<string>;
  /** Report only windows that are open at or after this time (state is still built from the start). */
  since?: number;
  /** Replay only events up to this time; windows open then end with `to: undefined`. */
  until?: number;
  /** Ignore windows shorter than this (closed ones only). Default 0: every window counts. */
  minWindowMs?: number;
}

export interface InvariantOptions extends ReplayOptions {
  /** The deployment a pod belongs to; pods mapped to undefined are not checked. Default: byLabel(). */
  groupOf?: (pod: TimelinePod) => string | undefined;
}

/** A Ready, running pod that lacked an adapter, and for how long. */
export interface Violation {
  pod: string;
  adapter: string;
  /** When it began (log time). */
  from: number;
  /** When it ended; undefined when still open at the end of the replay. */
  to: number | undefined;
  /** Ready, running pods of its group that held the adapter when the window opened (empty for missingAdapters). */
  heldBy: string[];
  /** Its group (adapterViolations), or undefined (missingAdapters). */
  group: string | undefined;
}

interface PodTrack {
  pod: TimelinePod;
  ready: boolean;
  running: boolean;
  adapters: Set<string>;
}

/** What the log says serves at each instant: applies events in time order, batch by batch. */
function replay(
  events: readonly TimelineEvent[],
  opts: ReplayOptions,
  violationsNow: (
    active: PodTrack[],
  ) => Map<string, { pod: string; adapter: string; heldBy: string[]; group: string | undefined }>,
): Violation[] {
  const podFilter = opts.pods;
  const takesPart =
    podFilter === undefined
      ? () => true
      : typeof podFilter === 'string'
        ? (key: string) => key.startsWith(podFilter)
        : podFilter;
  const adapterSet = opts.adapters === undefined ? undefined : new Set(opts.adapters);
  const counts = (a: string): boolean => adapterSet === undefined || adapterSet.has(a);
  const sorted = [...events].sort((a, b) => a.at - b.at || a.seq - b.seq);
  const pods = new Map<string, PodTrack>();
  const track = (key: string): PodTrack => {
    let t = pods.get(key);
    if (!t) {
      const slash = key.indexOf('/');
      t = {
        pod: {
          key,
          namespace: slash < 0 ? '' : key.slice(0, slash),
          name: slash < 0 ? key : key.slice(slash + 1),
          labels: {},
        },
        ready: false,
        running: false,
        adapters: new Set(),
      };
      pods.set(key, t);
    }
    return t;
  };
  const open = new Map<string, Violation>();
  const done: Violation[] = [];
  let i = 0;
  while (i < sorted.length) {
    const at = sorted[i]!.at;
    if (opts.until !== undefined && at > opts.until) break;
    for (; i < sorted.length && sorted[i]!.at === at; i++) {
      const e = sorted[i]!;
      if (e.kind === 'note' || !takesPart(e.pod)) continue;
      const t = track(e.pod);
      switch (e.kind) {
        case 'pod-ready':
          t.ready = e.ready;
          t.pod = { ...t.pod, labels: { ...e.labels } };
          break;
        case 'pod-gone':
          t.ready = false;
          t.running = false;
          t.adapters.clear();
          break;
        case 'sim-serving':
          t.running = true;
          t.adapters = new Set(e.adapters.filter(counts));
          break;
        case 'sim-stopped':
          t.running = false;
          t.adapters.clear();
          break;
        case 'adapter-loaded':
          if (counts(e.adapter)) t.adapters.add(e.adapter);
          break;
        case 'adapter-lost':
          t.adapters.delete(e.adapter);
          break;
      }
    }
    const now = violationsNow([...pods.values()].filter((t) => t.ready && t.running));
    for (const [k, v] of open) {
      if (now.has(k)) continue;
      open.delete(k);
      v.to = at;
      done.push(v);
    }
    for (const [k, v] of now) {
      if (!open.has(k)) open.set(k, { ...v, from: at, to: undefined });
    }
  }
  const all = [...done, ...open.values()];
  return all
    .filter((v) => opts.since === undefined || v.to === undefined || v.to > opts.since)
    .filter((v) => v.to === undefined || v.to - v.from >= (opts.minWindowMs ?? 0))
    .sort((a, b) => a.from - b.from || a.pod.localeCompare(b.pod) || a.adapter.localeCompare(b.adapter));
}

/**
 * The violations of "a Ready pod whose simulator is running holds every adapter that any other Ready,
 * running pod of the same deployment holds", replayed from the log: one per pod, adapter and window.
 */
export function adapterViolations(
  events: readonly TimelineEvent[],
  opts: InvariantOptions = {},
): Violation[] {
  const groupOf = opts.groupOf ?? byLabel();
  return replay(events, opts, (active) => {
    const groups = new Map<string, PodTrack[]>();
    for (const t of active) {
      const g = groupOf(t.pod);
      if (g === undefined) continue;
      const list = groups.get(g) ?? [];
      list.push(t);
      groups.set(g, list);
    }
    const out = new Map<
      string,
      { pod: string; adapter: string; heldBy: string[]; group: string | undefined }
    >();
    for (const [group, members] of groups) {
      const union = new Set(members.flatMap((t) => [...t.adapters]));
      for (const t of members) {
        for (const adapter of union) {
          if (t.adapters.has(adapter)) continue;
          const heldBy = members.filter((m) => m.adapters.has(adapter)).map((m) => m.pod.key);
          out.set(`${t.pod.key}\0${adapter}`, { pod: t.pod.key, adapter, heldBy, group });
        }
      }
    }
    return out;
  });
}

/** The windows in which a Ready, running pod (of those `opts.pods` selects) lacked one of `adapters`. */
export function missingAdapters(
  events: readonly TimelineEvent[],
  adapters: Iterable<string>,
  opts: Omit<ReplayOptions, 'adapters'> = {},
): Violation[] {
  const wanted = [...adapters];
  return replay(events, { ...opts, adapters: wanted }, (active) => {
    const out = new Map<
      string,
      { pod: string; adapter: string; heldBy: string[]; group: string | undefined }
    >();
    for (const t of active) {
      for (const adapter of wanted) {
        if (!t.adapters.has(adapter)) {
          out.set(`${t.pod.key}\0${adapter}`, { pod: t.pod.key, adapter, heldBy: [], group: undefined });
        }
      }
    }
    return out;
  });
}

/** Violations as lines for an assertion message, times relative to `origin` (default: the first). */
export function formatViolations(vs: readonly Violation[], origin?: number): string {
  const t0 = origin ?? vs[0]?.from ?? 0;
  const ms = (t: number): string => `${(t - t0).toFixed(1)} ms`;
  return vs
    .map(
      (v) =>
        `${v.pod} lacked ${v.adapter} from ${ms(v.from)} to ${v.to === undefined ? 'the end' : ms(v.to)}` +
        (v.heldBy.length > 0 ? ` (held by ${v.heldBy.join(', ')})` : ''),
    )
    .join('\n');
}

/** The log as lines (for a failing test's output), optionally only the pods a filter selects. */
export function formatTimeline(events: readonly TimelineEvent[], pods?: ReplayOptions['pods']): string {
  const takesPart =
    pods === undefined ? () => true : typeof pods === 'string' ? (k: string) => k.startsWith(pods) : pods;
  const t0 = events[0]?.at ?? 0;
  return events
    .filter((e) => e.kind === 'note' || takesPart(e.pod))
    .map((e) => {
      const head = `${(e.at - t0).toFixed(1).padStart(9)} ms`;
      switch (e.kind) {
        case 'pod-ready':
          return `${head} ${e.pod} Ready=${e.ready ? 'True' : 'False'}`;
        case 'pod-gone':
          return `${head} ${e.pod} gone`;
        case 'sim-serving':
          return `${head} ${e.pod} serving [${e.adapters.join(', ')}]`;
        case 'sim-stopped':
          return `${head} ${e.pod} stopped`;
        case 'adapter-loaded':
          return `${head} ${e.pod} loaded ${e.adapter}`;
        case 'adapter-lost':
          return `${head} ${e.pod} lost ${e.adapter} (${e.cause})`;
        case 'note':
          return `${head} -- ${e.text}`;
      }
    })
    .join('\n');
}
