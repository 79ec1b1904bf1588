import {
  KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
  type RequestContext,
  V1ObjectMeta,
  Watch,
} from '@kubernetes/client-node';
import { type Clock, systemClock } from './clock.ts';
import { apiErrorCode, errorMeta } from './errors.ts';
import { objectKey } from './keys.ts';
import type { Logger } from './logger.ts';

/** The object events an {@link Informer} delivers. */
export type InformerEvent = 'add' | 'update' | 'delete';

/** An event handler; oldObj is the previous cached state on 'update' (and on 'delete' if known). */
export type InformerHandler<T> = (obj: T, oldObj?: T) => void;

/**
 * Accept header of a LIST that asks the API server for metadata only: items come back as
 * meta.k8s.io/v1 PartialObjectMetadata (name, namespace, uid, resourceVersion, labels, ...), never
 * their data. Pass it to a generated list call with `setHeaderOptions('Accept', ...)`.
 */
export const METADATA_LIST_ACCEPT = 'application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1';

/** Accept header of a WATCH whose events carry PartialObjectMetadata (see {@link METADATA_LIST_ACCEPT}). */
export const METADATA_WATCH_ACCEPT = 'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1';

/**
 * One list-then-watch session as the Informer drives it. The default is {@link ListThenWatch};
 * unit tests substitute a scripted fake.
 */
export interface ListWatchLike<T extends KubernetesObject> {
  /** Watch events. */
  on(verb: 'add' | 'update' | 'delete', cb: (obj: T) => void): void;
  /** 'error': the session has stopped for good; 'connect': it is (re)listing or (re)watching. */
  on(verb: 'error' | 'connect', cb: (err?: unknown) => void): void;
  /** Lists (when it has no resourceVersion to resume from) and starts watching. */
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
  /**
   * Accept header of the watch request, e.g. {@link METADATA_WATCH_ACCEPT} for a metadata-only
   * informer (whose list function must then send {@link METADATA_LIST_ACCEPT}).
   */
  watchAccept?: string;
  /**
   * Reduces an object before it is cached and handed to handlers (client-go's SetTransform): what
   * it drops is never kept in memory. Runs before apiVersion/kind stamping. `metadata.managedFields`
   * is dropped from every object whatever the transform (client-go's TransformStripManagedFields):
   * nothing here reads it, and it is often the largest part of an object.
   */
  transform?: (obj: T) => T;
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
  /** Creates each list-then-watch session; defaults to a {@link ListThenWatch} on client-node's Watch. */
  createListWatch?: (list: () => Promise<KubernetesListObject<T>>) => ListWatchLike<T>;
}

/** After this long without an error the restart backoff starts over (client-go's reflector uses 2 min). */
const BACKOFF_RESET_MS = 120_000;

/** obj without metadata.managedFields, sharing everything else (the caller clones what it keeps). */
export function withoutManagedFields<T extends KubernetesObject>(obj: T): T {
  if (obj.metadata?.managedFields === undefined) return obj;
  const metadata = Object.assign(new V1ObjectMeta(), obj.metadata);
  delete metadata.managedFields;
  return { ...obj, metadata };
}

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
 * The cache is this class's map and nothing else. client-node's ListWatch (makeInformer) keeps a
 * cache of its own, but that one cannot serve: it replaces an object before its 'update' callbacks
 * run and does not pass them the old one, which predicates compare (generationChanged), so keeping
 * the old state took a second map; it stores the very objects its callbacks get, unfrozen, and
 * lists them unsorted; and a ListWatch that replaces a failed one starts empty, so get() would
 * miss everything until its list arrives. So the list and the watch are driven by
 * {@link ListThenWatch}, which keeps only the resourceVersion to resume from.
 *
 * A session relists on 410 and resumes after a clean close by itself; any other error ends it, and
 * the informer replaces it by a fresh session (full relist) after an exponential backoff with
 * jitter; a watchdog does the same when the watch has been silent too long. Every list is
 * reconciled against the cache, so objects deleted while nothing was watching produce 'delete'
 * events.
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
    return new ListThenWatch<T>({
      watch: watchClient(this.opts.kc, this.opts.watchAccept),
      path: this.opts.path,
      list,
      labelSelector: this.opts.labelSelector,
      clock: this.clock,
    });
  }

  /** Replaces the current session by a fresh one, which always begins with a full list. */
  private launch(): void {
    this.stopListWatch(this.current);
    const gen = ++this.generation;
    const live = (): boolean => gen === this.generation;
    const lw = this.createListWatch(async () => {
      const list = await this.opts.list();
      // A superseded session would go on to open a watch after its list; failing it ends it.
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
      // A superseded session that was mid-connect when stopped can still open a watch; stop it again.
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
    // Transform first, so what it drops is never cloned, let alone cached.
    const copy = structuredClone(withoutManagedFields(this.opts.transform ? this.opts.transform(obj) : obj));
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
    // A relist (and a test fake) replays objects we already hold; same version means no news.
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

/**
 * client-node's Watch, sending `accept` as the Accept header. The Watch builds its request headers
 * from KubeConfig.applySecurityAuthentication alone (undici then sends Accept: *\/*), and of the
 * config it calls only that and getCurrentCluster, so a KubeConfig that delegates both to the real
 * one and adds the header is the seam for a metadata-only watch.
 */
function watchClient(kc: KubeConfig, accept: string | undefined): Watch {
  if (accept === undefined) return new Watch(kc);
  return new Watch(new AcceptHeaderConfig(kc, accept));
}

class AcceptHeaderConfig extends KubeConfig {
  private readonly base: KubeConfig;
  private readonly accept: string;

  constructor(base: KubeConfig, accept: string) {
    super();
    this.base = base;
    this.accept = accept;
  }

  override getCurrentCluster(): ReturnType<KubeConfig['getCurrentCluster']> {
    return this.base.getCurrentCluster();
  }

  override async applySecurityAuthentication(context: RequestContext): Promise<void> {
    await this.base.applySecurityAuthentication(context);
    context.setHeaderParam('Accept', this.accept);
  }
}

/** Options for {@link ListThenWatch}. */
export interface ListThenWatchOptions<T extends KubernetesObject> {
  /** client-node's Watch (the HTTP stream and its inactivity timeout; it keeps no objects). */
  watch: Pick<Watch, 'watch'>;
  /** Collection URL path to watch. */
  path: string;
  /** Lists the collection; the list's resourceVersion is where the watch starts. */
  list: () => Promise<KubernetesListObject<T>>;
  /** Label selector of the watch (the list function applies the same one). */
  labelSelector?: string | undefined;
  /** Timers for the delay between reconnects. */
  clock: Clock;
}

/** Delays between reconnects after watches that ended without an event (client-node's ListWatch values). */
const RECONNECT_BASE_MS = 1000;
const RECONNECT_MAX_MS = 30_000;

/**
 * Lists a collection, then watches it from the list's resourceVersion: the protocol of client-node's
 * ListWatch, without its object cache (the Informer's map is the only one). It keeps nothing but the
 * resourceVersion to resume from. The list function's result is not replayed as events: the
 * Informer's list wrapper loads (and reconciles) it itself.
 *
 * - A clean close (the server's watch timeout) or the Watch's client-side inactivity timeout
 *   resumes from the last resourceVersion; after watches that delivered nothing, with a delay that
 *   doubles from 1 s to 30 s, so a server that closes at once is not hammered.
 * - 410 Gone (in the stream or as the response) forgets the resourceVersion: the next connect
 *   relists.
 * - Bookmarks are requested: they advance the resourceVersion of a quiet watch, so a reconnect is
 *   less likely to be too old and need a relist.
 * - Any other error emits 'error' and ends the session; the Informer starts a fresh one.
 */
export class ListThenWatch<T extends KubernetesObject> implements ListWatchLike<T> {
  private readonly opts: ListThenWatchOptions<T>;
  private readonly cbs: {
    add: ((obj: T) => void)[];
    update: ((obj: T) => void)[];
    delete: ((obj: T) => void)[];
    error: ((err?: unknown) => void)[];
    connect: ((err?: unknown) => void)[];
  } = { add: [], update: [], delete: [], error: [], connect: [] };
  private resourceVersion = '';
  private stopped = false;
  /** Numbers each connect; callbacks of an earlier one (a stream being torn down) are ignored. */
  private attempt = 0;
  private request: AbortController | undefined;
  private reconnectDelayMs = 0;
  private reconnectTimer: unknown;

  constructor(opts: ListThenWatchOptions<T>) {
    this.opts = opts;
  }

  on(verb: 'add' | 'update' | 'delete', cb: (obj: T) => void): void;
  on(verb: 'error' | 'connect', cb: (err?: unknown) => void): void;
  on(verb: 'add' | 'update' | 'delete' | 'error' | 'connect', cb: (arg: never) => void): void {
    (this.cbs[verb] as ((arg: never) => void)[]).push(cb);
  }

  start(): Promise<void> {
    return this.connect();
  }

  stop(): Promise<void> {
    this.stopped = true;
    this.attempt++;
    if (this.reconnectTimer !== undefined) this.opts.clock.clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    this.request?.abort();
    this.request = undefined;
    return Promise.resolve();
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    const attempt = ++this.attempt;
    for (const cb of this.cbs.connect) cb();
    try {
      if (this.resourceVersion === '') {
        const list = await this.opts.list();
        if (attempt !== this.attempt) return;
        this.resourceVersion = list.metadata?.resourceVersion ?? '';
      }
      const query: Record<string, string> = {
        resourceVersion: this.resourceVersion,
        allowWatchBookmarks: 'true',
      };
      if (this.opts.labelSelector !== undefined) query['labelSelector'] = this.opts.labelSelector;
      const request = await this.opts.watch.watch(
        this.opts.path,
        query,
        (phase: string, obj: unknown) => {
          this.onEvent(attempt, phase, obj);
        },
        (err: unknown) => {
          this.onDone(attempt, err);
        },
      );
      // Stopped while the response headers were awaited (or already done, then aborting is a no-op).
      if (attempt === this.attempt) this.request = request;
      else request.abort();
    } catch (err) {
      this.fail(attempt, err);
    }
  }

  private onEvent(attempt: number, phase: string, obj: unknown): void {
    if (attempt !== this.attempt || typeof obj !== 'object' || obj === null) return;
    const o = obj as T;
    switch (phase) {
      case 'ADDED':
        for (const cb of this.cbs.add) cb(o);
        break;
      case 'MODIFIED':
        for (const cb of this.cbs.update) cb(o);
        break;
      case 'DELETED':
        for (const cb of this.cbs.delete) cb(o);
        break;
      case 'BOOKMARK':
        break;
      case 'ERROR':
        // A metav1.Status; the server ends the stream after it. 410: our version is too old.
        if (apiErrorCode(obj) === 410) this.resourceVersion = '';
        return;
      default:
        return;
    }
    this.reconnectDelayMs = 0;
    const rv = o.metadata?.resourceVersion;
    if (rv !== undefined && rv !== '') this.resourceVersion = rv;
  }

  private onDone(attempt: number, err: unknown): void {
    if (attempt !== this.attempt || this.stopped) return;
    this.request = undefined;
    let delayMs = this.reconnectDelayMs;
    if (isTimeout(err)) {
      // The Watch gave up on a silent stream after its inactivity timeout, which already throttled us.
      delayMs = 0;
    } else if (err !== null && err !== undefined) {
      if (apiErrorCode(err) !== 410) {
        this.fail(attempt, err);
        return;
      }
      this.resourceVersion = '';
    }
    this.reconnectDelayMs = Math.min(delayMs > 0 ? delayMs * 2 : RECONNECT_BASE_MS, RECONNECT_MAX_MS);
    if (delayMs === 0) {
      void this.connect();
      return;
    }
    this.reconnectTimer = this.opts.clock.setTimeout(() => {
      this.reconnectTimer = undefined;
      void this.connect();
    }, delayMs);
  }

  private fail(attempt: number, err: unknown): void {
    if (attempt !== this.attempt || this.stopped) return;
    this.stopped = true;
    for (const cb of this.cbs.error) cb(err);
  }
}

/** The Watch's inactivity timeout: a DOMException named TimeoutError (duck-typed, as errors.ts does). */
function isTimeout(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { name?: unknown }).name === 'TimeoutError';
}
