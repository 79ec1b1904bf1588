import {
  CoordinationV1Api,
  type KubeConfig,
  V1Lease,
  V1LeaseSpec,
  V1MicroTime,
  V1ObjectMeta,
} from '@kubernetes/client-node';
import { type Clock, sleep, systemClock } from './clock.ts';
import { errorMeta, isNotFound } from './errors.ts';
import { keyOf } from './keys.ts';
import type { LeaseFence } from './fence.ts';
import type { Logger } from './logger.ts';
import { model } from './model.ts';

/** The subset of CoordinationV1Api the elector uses (a seam for tests). */
export type LeaseApi = Pick<
  CoordinationV1Api,
  'readNamespacedLease' | 'createNamespacedLease' | 'replaceNamespacedLease'
>;

/**
 * True when a lease we first saw (in this version) at observedAtMs on our own clock has run out.
 * Like client-go we never compare the remote renewTime with our clock: the holder's clock may be
 * skewed, but the time since we saw the lease change is ours to measure.
 */
export function isLeaseExpired(observedAtMs: number, leaseDurationSeconds: number, nowMs: number): boolean {
  return observedAtMs + leaseDurationSeconds * 1000 <= nowMs;
}

/** What to do with a lease as last observed. */
export type LeaseDecision = 'renew' | 'acquire' | 'wait';

/**
 * The leader-election decision, pure: renew a lease we hold; acquire one that is free (empty
 * holder, e.g. released on shutdown) or expired; otherwise wait.
 */
export function leaseDecision(input: {
  identity: string;
  holderIdentity: string | undefined;
  /** The lease's own duration (the holder's setting); falls back to ours. */
  leaseDurationSeconds: number | undefined;
  defaultLeaseDurationSeconds: number;
  observedAtMs: number;
  nowMs: number;
}): LeaseDecision {
  const holder = input.holderIdentity ?? '';
  if (holder === input.identity) return 'renew';
  if (holder === '') return 'acquire';
  const duration = input.leaseDurationSeconds ?? input.defaultLeaseDurationSeconds;
  return isLeaseExpired(input.observedAtMs, duration, input.nowMs) ? 'acquire' : 'wait';
}

/**
 * The lease spec to write for a renew or an acquire. Renewing keeps acquireTime and the transition
 * count; acquiring from anyone else (including nobody) counts a transition, as client-go does.
 * Times are V1MicroTime: a plain Date serialises with 3 decimals, which the API server rejects.
 */
export function nextLeaseSpec(
  decision: 'renew' | 'acquire',
  current: V1LeaseSpec | undefined,
  identity: string,
  leaseDurationSeconds: number,
  nowMs: number,
): V1LeaseSpec {
  const now = new V1MicroTime(nowMs);
  const transitions = current?.leaseTransitions ?? 0;
  return model(V1LeaseSpec, {
    holderIdentity: identity,
    leaseDurationSeconds,
    // Read back from the server this is a string (client-node does not revive MicroTime); sent as is.
    acquireTime: decision === 'renew' && current?.acquireTime !== undefined ? current.acquireTime : now,
    renewTime: now,
    leaseTransitions:
      decision === 'acquire' && current?.holderIdentity !== identity ? transitions + 1 : transitions,
  });
}

/** Options for {@link LeaderElector}. */
export interface LeaderElectorOptions {
  /** Cluster access. */
  kc: KubeConfig;
  /** Namespace of the Lease. */
  namespace: string;
  /** Name of the Lease. */
  name: string;
  /** This process's identity (the pod name); must be unique among candidates. */
  identity: string;
  /** How long a lease is valid after its last observed change. Default 15. */
  leaseDurationSeconds?: number;
  /** How long the leader keeps trying to renew before giving up. Default 10. */
  renewDeadlineSeconds?: number;
  /** Interval between acquire/renew attempts. Default 2. */
  retryPeriodSeconds?: number;
  /** Logger. */
  logger: Logger;
  /** On stop() while leading, free the lease so a successor takes over at once. Default true. */
  releaseOnCancel?: boolean;
  /** Client to use instead of one made from kc. */
  api?: LeaseApi;
  /** Time source. */
  clock?: Clock;
  /** Randomness for the retry jitter, in [0, 1). */
  random?: () => number;
  /**
   * The fence to feed: opened by each successful acquire/renew (until the renew deadline after it
   * was sent), closed when leadership ends. When the fence closes on its own (its deadline passed
   * first), leadership is lost even if this loop has not noticed yet.
   */
  fence?: LeaseFence;
}

/** Callbacks of {@link LeaderElector.run}. */
export interface LeaderCallbacks {
  /** Called once when this process becomes the leader. */
  onStartedLeading: () => void;
  /** Called once when it stops being the leader: lease lost, or stop() while leading. */
  onStoppedLeading: () => void;
  /** Called whenever the observed leader changes (including to ourselves). */
  onNewLeader?: (identity: string) => void;
}

/** client-go's JitterFactor for the acquire retry loop. */
const JITTER = 1.2;

type Attempt = 'ok' | 'held' | 'failed';

/**
 * Leader election on a coordination.k8s.io/v1 Lease, following client-go's leaderelection: read
 * the lease, then create it or replace it with the resourceVersion read, so two candidates cannot
 * both win (the loser gets 409 Conflict). While leading it renews every retry period; if no renewal
 * succeeds within the renew deadline (or another holder shows up) leadership is lost and
 * onStoppedLeading runs: the process should then exit, like controller-runtime, because work
 * already in flight can no longer be trusted to be exclusive. Its own client must not be fenced
 * (it writes the Lease that opens the fence); everything else writes through the fence it feeds.
 */
export class LeaderElector {
  private readonly api: LeaseApi;
  private readonly namespace: string;
  private readonly name: string;
  private readonly identity: string;
  private readonly leaseDurationSeconds: number;
  private readonly renewDeadlineMs: number;
  private readonly retryMs: number;
  private readonly releaseOnCancel: boolean;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly abort = new AbortController();
  private running: Promise<void> | undefined;
  private leading = false;
  private observedKey: string | undefined;
  private observedAtMs = 0;
  private reportedLeader = '';
  private onNewLeader: ((identity: string) => void) | undefined;
  private readonly fence: LeaseFence | undefined;

  /** Creates an elector; validates the timing like client-go (leaseDuration > renewDeadline > 1.2 retry). */
  constructor(opts: LeaderElectorOptions) {
    this.namespace = opts.namespace;
    this.name = opts.name;
    this.identity = opts.identity;
    this.leaseDurationSeconds = opts.leaseDurationSeconds ?? 15;
    const renewDeadlineSeconds = opts.renewDeadlineSeconds ?? 10;
    const retryPeriodSeconds = opts.retryPeriodSeconds ?? 2;
    if (!this.identity) throw new Error('leader election needs a non-empty identity');
    if (!(this.leaseDurationSeconds > renewDeadlineSeconds)) {
      throw new Error('leaseDurationSeconds must be greater than renewDeadlineSeconds');
    }
    if (!(renewDeadlineSeconds > JITTER * retryPeriodSeconds) || !(retryPeriodSeconds > 0)) {
      throw new Error('renewDeadlineSeconds must be greater than 1.2 * retryPeriodSeconds (> 0)');
    }
    this.renewDeadlineMs = renewDeadlineSeconds * 1000;
    this.retryMs = retryPeriodSeconds * 1000;
    this.api = opts.api ?? opts.kc.makeApiClient(CoordinationV1Api);
    this.releaseOnCancel = opts.releaseOnCancel ?? true;
    this.log = opts.logger.child({ component: 'leader-election', lease: keyOf(opts.namespace, opts.name) });
    this.clock = opts.clock ?? systemClock;
    this.random = opts.random ?? Math.random;
    this.fence = opts.fence;
  }

  /**
   * Tries to acquire the lease until it succeeds or stop() is called, then renews it until stop()
   * or until leadership is lost. Resolves when it has stopped either way; runs once per elector.
   */
  run(callbacks: LeaderCallbacks): Promise<void> {
    if (this.running) throw new Error('LeaderElector.run() may only be called once');
    this.onNewLeader = callbacks.onNewLeader;
    this.running = this.loop(callbacks);
    return this.running;
  }

  /** True while this process holds the lease. */
  isLeader(): boolean {
    return this.leading;
  }

  /** Stops the loops; if leading (and releaseOnCancel), releases the lease first. */
  async stop(): Promise<void> {
    this.abort.abort();
    await this.running;
  }

  private async loop(callbacks: LeaderCallbacks): Promise<void> {
    const signal = this.abort.signal;
    const stopped = (): boolean => signal.aborted;
    this.log.info('waiting to acquire leader lease', { identity: this.identity });
    let acquired = false;
    while (!stopped()) {
      const sentAt = this.fence?.now();
      if ((await this.attempt(this.renewDeadlineMs)) === 'ok') {
        acquired = true;
        this.fenceRenewed(sentAt);
        break;
      }
      await sleep(this.clock, this.retryMs * (1 + this.random() * JITTER), signal);
    }
    if (!acquired) return;
    if (stopped()) {
      // Stopped while the winning request was in flight: hand the lease back unused.
      this.fence?.lose('leader election stopped');
      if (this.releaseOnCancel) await this.release();
      return;
    }

    this.leading = true;
    this.log.info('acquired leader lease', { identity: this.identity });
    callbacks.onStartedLeading();
    let lastRenewMs = this.clock.now();
    let lost = false;
    // The fence closing on its own (its deadline passed, e.g. while the process was stopped) wakes
    // this loop at once instead of after the retry period.
    const wake = this.fence ? AbortSignal.any([signal, this.fence.signal]) : signal;
    while (!stopped()) {
      await sleep(this.clock, this.retryMs, wake);
      if (this.fenceLost()) {
        lost = true;
        break;
      }
      if (stopped()) break;
      const remaining = this.renewDeadlineMs - (this.clock.now() - lastRenewMs);
      const sentAt = this.fence?.now();
      const result = remaining > 0 ? await this.attempt(remaining) : 'failed';
      if (this.fenceLost()) {
        lost = true;
        break;
      }
      if (stopped()) break;
      if (result === 'ok') {
        lastRenewMs = this.clock.now();
        this.fenceRenewed(sentAt);
        continue;
      }
      if (result === 'held' || this.clock.now() - lastRenewMs >= this.renewDeadlineMs) {
        lost = true;
        break;
      }
    }
    if (lost) {
      // No release: the lease may be someone else's by now, and this process must not write.
      this.fence?.lose('leader lease lost');
      this.log.error('lost leader lease', { identity: this.identity });
    } else {
      // Writes stop before the lease is handed back, so none can land after a successor starts.
      this.fence?.lose('leader lease released');
      if (this.releaseOnCancel) await this.release();
    }
    this.leading = false;
    callbacks.onStoppedLeading();
  }

  /** Opens the fence until the renew deadline after sentAt, when the request was sent. */
  private fenceRenewed(sentAt: number | undefined): void {
    if (sentAt !== undefined) this.fence?.renewed(sentAt, this.renewDeadlineMs);
  }

  /** True when the fence has closed without us: its renew deadline passed. */
  private fenceLost(): boolean {
    return this.fence !== undefined && !this.fence.isHeld();
  }

  /** Races p against a timeout (and stop()); the timer is cleared either way. */
  private async within<T>(p: Promise<T>, timeoutMs: number, onTimeout: T): Promise<T> {
    const local = new AbortController();
    const timeout = sleep(this.clock, timeoutMs, AbortSignal.any([this.abort.signal, local.signal])).then(
      () => onTimeout,
    );
    try {
      return await Promise.race([p, timeout]);
    } finally {
      local.abort();
    }
  }

  /**
   * One read + create/replace round, given up (as failed) after timeoutMs or on stop(). A round
   * given up is not cancelled (client-node takes no signal), so it checks the same deadline itself
   * before it writes: a read answered late, e.g. to a process paused mid-renewal, must not be
   * followed by a write, as client-go's context deadline stops its update from being sent.
   */
  private async attempt(timeoutMs: number): Promise<Attempt> {
    const deadline = this.clock.now() + timeoutMs;
    try {
      return await this.within<Attempt>(this.tryAcquireOrRenew(deadline), timeoutMs, 'failed');
    } catch (err) {
      this.log.warn('leader lease request failed', errorMeta(err));
      return 'failed';
    }
  }

  /** False once the round's deadline has passed, stop() was called, or the fence closed. */
  private mayWrite(deadline: number): boolean {
    return this.clock.now() < deadline && !this.abort.signal.aborted && !(this.leading && this.fenceLost());
  }

  private async tryAcquireOrRenew(deadline: number): Promise<Attempt> {
    let lease: V1Lease;
    try {
      lease = await this.api.readNamespacedLease({ name: this.name, namespace: this.namespace });
    } catch (err) {
      if (!isNotFound(err)) throw err;
      if (!this.mayWrite(deadline)) return 'failed';
      const created = await this.api.createNamespacedLease({
        namespace: this.namespace,
        body: this.leaseBody(
          undefined,
          nextLeaseSpec('acquire', undefined, this.identity, this.leaseDurationSeconds, this.clock.now()),
        ),
      });
      this.observe(created);
      return 'ok';
    }
    this.observe(lease);
    const decision = leaseDecision({
      identity: this.identity,
      holderIdentity: lease.spec?.holderIdentity,
      leaseDurationSeconds: lease.spec?.leaseDurationSeconds,
      defaultLeaseDurationSeconds: this.leaseDurationSeconds,
      observedAtMs: this.observedAtMs,
      nowMs: this.clock.now(),
    });
    if (decision === 'wait') return 'held';
    if (this.leading && decision !== 'renew') {
      // Someone else held it (even if expired by now): our leadership was interrupted.
      return 'held';
    }
    if (!this.mayWrite(deadline)) return 'failed';
    const updated = await this.api.replaceNamespacedLease({
      name: this.name,
      namespace: this.namespace,
      body: this.leaseBody(
        lease,
        nextLeaseSpec(decision, lease.spec, this.identity, this.leaseDurationSeconds, this.clock.now()),
      ),
    });
    this.observe(updated);
    return 'ok';
  }

  /**
   * A Lease for create/replace. A replace is a PUT of the whole object, so the metadata read
   * (labels, annotations and the resourceVersion that makes the write a compare-and-swap) is kept;
   * managedFields are left out so the server keeps its own.
   */
  private leaseBody(read: V1Lease | undefined, spec: V1LeaseSpec): V1Lease {
    const metadata = Object.assign(new V1ObjectMeta(), read?.metadata, {
      name: this.name,
      namespace: this.namespace,
    });
    delete metadata.managedFields;
    const lease = new V1Lease();
    lease.apiVersion = 'coordination.k8s.io/v1';
    lease.kind = 'Lease';
    lease.metadata = metadata;
    lease.spec = spec;
    return lease;
  }

  /** Records when the lease last changed, on our clock, and reports leader changes. */
  private observe(lease: V1Lease): void {
    const key = lease.metadata?.resourceVersion ?? JSON.stringify(lease.spec ?? {});
    if (key !== this.observedKey) {
      this.observedKey = key;
      this.observedAtMs = this.clock.now();
    }
    const holder = lease.spec?.holderIdentity ?? '';
    if (holder !== '' && holder !== this.reportedLeader) {
      this.log.info('new leader observed', { leader: holder });
      this.onNewLeader?.(holder);
    }
    this.reportedLeader = holder;
  }

  /** Frees the lease so a successor need not wait for it to expire. Best effort. */
  private async release(): Promise<void> {
    const release = async (): Promise<void> => {
      const lease = await this.api.readNamespacedLease({ name: this.name, namespace: this.namespace });
      if (lease.spec?.holderIdentity !== this.identity) return;
      const now = new V1MicroTime(this.clock.now());
      // client-go's release record: no holder and a 1 s duration, so candidates take over at once.
      const spec = Object.assign(new V1LeaseSpec(), lease.spec, {
        holderIdentity: '',
        leaseDurationSeconds: 1,
        acquireTime: now,
        renewTime: now,
      });
      await this.api.replaceNamespacedLease({
        name: this.name,
        namespace: this.namespace,
        body: this.leaseBody(lease, spec),
      });
      this.log.info('released leader lease');
    };
    try {
      // Not cut short by stop(): releasing is what stop() is waiting for.
      const local = new AbortController();
      const timeout = sleep(this.clock, this.renewDeadlineMs, local.signal);
      await Promise.race([release(), timeout]).finally(() => {
        local.abort();
      });
    } catch (err) {
      this.log.warn('failed to release leader lease', errorMeta(err));
    }
  }
}
