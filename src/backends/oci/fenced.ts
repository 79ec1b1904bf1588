/**
 * The OCI client of a leader: every mutating operation is checked against the lease fence first, so a
 * process that lost its lease (frozen, partitioned) creates, updates or deletes nothing in the cloud
 * while another leader may be doing the same. Reads pass: they change nothing.
 */
import type * as ds from 'oci-datascience';
import type { Fence } from '../../runtime/fence.ts';

const MUTATION = /^(create|update|delete|activate|deactivate|change)[A-Z]/;

export function fenced(client: ds.DataScienceClient, fence: Fence): ds.DataScienceClient {
  return new Proxy(client, {
    get(target, prop, receiver) {
      const value: unknown = Reflect.get(target, prop, receiver);
      if (typeof prop !== 'string' || typeof value !== 'function' || !MUTATION.test(prop)) return value;
      const fn = value as (...args: unknown[]) => unknown;
      return (...args: unknown[]) => {
        fence.assertHeld();
        return fn.apply(receiver, args);
      };
    },
  });
}
