// The list of condition reasons (src/api/v1alpha1/reasons.ts) against the code: every reason the
// controllers, backends and runtime can write is listed, and every listed reason is written somewhere.
// The code is read with the TypeScript compiler (its type checker tells which parameter an argument
// fills), not with a regular expression, so a reason passed through a helper is found too.
import assert from 'node:assert/strict';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import ts from 'typescript';
import { models } from 'oci-datascience';
import { REASONS } from '../../../src/api/v1alpha1/reasons.ts';

const root = join(import.meta.dirname, '..', '..', '..');
const SCANNED = ['controllers', 'backends', 'runtime'].map((d) => join(root, 'src', d));

/**
 * Functions with a parameter named `reason` that is not a condition reason: Kubernetes Events have
 * their own vocabulary (ModelGroupCreated, LiveUpdate, ...), and the fence's reason is log text.
 */
const NOT_CONDITIONS = [join(root, 'src', 'runtime', 'events.ts'), join(root, 'src', 'runtime', 'fence.ts')];

/** A reason found in the code: a literal, or a template with a part only known at run time. */
interface Found {
  /** The literal, or a regular expression for a template (`Deployment${state}`). */
  reason: string | RegExp;
  text: string;
  where: string;
}

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? walk(p) : p.endsWith('.ts') ? [p] : [];
  });
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * The reasons an expression can evaluate to: string literals, through `a ? b : c`, `a ?? b`,
 * parentheses and templates (whose literal-only parts are expanded). A variable or a property
 * (`f.step.reason`, `degraded[0]`) passes on a reason found where it was made: nothing to add.
 */
function leaves(e: ts.Expression, sf: ts.SourceFile, checker?: ts.TypeChecker): (string | RegExp)[] {
  if (ts.isStringLiteral(e) || ts.isNoSubstitutionTemplateLiteral(e)) return [e.text];
  // A named constant (`reason: PRINCIPAL_AUTH_NOT_ALLOWED`): its literal type is the reason.
  if (ts.isIdentifier(e) && checker !== undefined) {
    const t = checker.getTypeAtLocation(e);
    if (t.isStringLiteral()) return [t.value];
  }
  if (ts.isParenthesizedExpression(e)) return leaves(e.expression, sf, checker);
  if (ts.isConditionalExpression(e))
    return [...leaves(e.whenTrue, sf, checker), ...leaves(e.whenFalse, sf, checker)];
  if (ts.isBinaryExpression(e) && e.operatorToken.kind === ts.SyntaxKind.QuestionQuestionToken) {
    return [...leaves(e.left, sf, checker), ...leaves(e.right, sf, checker)];
  }
  if (ts.isTemplateExpression(e)) {
    // Each span: its literal values when it has only literals, else any CamelCase-ish word.
    let parts: { literal: string[]; pattern: string[] }[] = [
      { literal: [e.head.text], pattern: [escape(e.head.text)] },
    ];
    let open = false;
    for (const span of e.templateSpans) {
      const inner = leaves(span.expression, sf);
      const literals = inner.filter((x): x is string => typeof x === 'string');
      const exact = inner.length > 0 && literals.length === inner.length;
      if (!exact) open = true;
      parts = parts.flatMap((p) =>
        exact
          ? literals.map((l) => ({
              literal: [...p.literal, l, span.literal.text],
              pattern: [...p.pattern, escape(l), escape(span.literal.text)],
            }))
          : [{ literal: p.literal, pattern: [...p.pattern, '[A-Za-z0-9_]+', escape(span.literal.text)] }],
      );
    }
    return parts.map((p) => (open ? new RegExp(`^${p.pattern.join('')}$`) : p.literal.join('')));
  }
  return [];
}

function scan(): Found[] {
  const files = SCANNED.flatMap(walk);
  const program = ts.createProgram(files, {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    allowImportingTsExtensions: true,
    noEmit: true,
    skipLibCheck: true,
    strict: true,
  });
  const checker = program.getTypeChecker();
  const found: Found[] = [];
  for (const sf of program.getSourceFiles()) {
    if (!files.includes(sf.fileName)) continue;
    const add = (e: ts.Expression) => {
      const { line } = sf.getLineAndCharacterOfPosition(e.getStart(sf));
      const where = `${relative(root, sf.fileName)}:${line + 1}`;
      for (const reason of leaves(e, sf, checker)) {
        // '' is the "none read" default of code that reads a condition (`gate.reason ?? ''`).
        if (reason !== '') found.push({ reason, text: e.getText(sf), where });
      }
    };
    const visit = (n: ts.Node): void => {
      // 1. `reason: ...` in an object literal: a Verdict, a Condition, a Step, a pod gate, a
      //    finalizer result.
      if (ts.isPropertyAssignment(n) && ts.isIdentifier(n.name) && n.name.text === 'reason')
        add(n.initializer);
      // 2. An argument given to a parameter named `reason`: conditionSetter's `set(conds, type,
      //    status, reason, message)`, the oci backend's `problem(reason, message)`, ...
      if (ts.isCallExpression(n)) {
        const sig = checker.getResolvedSignature(n);
        // `declaration` is undefined for a signature the checker could not resolve.
        const file = sig?.declaration?.getSourceFile().fileName;
        if (
          sig !== undefined &&
          file !== undefined &&
          file.startsWith(join(root, 'src')) &&
          !NOT_CONDITIONS.includes(file)
        ) {
          sig.getParameters().forEach((p, i) => {
            const arg = n.arguments[i];
            if (p.name === 'reason' && arg !== undefined) add(arg);
          });
        }
      }
      // 3. A `[reason, message]` pair, as the backends' status builders pick the Degraded one.
      if (ts.isArrayLiteralExpression(n) && n.elements.length === 2) {
        const first = n.elements[0];
        const ctx = checker.getContextualType(n);
        const tuple = ctx && checker.typeToString(checker.getNonNullableType(ctx));
        if (first !== undefined && tuple === '[string, string]') add(first);
      }
      ts.forEachChild(n, visit);
    };
    visit(sf);
  }
  return found;
}

describe('condition reasons (src/api/v1alpha1/reasons.ts)', function () {
  // Building the program reads the OCI SDK's declarations: a few seconds on a busy machine.
  this.timeout(60_000);
  let found: Found[] = [];
  before(() => {
    found = scan();
  });

  it('finds reasons in the code (the scan itself works)', () => {
    const literals = new Set(found.flatMap((f) => (typeof f.reason === 'string' ? [f.reason] : [])));
    // One of each way a reason is written: a Verdict's property, a conditionSetter call, an oci
    // step helper, a [reason, message] pair, a ternary, a template with literal parts.
    for (const r of [
      'RankTooHigh',
      'MinimumReplicasAvailable',
      'DriftDetected',
      'AdapterUnavailable',
      'ServingWhatOthersServe',
      'DeploymentUpdating',
    ]) {
      assert.ok(literals.has(r), `the scan missed ${r}`);
    }
  });

  it('lists every reason the code emits', () => {
    const listed = new Set(REASONS.map((r) => r.reason));
    const missing = found.filter((f) =>
      typeof f.reason === 'string'
        ? !listed.has(f.reason)
        : !REASONS.some((r) => (f.reason as RegExp).test(r.reason)),
    );
    assert.deepEqual(
      missing.map((f) => `${f.where}: ${String(f.reason)} (from ${f.text})`),
      [],
      'add these to src/api/v1alpha1/reasons.ts, then `npm run generate`',
    );
  });

  it('lists no reason that no code emits (stale entries)', () => {
    // A reason built from OCI's lifecycle state (`Deployment${titleCase(state)}`) is emitted when
    // the list's entry spells one of the SDK's ModelDeployment states.
    // The enum object also holds the SDK's (de)serialisation helpers: keep the values only.
    const states = Object.values(models.ModelDeploymentLifecycleState as Record<string, unknown>).filter(
      (s): s is string => typeof s === 'string' && /^[A-Z_]+$/.test(s),
    );
    const camel = (s: string) =>
      s
        .toLowerCase()
        .split('_')
        .map((w) => w.charAt(0).toUpperCase() + w.slice(1))
        .join('');
    const stateWords = new Set(states.flatMap((s) => [s, camel(s)]));
    const emitted = (reason: string) =>
      found.some((f) =>
        typeof f.reason === 'string'
          ? f.reason === reason
          : f.reason.test(reason) && [...stateWords].some((w) => reason.endsWith(w)),
      );
    const stale = REASONS.filter((r) => !emitted(r.reason)).map((r) => r.reason);
    assert.deepEqual(stale, [], 'no code emits these: remove them from src/api/v1alpha1/reasons.ts');
  });

  it('has one entry per reason, each described', () => {
    const names = REASONS.map((r) => r.reason);
    assert.deepEqual(
      names.filter((n, i) => names.indexOf(n) !== i),
      [],
      'duplicates',
    );
    for (const r of REASONS) {
      // metav1.Condition's reason pattern, and CamelCase as the API conventions ask.
      assert.match(r.reason, /^[A-Z][A-Za-z0-9]*$/, r.reason);
      assert.ok(r.conditions.length > 0, `${r.reason}: no condition type`);
      assert.ok(
        r.meaning.endsWith('.') && r.action.endsWith('.'),
        `${r.reason}: meaning and action are sentences`,
      );
      if (r.positive) assert.equal(r.health, 'Healthy', `${r.reason}: a holding condition is Healthy`);
    }
  });
});
