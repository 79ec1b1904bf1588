import assert from 'node:assert/strict';
import { buildNameTable, resolveModel, type Target } from '../../../src/router/names.ts';
import { BASE_ID, SQL_ID, deployment, group } from './fixtures.ts';

/** A target in a short form tables can compare: `served:<name>:<adapter>` or `exp:<name>:<keys>`. */
function describe_(t: Target | undefined): string {
  if (t === undefined) return 'none';
  if (t.kind === 'served') return `served:${t.servedName}:${t.adapter ?? '-'}`;
  return `exp:${t.name}:${t.stickyHeader ?? '-'}:${t.variants.map((v) => `${v.key}=${v.weight}`).join(',')}`;
}

describe('router/names', () => {
  const g = group([{ inferenceKey: 'sql', modelId: SQL_ID }, { inferenceKey: 'chat' }]);
  const sd = deployment([
    {
      name: 'sql-ab',
      stickyHeader: 'X-User-Id',
      variants: [
        { inferenceKey: 'sql', weight: 80 },
        { inferenceKey: 'chat', weight: 20 },
      ],
    },
    {
      name: 'half-gone',
      variants: [
        { inferenceKey: 'base', weight: 1 },
        { inferenceKey: 'removed', weight: 1 },
      ],
    },
  ]);
  const table = buildNameTable(sd, g);

  const cases: [string | undefined, string][] = [
    [undefined, 'served:base:-'],
    ['base', 'served:base:-'],
    [BASE_ID, 'served:base:-'],
    ['sql', 'served:sql:sql'],
    [SQL_ID, 'served:sql:sql'],
    ['chat', 'served:chat:chat'],
    ['sql-ab', 'exp:sql-ab:x-user-id:sql=80,chat=20'],
    // A variant that is not a member is left out; the rest keep their weights.
    ['half-gone', 'exp:half-gone:-:base=1'],
    ['foo', 'none'],
    ['', 'none'],
    ['SQL', 'none'],
  ];
  for (const [model, want] of cases) {
    it(`resolves ${JSON.stringify(model)} to ${want}`, () => {
      assert.equal(describe_(resolveModel(table, model)), want);
    });
  }

  it('lists every name once, members with the base as parent', () => {
    assert.deepEqual(
      table.models.map((m) => [m.id, m.servedName ?? '-', m.parent ?? '-']),
      [
        ['base', 'base', '-'],
        ['sql', 'sql', 'base'],
        ['chat', 'chat', 'base'],
        [BASE_ID, 'base', '-'],
        [SQL_ID, 'sql', 'base'],
        ['sql-ab', '-', '-'],
        ['half-gone', '-', '-'],
      ],
    );
  });

  it('lets an inference key win over an experiment of the same name', () => {
    const t = buildNameTable(
      deployment([
        {
          name: 'chat',
          variants: [
            { inferenceKey: 'sql', weight: 1 },
            { inferenceKey: 'base', weight: 1 },
          ],
        },
      ]),
      g,
    );
    assert.equal(describe_(resolveModel(t, 'chat')), 'served:chat:chat');
  });

  it('answers nothing without a group', () => {
    const t = buildNameTable(sd, undefined);
    assert.equal(resolveModel(t, 'base'), undefined);
    assert.equal(resolveModel(t, undefined), undefined);
    assert.deepEqual(t.models, []);
  });
});
