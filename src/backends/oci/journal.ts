/**
 * What this process saw each StackedDeployment make in OCI, so that its passes need not list a
 * compartment to find what status does not record.
 *
 * The lists (observe.ts) exist for one case: a create whose answer was lost (a crash, a timeout)
 * before status recorded it. A list costs a page per 100 records of the compartment, on every pass
 * until status holds every id: in issue 8's scale benchmark, 45 % of the operator's OCI calls and 40 %
 * of its CPU. Yet an object this process met without its finalizer never sent a create before (the
 * finalizer goes on first, and is awaited): from then on, every create it sends is one this process
 * sent, and the answer is here, whether or not status has caught up (the informer's copy may lag the
 * status write). So for such an object the journal stands in for the lists, until a create fails
 * without an answer (the request may have reached OCI): then it lists again, as after a restart.
 *
 * One small entry per object born under this process, under the object's key and for its uid (an
 * object made again under the same name starts afresh), dropped when the object is gone
 * (Backend.forget). A new leader starts empty (a process that loses its lease exits), so it lists for
 * every object that has a finalizer, as before.
 */
import type { StackedDeployment } from '../../api/v1alpha1/deployment.ts';
import { objectKey } from '../../runtime/keys.ts';

/** What a pass may skip, and the ids of creates that status may not show yet. */
export interface Adoption {
  /** List the compartment's deployments for one made by this object that status lacks. */
  listDeployments: boolean;
  /** List the groups (DELETED ones included: they salt the create token). */
  listGroups: boolean;
  /** List the version histories. */
  listHistories: boolean;
  /** Created by this process; status may not show it yet. */
  deploymentId?: string | undefined;
  historyId?: string | undefined;
}

interface Entry {
  uid: string;
  deploymentId?: string;
  historyId?: string;
  /** Whether it ever made a group: then its DELETED groups salt the next token, and a list tells. */
  madeGroup: boolean;
}

/** Everything listed: an object this process knows nothing of, or one being deleted. */
export const LIST_ALL: Adoption = { listDeployments: true, listGroups: true, listHistories: true };
const LIST_NONE: Adoption = { listDeployments: false, listGroups: false, listHistories: false };

export class CreateJournal {
  readonly #entries = new Map<string, Entry>();

  /**
   * What the pass that begins now must read. `protectedAtStart`: the finalizer was on the object as
   * the pass began.
   */
  begin(d: StackedDeployment, protectedAtStart: boolean): Adoption {
    const entry = this.#entry(d);
    if (!protectedAtStart) {
      // Nothing was ever sent for it: from here on, this process sees every create.
      if (entry === undefined)
        this.#entries.set(objectKey(d), { uid: d.metadata.uid ?? '', madeGroup: false });
      return LIST_NONE;
    }
    if (entry === undefined) return LIST_ALL;
    return {
      ...LIST_NONE,
      listGroups: entry.madeGroup,
      deploymentId: entry.deploymentId,
      historyId: entry.historyId,
    };
  }

  /** A create answered: its id is known here, whatever status shows. */
  created(
    d: StackedDeployment,
    what: { deploymentId?: string | undefined; historyId?: string | undefined; group?: true | undefined },
  ): void {
    const entry = this.#entry(d);
    if (entry === undefined) return;
    if (what.deploymentId !== undefined) entry.deploymentId = what.deploymentId;
    if (what.historyId !== undefined) entry.historyId = what.historyId;
    if (what.group) entry.madeGroup = true;
  }

  /** A create failed without an answer that says it did nothing: only a list can tell now. */
  unanswered(d: StackedDeployment): void {
    this.#entries.delete(objectKey(d));
  }

  /** The object under this key is gone from the cluster. */
  forget(key: string): void {
    this.#entries.delete(key);
  }

  #entry(d: StackedDeployment): Entry | undefined {
    const entry = this.#entries.get(objectKey(d));
    return entry?.uid === d.metadata.uid ? entry : undefined;
  }

  /** Entries held (the tests check that entries go with their objects). */
  get size(): number {
    return this.#entries.size;
  }
}
