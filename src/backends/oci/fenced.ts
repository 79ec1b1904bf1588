/**
 * The OCI client of a leader: every mutating operation is checked against the lease fence first, so a
 * process that lost its lease (frozen, partitioned) creates, updates or deletes nothing in the cloud
 * while another leader may be doing the same. Reads pass: they change nothing.
 */
import type * as ds from 'oci-datascience';
import type { Fence } from '../../runtime/fence.ts';
import { aroundOperations } from './operations.ts';

const MUTATION = /^(create|update|delete|activate|deactivate|change)[A-Z]/;

export function fenced(client: ds.DataScienceClient, fence: Fence): ds.DataScienceClient {
  return aroundOperations(client, MUTATION, (_operation, call) => {
    fence.assertHeld();
    return call();
  });
}
