/**
 * Building blocks shared by the schemas of both kinds.
 *
 * The TypeBox schemas in this folder are the single source of the API: `crd.ts` turns them into the
 * CRD YAML in `crds/`, `Type.Static` gives the TypeScript types, and `validate.ts` compiles them with
 * ajv. A CEL rule is written once, with `cel()`, next to a TypeScript predicate that means the same:
 * the API server evaluates the CEL, the operator's ajv validator evaluates the predicate, and both
 * report the same message.
 */
import type { V1ObjectMeta } from '@kubernetes/client-node';
import Type, { type TSchema, type TUnsafe } from 'typebox';

export const GROUP = 'serving.stacked.dev';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;

/** A CEL rule as the CRD carries it, plus the TypeScript predicate the operator evaluates instead. */
export interface CelRule {
  rule: string;
  message: string;
  // Not FieldValueDuplicate: the API server drops the message for that reason and says only "Duplicate value".
  reason?: 'FieldValueInvalid' | 'FieldValueForbidden' | 'FieldValueRequired';
  fieldPath?: string;
  /** Non-enumerable, so it never reaches the CRD YAML. */
  readonly check: (self: never) => boolean;
}

/**
 * Declares a CEL rule and its TypeScript twin. `check` receives the value at the node the rule is
 * attached to, exactly like CEL's `self`.
 */
// T only types the predicate at the call site, as CEL's `self` is typed by where the rule sits.
// eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters
export function cel<T>(
  rule: string,
  message: string,
  check: (self: T) => boolean,
  extra: { reason?: CelRule['reason']; fieldPath?: string } = {},
): CelRule {
  const r = { rule, message, ...extra } as CelRule;
  Object.defineProperty(r, 'check', { value: check, enumerable: false });
  return r;
}

/**
 * A transition rule: the field keeps its first value. Only the API server sees the old object, so
 * the ajv twin passes; what it guards (resources in a cloud account) would otherwise be orphaned.
 */
export function immutable(field: string, why = 'delete and recreate the object instead'): CelRule {
  return cel<unknown>('self == oldSelf', `${field} is immutable; ${why}`, () => true);
}

/** `x-kubernetes-validations` option for a TypeBox node. */
export function rules(...r: CelRule[]): { 'x-kubernetes-validations': CelRule[] } {
  return { 'x-kubernetes-validations': r };
}

/** A string enum as Kubernetes wants it (`type: string` + `enum`), typed as the union of its values. */
export function StringEnum<const V extends string>(
  values: readonly V[],
  options: Record<string, unknown> = {},
): TUnsafe<V> {
  return Type.Unsafe<V>({ type: 'string', enum: [...values], ...options });
}

/** An integer enum (`type: integer` + `enum`). */
export function IntegerEnum<const V extends number>(
  values: readonly V[],
  options: Record<string, unknown> = {},
): TUnsafe<V> {
  return Type.Unsafe<V>({ type: 'integer', enum: [...values], ...options });
}

/** A string-to-string map (`additionalProperties`), the structural form of a Go map[string]string. */
export function StringMap(options: Record<string, unknown> = {}): TUnsafe<Record<string, string>> {
  return Type.Unsafe<Record<string, string>>({
    type: 'object',
    additionalProperties: { type: 'string', maxLength: 4096 },
    ...options,
  });
}

/**
 * A Kubernetes core type (env var, toleration, affinity, resources) kept as an opaque object: the
 * API server validates it when it lands in a Pod, and repeating those large schemas here would only
 * drift from upstream.
 */
export function KubeObject<T>(description: string): TUnsafe<T> {
  return Type.Unsafe<T>({ type: 'object', 'x-kubernetes-preserve-unknown-fields': true, description });
}

/** Inference keys: what clients put in a request's `model` field. */
export const INFERENCE_KEY_PATTERN = '^[a-z0-9]([a-z0-9._-]*[a-z0-9])?$';
const inferenceKeyRegExp = new RegExp(INFERENCE_KEY_PATTERN);
export const INFERENCE_KEY_MESSAGE =
  "must be 1-32 characters of lower-case letters, digits, '-', '_' or '.', starting and ending with a letter or digit";

export function InferenceKey(description: string): TUnsafe<string> {
  return Type.Unsafe<string>({
    type: 'string',
    minLength: 1,
    maxLength: 32,
    pattern: INFERENCE_KEY_PATTERN,
    description,
    ...rules(
      cel<string>(`self.matches('${INFERENCE_KEY_PATTERN}')`, `inferenceKey ${INFERENCE_KEY_MESSAGE}`, (s) =>
        inferenceKeyRegExp.test(s),
      ),
    ),
  });
}

/** OCI identifiers: ocid1.<resource type>.<realm>.[region][.future use].<unique id>. */
export function Ocid(resourceType: string, description: string): TUnsafe<string> {
  const pattern = `^ocid1\\.${resourceType}\\.[a-z0-9]+\\.[a-z0-9-]*(\\.[a-z0-9-]*)?\\.[a-z0-9]+$`;
  const re = new RegExp(pattern);
  return Type.Unsafe<string>({
    type: 'string',
    maxLength: 255,
    description,
    ...rules(
      cel<string>(
        `self.matches('${pattern.replaceAll('\\', '\\\\')}')`,
        `must be an OCI ${resourceType} OCID (ocid1.${resourceType}.<realm>.<region>.<id>)`,
        (s) => re.test(s),
      ),
    ),
  });
}

/** A reference to an object by name in the same namespace. */
export function LocalObjectReference(description: string) {
  return Type.Object(
    {
      name: Type.String({
        minLength: 1,
        maxLength: 253,
        pattern: '^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$',
        description: 'Name of the object, in the same namespace.',
      }),
    },
    { description, additionalProperties: false },
  );
}

/** metav1.Condition, as the Kubernetes API conventions define it. */
export const ConditionSchema = Type.Object(
  {
    type: Type.String({
      maxLength: 316,
      pattern:
        '^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$',
      description: 'Type of condition in CamelCase, e.g. Ready.',
    }),
    status: StringEnum(['True', 'False', 'Unknown'], { description: 'Status of the condition.' }),
    observedGeneration: Type.Optional(
      Type.Integer({
        minimum: 0,
        format: 'int64',
        description: 'The .metadata.generation that the condition was set based upon.',
      }),
    ),
    lastTransitionTime: Type.String({
      format: 'date-time',
      description: 'Last time the condition went from one status to another.',
    }),
    reason: Type.String({
      minLength: 1,
      maxLength: 1024,
      pattern: '^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$',
      description: "Programmatic identifier of the condition's last transition, in CamelCase.",
    }),
    message: Type.String({ maxLength: 32768, description: 'Human-readable details about the transition.' }),
  },
  { description: 'A condition in the metav1.Condition shape.' },
);

/** Conditions as a list map keyed by type, so server-side apply merges them per type. */
export function Conditions(description: string) {
  return Type.Array(ConditionSchema, {
    maxItems: 32,
    description,
    'x-kubernetes-list-type': 'map',
    'x-kubernetes-list-map-keys': ['type'],
  });
}

/**
 * Shared `metadata`: only names may be constrained (a structural-schema rule). Typed as client-node's
 * V1ObjectMeta so our kinds work with its generic helpers; note that timestamps of custom objects
 * arrive as strings at run time, since client-node deserialises only its built-in kinds.
 */
export const ObjectMeta = Type.Unsafe<V1ObjectMeta>({ type: 'object' });

export type Schema = TSchema;
