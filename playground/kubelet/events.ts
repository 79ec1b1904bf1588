// The Events the test kubelet records about a pod's containers, as `kubectl describe pod` shows the
// kubelet's: core/v1 Events from source component "kubelet" on the pod's node, with the container as
// fieldPath. Like client-go's event correlator, a repeat of the same event (same object, container,
// type, reason and message) bumps count and lastTimestamp on the Event already written instead of
// writing a new one; and like its spam filter, each pod (the source being this kubelet) gets a
// bucket of 25 events that refills one per 300 s, and what comes when it is empty is dropped, repeats
// included. Best effort, as in the kubelet: a failed write is logged and dropped, never retried and
// never awaited by the code that records it.
import { randomBytes } from 'node:crypto';

import type { CoreV1Api, CoreV1Event } from '@kubernetes/client-node';

export interface EventSubject {
  namespace: string;
  name: string;
  uid: string;
  nodeName: string;
  container: string;
}

export type EventType = 'Normal' | 'Warning';

/** How many correlated Events are remembered; the kubelet's correlator keeps an LRU of 4096. */
const MAX_REMEMBERED = 4096;
/** client-go's spam filter: a burst of 25 events per source and object, then one per 300 s. */
const SPAM_BURST = 25;
const SPAM_REFILL_MS = 300_000;

/** client-go's EventSourceObjectSpamFilter, for one source: a token bucket per object. */
export class SpamFilter {
  readonly #buckets = new Map<string, { tokens: number; at: number }>();
  readonly #refillMs: number;

  constructor(refillMs = SPAM_REFILL_MS) {
    this.#refillMs = refillMs;
  }

  /** Takes a token of the object's bucket, refilled for the time since; false when it is empty. */
  take(object: string, now: number): boolean {
    if (this.#refillMs <= 0) return true;
    const bucket = this.#buckets.get(object) ?? { tokens: SPAM_BURST, at: now };
    if (bucket.tokens < SPAM_BURST) {
      const refilled = Math.floor((now - bucket.at) / this.#refillMs);
      bucket.tokens = Math.min(SPAM_BURST, bucket.tokens + refilled);
      bucket.at += refilled * this.#refillMs;
    }
    this.#buckets.set(object, bucket);
    if (bucket.tokens === 0) return false;
    // A full bucket's refill clock starts with the first token spent.
    if (bucket.tokens === SPAM_BURST) bucket.at = now;
    bucket.tokens -= 1;
    return true;
  }

  forget(object: string): void {
    this.#buckets.delete(object);
  }
}

export class PodEventRecorder {
  readonly #core: CoreV1Api;
  readonly #log: (line: string) => void;
  /** The Event written per correlation key, oldest first, so the oldest is dropped when full. */
  readonly #written = new Map<string, Promise<CoreV1Event | undefined>>();
  readonly #spam: SpamFilter;

  /** timeScale scales the refill, as the kubelet's probe periods are scaled (1: as written). */
  constructor(core: CoreV1Api, log: (line: string) => void, timeScale = 1) {
    this.#core = core;
    this.#log = log;
    this.#spam = new SpamFilter(SPAM_REFILL_MS * timeScale);
  }

  record(subject: EventSubject, type: EventType, reason: string, message: string): void {
    if (!this.#spam.take(subject.uid, performance.now())) {
      this.#log(`event ${reason} for ${subject.namespace}/${subject.name} dropped by the spam filter`);
      return;
    }
    const key = [subject.uid, subject.container, type, reason, message].join('\u0000');
    const previous = this.#written.get(key);
    this.#written.delete(key);
    const next = (previous ?? Promise.resolve(undefined)).then((written) =>
      written === undefined ? this.#create(subject, type, reason, message) : this.#bump(written),
    );
    this.#written.set(key, next);
    if (this.#written.size > MAX_REMEMBERED) {
      const oldest = this.#written.keys().next().value;
      if (oldest !== undefined) this.#written.delete(oldest);
    }
  }

  /** Events for a pod that is gone: nothing will repeat them. */
  forget(uid: string): void {
    this.#spam.forget(uid);
    for (const key of this.#written.keys()) if (key.startsWith(`${uid}\u0000`)) this.#written.delete(key);
  }

  async #create(
    subject: EventSubject,
    type: EventType,
    reason: string,
    message: string,
  ): Promise<CoreV1Event | undefined> {
    const now = new Date();
    try {
      return await this.#core.createNamespacedEvent({
        namespace: subject.namespace,
        body: {
          // The kubelet names an Event after its object and a unique hex suffix.
          metadata: {
            name: `${subject.name}.${randomBytes(8).toString('hex')}`,
            namespace: subject.namespace,
          },
          involvedObject: {
            apiVersion: 'v1',
            kind: 'Pod',
            namespace: subject.namespace,
            name: subject.name,
            uid: subject.uid,
            fieldPath: `spec.containers{${subject.container}}`,
          },
          type,
          reason,
          message,
          source: { component: 'kubelet', host: subject.nodeName },
          reportingComponent: 'kubelet',
          reportingInstance: subject.nodeName,
          firstTimestamp: now,
          lastTimestamp: now,
          count: 1,
        },
      });
    } catch (err) {
      this.#log(`event ${reason} for ${subject.namespace}/${subject.name} not written: ${String(err)}`);
      return undefined;
    }
  }

  async #bump(event: CoreV1Event): Promise<CoreV1Event | undefined> {
    // Our own copy, from the write before: changed in place and sent back whole.
    event.count = (event.count ?? 1) + 1;
    event.lastTimestamp = new Date();
    try {
      return await this.#core.replaceNamespacedEvent({
        namespace: event.metadata.namespace ?? '',
        name: event.metadata.name ?? '',
        body: event,
      });
    } catch (err) {
      this.#log(`event ${event.reason ?? ''} ${event.metadata.name ?? ''} not updated: ${String(err)}`);
      // The Event went away (TTL) or changed under us: the next repeat starts a new one.
      return undefined;
    }
  }
}
