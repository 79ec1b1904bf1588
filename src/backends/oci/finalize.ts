/**
 * The finalizer's work: the deployment first (a group in use cannot go), then every group this
 * object made, then its version history (OCI keeps it while any of its groups exists). Lists by the
 * uid tag rather than the ids in status: nothing may be left behind, and this runs once per object.
 */
import type * as ds from 'oci-datascience';
import type { StackedDeployment } from '../../api/v1alpha1/deployment.ts';
import type { EventRecorder } from '../../runtime/events.ts';
import type { Logger } from '../../runtime/logger.ts';
import { DELETABLE_GROUP } from './decide.ts';
import { isOciNotFound } from './errors.ts';
import { LIST_ALL } from './journal.ts';
import { listGroups, listHistories, observeDeployment } from './observe.ts';
import { stateOf } from './snapshot.ts';

/** Done when nothing is left; OCI trouble throws and the work queue retries. */
export async function deleteAll(
  client: ds.DataScienceClient,
  d: StackedDeployment,
  events: EventRecorder,
  log: Logger,
): Promise<{ done: boolean; message: string }> {
  const seen = await observeDeployment(client, d, LIST_ALL);
  if (seen !== undefined) {
    const { md, etag } = seen;
    const state = stateOf(md);
    if (state === 'DELETING' || state === 'CREATING' || state === 'UPDATING') {
      return { done: false, message: `waiting for OCI model deployment ${md.id} (${state})` };
    }
    await client.deleteModelDeployment({ modelDeploymentId: md.id, ifMatch: etag });
    log.info('deleting OCI model deployment', { modelDeploymentId: md.id });
    events.record(d, 'Normal', 'DeletingDeployment', `deleting OCI model deployment ${md.id}`);
    return { done: false, message: `deleting OCI model deployment ${md.id}` };
  }
  const ours = (await listGroups(client, d)).filter((g) => g.state !== 'DELETED');
  for (const g of ours) {
    if (!DELETABLE_GROUP.has(g.state)) continue;
    try {
      await client.deleteModelGroup({ modelGroupId: g.id });
      log.info('deleting OCI model group', { modelGroupId: g.id });
    } catch (err) {
      if (!isOciNotFound(err)) throw err;
    }
  }
  if (ours.length > 0) return { done: false, message: `deleting ${String(ours.length)} OCI model groups` };
  const histories = await listHistories(client, d);
  for (const h of histories) {
    if (stateOf(h) === 'DELETING') continue;
    try {
      await client.deleteModelGroupVersionHistory({ modelGroupVersionHistoryId: h.id });
      log.info('deleting OCI model group version history', { modelGroupVersionHistoryId: h.id });
    } catch (err) {
      if (!isOciNotFound(err)) throw err;
    }
  }
  if (histories.length > 0) return { done: false, message: 'deleting the OCI model group version history' };
  return { done: true, message: 'no OCI resources left' };
}
