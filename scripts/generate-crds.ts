/** Writes crds/*.yaml (and the chart's copy) from the API schemas (src/api/v1alpha1). Run with `npm run generate`. */
import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { CRD_DIRS, renderCrds } from '../src/api/v1alpha1/render.ts';

const root = join(import.meta.dirname, '..');

// The Helm chart carries its own copy: Helm cannot read files outside the chart.
for (const dir of CRD_DIRS) {
  mkdirSync(join(root, dir), { recursive: true });
  for (const [file, yaml] of Object.entries(renderCrds())) {
    writeFileSync(join(root, dir, file), yaml);
    console.log(`wrote ${dir}/${file}`);
  }
}
