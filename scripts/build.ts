/**
 * The image's three programs as one ES module each, in dist/: the operator, the router and the fetch
 * agent, each with everything it imports.
 *
 * Why bundle, when Node 24 runs the TypeScript sources: memory. Run from src/, the operator loads
 * about 2,500 modules (client-node's generated models and APIs, the OCI SDK's models), each with its
 * own module record and source, through Node's type stripping (a WebAssembly compiler that keeps its
 * memory). Bundled, it is one script with the unused half of client-node left out: 37 MB less resident
 * at idle, and the scale benchmark's peak fell from 237 to 192 MB (README). Identifiers keep their
 * names, so stack traces still name the functions; the source maps beside the bundles are read only
 * when Node runs with --enable-source-maps.
 *
 * `npm run build` writes dist/; the Dockerfile runs it, and the playground and the tests build before
 * they start one of these programs (playground/bundles.ts), so they run what the image runs.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type Metafile } from 'esbuild';

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Each program's bundle, by its entry point in src/. */
export const BUNDLES = {
  'dist/operator.mjs': 'src/main.ts',
  'dist/router.mjs': 'src/router/main.ts',
  'dist/agent.mjs': 'src/agent/main.ts',
} as const;
export type BundlePath = keyof typeof BUNDLES;

/** Where the bundled packages' licence texts go (their licences ask that they travel with the code). */
export const NOTICES = 'dist/THIRD-PARTY-NOTICES.txt';

// Some CommonJS dependencies (undici, the OCI SDK) call require() for Node's own modules; an ES
// module has no require, so the bundle makes one (esbuild's documented answer for ESM output).
const REQUIRE_SHIM =
  "import { createRequire as __createRequire } from 'node:module';\n" +
  'const require = __createRequire(import.meta.url);';

/**
 * Builds every bundle into the dist/ of `root` (this checkout by default), in one esbuild run that
 * parses each shared module once. Each file is written under a temporary name and renamed, so a
 * process starting a bundle while another builds never reads half of one.
 */
export async function buildBundles(root = repoRoot): Promise<void> {
  const result = await build({
    absWorkingDir: root,
    entryPoints: Object.entries(BUNDLES).map(([out, entry]) => ({
      in: entry,
      out: out.replace(/\.mjs$/, ''),
    })),
    outdir: '.',
    outExtension: { '.js': '.mjs' },
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node24',
    minifyWhitespace: true,
    minifySyntax: true,
    keepNames: true,
    legalComments: 'none',
    sourcemap: 'linked',
    banner: { js: REQUIRE_SHIM },
    // whatwg-url (under the OCI SDK's node-fetch) requires "punycode", which Node resolves to its
    // deprecated built-in and warns about (DEP0040) unless the caller is under node_modules, as it
    // is no longer in a bundle: the npm package of that name, which the lock file already holds.
    alias: { punycode: 'punycode/' },
    write: false,
    metafile: true,
    logLevel: 'warning',
  });
  for (const f of result.outputFiles) writeAtomically(f.path, f.contents);
  writeAtomically(join(root, NOTICES), Buffer.from(notices(root, bundledPackages(result.metafile).sort())));
}

function writeAtomically(path: string, contents: Uint8Array): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${String(process.pid)}.tmp`;
  writeFileSync(tmp, contents);
  renameSync(tmp, path);
}

/** The node_modules packages whose code is in a bundle, as their folder under node_modules. */
function bundledPackages(meta: Metafile): string[] {
  const out = new Set<string>();
  for (const input of Object.keys(meta.inputs)) {
    const m = /(?:^|\/)node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(input);
    if (m?.[1] !== undefined) out.add(m[1]);
  }
  return [...out];
}

function notices(root: string, packages: readonly string[]): string {
  const parts = packages.map((p) => {
    const dir = join(root, 'node_modules', p);
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
      version?: string;
      license?: string;
    };
    const file = ['LICENSE', 'LICENSE.md', 'LICENSE.txt', 'license', 'LICENCE', 'LICENSE-MIT']
      .map((f) => join(dir, f))
      .find((f) => existsSync(f));
    const text =
      file === undefined ? `(${pkg.license ?? 'no licence'}: no licence file)` : readFileSync(file, 'utf8');
    return `${p} ${pkg.version ?? ''} (${pkg.license ?? 'unknown'})\n\n${text.trim()}\n`;
  });
  return `Packages bundled into dist/*.mjs, with their licences.\n\n${parts.join('\n' + '-'.repeat(72) + '\n\n')}`;
}

if (import.meta.main) await buildBundles();
