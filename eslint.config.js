import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import eslint from '@eslint/js';
import { createNodeResolver, importX } from 'eslint-plugin-import-x';
import globals from 'globals';
import ts from 'typescript';
import tseslint from 'typescript-eslint';

// The layers of src/, low to high (issue 8; ../shared/tools/layers.py checks the same): a file may
// import from its own layer and the ones below, never from one above. config.ts is read by every
// layer, so it sits at the bottom with runtime/; any other top-level file is the entry point. A new
// folder lands with oci, backends, agent and router until someone places it.
const layers = [
  { name: 'runtime (and config.ts)', files: ['src/runtime/**/*.ts', 'src/config.ts'] },
  { name: 'api', files: ['src/api/**/*.ts'] },
  { name: 'oci, backends, agent, router', files: ['src/!(runtime|api|controllers)/**/*.ts'] },
  { name: 'controllers', files: ['src/controllers/**/*.ts'] },
  // Globs only: the rule refuses a `from` list that mixes globs and plain paths.
  { name: 'main', files: ['src/!(config).ts'] },
];
const layerZones = layers.slice(0, -1).map((layer, i) => ({
  target: layer.files,
  from: layers.slice(i + 1).flatMap((above) => above.files),
  message: `${layer.name} may not import from a layer above it (${layers.map((l) => l.name).join(' < ')}).`,
}));

// Import cycles, type-only imports included. import-x/no-cycle is not used: it skips `import type`
// by design (lib/rules/no-cycle.js), and the cycle issue 8 names (vllm/desired.ts <-> plan.ts) ran
// through one. A type cycle still means neither file can be read without the other.
const importsOf = new Map(); // absolute path -> { mtimeMs, targets }
function resolveRelative(from, specifier) {
  if (!specifier.startsWith('.')) return undefined;
  const base = path.resolve(path.dirname(from), specifier);
  for (const candidate of [base, `${base}.ts`, path.join(base, 'index.ts')]) {
    try {
      if (statSync(candidate).isFile()) return candidate;
    } catch {
      // not this candidate
    }
  }
  return undefined;
}
// Every relative import of a file on disk; TypeScript's pre-processor sees `import`, `import type`,
// `export ... from` and `import()` (in types too) and skips comments and strings.
function importsOnDisk(file) {
  const { mtimeMs } = statSync(file);
  const cached = importsOf.get(file);
  if (cached?.mtimeMs === mtimeMs) return cached.targets;
  const { importedFiles } = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
  const targets = importedFiles.map((f) => resolveRelative(file, f.fileName)).filter(Boolean);
  importsOf.set(file, { mtimeMs, targets });
  return targets;
}
const srcRoot = path.join(import.meta.dirname, 'src');
// The shortest chain of imports from `start` back to `file` within src/, or undefined.
function pathBack(start, file) {
  const parent = new Map([[start, undefined]]);
  const queue = [start];
  while (queue.length > 0) {
    const current = queue.shift();
    for (const next of importsOnDisk(current)) {
      if (next === file) {
        const chain = [current];
        while (parent.get(chain[0]) !== undefined) chain.unshift(parent.get(chain[0]));
        return [file, ...chain, file].map((f) => path.relative(srcRoot, f));
      }
      if (!parent.has(next) && next.startsWith(srcRoot + path.sep)) {
        parent.set(next, current);
        queue.push(next);
      }
    }
  }
  return undefined;
}
const noImportCycle = {
  meta: {
    type: 'problem',
    docs: { description: 'Forbid imports (type-only ones too) that lead back to the importing file.' },
    messages: { cycle: 'Import cycle: {{chain}}.' },
    schema: [],
  },
  create(context) {
    const file = context.physicalFilename;
    function check(node) {
      // TSImportType (`import('./x.ts').T`) holds its specifier in a literal type.
      const source = node.source ?? node.argument?.literal;
      if (source?.type !== 'Literal' || typeof source.value !== 'string') return;
      const target = resolveRelative(file, source.value);
      if (target === undefined || target === file) return;
      const chain = pathBack(target, file);
      if (chain) context.report({ node: source, messageId: 'cycle', data: { chain: chain.join(' -> ') } });
    }
    return {
      ImportDeclaration: check,
      ExportNamedDeclaration: check,
      ExportAllDeclaration: check,
      ImportExpression: check,
      TSImportType: check,
    };
  },
};

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', 'charts/', 'crds/', 'deploy/', 'test/tools/', '.tmp/'] },
  eslint.configs.recommended,
  ...tseslint.configs.strictTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/restrict-template-expressions': [
        'error',
        { allowNumber: true, allowBoolean: true },
      ],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      // Informer handlers and timers are fire-and-forget by design; they catch their own errors.
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: false }],
      '@typescript-eslint/no-extraneous-class': 'off',
    },
  },
  {
    files: ['src/**/*.ts'],
    plugins: { 'import-x': importX, layers: { rules: { 'no-import-cycle': noImportCycle } } },
    settings: {
      // The sources import with explicit `.ts` extensions, which the node resolver finds as files.
      'import-x/resolver-next': [createNodeResolver({ extensions: ['.ts'] })],
    },
    rules: {
      // Counts type-only imports too: it visits every import and export-from, whatever its kind.
      'import-x/no-restricted-paths': ['error', { basePath: import.meta.dirname, zones: layerZones }],
      'layers/no-import-cycle': 'error',
      // ...but not `import('./x.ts').T` in a type, which it does not see: make every import a declaration.
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  {
    files: ['**/*.js', '**/*.cjs'],
    extends: [tseslint.configs.disableTypeChecked],
    languageOptions: { globals: { ...globals.node } },
  },
  {
    files: ['test/**/*.ts', 'bench/**/*.ts', 'playground/**/*.ts'],
    rules: {
      // Fixtures are plain JSON for the API server, not client-node model instances.
      '@typescript-eslint/no-unsafe-class-instance-assignment': 'off',
      // JSON bodies read back from the API server are untyped; the asserts are the checks.
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
    },
  },
);
