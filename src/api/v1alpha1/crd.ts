/**
 * Pure builders of the CustomResourceDefinitions from the TypeBox schemas. `npm run generate` writes
 * their YAML to crds/; a unit test fails when the checked-in files differ from what this produces.
 */
import type { TSchema } from 'typebox';
import { GROUP, VERSION } from './common.ts';
import { DEPLOYMENT_KIND, DEPLOYMENT_PLURAL, StackedDeploymentSchema } from './deployment.ts';
import { MODEL_GROUP_KIND, MODEL_GROUP_PLURAL, StackedModelGroupSchema } from './modelgroup.ts';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/**
 * Turns a TypeBox/JSON Schema node into a structural OpenAPI v3 node. `additionalProperties: false`
 * is what makes ajv report unknown fields, but the API server forbids it (it prunes unknown fields
 * instead), so it goes; everything else is already structural by construction.
 */
export function toStructural(schema: TSchema): Json {
  // JSON round trip: drops the non-enumerable CEL predicates and TypeBox's symbol keys.
  const plain = JSON.parse(JSON.stringify(schema)) as Json;
  return strip(plain);
}

function strip(node: Json): Json {
  if (Array.isArray(node)) return node.map(strip);
  if (node === null || typeof node !== 'object') return node;
  const out: Record<string, Json> = {};
  for (const [k, v] of Object.entries(node)) {
    if (k === 'additionalProperties' && v === false) continue;
    out[k] = strip(v);
  }
  return dropDefaultedFromRequired(out);
}

/**
 * A field with a default is required in our TypeScript types (the API server always fills it), but
 * must not be `required` in the CRD: the server checks a parent's default (say `engine: {}`) against
 * the schema before it fills the children's defaults, and would refuse the CRD.
 */
function dropDefaultedFromRequired(node: Record<string, Json>): Record<string, Json> {
  const props = node.properties;
  if (!Array.isArray(node.required) || props === null || typeof props !== 'object' || Array.isArray(props))
    return node;
  const required = node.required.filter((name) => {
    const p = props[name as string];
    return !(p !== null && typeof p === 'object' && !Array.isArray(p) && 'default' in p);
  });
  const { required: _dropped, ...rest } = node;
  return required.length > 0 ? { ...rest, required } : rest;
}

interface PrinterColumn {
  name: string;
  type: 'string' | 'integer' | 'date' | 'boolean' | 'number';
  jsonPath: string;
  description: string;
  priority?: number;
}

interface KindDefinition {
  kind: string;
  plural: string;
  shortName: string;
  /** The whole kind's schema: its description, spec and status go into the CRD. */
  schema: { description?: string; properties: { spec: TSchema; status: TSchema } };
  columns: PrinterColumn[];
}

const READY_COLUMN: PrinterColumn = {
  name: 'Ready',
  type: 'string',
  jsonPath: '.status.conditions[?(@.type=="Ready")].status',
  description: 'Whether the object is ready.',
};
const REASON_COLUMN: PrinterColumn = {
  name: 'Reason',
  type: 'string',
  jsonPath: '.status.conditions[?(@.type=="Ready")].reason',
  description: 'Why it is (not) ready.',
  priority: 1,
};
const AGE_COLUMN: PrinterColumn = {
  name: 'Age',
  type: 'date',
  jsonPath: '.metadata.creationTimestamp',
  description: 'Time since creation.',
};

export const MODEL_GROUP_DEFINITION: KindDefinition = {
  kind: MODEL_GROUP_KIND,
  plural: MODEL_GROUP_PLURAL,
  shortName: 'smg',
  schema: StackedModelGroupSchema,
  columns: [
    READY_COLUMN,
    {
      name: 'Base',
      type: 'string',
      jsonPath: '.spec.baseModel.inferenceKey',
      description: 'Inference key of the base.',
    },
    { name: 'Members', type: 'integer', jsonPath: '.status.memberCount', description: 'Number of members.' },
    REASON_COLUMN,
    AGE_COLUMN,
  ],
};

export const DEPLOYMENT_DEFINITION: KindDefinition = {
  kind: DEPLOYMENT_KIND,
  plural: DEPLOYMENT_PLURAL,
  shortName: 'sdep',
  schema: StackedDeploymentSchema,
  columns: [
    READY_COLUMN,
    { name: 'Backend', type: 'string', jsonPath: '.spec.backend', description: 'vllm or oci.' },
    {
      name: 'Group',
      type: 'string',
      jsonPath: '.spec.modelGroupRef.name',
      description: 'The model group served.',
    },
    {
      name: 'Replicas',
      type: 'integer',
      jsonPath: '.status.readyReplicas',
      description: 'Ready replicas.',
      priority: 1,
    },
    {
      name: 'Endpoint',
      type: 'string',
      jsonPath: '.status.endpoint',
      description: 'Where clients send requests.',
    },
    REASON_COLUMN,
    AGE_COLUMN,
  ],
};

/** The CustomResourceDefinition object of one kind. */
export function buildCrd(def: KindDefinition): Record<string, Json> {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: `${def.plural}.${GROUP}`,
      labels: { 'app.kubernetes.io/part-of': 'stacked-operator' },
      // Argo CD syncs lower waves first: the CRDs before the StackedModelGroups and
      // StackedDeployments of the same application (wave 0), whose dry run would fail without them.
      annotations: { 'argocd.argoproj.io/sync-wave': '-1' },
    },
    spec: {
      group: GROUP,
      names: {
        kind: def.kind,
        listKind: `${def.kind}List`,
        plural: def.plural,
        singular: def.kind.toLowerCase(),
        shortNames: [def.shortName],
        categories: ['stacked'],
      },
      scope: 'Namespaced',
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: def.columns.map((c) => ({ ...c })),
          schema: {
            openAPIV3Schema: {
              type: 'object',
              description: def.schema.description ?? '',
              required: ['spec'],
              properties: {
                apiVersion: {
                  type: 'string',
                  description: 'Versioned schema of this representation of an object.',
                },
                kind: { type: 'string', description: 'REST resource this object represents.' },
                metadata: { type: 'object' },
                spec: toStructural(def.schema.properties.spec),
                status: toStructural(def.schema.properties.status),
              },
            },
          },
        },
      ],
    },
  };
}

/** Both CRDs, keyed by the file name they are written to in crds/. */
export function allCrds(): Record<string, Record<string, Json>> {
  return {
    [`${GROUP}_${MODEL_GROUP_PLURAL}.yaml`]: buildCrd(MODEL_GROUP_DEFINITION),
    [`${GROUP}_${DEPLOYMENT_PLURAL}.yaml`]: buildCrd(DEPLOYMENT_DEFINITION),
  };
}
