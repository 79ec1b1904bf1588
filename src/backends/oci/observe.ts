/**
 * The reads of one pass, and nothing else: what OCI holds for a StackedDeployment, as a Snapshot.
 *
 * By id first: the deployment, the groups and the work request recorded in status are read with
 * GETs, so a reconcile costs the same whatever else the compartment holds (listing the compartment
 * on every pass made N objects cost N^2 reads). A list, filtered by our uid tag on this side (the
 * list APIs cannot filter by tag), is made only when an id is missing and this object may have sent
 * a create: a create whose answer was lost in a crash before status recorded it. That adoption, with
 * the deterministic retry tokens, is what keeps creates exactly-once. Whether a list can be needed is
 * the journal's to say (journal.ts, `Adoption`): an object born under this process never lists,
 * where a list of a busy compartment costs a page per 100 records.
 */
import type * as ds from 'oci-datascience';
import type { StackedDeployment } from '../../api/v1alpha1/deployment.ts';
import { TAG_MEMBERS, TAG_UID, deployedGroupId, ociSpec, type DesiredGroup } from './desired.ts';
import { isOciNotFound } from './errors.ts';
import type { Adoption } from './journal.ts';
import {
  stateOf,
  timeOf,
  type DeploymentView,
  type GroupView,
  type GroupsRead,
  type OciStatus,
  type Snapshot,
  type WorkRequestView,
} from './snapshot.ts';

/** The largest page OCI's lists allow: fewer, larger pages cost the least when a list is needed. */
export const LIST_PAGE = 100;

/** Groups that can still be (or become) the one deployed. */
export const USABLE_GROUP = new Set(['CREATING', 'ACTIVE']);
/** Deployment states in which its model states mean something. */
const SERVING_STATES = new Set(['ACTIVE', 'NEEDS_ATTENTION']);

/**
 * The deployment alone, read first: when a later read fails, status can still say what serves.
 * By the id in status, else by the one this process made (status may lag), else by the uid tag: a
 * deployment made just before a crash is adopted.
 */
export async function observeDeployment(
  client: ds.DataScienceClient,
  d: StackedDeployment,
  adoption: Adoption,
): Promise<DeploymentView | undefined> {
  const id = d.status?.oci?.modelDeploymentId;
  for (const known of new Set([id, adoption.deploymentId])) {
    if (known === undefined) continue;
    const got = await getDeployment(client, known);
    if (got !== undefined) return got;
  }
  if (!adoption.listDeployments) return undefined;
  const oci = ociSpec(d);
  const [found] = await madeBy(
    client.listModelDeploymentsRecordIterator({
      compartmentId: oci.compartmentId,
      projectId: oci.projectId,
      limit: LIST_PAGE,
    }),
    d,
  );
  return found === undefined ? undefined : getDeployment(client, found.id);
}

/** The rest of the snapshot, given the deployment just read. */
export async function observeRest(
  client: ds.DataScienceClient,
  d: StackedDeployment,
  want: DesiredGroup,
  deployment: DeploymentView | undefined,
  adoption: Adoption,
): Promise<Snapshot> {
  const previous: OciStatus = d.status?.oci ?? {};
  const workRequest =
    previous.workRequestId === undefined ? undefined : await readWorkRequest(client, previous.workRequestId);
  const base = { previous, deployment, workRequest };
  // While OCI works, the pass only waits: nothing else is worth a request.
  if (workRequest?.phase === 'running') return { ...base, groupsRead: 'none', groups: [] };

  const { groupsRead, groups } = await observeGroups(client, d, want, deployment, workRequest, adoption);
  const usable = groups.some((g) => g.ours && g.membersHash === want.hash && USABLE_GROUP.has(g.state));
  // The history is needed only to create a group, which happens only when none is usable.
  const historyId =
    previous.modelGroupVersionHistoryId ??
    adoption.historyId ??
    (usable || !adoption.listHistories ? undefined : await findHistory(client, d));
  const md = deployment?.md;
  const modelStates =
    md !== undefined && SERVING_STATES.has(stateOf(md)) ? await readModelStates(client, md) : undefined;
  return { ...base, groupsRead, groups, historyId, modelStates };
}

async function observeGroups(
  client: ds.DataScienceClient,
  d: StackedDeployment,
  want: DesiredGroup,
  deployment: DeploymentView | undefined,
  workRequest: WorkRequestView | undefined,
  adoption: Adoption,
): Promise<{ groupsRead: GroupsRead; groups: GroupView[] }> {
  const previous: OciStatus = d.status?.oci ?? {};
  const deployedId = deployment === undefined ? undefined : deployedGroupId(deployment.md);
  const served = deployedId === undefined ? undefined : await getGroup(client, deployedId, d);
  const superseded = previous.modelGroupHistory ?? [];
  // At rest: the deployment serves the group status records, made for this spec, and no more
  // superseded groups are recorded than are kept. Those are left unread: nothing would change them.
  if (
    served !== undefined &&
    served.ours &&
    served.id === previous.modelGroupId &&
    served.membersHash === want.hash &&
    superseded.length <= ociSpec(d).retainModelGroups
  ) {
    return { groupsRead: 'serving', groups: [served] };
  }
  const ids = new Set<string>([
    ...(previous.modelGroupId === undefined ? [] : [previous.modelGroupId]),
    ...superseded,
    ...(workRequest?.phase === 'succeeded' ? workRequest.groupIds : []),
  ]);
  if (served !== undefined) ids.delete(served.id);
  const known: GroupView[] = served === undefined ? [] : [served];
  for (const id of ids) {
    const g = await getGroup(client, id, d);
    if (g !== undefined) known.push(g);
  }
  const usable = known.some((g) => g.ours && g.membersHash === want.hash && USABLE_GROUP.has(g.state));
  // Nothing of this object's can be unrecorded when it never made a group, or made none unseen.
  if (usable || !adoption.listGroups) return { groupsRead: 'all', groups: newestFirst(known) };
  // No usable group for this spec among those recorded: a new spec, or a group made before a crash
  // that status never recorded. The list tells, DELETED records included (they salt the token).
  const listed = await listGroups(client, d);
  const byId = new Map(listed.map((g) => [g.id, g]));
  // A GET is fresher than a list page, and carries the members.
  for (const g of known) byId.set(g.id, g);
  return { groupsRead: 'all', groups: newestFirst([...byId.values()]) };
}

function newestFirst(groups: GroupView[]): GroupView[] {
  return groups.sort((a, b) => b.created - a.created);
}

async function getDeployment(client: ds.DataScienceClient, id: string): Promise<DeploymentView | undefined> {
  try {
    const res = await client.getModelDeployment({ modelDeploymentId: id });
    if (stateOf(res.modelDeployment) === 'DELETED') return undefined;
    return { md: res.modelDeployment, etag: res.etag };
  } catch (err) {
    if (isOciNotFound(err)) return undefined;
    throw err;
  }
}

/**
 * A work request in flight is polled until OCI sets timeFinished (the SDK waiter's own test). Not
 * the SDK's waiter itself: it blocks for up to 20 minutes, and a reconcile worker must not.
 */
async function readWorkRequest(client: ds.DataScienceClient, id: string): Promise<WorkRequestView> {
  let wr: ds.models.WorkRequest;
  try {
    wr = (await client.getWorkRequest({ workRequestId: id })).workRequest;
  } catch (err) {
    if (isOciNotFound(err)) return { id, phase: 'gone' };
    throw err;
  }
  const operationType: string = wr.operationType;
  // JSON null and absent both mean "not finished".
  if (wr.timeFinished == null) {
    return { id, phase: 'running', operationType, percentComplete: wr.percentComplete };
  }
  const outcome: string = wr.status;
  if (outcome !== 'FAILED') {
    // Read defensively: the typings say required, the JSON may lack it.
    const resources = wr.resources as readonly ds.models.WorkRequestResource[] | undefined;
    const groupIds = (resources ?? [])
      .filter((r) => r.entityType.toLowerCase() === 'modelgroup')
      .map((r) => r.identifier);
    return { id, phase: 'succeeded', groupIds };
  }
  const errors = await client.listWorkRequestErrors({ workRequestId: id });
  const text = errors.items.map((e) => `${e.code}: ${e.message}`).join('; ');
  return { id, phase: 'failed', operationType, errors: text };
}

async function getGroup(
  client: ds.DataScienceClient,
  id: string,
  d: StackedDeployment,
): Promise<GroupView | undefined> {
  try {
    const g = (await client.getModelGroup({ modelGroupId: id })).modelGroup;
    return {
      ...groupView(g, d),
      members: (g.memberModelEntries.memberModelDetails ?? []).map((m) => ({
        modelId: m.modelId,
        inferenceKey: m.inferenceKey ?? '',
      })),
    };
  } catch (err) {
    if (isOciNotFound(err)) return undefined;
    throw err;
  }
}

function groupView(g: ds.models.ModelGroupSummary | ds.models.ModelGroup, d: StackedDeployment): GroupView {
  const details = g.modelGroupDetails as ds.models.StackedModelGroupDetails | undefined;
  return {
    id: g.id,
    state: stateOf(g),
    ours: g.freeformTags?.[TAG_UID] === d.metadata.uid,
    membersHash: g.freeformTags?.[TAG_MEMBERS],
    baseModelId: details?.type === 'STACKED' ? details.baseModelId : undefined,
    created: timeOf(g.timeCreated),
    details: g.lifecycleDetails,
  };
}

/** Every group this object made, DELETED records included. */
export async function listGroups(client: ds.DataScienceClient, d: StackedDeployment): Promise<GroupView[]> {
  const oci = ociSpec(d);
  const out = await madeBy(
    client.listModelGroupsRecordIterator({
      compartmentId: oci.compartmentId,
      projectId: oci.projectId,
      limit: LIST_PAGE,
    }),
    d,
    true,
  );
  return newestFirst(out.map((g) => groupView(g, d)));
}

/** The version history by the uid tag: one whose create answer was lost is adopted. */
async function findHistory(client: ds.DataScienceClient, d: StackedDeployment): Promise<string | undefined> {
  return (await listHistories(client, d)).find((h) => stateOf(h) === 'ACTIVE')?.id;
}

export async function listHistories(
  client: ds.DataScienceClient,
  d: StackedDeployment,
): Promise<ds.models.ModelGroupVersionHistorySummary[]> {
  const oci = ociSpec(d);
  return madeBy(
    client.listModelGroupVersionHistoriesRecordIterator({
      compartmentId: oci.compartmentId,
      projectId: oci.projectId,
      limit: LIST_PAGE,
    }),
    d,
  );
}

async function readModelStates(
  client: ds.DataScienceClient,
  md: ds.models.ModelDeployment,
): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for await (const s of client.listModelDeploymentModelStatesRecordIterator({
    modelDeploymentId: md.id,
    compartmentId: md.compartmentId,
    projectId: md.projectId,
    limit: LIST_PAGE,
  })) {
    out.set(s.modelId, s.state);
  }
  return out;
}

/** The records of a list that this object made (its uid tag); DELETED ones only when asked. */
export async function madeBy<T extends { freeformTags?: Record<string, string>; lifecycleState?: unknown }>(
  records: AsyncIterable<T>,
  d: StackedDeployment,
  includeDeleted = false,
): Promise<T[]> {
  const out: T[] = [];
  for await (const r of records) {
    if (r.freeformTags?.[TAG_UID] !== d.metadata.uid) continue;
    if (includeDeleted || stateOf(r) !== 'DELETED') out.push(r);
  }
  return out;
}
