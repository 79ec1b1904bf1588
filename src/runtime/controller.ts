import type { KubernetesObject } from '@kubernetes/client-node';
import { errorMeta } from './errors.ts';
import type { Informer } from './informer.ts';
import { objectKey } from './keys.ts';
import type { Logger } from './logger.ts';
import type { ControllerMetrics } from './metrics.ts';
import { statusEqual } from './status.ts';
import { type RateLimiterOptions, WorkQueue } from './workqueue.ts';

/** Key helpers live in keys.ts (the informer needs them too); re-exported for controllers. */
export { objectKey, splitKey } from './keys.ts';

/** What a reconcile asks for besides success. */
export interface ReconcileResult {
  /** Reconcile this key again after this long (polling something that has no watch event). */
  requeueAfterMs?: number;
}

/**
 * Reconciles the object with key "namespace/name" towards its desired state. signal is aborted when
 * the controller stops or this process loses leadership: pass it to every HTTP call and SDK call,
 * and stop writing once it is aborted (another replica may already be reconciling the same object).
 * A reconciler that ignores it still compiles (fewer parameters), but then only the Kubernetes
 * write fence stops it. void is in the union on purpose: an async reconciler that just returns
 * (nothing to do) must fit without `return undefined`.
 */
export type ReconcileFn = (
  key: string,
  log: Logger,
  signal: AbortSignal,
  // eslint-disable-next-line @typescript-eslint/no-invalid-void-type -- see above
) => Promise<ReconcileResult | undefined | void>;

/** Options for {@link Controller}. */
export interface ControllerOptions {
  /** Name in logs and metrics, e.g. "stackeddeployment". */
  name: string;
  /** The reconcile function. */
  reconcile: ReconcileFn;
  /** Concurrent reconciles (never two for one key). Default 2. */
  workers?: number;
  /** Logger; reconciles get children with {controller, key}. */
  logger: Logger;
  /** Metrics to record into. */
  metrics?: ControllerMetrics;
  /** A preconfigured queue (e.g. with a fake clock in tests). */
  queue?: WorkQueue;
  /** The per-key retry backoff of the queue the controller makes (default: controller-runtime's). */
  rateLimiter?: RateLimiterOptions;
}

/**
 * Binds a reconcile function to a work queue and N workers, with controller-runtime's result
 * handling: success forgets the key's failures (and schedules requeueAfterMs if asked); an error
 * requeues with per-key exponential backoff. A controller is started once and stopped once (the
 * process exits when it loses leadership); stopping aborts the signal every reconcile was given.
 */
export class Controller {
  /** The controller's queue; informer handlers and other controllers add keys to it. */
  readonly queue: WorkQueue;
  /** Name in logs and metrics. */
  readonly name: string;
  private readonly reconcileFn: ReconcileFn;
  private readonly workers: number;
  private readonly log: Logger;
  private readonly metrics: ControllerMetrics | undefined;
  private running: Promise<void>[] | undefined;
  private stopping = false;
  /** Aborted by stop(). */
  private readonly stopped = new AbortController();
  /** What reconciles get: stop(), or the signal given to start() (leadership), whichever first. */
  private signal: AbortSignal = this.stopped.signal;

  /** Creates a stopped controller. */
  constructor(opts: ControllerOptions) {
    this.name = opts.name;
    this.reconcileFn = opts.reconcile;
    this.workers = Math.max(1, opts.workers ?? 2);
    this.log = opts.logger.child({ controller: opts.name });
    this.metrics = opts.metrics;
    const metrics = opts.metrics;
    this.queue =
      opts.queue ??
      new WorkQueue({
        ...(opts.rateLimiter !== undefined ? { rateLimiter: opts.rateLimiter } : {}),
        onDepthChange: metrics
          ? (depth) => {
              metrics.queueDepth.set({ name: opts.name }, depth);
            }
          : undefined,
      });
    // Keys handed straight to a waiting worker never change the depth; start the series at 0 so
    // the gauge exists (and reads 0) before the first backlog.
    metrics?.queueDepth.set({ name: opts.name }, this.queue.len());
  }

  /** Queues key for reconciliation. */
  enqueue(key: string): void {
    this.queue.add(key);
  }

  /**
   * Registers an informer as an event source. map turns an object into the keys to enqueue
   * (default: its own key); predicate filters events and is called with (undefined, obj) for adds
   * and deletes and with (old, new) for updates.
   */
  watch<T extends KubernetesObject>(
    informer: Informer<T>,
    map: (obj: T, oldObj?: T) => string[] = (obj) => [objectKey(obj)],
    predicate?: (oldObj: T | undefined, newObj: T) => boolean,
  ): void {
    const handle = (obj: T, oldObj: T | undefined): void => {
      try {
        if (predicate && !predicate(oldObj, obj)) return;
        for (const key of map(obj, oldObj)) this.queue.add(key);
      } catch (err) {
        this.log.error('event mapping failed', { key: objectKey(obj), ...errorMeta(err) });
      }
    };
    informer.on('add', (obj) => {
      handle(obj, undefined);
    });
    informer.on('update', (obj, old) => {
      handle(obj, old);
    });
    informer.on('delete', (obj) => {
      handle(obj, undefined);
    });
  }

  /**
   * Starts the workers. signal (the manager passes the lease fence's) aborts every reconcile's
   * signal too, at the moment leadership is lost rather than when stop() gets round to it.
   */
  start(signal?: AbortSignal): void {
    if (this.running) throw new Error(`controller ${this.name} already started`);
    if (signal !== undefined) this.signal = AbortSignal.any([this.stopped.signal, signal]);
    this.running = Array.from({ length: this.workers }, () => this.worker());
    this.log.info('controller started', { workers: this.workers });
  }

  /** Stops taking work, aborts in-flight reconciles' signal and waits for them to return. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.stopped.abort();
    this.queue.shutDown();
    // Workers finish their current key and then exit, so once they are done nothing is in flight.
    await Promise.all(this.running ?? []);
    this.log.info('controller stopped');
  }

  private async worker(): Promise<void> {
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      if (this.stopping || this.signal.aborted) {
        // Keys still queued at shutdown are dropped: the next leader relists and reconciles everything.
        this.queue.done(key);
        continue;
      }
      try {
        await this.processKey(key);
      } finally {
        this.queue.done(key);
      }
    }
  }

  private async processKey(key: string): Promise<void> {
    const log = this.log.child({ key });
    const labels = { controller: this.name };
    const startedAt = performance.now();
    this.metrics?.activeWorkers.inc(labels);
    let result: Awaited<ReturnType<ReconcileFn>>;
    let error: unknown;
    let failed = false;
    try {
      result = await this.reconcileFn(key, log, this.signal);
    } catch (err) {
      failed = true;
      error = err;
    } finally {
      this.metrics?.activeWorkers.dec(labels);
      this.metrics?.reconcileDuration.observe(labels, (performance.now() - startedAt) / 1000);
    }

    if (failed) {
      this.metrics?.reconcileErrors.inc(labels);
      this.metrics?.reconcileTotal.inc({ ...labels, result: 'error' });
      if (this.signal.aborted) {
        // Stopping or leadership lost: the failure is most likely the abort itself or a refused
        // write, and nothing will run a retry; the next leader reconciles the key again.
        log.info('reconcile ended by stop or lost leadership; not retrying', errorMeta(error));
        return;
      }
      this.queue.addRateLimited(key);
      this.metrics?.queueRetries.inc({ name: this.name });
      log.error('reconcile failed; will retry', {
        ...errorMeta(error),
        retries: this.queue.numRequeues(key),
      });
      return;
    }

    this.queue.forget(key);
    const after = result?.requeueAfterMs;
    if (after !== undefined && after > 0) {
      this.metrics?.reconcileTotal.inc({ ...labels, result: 'requeue_after' });
      this.queue.addAfter(key, after);
    } else {
      this.metrics?.reconcileTotal.inc({ ...labels, result: 'success' });
    }
  }
}

function sameStringSet(a: readonly string[] | undefined, b: readonly string[] | undefined): boolean {
  const sa = new Set(a ?? []);
  const sb = new Set(b ?? []);
  return sa.size === sb.size && [...sa].every((x) => sb.has(x));
}

/**
 * Predicate like controller-runtime's GenerationChangedPredicate, plus the metadata a reconciler of
 * the primary kind acts on: passes adds and deletes, and updates that change metadata.generation
 * (spec), deletionTimestamp, finalizers, labels or annotations. Skips status-only updates,
 * including our own status writes, which would otherwise trigger a reconcile each.
 * Objects without a generation (some core kinds) always pass.
 */
export function generationChanged<T extends KubernetesObject>(oldObj: T | undefined, newObj: T): boolean {
  if (oldObj === undefined) return true;
  const o = oldObj.metadata;
  const n = newObj.metadata;
  if (o === undefined || n === undefined) return true;
  if (o.generation === undefined || n.generation === undefined) return true;
  if (o.generation !== n.generation) return true;
  if (!statusEqual(o.deletionTimestamp, n.deletionTimestamp)) return true;
  if (!sameStringSet(o.finalizers, n.finalizers)) return true;
  if (!statusEqual(o.labels, n.labels)) return true;
  return !statusEqual(o.annotations, n.annotations);
}

/** The API group of an apiVersion: "apps/v1" -> "apps", "v1" -> "" (core). */
export function apiGroup(apiVersion: string): string {
  const i = apiVersion.indexOf('/');
  return i < 0 ? '' : apiVersion.slice(0, i);
}

/**
 * Maps a child object to the key of its controlling owner, like controller-runtime's
 * EnqueueRequestForOwner with OnlyControllerOwner: only the ownerReference with controller: true
 * counts, and only if its kind and API group match (any version, since an owner may be referenced
 * through an older version).
 */
export function ownerKeys(kind: string, group: string): (obj: KubernetesObject) => string[] {
  return (obj) => {
    const ns = obj.metadata?.namespace;
    const keys: string[] = [];
    for (const ref of obj.metadata?.ownerReferences ?? []) {
      if (ref.controller === true && ref.kind === kind && apiGroup(ref.apiVersion) === group) {
        keys.push(ns ? `${ns}/${ref.name}` : ref.name);
      }
    }
    return keys;
  };
}
