import type { KubeConfig } from '@kubernetes/client-node';
import type { Registry } from 'prom-client';
import type { Controller } from './controller.ts';
import { errorMeta } from './errors.ts';
import { keyOf } from './keys.ts';
import { type Fence, LeaseFence, monotonicClock } from './fence.ts';
import { type HealthServer, startHealthServer } from './health.ts';
import { LeaderElector, type LeaderElectorOptions } from './leader.ts';
import type { Logger } from './logger.ts';
import { ControllerMetrics } from './metrics.ts';

/** What the manager needs of an informer; any Informer<T> fits. */
export interface ManagedInformer {
  /** Starts list+watch; resolves once synced. */
  start(): Promise<void>;
  /** Stops watching. */
  stop(): void;
  /** True once the first list is cached. */
  hasSynced(): boolean;
}

/**
 * What the manager needs of a controller; a Controller fits. start() is given the lease fence's
 * signal (with leader election), which aborts when leadership is lost.
 */
export type ManagedController = Pick<Controller, 'start' | 'stop'>;

/** Leader election settings of a {@link Manager}: the elector's, less what the manager supplies. */
export type ManagerLeaderElection = Pick<
  LeaderElectorOptions,
  | 'namespace'
  | 'name'
  | 'identity'
  | 'leaseDurationSeconds'
  | 'renewDeadlineSeconds'
  | 'retryPeriodSeconds'
  | 'api'
  | 'clock'
>;

/** Options for {@link Manager}. */
export interface ManagerOptions {
  /** Cluster access. */
  kc: KubeConfig;
  /** Logger. */
  logger: Logger;
  /** Registry served on /metrics. */
  registry: Registry;
  /** Enables leader election: only the leader runs informers and controllers. */
  leaderElection?: ManagerLeaderElection;
  /** Port of the health/metrics server; no server when undefined. */
  healthPort?: number;
  /** Bind address of the health server. */
  healthHost?: string;
}

/** Rejection of Manager.done when the leader lease was lost: exit and let a new pod take over. */
export class LeaderElectionLostError extends Error {
  /** Creates the error. */
  constructor() {
    super('leader election lost');
    this.name = 'LeaderElectionLostError';
  }
}

/**
 * Runs the operator: health server, optional leader election, then (when leading) informers,
 * waiting for their first list, then controllers. stop() is the SIGTERM path. With leader election
 * the manager owns the lease {@link fence}: give it to every client that writes (FencedKubeConfig)
 * and to backends, so that nothing is written once the lease may be someone else's. Losing the
 * lease (the elector's verdict or the fence's own deadline, whichever comes first) aborts the
 * fence's signal, stops the controllers and rejects done; the caller must then exit.
 *
 * Readiness (/readyz) is true once informers have synced, or, with leader election, while standing
 * by as a non-leader, so a rolling update can proceed while another replica leads.
 */
export class Manager {
  /** Resolves when stop() has finished; rejects with LeaderElectionLostError if the lease was lost. */
  readonly done: Promise<void>;
  /** The lease fence, with leader election; undefined without (nothing to fence against). */
  readonly fence: Fence | undefined;
  private readonly leaseFence: LeaseFence | undefined;
  private readonly opts: ManagerOptions;
  private readonly log: Logger;
  private readonly metrics: ControllerMetrics;
  private readonly informers: ManagedInformer[] = [];
  private readonly controllers: ManagedController[] = [];
  private elector: LeaderElector | undefined;
  private electorRun: Promise<void> | undefined;
  private health: HealthServer | undefined;
  private started = false;
  private stopping: Promise<void> | undefined;
  private workloadsStarted = false;
  private workloadsRunning = false;
  private resolveDone: () => void = () => undefined;
  private rejectDone: (err: Error) => void = () => undefined;

  /** Creates a manager; add informers and controllers, then start(). */
  constructor(opts: ManagerOptions) {
    this.opts = opts;
    this.log = opts.logger.child({ component: 'manager' });
    this.metrics = new ControllerMetrics(opts.registry);
    this.done = new Promise<void>((resolve, reject) => {
      this.resolveDone = resolve;
      this.rejectDone = reject;
    });
    // Callers are expected to await done; this only keeps an unobserved rejection from crashing tests.
    this.done.catch(() => undefined);
    const le = opts.leaderElection;
    if (le !== undefined) {
      // A fake clock in tests drives the elector; the fence must measure on the same one.
      this.leaseFence = new LeaseFence({ clock: le.clock ?? monotonicClock });
      this.fence = this.leaseFence;
      this.leaseFence.signal.addEventListener(
        'abort',
        () => {
          this.leaseLost();
        },
        { once: true },
      );
    }
  }

  /** Port the health server listens on, once started. */
  get healthPort(): number | undefined {
    return this.health?.port;
  }

  /** Registers an informer; informers start before controllers. */
  addInformer(inf: ManagedInformer): void {
    if (this.started) throw new Error('addInformer after start');
    this.informers.push(inf);
  }

  /** Registers a controller; it starts after every informer has synced. */
  addController(c: ManagedController): void {
    if (this.started) throw new Error('addController after start');
    this.controllers.push(c);
  }

  /** True when /readyz should answer ok. */
  isReady(): boolean {
    if (this.stopping) return false;
    if (this.elector && !this.elector.isLeader()) return this.electorRun !== undefined;
    return this.workloadsRunning;
  }

  /**
   * Starts the health server and then either the workloads directly (resolving once informers
   * synced and controllers started) or the leader election (resolving at once, standing by).
   */
  async start(): Promise<void> {
    if (this.started) throw new Error('manager already started');
    this.started = true;
    if (this.opts.healthPort !== undefined) {
      this.health = await startHealthServer({
        port: this.opts.healthPort,
        ...(this.opts.healthHost !== undefined ? { host: this.opts.healthHost } : {}),
        registry: this.opts.registry,
        readyz: () => this.isReady(),
      });
      this.log.info('health server listening', { port: this.health.port });
    }
    const le = this.opts.leaderElection;
    if (le === undefined) {
      await this.startWorkloads();
      return;
    }
    const leaseName = keyOf(le.namespace, le.name);
    this.metrics.leaderStatus.set({ name: leaseName }, 0);
    const elector = new LeaderElector({
      kc: this.opts.kc,
      namespace: le.namespace,
      name: le.name,
      identity: le.identity,
      logger: this.opts.logger,
      ...(le.leaseDurationSeconds !== undefined ? { leaseDurationSeconds: le.leaseDurationSeconds } : {}),
      ...(le.renewDeadlineSeconds !== undefined ? { renewDeadlineSeconds: le.renewDeadlineSeconds } : {}),
      ...(le.retryPeriodSeconds !== undefined ? { retryPeriodSeconds: le.retryPeriodSeconds } : {}),
      ...(le.api !== undefined ? { api: le.api } : {}),
      ...(le.clock !== undefined ? { clock: le.clock } : {}),
      ...(this.leaseFence !== undefined ? { fence: this.leaseFence } : {}),
    });
    this.elector = elector;
    this.electorRun = elector.run({
      onStartedLeading: () => {
        this.metrics.leaderStatus.set({ name: leaseName }, 1);
        this.startWorkloads().catch((err: unknown) => {
          this.log.error('failed to start controllers', errorMeta(err));
        });
      },
      onStoppedLeading: () => {
        this.metrics.leaderStatus.set({ name: leaseName }, 0);
        // Usually a no-op by now: the elector closes the fence before this callback, and the
        // fence's abort listener has already called leaseLost().
        this.leaseLost();
      },
    });
  }

  /** Lease lost (or released): stop at once, unless stopping already, and tell the caller to exit. */
  private leaseLost(): void {
    if (this.stopping) return;
    // Another replica may already be reconciling: the fence already refuses writes and aborted
    // every reconcile's signal; stop the rest and reject done so the caller exits non-zero.
    this.log.error('leader lease lost; stopping');
    if (this.opts.leaderElection !== undefined) {
      const le = this.opts.leaderElection;
      this.metrics.leaderStatus.set({ name: `${le.namespace}/${le.name}` }, 0);
    }
    this.rejectDone(new LeaderElectionLostError());
    void this.shutdown(false);
  }

  /** Graceful shutdown: stop controllers (finishing in-flight reconciles), informers, lease, server. */
  stop(): Promise<void> {
    return this.shutdown(true);
  }

  /** A method, not a field read, so the checker doesn't assume it unchanged across awaits. */
  private isStopping(): boolean {
    return this.stopping !== undefined;
  }

  private async startWorkloads(): Promise<void> {
    if (this.workloadsStarted || this.stopping) return;
    this.workloadsStarted = true;
    this.log.info('starting informers', { count: this.informers.length });
    try {
      await Promise.all(this.informers.map((inf) => inf.start()));
    } catch (err) {
      // Only stop() makes an informer's start() reject.
      if (this.isStopping()) return;
      throw err;
    }
    if (this.isStopping()) return;
    for (const c of this.controllers) c.start(this.fence?.signal);
    this.workloadsRunning = true;
    this.log.info('controllers started', { count: this.controllers.length });
  }

  private shutdown(graceful: boolean): Promise<void> {
    this.stopping ??= (async () => {
      this.log.info('shutting down', { graceful });
      try {
        await Promise.all(this.controllers.map((c) => c.stop()));
        for (const inf of this.informers) inf.stop();
        await this.elector?.stop();
        await this.electorRun;
      } catch (err) {
        this.log.error('error during shutdown', errorMeta(err));
      }
      await this.health?.close();
      this.workloadsRunning = false;
      this.log.info('stopped');
      this.resolveDone();
    })();
    return this.stopping;
  }
}
