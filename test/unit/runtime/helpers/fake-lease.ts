import { ApiException, type V1Lease, V1MicroTime } from '@kubernetes/client-node';
import type { LeaseApi } from '../../../../src/runtime/leader.ts';

/**
 * An in-memory Lease store with the API server's compare-and-swap on resourceVersion. Stored
 * objects go through JSON like on the wire, so times come back as strings as they do from
 * client-node 2.0.1.
 */
export class FakeLeaseStore {
  lease: Record<string, unknown> | undefined;
  rv = 0;
  fail = false;
  hang = false;
  writes: Record<string, unknown>[] = [];
  /** Create and replace calls, answered or not (a 409 is one too). */
  writeCalls = 0;

  private check(): Promise<void> {
    if (this.hang) return new Promise(() => undefined);
    if (this.fail) return Promise.reject(new ApiException(500, 'x', '{"reason":"InternalError"}', {}));
    return Promise.resolve();
  }

  private store(body: object): V1Lease {
    const json = JSON.parse(JSON.stringify(body)) as Record<string, unknown>;
    this.writes.push(json);
    (json['metadata'] as Record<string, unknown>)['resourceVersion'] = String(++this.rv);
    this.lease = json;
    const lease: V1Lease = structuredClone(json);
    return lease;
  }

  /** Overwrites the lease as another process would. */
  setHolder(holder: string, durationSeconds = 15): void {
    this.store({
      metadata: { name: 'lease', namespace: 'ns' },
      spec: { holderIdentity: holder, leaseDurationSeconds: durationSeconds, renewTime: new V1MicroTime(0) },
    });
  }

  holder(): string | undefined {
    return (this.lease?.['spec'] as { holderIdentity?: string } | undefined)?.holderIdentity;
  }

  api(): LeaseApi {
    return {
      readNamespacedLease: async () => {
        await this.check();
        if (!this.lease) throw new ApiException(404, 'x', '{"reason":"NotFound"}', {});
        const lease: V1Lease = structuredClone(this.lease);
        return lease;
      },
      createNamespacedLease: async ({ body }: { body: V1Lease }) => {
        this.writeCalls += 1;
        await this.check();
        if (this.lease) throw new ApiException(409, 'x', '{"reason":"AlreadyExists"}', {});
        return this.store(body);
      },
      replaceNamespacedLease: async ({ body }: { body: V1Lease }) => {
        this.writeCalls += 1;
        await this.check();
        if (body.metadata?.resourceVersion !== String(this.rv)) {
          throw new ApiException(409, 'x', '{"reason":"Conflict"}', {});
        }
        return this.store(body);
      },
    };
  }
}
