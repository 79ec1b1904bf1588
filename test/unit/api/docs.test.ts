// docs/ and the Argo CD health script are generated (`npm run generate`): the checked-in files must be
// what generation gives, or a user reads a reference that no longer matches the API.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderDocs } from '../../../scripts/docs.ts';
import { REASONS } from '../../../src/api/v1alpha1/reasons.ts';

const root = join(import.meta.dirname, '..', '..', '..');

describe('generated docs', () => {
  it('are current (run `npm run generate` when this fails)', async () => {
    for (const [file, text] of Object.entries(await renderDocs())) {
      assert.equal(
        readFileSync(join(root, file), 'utf8'),
        text,
        `${file} is stale: run \`npm run generate\``,
      );
    }
  });

  it('the troubleshooting table has a row for every reason', () => {
    const table = readFileSync(join(root, 'docs', 'troubleshooting.md'), 'utf8');
    for (const r of REASONS) assert.match(table, new RegExp(`^\\| \`${r.reason}\` +\\|`, 'm'), r.reason);
  });

  it('the API reference names every spec field with its default', () => {
    const ref = readFileSync(join(root, 'docs', 'api-reference.md'), 'utf8');
    for (const f of [
      '.spec.engine.maxLoraRank',
      '.spec.baseModel.inferenceKey',
      '.status.conditions[].reason',
    ]) {
      assert.ok(ref.includes(`\`${f}\``), f);
    }
    assert.match(ref, /`\.spec\.engine\.maxLoraRank` *\| integer *\| *\| `16` *\|/);
  });
});
