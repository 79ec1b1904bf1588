/**
 * The agent's downloads as jobs, like OCI work requests: a POST starts one and is answered at once,
 * the operator reads it back until it is Fetched or Failed, so no reconcile waits on a download.
 * Only unfinished jobs are held here (Fetching, and Failed until the next POST retries them or a
 * DELETE forgets them); a finished download is its folder on disk, read from the store's marker.
 */
import type { FetchFailureReason, FetchJobStatus } from '../api/agent/v1.ts';
import { type Clock, systemClock } from '../runtime/clock.ts';
import { AgentError, displayUri, errorMessage } from './errors.ts';
import type { Fetcher, FetchResult, Log } from './fetcher.ts';
import { Progress } from './meter.ts';
import { type FetchRequest, sourceId } from './request.ts';
import type { Store } from './store.ts';

/** How long the agent advises to wait before retrying a request that failed `attempts` times in a row. */
export interface RetryBackoff {
  baseMs: number;
  maxMs: number;
}

/** Doubling from 10 s to 10 min: a source that keeps failing is not downloaded again every sync. */
export const DEFAULT_RETRY_BACKOFF: RetryBackoff = { baseMs: 10_000, maxMs: 10 * 60_000 };

/**
 * How long a POST waits for its job to find the folder already complete (200) before answering 202.
 * Finding it is a marker read; the wait is longer only behind a cancelled job that is still cleaning
 * up, and this bounds it.
 */
const SETTLE_MS = 1_000;

/** The statuses the synchronous API answered a source's fault with: the member's problem, not the pod's. */
const REJECTED_STATUSES = new Set([400, 422, 502]);

export function failureReason(err: unknown): FetchFailureReason {
  return err instanceof AgentError && REJECTED_STATUSES.has(err.status) ? 'Rejected' : 'Error';
}

export function retryDelayMs(backoff: RetryBackoff, attempts: number): number {
  return Math.min(backoff.maxMs, backoff.baseMs * 2 ** Math.max(0, attempts - 1));
}

class Job {
  readonly req: FetchRequest;
  readonly key: string;
  readonly startedAt: number;
  /** Consecutive failures of this same request before this attempt. */
  readonly previousAttempts: number;
  readonly controller = new AbortController();
  readonly progress = new Progress();
  state: FetchJobStatus['state'] = 'Fetching';
  result: FetchResult | undefined;
  failure: { reason: FetchFailureReason; message: string; at: number } | undefined;
  /** Settles when the fetch has ended, its staging folder removed; never rejects. */
  done: Promise<void> = Promise.resolve();
  /** Resolves once the folder was not found complete and the download starts. */
  readonly downloading = Promise.withResolvers<undefined>();

  constructor(req: FetchRequest, key: string, startedAt: number, previousAttempts: number) {
    this.req = req;
    this.key = key;
    this.startedAt = startedAt;
    this.previousAttempts = previousAttempts;
  }
}

export interface JobsOptions {
  fetcher: Fetcher;
  store: Store;
  log: Log;
  clock?: Clock;
  backoff?: RetryBackoff;
}

export class Jobs {
  private readonly fetcher: Fetcher;
  private readonly store: Store;
  private readonly log: Log;
  private readonly clock: Clock;
  private readonly backoff: RetryBackoff;
  /** The unfinished job of each name. */
  private readonly jobs = new Map<string, Job>();

  constructor(opts: JobsOptions) {
    this.fetcher = opts.fetcher;
    this.store = opts.store;
    this.log = opts.log;
    this.clock = opts.clock ?? systemClock;
    this.backoff = opts.backoff ?? DEFAULT_RETRY_BACKOFF;
  }

  /**
   * Starts a job for `req` (whose fetchRequestKey is `key`), or joins the one running for the same
   * request, and returns its status almost at once: Fetched when the folder is already there.
   *
   * A job running for the same name but another request (a new source, checksum or limit) is
   * cancelled, and the new request starts once it has cleaned up: the operator only asks for what
   * its current spec wants, so the older download is of no use to anyone, and waiting for it (or
   * refusing with a conflict) would hold the new source back by a whole download.
   */
  async submit(req: FetchRequest, key: string): Promise<FetchJobStatus> {
    const current = this.jobs.get(req.name);
    if (current?.state === 'Fetching' && current.key === key) return this.status(current);
    if (current?.state === 'Fetching') {
      this.log('cancelling the fetch of an older request', { name: req.name });
      current.controller.abort(new Error('superseded by a newer request for the same name'));
    }
    const retried = current?.state === 'Failed' && current.key === key;
    const job = this.start(req, key, retried ? current.previousAttempts + 1 : 0);
    let timer: unknown;
    const settle = new Promise<void>((resolve) => {
      timer = this.clock.setTimeout(resolve, SETTLE_MS);
    });
    await Promise.race([job.done, job.downloading.promise, settle]);
    this.clock.clearTimeout(timer);
    return this.status(job);
  }

  private start(req: FetchRequest, key: string, previousAttempts: number): Job {
    const { name } = req;
    const job = new Job(req, key, this.clock.now(), previousAttempts);
    this.jobs.set(name, job);
    const forget = (): void => {
      if (this.jobs.get(name) === job) this.jobs.delete(name);
    };
    job.done = this.fetcher
      .fetch(req, {
        signal: job.controller.signal,
        progress: job.progress,
        onDownload: () => {
          job.downloading.resolve(undefined);
        },
      })
      .then(
        (result) => {
          job.state = 'Fetched';
          job.result = result;
          forget();
        },
        (err: unknown) => {
          job.state = 'Failed';
          const { signal } = job.controller;
          if (signal.aborted) {
            // Nobody reads a cancelled job back (it left the map), except the POST that started
            // it if it is still waiting: that caller learns its request was dropped.
            const message = `cancelled: ${errorMessage(signal.reason)}`;
            job.failure = { reason: 'Error', message, at: this.clock.now() };
            this.log('fetch cancelled', { name, reason: errorMessage(signal.reason) });
            forget();
            return;
          }
          const reason = failureReason(err);
          job.failure = { reason, message: errorMessage(err), at: this.clock.now() };
          this.log('fetch failed', {
            name,
            uri: displayUri(sourceId(req.source)),
            status: err instanceof AgentError ? err.status : 500,
            reason,
            error: errorMessage(err),
          });
        },
      );
    return job;
  }

  private status(job: Job): FetchJobStatus {
    const status: FetchJobStatus = {
      name: job.req.name,
      state: job.state,
      request: job.key,
      startedAt: new Date(job.startedAt).toISOString(),
    };
    switch (job.state) {
      case 'Fetching':
        status.bytes = job.progress.bytes;
        break;
      case 'Fetched':
        if (job.result !== undefined) {
          status.bytes = job.result.bytes;
          status.sha256 = job.result.sha256;
        }
        break;
      case 'Failed':
        if (job.failure !== undefined) {
          const attempts = job.previousAttempts + 1;
          const retryAt = job.failure.at + retryDelayMs(this.backoff, attempts);
          status.reason = job.failure.reason;
          status.message = job.failure.message;
          status.attempts = attempts;
          status.retryAfterMs = Math.max(0, retryAt - this.clock.now());
        }
        break;
    }
    return status;
  }

  /** The job of `name`, else its folder as Fetched, else undefined. */
  async get(name: string): Promise<FetchJobStatus | undefined> {
    const job = this.jobs.get(name);
    if (job !== undefined) return this.status(job);
    const have = await this.store.complete(name);
    return have === undefined
      ? undefined
      : { name, state: 'Fetched', bytes: have.bytes, sha256: have.sha256 };
  }

  /** The unfinished jobs (Fetching or Failed), by name. */
  list(): FetchJobStatus[] {
    return [...this.jobs.values()]
      .map((job) => this.status(job))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /**
   * Cancels the job of `name` if it runs, forgets it if it failed, and removes the folder; returns
   * once the cancelled download has removed its staging folder (the fetcher serializes the two).
   */
  async remove(name: string): Promise<void> {
    const job = this.jobs.get(name);
    this.jobs.delete(name);
    if (job?.state === 'Fetching') job.controller.abort(new Error('deleted'));
    await this.fetcher.remove(name);
  }

  /** Cancels every running job and waits until each has cleaned up (the agent is stopping). */
  async close(): Promise<void> {
    const running = [...this.jobs.values()].filter((job) => job.state === 'Fetching');
    for (const job of running) job.controller.abort(new Error('the agent is stopping'));
    await Promise.all(running.map((job) => job.done));
  }
}
