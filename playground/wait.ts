// Polling helpers for integration tests: conditions on real objects, read through kubectl.
import { setTimeout as sleep } from 'node:timers/promises';
import type { ControlPlane } from './controlplane.ts';
import { kubectl } from './kubectl.ts';

export interface Cond {
  type: string;
  status: string;
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration?: number;
}

export interface Obj {
  metadata: { name: string; namespace?: string; generation?: number; uid?: string; resourceVersion?: string };
  spec?: Record<string, unknown>;
  status?: { observedGeneration?: number; conditions?: Cond[]; [k: string]: unknown };
}

export async function getObject(
  cp: ControlPlane,
  ns: string,
  resource: string,
  name: string,
): Promise<Obj | undefined> {
  const r = await kubectl(cp, ['get', '-n', ns, resource, name, '-o', 'json'], { allowFail: true });
  if (r.code !== 0) {
    if (r.stderr.includes('NotFound')) return undefined;
    throw new Error(r.stderr);
  }
  return JSON.parse(r.stdout) as Obj;
}

export function condition(o: Obj | undefined, type: string): Cond | undefined {
  return o?.status?.conditions?.find((c) => c.type === type);
}

/** Polls until `check` returns a value (not undefined), or fails with the last object seen. */
export async function eventually<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 30_000,
  intervalMs = 250,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${lastError instanceof Error ? `: ${lastError.message}` : ''}`,
      );
    }
    await sleep(intervalMs);
  }
}

/** Waits until the object's Ready condition has this status (and reason), for its current generation. */
export function waitForReady(
  cp: ControlPlane,
  ns: string,
  resource: string,
  name: string,
  status: 'True' | 'False',
  reason?: string,
  timeoutMs = 30_000,
): Promise<Obj> {
  return eventually(
    `${resource}/${name} Ready=${status}${reason ? ` (${reason})` : ''}`,
    async () => {
      const o = await getObject(cp, ns, resource, name);
      const c = condition(o, 'Ready');
      const fresh =
        o?.status?.observedGeneration === o?.metadata.generation &&
        c?.observedGeneration === o?.metadata.generation;
      return fresh && c?.status === status && (reason === undefined || c.reason === reason) ? o : undefined;
    },
    timeoutMs,
  );
}

export interface EventSummary {
  type: string;
  reason: string;
  message: string;
}

/** The Events recorded about one object, as `kubectl describe` would list them. */
export async function eventsFor(cp: ControlPlane, ns: string, name: string): Promise<EventSummary[]> {
  const r = await kubectl(cp, [
    'get',
    'events',
    '-n',
    ns,
    '--field-selector',
    `involvedObject.name=${name}`,
    '-o',
    'json',
  ]);
  return (JSON.parse(r.stdout) as { items: EventSummary[] }).items;
}
