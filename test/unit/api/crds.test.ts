import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CRD_DIRS, renderCrds } from '../../../src/api/v1alpha1/render.ts';
import { allCrds } from '../../../src/api/v1alpha1/crd.ts';

const root = join(import.meta.dirname, '..', '..', '..');

/** Every schema node the API server would call non-structural, with its path. */
function structuralProblems(node: unknown, path: string): string[] {
  if (node === null || typeof node !== 'object') return [];
  const n = node as Record<string, unknown>;
  const problems: string[] = [];
  if (
    n.type === undefined &&
    n['x-kubernetes-preserve-unknown-fields'] !== true &&
    n['x-kubernetes-int-or-string'] !== true
  ) {
    problems.push(`${path}: no type`);
  }
  if (n.additionalProperties === false) problems.push(`${path}: additionalProperties false`);
  for (const k of ['anyOf', 'oneOf', 'allOf', 'not', 'const', 'patternProperties']) {
    if (k in n) problems.push(`${path}: uses ${k}`);
  }
  if (typeof n.description !== 'string' || n.description === '') {
    // Items of lists and values of maps are described by their parent.
    if (!path.endsWith('[]') && !path.endsWith('{}') && !path.endsWith('.metadata'))
      problems.push(`${path}: no description`);
  }
  for (const [k, v] of Object.entries((n.properties ?? {}) as Record<string, unknown>)) {
    problems.push(...structuralProblems(v, `${path}.${k}`));
  }
  if (n.items !== undefined) problems.push(...structuralProblems(n.items, `${path}[]`));
  if (typeof n.additionalProperties === 'object') {
    problems.push(...structuralProblems(n.additionalProperties, `${path}{}`));
  }
  return problems;
}

describe('CRDs', () => {
  it('crds/ and the chart copy are exactly what the schema source generates (run `npm run generate`)', () => {
    for (const dir of CRD_DIRS) {
      for (const [file, yaml] of Object.entries(renderCrds())) {
        assert.equal(readFileSync(join(root, dir, file), 'utf8'), yaml, `${dir}/${file} is stale`);
      }
    }
  });

  it('is structural and describes every field, so kubectl explain teaches the API', () => {
    for (const [file, crd] of Object.entries(allCrds())) {
      const versions = (crd.spec as { versions: { schema: { openAPIV3Schema: unknown } }[] }).versions;
      const problems = structuralProblems(versions[0]!.schema.openAPIV3Schema, file);
      assert.deepEqual(problems, []);
    }
  });

  it('carries the CEL rules but not their TypeScript twins', () => {
    const text = Object.values(renderCrds()).join('\n');
    assert.ok(text.includes('x-kubernetes-validations'));
    assert.ok(!text.includes('check:'), 'CEL predicates must not leak into the YAML');
  });
});
