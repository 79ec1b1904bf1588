/**
 * ajv validators compiled from the same schemas as the CRDs. The operator runs them on every object
 * it reconciles: the API server normally rejects bad input first, but objects stored before a CRD
 * upgrade, or written while validation was relaxed, still reach us and must become a clear condition
 * rather than a crash. The CEL rules run here through their TypeScript twins (see `cel()`).
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { TSchema } from 'typebox';
import type { CelRule } from './common.ts';
import { StackedDeploymentSchema, type StackedDeployment } from './deployment.ts';
import { StackedModelGroupSchema, type StackedModelGroup } from './modelgroup.ts';

/** One problem with an object, at a JSON path like `spec.members[2].inferenceKey`. */
export interface ValidationIssue {
  path: string;
  message: string;
}

export type ValidationResult<T> = { valid: true; value: T } | { valid: false; issues: ValidationIssue[] };

// ajv-formats is CommonJS with `exports.default`; under NodeNext its default import is the module object.
// https://github.com/ajv-validator/ajv-formats/issues/85
const addFormats = addFormatsModule as unknown as typeof addFormatsModule.default;

function makeAjv(): Ajv {
  const ajv = new Ajv({ allErrors: true, strict: true, strictRequired: false, allowUnionTypes: false });
  addFormats(ajv, ['date-time', 'int64', 'int32']);
  for (const keyword of [
    'x-kubernetes-list-type',
    'x-kubernetes-list-map-keys',
    'x-kubernetes-preserve-unknown-fields',
  ]) {
    ajv.addKeyword({ keyword, schemaType: ['string', 'array', 'boolean'] });
  }
  ajv.addKeyword({
    keyword: 'x-kubernetes-validations',
    schemaType: 'array',
    errors: true,
    validate: function celTwins(this: unknown, celRules: CelRule[], data: unknown): boolean {
      const failed = celRules.filter((r) => !r.check(data as never));
      (celTwins as { errors?: Partial<ErrorObject>[] }).errors = failed.map((r) => ({
        keyword: 'x-kubernetes-validations',
        message: r.message,
        params: { rule: r.rule, fieldPath: r.fieldPath },
      }));
      return failed.length === 0;
    },
  });
  return ajv;
}

const ajv = makeAjv();

function compile<T>(schema: TSchema) {
  const fn = ajv.compile(schema);
  return (obj: unknown): ValidationResult<T> => {
    if (fn(obj)) return { valid: true, value: obj as T };
    return { valid: false, issues: (fn.errors ?? []).flatMap(toIssue) };
  };
}

/** Turns an ajv error into the path and message a user reads in a condition. */
function toIssue(e: ErrorObject): ValidationIssue[] {
  const path = jsonPath(e.instancePath);
  if (e.keyword === 'additionalProperties') {
    const extra = (e.params as { additionalProperty: string }).additionalProperty;
    return [{ path: join(path, extra), message: 'unknown field' }];
  }
  // A CEL twin's own error is reported once, by the keyword itself; ajv's summary error repeats it.
  if (
    e.keyword === 'x-kubernetes-validations' &&
    e.message === 'must pass "x-kubernetes-validations" keyword validation'
  ) {
    return [];
  }
  const fieldPath = (e.params as { fieldPath?: string }).fieldPath;
  return [{ path: fieldPath ? path + fieldPath : path, message: e.message ?? e.keyword }];
}

function jsonPath(pointer: string): string {
  return pointer
    .split('/')
    .slice(1)
    .map((seg) => seg.replaceAll('~1', '/').replaceAll('~0', '~'))
    .reduce((acc, seg) => (/^\d+$/.test(seg) ? `${acc}[${seg}]` : join(acc, seg)), '');
}

function join(a: string, b: string): string {
  return a === '' ? b : `${a}.${b}`;
}

/** Validates a whole StackedModelGroup (as read from the API server, defaults applied). */
export const validateModelGroup = compile<StackedModelGroup>(StackedModelGroupSchema);

/** Validates a whole StackedDeployment (as read from the API server, defaults applied). */
export const validateDeployment = compile<StackedDeployment>(StackedDeploymentSchema);

/** `path: message; path: message`, for a condition message. */
export function formatIssues(issues: readonly ValidationIssue[]): string {
  return issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join('; ');
}

const DEFAULTED_SCHEMAS = {
  StackedModelGroup: StackedModelGroupSchema,
  StackedDeployment: StackedDeploymentSchema,
};
type DefaultedKind = keyof typeof DEFAULTED_SCHEMAS;
const defaulters = new Map<DefaultedKind, ValidateFunction>();

/**
 * A copy of `obj` with the schema's defaults filled in, as the API server stores it. For tests and
 * tools that build objects without a server; the operator itself reads defaulted objects, so the
 * defaulting validators are compiled on first use, not at the operator's start.
 */
export function withDefaults<T>(kind: DefaultedKind, obj: T): T {
  let defaulter = defaulters.get(kind);
  if (defaulter === undefined) {
    const ajv = new Ajv({ strict: false, useDefaults: true, allErrors: true });
    addFormats(ajv, ['date-time', 'int64', 'int32']);
    defaulter = ajv.compile(DEFAULTED_SCHEMAS[kind]);
    defaulters.set(kind, defaulter);
  }
  const copy = structuredClone(obj);
  defaulter(copy);
  return copy;
}
