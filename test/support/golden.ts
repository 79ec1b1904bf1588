// Golden files: a value compared, as YAML, with a file next to the test. UPDATE_GOLDEN=1 rewrites
// them (review the diff before committing).
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dump } from 'js-yaml';

/** A checker for the golden files of one folder. */
export function goldenFiles(dir: string): (name: string, value: unknown) => void {
  return (name, value) => {
    const file = join(dir, name);
    // Through JSON: builders may return client-node model classes, which js-yaml will not dump.
    const text = dump(JSON.parse(JSON.stringify(value)), { lineWidth: 120, noRefs: true });
    if (process.env.UPDATE_GOLDEN || !existsSync(file)) writeFileSync(file, text);
    assert.equal(text, readFileSync(file, 'utf8'), `${name} differs; UPDATE_GOLDEN=1 to accept`);
  };
}
