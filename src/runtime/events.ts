import { hostname } from 'node:os';
import {
  CoreV1Api,
  CoreV1Event,
  type KubeConfig,
  type KubernetesObject,
  PatchStrategy,
  setHeaderOptions,
  V1ObjectReference,
} from '@kubernetes/client-node';
import { systemWallClock, type WallClock } from './clock.ts';
import { rfc3339 } from './conditions.ts';
import { errorMeta, isNotFound } from './errors.ts';
import type { Logger } from './logger.ts';
import { model } from './model.ts';

/** The subset of CoreV1Api the recorder uses (a seam for tests). */
export type EventsApi = Pick<CoreV1Api, 'createNamespacedEvent' | 'patchNamespacedEvent'>;

/** Options for {@link EventRecorder}. */
export interface EventRecorderOptions {
  /** Cluster access. */
  kc: KubeConfig;
  /** source.component / reportingComponent of our Events, e.g. "stacked-operator". */
  component: string;
  /** Logger for failures to record (Events are best effort). */
  logger: Logger;
  /** Time source. */
  clock?: WallClock;
  /** reportingInstance and source.host; defaults to the host name (the pod name in a cluster). */
  instance?: string;
  /** Client to use instead of one made from kc. */
  api?: EventsApi;
}

/** Longer messages are cut: Events live in etcd and are read by humans. */
export const MAX_EVENT_MESSAGE = 1024;
/** Aggregation entries kept (least recently used dropped first), like client-go's LRU of 4096. */
const MAX_SEEN = 4096;
/** Per-object spam filter like client-go's: a burst of 25 Events, then one per 5 minutes. */
const SPAM_BURST = 25;
const SPAM_REFILL_MS = 300_000;

interface Seen {
  namespace: string;
  name: string;
  count: number;
}

function setLru<V>(map: Map<string, V>, key: string, value: V, max: number): void {
  map.delete(key);
  map.set(key, value);
  if (map.size > max) {
    const oldest = map.keys().next();
    if (oldest.done !== true) map.delete(oldest.value);
  }
}

function truncate(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max - 3)}...`;
}

/**
 * Records core/v1 Events about our objects, so `kubectl describe` shows what happened and why.
 *
 * record() is fire-and-forget and never throws: failing to write an Event must never fail a
 * reconcile. Repeats of the same (object, type, reason, message) are aggregated like client-go's
 * EventCorrelator: the existing Event's count and lastTimestamp are patched instead of creating
 * a new Event each time a failing reconcile retries. Writes for one aggregation key are serialised,
 * so a burst of repeats counts correctly. Logs carry the reason and the error code only, never the
 * message, which may quote user data.
 */
export class EventRecorder {
  private readonly api: EventsApi;
  private readonly component: string;
  private readonly instance: string;
  private readonly log: Logger;
  private readonly clock: WallClock;
  private readonly seen = new Map<string, Seen>();
  private readonly chains = new Map<string, Promise<void>>();
  private readonly buckets = new Map<string, { tokens: number; last: number }>();

  /** Creates a recorder. */
  constructor(opts: EventRecorderOptions) {
    this.api = opts.api ?? opts.kc.makeApiClient(CoreV1Api);
    this.component = opts.component;
    this.instance = opts.instance ?? hostname();
    this.log = opts.logger.child({ component: 'events' });
    this.clock = opts.clock ?? systemWallClock;
  }

  /** Records an Event about obj in the background. */
  record(obj: KubernetesObject, type: 'Normal' | 'Warning', reason: string, message: string): void {
    try {
      const ref = this.reference(obj);
      if (!ref.name) {
        this.log.warn('event about an unnamed object dropped', { eventReason: reason });
        return;
      }
      const objKey =
        ref.uid ?? `${ref.apiVersion ?? ''}/${ref.kind ?? ''}/${ref.namespace ?? ''}/${ref.name}`;
      if (!this.allow(objKey)) {
        this.log.debug('event dropped by spam filter', { eventReason: reason, object: ref.name });
        return;
      }
      const msg = truncate(message, MAX_EVENT_MESSAGE);
      const key = JSON.stringify([objKey, type, reason, msg]);
      // Stamped now, not when the write gets its turn behind earlier writes of the same key.
      const at = this.clock();
      const next = (this.chains.get(key) ?? Promise.resolve())
        .then(() => this.write(key, ref, type, reason, msg, at))
        .catch((err: unknown) => {
          this.log.warn('failed to record event', {
            eventReason: reason,
            eventType: type,
            object: ref.name,
            ...errorMeta(err),
          });
        });
      this.chains.set(key, next);
      void next.then(() => {
        if (this.chains.get(key) === next) this.chains.delete(key);
      });
    } catch (err) {
      this.log.warn('failed to record event', { eventReason: reason, ...errorMeta(err) });
    }
  }

  /** Waits until the Events recorded so far have been written (or failed); for tests and shutdown. */
  async flush(): Promise<void> {
    while (this.chains.size > 0) await Promise.all([...this.chains.values()]);
  }

  private reference(obj: KubernetesObject): V1ObjectReference {
    const m = obj.metadata;
    const ref = new V1ObjectReference();
    if (obj.apiVersion !== undefined) ref.apiVersion = obj.apiVersion;
    if (obj.kind !== undefined) ref.kind = obj.kind;
    if (m?.name !== undefined) ref.name = m.name;
    if (m?.namespace !== undefined) ref.namespace = m.namespace;
    if (m?.uid !== undefined) ref.uid = m.uid;
    if (m?.resourceVersion !== undefined) ref.resourceVersion = m.resourceVersion;
    return ref;
  }

  /** Token bucket per object, so one object failing in a tight loop cannot flood etcd with writes. */
  private allow(objKey: string): boolean {
    const now = this.clock().getTime();
    const b = this.buckets.get(objKey) ?? { tokens: SPAM_BURST, last: now };
    b.tokens = Math.min(SPAM_BURST, b.tokens + Math.max(0, now - b.last) / SPAM_REFILL_MS);
    b.last = now;
    const ok = b.tokens >= 1;
    if (ok) b.tokens -= 1;
    setLru(this.buckets, objKey, b, MAX_SEEN);
    return ok;
  }

  private async write(
    key: string,
    ref: V1ObjectReference,
    type: string,
    reason: string,
    message: string,
    now: Date,
  ): Promise<void> {
    const prev = this.seen.get(key);
    if (prev !== undefined) {
      try {
        await this.api.patchNamespacedEvent(
          {
            name: prev.name,
            namespace: prev.namespace,
            body: { count: prev.count + 1, lastTimestamp: rfc3339(now) },
          },
          setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
        );
        prev.count++;
        setLru(this.seen, key, prev, MAX_SEEN);
        return;
      } catch (err) {
        // Events expire (1 h by default); start a new one then.
        if (!isNotFound(err)) throw err;
        this.seen.delete(key);
      }
    }
    // Cluster-scoped objects get their Events in "default", as the API server requires.
    const namespace = ref.namespace ?? 'default';
    const seconds = new Date(Math.floor(now.getTime() / 1000) * 1000);
    // Same naming as client-go (<object>.<hex time>), plus randomness against collisions between replicas.
    const suffix = `${now.getTime().toString(16)}${Math.floor(Math.random() * 0x10000)
      .toString(16)
      .padStart(4, '0')}`;
    const name = `${(ref.name ?? '').slice(0, 253 - suffix.length - 1)}.${suffix}`;
    const body = model(CoreV1Event, {
      metadata: { name, namespace },
      involvedObject: ref,
      type,
      reason,
      message,
      count: 1,
      firstTimestamp: seconds,
      lastTimestamp: seconds,
      source: { component: this.component, host: this.instance },
      reportingComponent: this.component,
      reportingInstance: this.instance.slice(0, 128),
    });
    await this.api.createNamespacedEvent({ namespace, body });
    setLru(this.seen, key, { namespace, name, count: 1 }, MAX_SEEN);
  }
}
