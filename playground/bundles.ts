// The image runs dist/*.mjs, bundled from src/ (scripts/build.ts). Whatever here starts one of those
// programs as its own process builds them first, once per process, so a test runs what the image
// runs and never a bundle older than the sources.
import { buildBundles } from '../scripts/build.ts';

let built: Promise<void> | undefined;

export function ensureBundles(): Promise<void> {
  built ??= buildBundles();
  return built;
}
