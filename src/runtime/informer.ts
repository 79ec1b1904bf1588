import {
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
  makeInformer,
} from '@kubernetes/client-node';
import { type Clock, systemClock } from './clock.ts';
import { errorMeta } from './errors.ts';
import { objectKey } from './keys.ts';
import type { Logger } from './logger.ts';

/** The object events an {@link Informer} delivers. */
export type InformerEvent = 'add' | 'update' | 'delete';

/** An event handler; oldObj is the previous cached state on 'update' (and on 'delete' if known). */
export type InformerHandler<T> = (obj: T, oldObj?: T) => void;

/**
 * The part of client-node's ListWatch (as returned by makeInformer) that the Informer drives.
 * A seam for unit tests, which substitute a scripted fake.
 */
export interface ListWatchLike<T extends KubernetesObject> {
  /** Object events. */
  on(verb: 'add' | 'update' | 'delete', cb: (obj: T) => void): void;
  /** 'error': the ListWatch has stopped for good; 'connect': it is (re)listing or (re)watching. */
  on(verb: 'error' | 'connect', cb: (err?: unknown) => void): void;
  /** Lists (when it has no resourceVersion) and starts watching. */
  start(): Promise<void>;
  /** Aborts the watch and keeps it from reconnecting. */
  stop(): Promise<void>;
}

/** Options for {@link Informer}. */
export interface InformerOptions<T extends KubernetesObject> {
  /** Cluster access for the watch. */
  kc: KubeConfig;
  /** Collection URL path to watch, e.g. /apis/apps/v1/deployments or /api/v1/namespaces/ns/pods. */
  path: string;
  /** Lists the collection (same selector as the watch); must return the list's resourceVersion. */
  list: () => Promise<KubernetesListObject<T>>;
  /** Label selector for the watch (the list function must apply the same one). */
  labelSelector?: string;
  /** Logger; the informer adds {informer: path}. */
  logger: Logger;
  /** Restart the list+watch when nothing (event or reconnect) was seen for this long. Default 300 s; 0 disables. */
  watchdogMs?: number;
  /** Backoff between restarts after an error; default 1 s doubling to 60 s, with jitter. */
  backoff?: { initialMs?: number; maxMs?: number };
  /**
   * Sets apiVersion/kind on cached objects that lack them. Items of a LIST response carry no kind,
   * while watch events do; stamping makes every cached object usable for ownerReferences and Events.
   */
  apiVersion?: string;
  /** See apiVersion. */
  kind?: string;
  /** Time source for backoff and watchdog timers. */
  clock?: Clock;
  /** Randomness for the backoff jitter, in [0, 1). */
  random?: () => number;
  /** Creates the underlying ListWatch; defaults to client-node's makeInformer. */
  createListWatch?: (list: () => Promise<KubernetesListObject<T>>) => ListWatchLike<T>;
}

/** After this long without an error the restart backoff starts over (client-go's reflector uses 2 min). */
const BACKOFF_RESET_MS = 120_000;

function deepFreeze<V>(v: V): V {
  if (typeof v === 'object' && v !== null && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const child of Object.values(v)) deepFreeze(child);
  }
  return v;
}

function sameVersion(a: KubernetesObject, b: KubernetesObject): boolean {
  const rv = a.metadata?.resourceVersion;
  return rv !== undefined && rv !== '' && rv === b.metadata?.resourceVersion;
}

interface Index<T> {
  fn: (obj: T) => string[];
  byValue: Map<string, Set<string>>;
  valuesOf: Map<string, string[]>;
}

/**
 * A cache of one kind kept current by list+watch, with event handlers and secondary indexes.
 *
 * It wraps client-node 2.0.1's ListWatch and covers what that lacks: the ListWatch relists on 410
 * by itself, but any other error stops it for good, so a failed ListWatch is replaced by a fresh one
 * (full relist) after an exponential backoff with jitter; a watchdog does the same when the watch
 * has been silent too long. The informer keeps its own cache and reconciles it against every list,
 * so objects deleted while it was not watching produce 'delete' events.
 *
 * Cached objects are deep-frozen copies, shared by handlers and get()/list(): a reconciler that
 * tries to modify one gets a TypeError instead of silently corrupting the cache, so clone
 * (structuredClone) before editing.
 */
export class Informer<T extends KubernetesObject> {
  private readonly opts: InformerOptions<T>;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly watchdogMs: number;
  private readonly initialBackoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly handlers: Record<InformerEvent, InformerHandler<T>[]> = {
    add: [],
    update: [],
    delete: [],
  };
  private readonly cache = new Map<string, T>();
  private readonly indexes = new Map<string, Index<T>>();
  private generation = 0;
  private current: ListWatchLike<T> | undefined;
  private started = false;
  private stopped = false;
  private synced = false;
  private readonly syncedPromise: Promise<void>;
  private resolveSynced: () => void = () => undefined;
  private rejectSynced: (err: Error) => void = () => undefined;
  private restartTimer: unknown;
  private watchdogTimer: unknown;
  private lastActivity = 0;
  private failures = 0;
  private lastFailureAt = Number.NEGATIVE_INFINITY;

  /** Creates a stopped informer; register handlers and indexes, then start(). */
  constructor(opts: InformerOptions<T>) {
    this.opts = opts;
    this.log = opts.logger.child({ informer: opts.path });
    this.clock = opts.clock ?? systemClock;
    this.random = opts.random ?? Math.random;
    this.watchdogMs = opts.watchdogMs ?? 300_000;
    this.initialBackoffMs = opts.backoff?.initialMs ?? 1000;
    this.maxBackoffMs = opts.backoff?.maxMs ?? 60_000;
    this.syncedPromise = new Promise<void>((resolve, reject) => {
      this.resolveSynced = resolve;
      this.rejectSynced = reject;
    });
    // start() callers get the rejection; this keeps an unawaited one from crashing the process.
    this.syncedPromise.catch(() => undefined);
  }

  /** Registers a handler. Handlers run synchronously in the event path: only enqueue keys there. */
  on(event: InformerEvent, handler: InformerHandler<T>): void {
    this.handlers[event].push(handler);
  }

  /**
   * Starts list+watch; resolves once the first list is in the cache. Keeps retrying (with backoff)
   * while listing fails, and rejects if stop() is called before that. Calling it again returns the
   * same promise.
   */
  start(): Promise<void> {
    if (this.stopped) return Promise.reject(new Error(`informer ${this.opts.path} was stopped`));
    if (!this.started) {
      this.started = true;
      this.lastActivity = this.clock.now();
      this.launch();
      this.scheduleWatchdog();
    }
    return this.syncedPromise;
  }

  /** Stops watching for good; the cache keeps its last contents. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.generation++;
    if (this.restartTimer !== undefined) this.clock.clearTimeout(this.restartTimer);
    if (this.watchdogTimer !== undefined) this.clock.clearTimeout(this.watchdogTimer);
    this.restartTimer = this.watchdogTimer = undefined;
    this.stopListWatch(this.current);
    this.current = undefined;
    if (!this.synced) this.rejectSynced(new Error(`informer ${this.opts.path} stopped before it synced`));
  }

  /** True once the first list has been loaded into the cache. */
  hasSynced(): boolean {
    return this.synced;
  }

  /** The cached object with key "namespace/name" (or "name" when cluster-scoped). */
  get(key: string): T | undefined {
    return this.cache.get(key);
  }

  /** All cached objects, or those of one namespace, sorted by key so callers get a stable order. */
  list(namespace?: string): T[] {
    const out: [string, T][] = [];
    for (const [key, obj] of this.cache) {
      if (namespace === undefined || (obj.metadata?.namespace ?? '') === namespace) out.push([key, obj]);
    }
    return out.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).map(([, obj]) => obj);
  }

  /**
   * Adds a secondary index: fn returns the index values of an object (e.g. "ns/groupName"). May be
   * called before or after start(); an existing cache is indexed at once.
   */
  addIndex(name: string, fn: (obj: T) => string[]): void {
    if (this.indexes.has(name)) throw new Error(`index ${name} already exists`);
    const index: Index<T> = { fn, byValue: new Map(), valuesOf: new Map() };
    this.indexes.set(name, index);
    for (const [key, obj] of this.cache) this.indexOne(index, key, obj);
  }

  /** Cached objects whose index `name` contains value, sorted by key. Throws for an unknown index. */
  byIndex(name: string, value: string): T[] {
    const index = this.indexes.get(name);
    if (index === undefined) throw new Error(`no index named ${name}`);
    const keys = [...(index.byValue.get(value) ?? [])].sort();
    const out: T[] = [];
    for (const key of keys) {
      const obj = this.cache.get(key);
      if (obj !== undefined) out.push(obj);
    }
    return out;
  }

  private createListWatch(list: () => Promise<KubernetesListObject<T>>): ListWatchLike<T> {
    if (this.opts.createListWatch) return this.opts.createListWatch(list);
    return makeInformer(this.opts.kc, this.opts.path, list, this.opts.labelSelector);
  }

  /** Replaces the current ListWatch by a fresh one, which always begins with a full list. */
  private launch(): void {
    this.stopListWatch(this.current);
    const gen = ++this.generation;
    const live = (): boolean => gen === this.generation;
    const lw = this.createListWatch(async () => {
      const list = await this.opts.list();
      // A superseded ListWatch would go on to open a watch after its list; failing it ends it.
      if (!live()) throw new Error('superseded');
      this.replaceAll(list.items);
      return list;
    });
    const guard =
      (fn: (obj: T) => void) =>
      (obj: T): void => {
        if (live()) fn(obj);
        else this.stopListWatch(lw);
      };
    lw.on(
      'add',
      guard((obj) => {
        this.upsert(obj);
      }),
    );
    lw.on(
      'update',
      guard((obj) => {
        this.upsert(obj);
      }),
    );
    lw.on(
      'delete',
      guard((obj) => {
        this.remove(obj);
      }),
    );
    lw.on('connect', () => {
      // A superseded ListWatch that was mid-connect when stopped can still open a watch; stop it again.
      if (live()) this.touch();
      else this.stopListWatch(lw);
    });
    lw.on('error', (err) => {
      this.onError(gen, err);
    });
    this.current = lw;
    lw.start().catch((err: unknown) => {
      this.onError(gen, err);
    });
  }

  private stopListWatch(lw: ListWatchLike<T> | undefined): void {
    lw?.stop().catch(() => undefined);
  }

  private onError(gen: number, err: unknown): void {
    if (gen !== this.generation || this.stopped || this.restartTimer !== undefined) return;
    const delayMs = this.nextBackoff();
    this.log.warn('list/watch failed; restarting', { ...errorMeta(err), delayMs: Math.round(delayMs) });
    this.restartTimer = this.clock.setTimeout(() => {
      this.restartTimer = undefined;
      if (this.stopped) return;
      this.touch();
      this.launch();
    }, delayMs);
  }

  /** Exponential backoff with "equal jitter": a random delay in [d/2, d], d doubling up to max. */
  private nextBackoff(): number {
    const now = this.clock.now();
    if (now - this.lastFailureAt > BACKOFF_RESET_MS) this.failures = 0;
    this.lastFailureAt = now;
    const d = Math.min(this.initialBackoffMs * 2 ** this.failures, this.maxBackoffMs);
    this.failures++;
    return d / 2 + (this.random() * d) / 2;
  }

  private scheduleWatchdog(): void {
    if (this.watchdogMs <= 0 || this.stopped) return;
    const period = Math.max(1000, Math.floor(this.watchdogMs / 4));
    this.watchdogTimer = this.clock.setTimeout(() => {
      this.watchdogTimer = undefined;
      this.checkWatchdog();
      this.scheduleWatchdog();
    }, period);
  }

  private checkWatchdog(): void {
    if (this.stopped || this.restartTimer !== undefined) return;
    const silentMs = this.clock.now() - this.lastActivity;
    if (silentMs < this.watchdogMs) return;
    this.log.warn('watch silent for too long; relisting', { silentMs });
    this.touch();
    this.launch();
  }

  private touch(): void {
    this.lastActivity = this.clock.now();
  }

  private freeze(obj: T): T {
    const copy = structuredClone(obj);
    if (copy.apiVersion === undefined && this.opts.apiVersion !== undefined)
      copy.apiVersion = this.opts.apiVersion;
    if (copy.kind === undefined && this.opts.kind !== undefined) copy.kind = this.opts.kind;
    return deepFreeze(copy);
  }

  /** Makes the cache equal to a fresh list: deletes what vanished, then adds/updates the rest. */
  private replaceAll(items: readonly T[]): void {
    const present = new Set(items.map((item) => objectKey(item)));
    for (const [key, old] of [...this.cache]) {
      if (!present.has(key)) this.removeKey(key, old, old);
    }
    for (const item of items) this.upsert(item);
    this.touch();
    if (!this.synced) {
      this.synced = true;
      this.log.debug('synced', { objects: this.cache.size });
      this.resolveSynced();
    }
  }

  private upsert(obj: T): void {
    this.touch();
    const key = objectKey(obj);
    const old = this.cache.get(key);
    // The ListWatch replays the items of each list we already loaded; same version means no news.
    if (old !== undefined && sameVersion(old, obj)) return;
    const frozen = this.freeze(obj);
    this.cache.set(key, frozen);
    this.reindex(key, frozen);
    if (old === undefined) this.emit('add', frozen);
    else this.emit('update', frozen, old);
  }

  private remove(obj: T): void {
    this.touch();
    const key = objectKey(obj);
    const old = this.cache.get(key);
    if (old === undefined) return;
    this.removeKey(key, this.freeze(obj), old);
  }

  private removeKey(key: string, last: T, old: T): void {
    this.cache.delete(key);
    for (const index of this.indexes.values()) this.unindexOne(index, key);
    this.emit('delete', last, old);
  }

  private reindex(key: string, obj: T): void {
    for (const index of this.indexes.values()) {
      this.unindexOne(index, key);
      this.indexOne(index, key, obj);
    }
  }

  private indexOne(index: Index<T>, key: string, obj: T): void {
    let values: string[];
    try {
      values = [...new Set(index.fn(obj))];
    } catch (err) {
      this.log.error('index function failed', { key, ...errorMeta(err) });
      values = [];
    }
    index.valuesOf.set(key, values);
    for (const v of values) {
      let keys = index.byValue.get(v);
      if (keys === undefined) index.byValue.set(v, (keys = new Set()));
      keys.add(key);
    }
  }

  private unindexOne(index: Index<T>, key: string): void {
    for (const v of index.valuesOf.get(key) ?? []) {
      const keys = index.byValue.get(v);
      keys?.delete(key);
      if (keys?.size === 0) index.byValue.delete(v);
    }
    index.valuesOf.delete(key);
  }

  private emit(event: InformerEvent, obj: T, old?: T): void {
    for (const handler of this.handlers[event]) {
      try {
        handler(obj, old);
      } catch (err) {
        // A throwing handler must not break the cache update or the other handlers.
        this.log.error('informer handler failed', { event, key: objectKey(obj), ...errorMeta(err) });
      }
    }
  }
}
