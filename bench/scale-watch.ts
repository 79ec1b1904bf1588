/**
 * What the scale benchmark's parts share: the two kinds it creates, the part of an object it reads,
 * and a watch that outlives the API server's ends of a watch.
 */
import { Watch, type KubeConfig } from '@kubernetes/client-node';
import { GROUP, VERSION } from '../src/api/v1alpha1/common.ts';

export { GROUP, VERSION };
export const PLURALS = ['stackedmodelgroups', 'stackeddeployments'] as const;
export type Plural = (typeof PLURALS)[number];

export interface Condition {
  type: string;
  status: string;
  reason?: string;
  observedGeneration?: number;
}
export interface Observed {
  metadata?: { name?: string; generation?: number; resourceVersion?: string };
  status?: { observedGeneration?: number; conditions?: Condition[] };
}

export const keyOf = (plural: Plural, name: string) => `${plural}/${name}`;
export const progress = (line: string) => process.stderr.write(`[scale] ${line}\n`);

/** Watches a namespaced custom resource from now on, restarting after the server ends the watch. */
export class ResourceWatch {
  readonly #kc: KubeConfig;
  readonly #path: string;
  readonly #onEvent: (phase: string, o: Observed) => void;
  #abort: AbortController | undefined;
  #stopped = false;

  constructor(kc: KubeConfig, namespace: string, plural: Plural, onEvent: (p: string, o: Observed) => void) {
    this.#kc = kc;
    this.#path = `/apis/${GROUP}/${VERSION}/namespaces/${namespace}/${plural}`;
    this.#onEvent = onEvent;
  }

  /** Resolves once the watch is established. */
  start(): Promise<void> {
    return this.#watch(undefined);
  }

  stop(): void {
    this.#stopped = true;
    this.#abort?.abort();
  }

  async #watch(resourceVersion: string | undefined): Promise<void> {
    let lastRv = resourceVersion;
    const restart = () => {
      if (this.#stopped) return;
      setTimeout(() => {
        this.#watch(lastRv).catch((err: unknown) => {
          progress(`watch ${this.#path}: ${String(err)}; retrying`);
          lastRv = undefined;
          restart();
        });
      }, 200);
    };
    this.#abort = await new Watch(this.#kc).watch(
      this.#path,
      { allowWatchBookmarks: true, ...(lastRv === undefined ? {} : { resourceVersion: lastRv }) },
      (phase: string, obj: unknown) => {
        const o = obj as Observed;
        // 410 Gone and friends: start again from the current state (events replay as ADDED).
        if (phase === 'ERROR') {
          lastRv = undefined;
          return;
        }
        lastRv = o.metadata?.resourceVersion ?? lastRv;
        if (phase !== 'BOOKMARK') this.#onEvent(phase, o);
      },
      restart,
    );
  }
}
