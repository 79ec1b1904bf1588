/**
 * Writes the Argo CD health script, the troubleshooting table and the API reference (scripts/docs.ts)
 * from src/api/v1alpha1. Run with `npm run generate`; tests fail when the checked-in files differ.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { renderDocs } from './docs.ts';

const root = join(import.meta.dirname, '..');

for (const [file, text] of Object.entries(await renderDocs())) {
  mkdirSync(dirname(join(root, file)), { recursive: true });
  writeFileSync(join(root, file), text);
  console.log(`wrote ${file}`);
}
