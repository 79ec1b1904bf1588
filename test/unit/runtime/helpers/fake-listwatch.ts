import { type KubernetesListObject, type KubernetesObject, V1ListMeta } from '@kubernetes/client-node';
import { model } from '../../../../src/runtime/model.ts';
import type { ListWatchLike } from '../../../../src/runtime/informer.ts';

type Verb = 'add' | 'update' | 'delete' | 'error' | 'connect';

/**
 * A scripted stand-in for client-node's ListWatch: start() emits connect, runs the list function
 * and emits 'add' for every item (as the real one does on its first list); the test then emits
 * watch events or errors by hand.
 */
export class FakeListWatch<T extends KubernetesObject> implements ListWatchLike<T> {
  readonly listFn: () => Promise<KubernetesListObject<T>>;
  started = 0;
  stopped = false;
  private readonly cbs = new Map<Verb, ((arg: never) => void)[]>();

  constructor(listFn: () => Promise<KubernetesListObject<T>>) {
    this.listFn = listFn;
  }

  on(verb: 'add' | 'update' | 'delete', cb: (obj: T) => void): void;
  on(verb: 'error' | 'connect', cb: (err?: unknown) => void): void;
  on(verb: Verb, cb: (arg: never) => void): void {
    const list = this.cbs.get(verb) ?? [];
    list.push(cb);
    this.cbs.set(verb, list);
  }

  emit(verb: Verb, arg?: unknown): void {
    for (const cb of this.cbs.get(verb) ?? []) (cb as (a: unknown) => void)(arg);
  }

  async start(): Promise<void> {
    this.started++;
    this.emit('connect');
    let list: KubernetesListObject<T>;
    try {
      list = await this.listFn();
    } catch (err) {
      this.emit('error', err);
      return;
    }
    for (const item of list.items) this.emit('add', item);
  }

  stop(): Promise<void> {
    this.stopped = true;
    return Promise.resolve();
  }
}

/** A test object. */
export interface TestObj extends KubernetesObject {
  metadata: {
    name: string;
    namespace?: string;
    resourceVersion?: string;
    generation?: number;
    uid?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    finalizers?: string[];
    deletionTimestamp?: Date;
    ownerReferences?: { apiVersion: string; kind: string; name: string; uid: string; controller?: boolean }[];
  };
  spec?: { group?: string; replicas?: number };
}

/** Builds a test object; rv defaults to "1". */
export function obj(
  ns: string,
  name: string,
  extra: Partial<TestObj['metadata']> = {},
  spec?: TestObj['spec'],
): TestObj {
  const o: TestObj = {
    apiVersion: 'test.dev/v1',
    kind: 'Thing',
    metadata: { name, namespace: ns, resourceVersion: '1', ...extra },
  };
  if (spec) o.spec = spec;
  return o;
}

/** A list response. */
export function listOf<T extends KubernetesObject>(
  items: T[],
  resourceVersion = '100',
): KubernetesListObject<T> {
  return { apiVersion: 'v1', kind: 'List', metadata: model(V1ListMeta, { resourceVersion }), items };
}
