/**
 * Pure: which `model` names a StackedDeployment answers to, and where each one goes.
 *
 * A request may name the base or a member by its inference key or its model id (the OCID the
 * seed's clients send), or an experiment by its name. Each resolves to the name vLLM serves: the
 * base's inference key (vLLM runs with `--served-model-name <base key> [<base id>]`) or the member's
 * inference key (the name its adapter was loaded under).
 *
 * The response's `model` field is left as vLLM writes it, which is that served name, i.e. the
 * inference key, whatever name the client used: a client that asked for an OCID or an experiment
 * learns the key that answered (and, for an experiment, the variant header says the same).
 */
import type { StackedDeployment } from '../api/v1alpha1/deployment.ts';
import type { StackedModelGroup } from '../api/v1alpha1/modelgroup.ts';

/** A model vLLM serves: the base (adapter undefined) or one adapter. */
export interface ServedTarget {
  kind: 'served';
  /** The name vLLM serves and the body's `model` is rewritten to: an inference key. */
  servedName: string;
  /** The adapter a pod must hold; undefined for the base, which every pod serves. */
  adapter: string | undefined;
}

export interface Variant {
  /** The variant's inference key: what the A/B hash and the variant header use. */
  key: string;
  weight: number;
  target: ServedTarget;
}

export interface ExperimentTarget {
  kind: 'experiment';
  name: string;
  /** The request header whose value pins a client to a variant; lower-case, as node gives headers. */
  stickyHeader: string | undefined;
  /** The variants that name the base or a member; empty when none does (every request gets a 503). */
  variants: readonly Variant[];
}

export type Target = ServedTarget | ExperimentTarget;

/** A row of GET /v1/models. */
export interface ModelEntry {
  id: string;
  /** The inference key it answers as; undefined for an experiment. */
  servedName: string | undefined;
  /** For members: the base's inference key, as vLLM's own model card has it. */
  parent: string | undefined;
}

/** Immutable: built once per spec change and swapped in whole. */
export interface NameTable {
  /** Every accepted name. */
  readonly byName: ReadonlyMap<string, Target>;
  /** The base's target, for a request that names no model (vLLM then answers with the base). */
  readonly base: ServedTarget | undefined;
  readonly models: readonly ModelEntry[];
}

export const EMPTY_NAMES: NameTable = { byName: new Map(), base: undefined, models: [] };

/**
 * The table of a deployment and its group. Names are claimed first come, first served, in this
 * order: inference keys, then model ids, then experiment names. The API's validation already keeps
 * them apart (unique keys and ids, an experiment never named like a variant); the order only decides
 * what a conflict it cannot see (an experiment named like a member no variant uses) resolves to:
 * the name vLLM itself serves wins.
 */
export function buildNameTable(sdep: StackedDeployment, group: StackedModelGroup | undefined): NameTable {
  if (group === undefined) return EMPTY_NAMES;
  const byName = new Map<string, Target>();
  const models: ModelEntry[] = [];
  const claim = (name: string | undefined, target: Target, entry: Omit<ModelEntry, 'id'>): void => {
    if (name === undefined || name === '' || byName.has(name)) return;
    byName.set(name, target);
    models.push({ id: name, ...entry });
  };

  const baseModel = group.spec.baseModel;
  const base: ServedTarget = { kind: 'served', servedName: baseModel.inferenceKey, adapter: undefined };
  const members = (group.spec.members ?? []).map((m) => ({
    member: m,
    target: { kind: 'served', servedName: m.inferenceKey, adapter: m.inferenceKey } satisfies ServedTarget,
  }));
  const asBase = { servedName: base.servedName, parent: undefined };
  claim(baseModel.inferenceKey, base, asBase);
  for (const { member, target } of members) {
    claim(member.inferenceKey, target, { servedName: target.servedName, parent: base.servedName });
  }
  claim(baseModel.modelId, base, asBase);
  for (const { member, target } of members) {
    claim(member.modelId, target, { servedName: target.servedName, parent: base.servedName });
  }

  const servedByKey = new Map<string, ServedTarget>([
    [base.servedName, base],
    ...members.map(({ target }) => [target.servedName, target] as const),
  ]);
  for (const e of sdep.spec.experiments ?? []) {
    // A variant that names neither the base nor a member is left out rather than failing its share
    // of the traffic; the operator's status reports the mistake. Rendezvous hashing keeps the other
    // variants' sticky values where they were.
    const variants: Variant[] = [];
    for (const v of e.variants) {
      const target = servedByKey.get(v.inferenceKey);
      if (target !== undefined && v.weight > 0)
        variants.push({ key: v.inferenceKey, weight: v.weight, target });
    }
    claim(
      e.name,
      { kind: 'experiment', name: e.name, stickyHeader: e.stickyHeader?.toLowerCase(), variants },
      { servedName: undefined, parent: undefined },
    );
  }
  return { byName, base, models };
}

/**
 * The target of a request's `model`: undefined (the field is absent) means the base, as in vLLM.
 * Returns undefined for a name the deployment does not answer to.
 */
export function resolveModel(table: NameTable, model: string | undefined): Target | undefined {
  if (model === undefined) return table.base;
  return table.byName.get(model);
}
