import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Creates a registry with the default process/Node.js metrics (memory, event loop lag, GC). */
export function createRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return registry;
}

// Same buckets as controller-runtime's reconcile_time_seconds, so dashboards built for Go
// operators read ours the same way.
const RECONCILE_BUCKETS = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9, 1, 1.25, 1.5,
  1.75, 2, 2.5, 3, 3.5, 4, 4.5, 5, 6, 7, 8, 9, 10, 15, 20, 25, 30, 40, 50, 60,
];

/**
 * Returns the metric already registered under name, or registers a new one. Several
 * ControllerMetrics (one per controller, one in the manager) may share a registry, and prom-client
 * throws on a duplicate registration.
 */
function getOrCreate<M>(
  registry: Registry,
  name: string,
  ctor: abstract new (...args: never[]) => object,
  create: () => M,
): M {
  const existing = registry.getSingleMetric(name);
  if (existing === undefined) return create();
  if (!(existing instanceof ctor)) throw new Error(`metric ${name} is already registered with another type`);
  return existing as M;
}

/**
 * The controller metrics, named like controller-runtime's (controller_runtime_*, workqueue_*,
 * leader_election_master_status) so existing alerts and dashboards apply. Constructing it twice on
 * one registry returns the same underlying metrics.
 */
export class ControllerMetrics {
  /** Reconciles by controller and result (success, error, requeue_after). */
  readonly reconcileTotal: Counter<'controller' | 'result'>;
  /** Reconciles that returned an error. */
  readonly reconcileErrors: Counter<'controller'>;
  /** Duration of reconciles in seconds. */
  readonly reconcileDuration: Histogram<'controller'>;
  /** Workers currently running a reconcile. */
  readonly activeWorkers: Gauge<'controller'>;
  /** Keys waiting in a work queue. */
  readonly queueDepth: Gauge<'name'>;
  /** Rate-limited re-adds (retries) per work queue. */
  readonly queueRetries: Counter<'name'>;
  /** 1 while this process holds the leader lease named by `name`, else 0. */
  readonly leaderStatus: Gauge<'name'>;

  /** Registers (or reuses) the metrics on registry. */
  constructor(registry: Registry) {
    const registers = [registry];
    this.reconcileTotal = getOrCreate(
      registry,
      'controller_runtime_reconcile_total',
      Counter,
      () =>
        new Counter({
          name: 'controller_runtime_reconcile_total',
          help: 'Total number of reconciliations per controller and result',
          labelNames: ['controller', 'result'],
          registers,
        }),
    );
    this.reconcileErrors = getOrCreate(
      registry,
      'controller_runtime_reconcile_errors_total',
      Counter,
      () =>
        new Counter({
          name: 'controller_runtime_reconcile_errors_total',
          help: 'Total number of reconciliation errors per controller',
          labelNames: ['controller'],
          registers,
        }),
    );
    this.reconcileDuration = getOrCreate(
      registry,
      'controller_runtime_reconcile_time_seconds',
      Histogram,
      () =>
        new Histogram({
          name: 'controller_runtime_reconcile_time_seconds',
          help: 'Length of time per reconciliation per controller',
          labelNames: ['controller'],
          buckets: RECONCILE_BUCKETS,
          registers,
        }),
    );
    this.activeWorkers = getOrCreate(
      registry,
      'controller_runtime_active_workers',
      Gauge,
      () =>
        new Gauge({
          name: 'controller_runtime_active_workers',
          help: 'Number of workers currently running a reconcile per controller',
          labelNames: ['controller'],
          registers,
        }),
    );
    this.queueDepth = getOrCreate(
      registry,
      'workqueue_depth',
      Gauge,
      () =>
        new Gauge({
          name: 'workqueue_depth',
          help: 'Current depth of the work queue',
          labelNames: ['name'],
          registers,
        }),
    );
    this.queueRetries = getOrCreate(
      registry,
      'workqueue_retries_total',
      Counter,
      () =>
        new Counter({
          name: 'workqueue_retries_total',
          help: 'Total number of rate-limited retries handled by the work queue',
          labelNames: ['name'],
          registers,
        }),
    );
    this.leaderStatus = getOrCreate(
      registry,
      'leader_election_master_status',
      Gauge,
      () =>
        new Gauge({
          name: 'leader_election_master_status',
          help: '1 if this process is the leader of the named lease, 0 otherwise',
          labelNames: ['name'],
          registers,
        }),
    );
  }
}
