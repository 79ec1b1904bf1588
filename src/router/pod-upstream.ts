/**
 * The vLLM backend's upstream: a pod of the deployment that holds the adapter (pick.ts), with this
 * router's outstanding requests per pod, a short cool-down for a pod that refused a connection, and
 * the LoRA affinity the scraper observes.
 */
import { Agent, type OutgoingHttpHeaders } from 'node:http';
import { pickPod } from './pick.ts';
import type { Upstream, UpstreamEndpoint, UpstreamRequest } from './upstream.ts';

/** How long a pod that refused a connection gets no request: about a readiness probe's period. */
export const REFUSED_COOLDOWN_MS = 2000;

export interface PodUpstreamOptions {
  affinityMargin: number;
  /** Whether the pod runs the adapter in a GPU slot (the scraper's view); default never. */
  running?: (pod: string, adapter: string) => boolean;
  cooldownMs?: number;
  now?: () => number;
  random?: () => number;
}

export class PodUpstream implements Upstream {
  /** One pool of keep-alive connections to every pod: no TCP handshake per request. */
  readonly agent = new Agent({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: 256 });
  private readonly opts: PodUpstreamOptions;
  private readonly outstanding = new Map<string, number>();
  private readonly coolingUntil = new Map<string, number>();

  constructor(opts: PodUpstreamOptions) {
    this.opts = opts;
  }

  /** Requests this router has sent to the pod and not yet seen finish. */
  outstandingOf(pod: string): number {
    return this.outstanding.get(pod) ?? 0;
  }

  prepare(req: UpstreamRequest, tried: ReadonlySet<string>): Promise<UpstreamEndpoint | undefined> {
    const now = (this.opts.now ?? Date.now)();
    const running = this.opts.running ?? (() => false);
    const pod = pickPod({
      pods: req.state.pods,
      adapter: req.target.adapter,
      outstanding: (p) => this.outstandingOf(p),
      running,
      excluded: (p) => tried.has(p) || (this.coolingUntil.get(p) ?? 0) > now,
      affinityMargin: this.opts.affinityMargin,
      ...(this.opts.random !== undefined ? { random: this.opts.random } : {}),
    });
    if (pod === undefined) return Promise.resolve(undefined);
    this.outstanding.set(pod.name, this.outstandingOf(pod.name) + 1);
    let released = false;
    const headers: OutgoingHttpHeaders = { ...req.headers };
    return Promise.resolve({
      id: pod.name,
      url: new URL(req.path, pod.origin),
      headers,
      body: req.body,
      agent: this.agent,
      release: () => {
        if (released) return;
        released = true;
        const n = this.outstandingOf(pod.name) - 1;
        if (n > 0) this.outstanding.set(pod.name, n);
        else this.outstanding.delete(pod.name);
      },
      refused: () => {
        const at = (this.opts.now ?? Date.now)();
        // Expired entries go here, so pods that came and went leave nothing behind.
        for (const [name, until] of this.coolingUntil) if (until <= at) this.coolingUntil.delete(name);
        this.coolingUntil.set(pod.name, at + (this.opts.cooldownMs ?? REFUSED_COOLDOWN_MS));
      },
    });
  }

  close(): void {
    this.agent.destroy();
  }
}
