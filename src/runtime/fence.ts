/**
 * The lease fence: the one place that says whether this process may still write. A leader that was
 * paused (SIGSTOP, a long GC, a frozen VM) past its lease comes back believing it leads while
 * another replica already does; every write it makes then races the new leader. The fence answers
 * from the local clock alone: writes are allowed only until the renew deadline after the last
 * successful renewal, measured from when that renewal was *sent*, on a monotonic clock. Since the
 * renew deadline is shorter than the lease duration, and other candidates count the lease duration
 * from when they *see* our renewal (after it was sent), the fence closes before anyone else can
 * take over. What it cannot close is a write already checked and then frozen before it reached the
 * socket; that window is microseconds, not a lease.
 */
import { createHash } from 'node:crypto';
import type { AgentOptions } from 'node:https';
import {
  type ApiConstructor,
  type ApiType,
  type Cluster,
  type Configuration,
  HttpMethod,
  KubeConfig,
  type RequestContext,
  ServerConfiguration,
  createConfiguration,
  setHeaderMiddleware,
} from '@kubernetes/client-node';
import { type Clock, systemClock } from './clock.ts';

/** Thrown by {@link Fence.assertHeld} once the lease is (or may be) held by someone else. */
export class LeaseLostError extends Error {
  /** Creates the error; message says why the fence closed. */
  constructor(message: string) {
    super(message);
    this.name = 'LeaseLostError';
  }
}

/**
 * What a writer needs of the fence. Call assertHeld() immediately before every mutating call
 * (Kubernetes, vLLM load/unload, OCI create/update/delete); pass signal to the call so that it is
 * cancelled when the lease goes.
 */
export interface Fence {
  /** Aborted (once, for good) when the lease is lost or released. */
  readonly signal: AbortSignal;
  /** True while writes are allowed. */
  isHeld(): boolean;
  /** Throws a LeaseLostError unless writes are allowed. */
  assertHeld(): void;
}

/**
 * A monotonic clock: performance.now() does not jump with NTP or a changed system time, and keeps
 * running while the process is stopped, which is exactly what the fence must measure. Its timers
 * are the system's (unref'd: the fence alone must not keep the process alive).
 */
export const monotonicClock: Clock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => systemClock.setTimeout(fn, ms),
  clearTimeout: (handle) => {
    systemClock.clearTimeout(handle);
  },
};

/** Options for {@link LeaseFence}. */
export interface LeaseFenceOptions {
  /** Time source; default {@link monotonicClock}. Tests pass a fake clock. */
  clock?: Clock;
}

/**
 * The fence the leader elector feeds: closed until the first acquire, open until the renew deadline
 * after each successful renewal, and closed for good once lost (deadline passed, another holder
 * seen) or released. Loss is noticed both by a timer at the deadline and by every assertHeld(),
 * so a process resumed after a pause refuses its first write even before any timer has run.
 */
export class LeaseFence implements Fence {
  private readonly clock: Clock;
  private readonly abort = new AbortController();
  private heldUntilMs: number | undefined;
  private timer: unknown;

  /** Creates a closed fence. */
  constructor(opts: LeaseFenceOptions = {}) {
    this.clock = opts.clock ?? monotonicClock;
  }

  /** Aborted when the lease is lost or released. */
  get signal(): AbortSignal {
    return this.abort.signal;
  }

  /** The fence's clock; read it just before sending a renewal and pass the value to renewed(). */
  now(): number {
    return this.clock.now();
  }

  /** Until when writes are allowed, on the fence's clock; undefined before the first acquire. */
  heldUntil(): number | undefined {
    return this.heldUntilMs;
  }

  /**
   * A renewal (or the acquire) sent at sentAtMs succeeded: writes are allowed until
   * sentAtMs + validForMs (the renew deadline). Ignored once the fence is lost: a late answer to a
   * renewal cannot reopen it, because work has already been told to stop.
   */
  renewed(sentAtMs: number, validForMs: number): void {
    if (this.abort.signal.aborted) return;
    const until = sentAtMs + validForMs;
    if (this.heldUntilMs !== undefined && until <= this.heldUntilMs) return;
    this.heldUntilMs = until;
    if (this.checkDeadline()) return;
    this.clock.clearTimeout(this.timer);
    this.timer = this.clock.setTimeout(() => {
      this.checkDeadline();
    }, until - this.clock.now());
  }

  /** Closes the fence for good and aborts the signal; the first reason wins. */
  lose(reason: string): void {
    if (this.abort.signal.aborted) return;
    this.clock.clearTimeout(this.timer);
    this.abort.abort(new LeaseLostError(reason));
  }

  /** True while writes are allowed: acquired, not lost, deadline not passed. */
  isHeld(): boolean {
    return !this.abort.signal.aborted && this.heldUntilMs !== undefined && !this.checkDeadline();
  }

  /** Throws a LeaseLostError unless writes are allowed. */
  assertHeld(): void {
    if (this.isHeld()) return;
    if (this.heldUntilMs === undefined && !this.abort.signal.aborted) {
      throw new LeaseLostError('leader lease not acquired yet; write refused');
    }
    const reason: unknown = this.abort.signal.reason;
    throw new LeaseLostError(
      `${reason instanceof LeaseLostError ? reason.message : 'leader lease lost'}; write refused`,
    );
  }

  /** Loses the fence if its deadline has passed; returns whether it is lost. */
  private checkDeadline(): boolean {
    if (this.abort.signal.aborted) return true;
    if (this.heldUntilMs === undefined || this.clock.now() < this.heldUntilMs) return false;
    this.lose('renew deadline passed without a successful renewal');
    return true;
  }
}

/** Verbs that change nothing (a watch is a GET): everything else is a write and is fenced. */
const READ_METHODS: ReadonlySet<string> = new Set([HttpMethod.GET, HttpMethod.HEAD, HttpMethod.OPTIONS]);

/** Options for {@link FencedKubeConfig}. */
export interface FencedKubeConfigOptions {
  /** Checked before every non-read request; none: requests are only tagged with the User-Agent. */
  fence?: Fence;
  /**
   * User-Agent of every request. The API server's audit log records it, and it is the only thing
   * that tells apart replicas sharing one ServiceAccount, so it should carry the identity.
   */
  userAgent?: string;
}

/** The undici dispatcher (connection pool) client-node puts on a request. */
export type Dispatcher = NonNullable<ReturnType<RequestContext['getDispatcher']>>;

/** KubeConfig's private createDispatcher in client-node 2.0.1 (dist/config.js). */
type CreateDispatcher = (cluster: Cluster | null, agentOptions: AgentOptions) => Dispatcher | undefined;

const upstreamCreateDispatcher = Reflect.get(KubeConfig.prototype, 'createDispatcher') as
  CreateDispatcher | undefined;

/** The pool of one cluster and user, and the fingerprint of the TLS options it was built with. */
interface SharedPool {
  fingerprint: string;
  dispatcher: Dispatcher;
}

/** Pools by cluster and user, shared by every FencedKubeConfig of the process. */
const sharedPools = new Map<string, SharedPool>();

/**
 * A digest of client-node's dispatcher options (type, proxy, CA, client certificate and key, pfx,
 * passphrase, rejectUnauthorized, servername, keep-alive): equal digests, equal pools. Buffers are
 * hashed by content, so a rotated certificate read from the same file is a new fingerprint.
 */
function fingerprintOf(value: unknown): string {
  const hash = createHash('sha256');
  const feed = (v: unknown): void => {
    if (Buffer.isBuffer(v) || v instanceof Uint8Array) {
      hash.update(`b${String(v.length)}:`).update(v);
    } else if (Array.isArray(v)) {
      hash.update('[');
      for (const item of v) feed(item);
      hash.update(']');
    } else if (v !== null && typeof v === 'object') {
      hash.update('{');
      for (const k of Object.keys(v).sort()) {
        const item: unknown = Reflect.get(v, k);
        if (item === undefined) continue;
        hash.update(JSON.stringify(k));
        feed(item);
      }
      hash.update('}');
    } else {
      hash.update(`${typeof v}:${JSON.stringify(v)};`);
    }
  };
  feed(value);
  return hash.digest('hex');
}

/**
 * A KubeConfig whose clients refuse writes once the fence is not held. client-node 2.0.1 calls
 * applySecurityAuthentication(context) on every request it makes (generated API clients,
 * KubernetesObjectApi, Watch), with the method on the context and after the request is otherwise
 * built, so that is the one hook that sees every request just before it is sent. It also sets the
 * User-Agent there (Watch has no middleware) and in makeApiClient, whose built-in middleware would
 * otherwise overwrite it with client-node's own.
 */
export class FencedKubeConfig extends KubeConfig {
  /** The fence writes check; undefined for an unfenced client (the leader elector's). */
  readonly fence: Fence | undefined;
  /** The User-Agent sent, if set. */
  readonly userAgent: string | undefined;

  /** Shares base's clusters, users and contexts (loaded once, by whatever means). */
  constructor(base: KubeConfig, opts: FencedKubeConfigOptions = {}) {
    super();
    this.loadFromOptions({
      clusters: base.getClusters(),
      users: base.getUsers(),
      contexts: base.getContexts(),
      currentContext: base.getCurrentContext(),
    });
    this.fence = opts.fence;
    this.userAgent = opts.userAgent;
    // client-node declares createDispatcher private, so it cannot be overridden as a method; an own
    // property shadows the prototype's. See sharedDispatcher for why.
    if (upstreamCreateDispatcher === undefined) {
      throw new Error(
        'client-node has no KubeConfig.createDispatcher any more: revisit sharedDispatcher in src/runtime/fence.ts',
      );
    }
    Object.defineProperty(this, 'createDispatcher', {
      value: (cluster: Cluster | null, agentOptions: AgentOptions) =>
        this.sharedDispatcher(upstreamCreateDispatcher, cluster, agentOptions),
    });
  }

  /**
   * One connection pool per cluster and credentials for the life of the process, shared by every
   * FencedKubeConfig (the controllers' fenced one and the leader elector's unfenced one), as
   * client-go shares one transport per TLS config between the clients of a rest.Config.
   *
   * Why: client-node 2.0.1's applySecurityAuthentication, which every request goes through
   * (generated API clients, KubernetesObjectApi, Watch), calls createDispatcher, and that builds a
   * new undici Agent each time (dist/config.js, applySecurityAuthentication and createDispatcher).
   * A fresh Agent has no idle connection, so every request paid a TCP connect and a TLS handshake,
   * and its socket then lingered until undici's keep-alive timeout: at N=200 in bench:scale, a heap
   * snapshot held 171 TLS sockets, and about 30% of the operator's CPU went to TLS set-up.
   * Upstream fixed the same fault for the https.Agent of watches and WebSockets
   * (kubernetes-client/javascript#2893, "KubeConfig.createAgent() creates a new https.Agent per
   * request": createAgent now caches by cluster and user), but not for the undici dispatcher that
   * 2.0.1 puts on every request.
   *
   * The pool is built by client-node's own createDispatcher on the first request, so it carries
   * exactly the TLS options that request would have had (CA, client certificate and key, pfx,
   * passphrase, rejectUnauthorized, servername, proxy; keep-alive probes at 30 s). Later requests
   * reuse it while client-node's createDispatcherOptions for them has the same fingerprint; a
   * changed one (a rotated client certificate, from a file or an exec plugin) builds a new pool at
   * once and closes the old one gracefully: close() refuses new requests and waits for those in
   * flight, watches included, so nothing is cut. Bearer tokens (a token file, exec, OIDC) are
   * headers, set per request by applySecurityAuthentication, so a pool never holds a credential
   * that can expire.
   *
   * Watches: an undici Agent keeps one pool per origin with no limit on connections, so a
   * long-lived watch holds one connection while other requests take idle ones or open more; they
   * never queue behind it. Aborting a watch destroys its own socket, not the pool.
   */
  private sharedDispatcher(
    upstream: CreateDispatcher,
    cluster: Cluster | null,
    agentOptions: AgentOptions,
  ): Dispatcher | undefined {
    const options = this.createDispatcherOptions(cluster, agentOptions);
    // No TLS option at all (a publicly trusted server and a token): client-node leaves the request
    // on fetch's global dispatcher, which pools already.
    if (options.type === 'none') return undefined;
    const slot = JSON.stringify([
      cluster?.server ?? '',
      cluster?.name ?? '',
      this.getCurrentUser()?.name ?? '',
    ]);
    const fingerprint = fingerprintOf(options);
    const pool = sharedPools.get(slot);
    if (pool?.fingerprint === fingerprint) return pool.dispatcher;
    const dispatcher = upstream.call(this, cluster, agentOptions);
    if (dispatcher === undefined) return undefined;
    sharedPools.set(slot, { fingerprint, dispatcher });
    if (pool !== undefined) {
      pool.dispatcher.close().catch(() => undefined);
    }
    return dispatcher;
  }

  /** Checks the fence for writes, then authenticates as KubeConfig does. */
  override async applySecurityAuthentication(context: RequestContext): Promise<void> {
    const write = !READ_METHODS.has(context.getHttpMethod());
    // Before the (possibly slow: exec or file token) authentication and again after it, so the last
    // check is as close as possible to the send.
    if (write) this.fence?.assertHeld();
    await super.applySecurityAuthentication(context);
    if (write) this.fence?.assertHeld();
    if (this.userAgent !== undefined) context.setHeaderParam('User-Agent', this.userAgent);
  }

  /** KubeConfig.makeApiClient with our User-Agent in place of client-node's. */
  override makeApiClient<T extends ApiType>(apiClientType: ApiConstructor<T>): T {
    if (this.userAgent === undefined) return super.makeApiClient(apiClientType);
    const cluster = this.getCurrentCluster();
    if (!cluster) throw new Error('No active cluster!');
    const config: Configuration = createConfiguration({
      baseServer: new ServerConfiguration(cluster.server, {}),
      authMethods: { default: this },
      middleware: [setHeaderMiddleware('User-Agent', this.userAgent)],
    });
    return new apiClientType(config);
  }
}

/** The fence of a KubeConfig, if it is fenced: how code that is handed only a kc finds it. */
export function fenceOf(kc: KubeConfig): Fence | undefined {
  return kc instanceof FencedKubeConfig ? kc.fence : undefined;
}
