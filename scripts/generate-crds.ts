/** Writes crds/*.yaml from the API schemas (src/api/v1alpha1). Run with `npm run generate`. */
import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { renderCrds } from '../src/api/v1alpha1/render.ts';

const dir = join(import.meta.dirname, '..', 'crds');
mkdirSync(dir, { recursive: true });
for (const [file, yaml] of Object.entries(renderCrds())) {
  writeFileSync(join(dir, file), yaml);
  console.log(`wrote crds/${file}`);
}
