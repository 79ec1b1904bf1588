// The part of vLLM's `vllm serve` / `api_server` argument parser the simulator needs.
// Semantics follow argparse as vLLM configures it (FlexibleArgumentParser):
//   - `--flag value` and `--flag=value`; `_` in a flag name is read as `-` (`--max_model_len`);
//   - nargs='+' flags (`--served-model-name`, `--lora-modules`) take every following non-flag token;
//   - a repeated flag: the last occurrence wins;
//   - a leading positional token is the model tag of `vllm serve <model>` and wins over `--model`;
//   - unknown flags are ignored together with their value (the next token, when it is not a flag).
// Values vLLM would refuse at start-up make `parseEngineArgs` throw: the simulator's start() then
// rejects like a container that exits at once.

export interface LoraModule {
  name: string;
  path: string;
  /** From the JSON form only; used as the card's `parent` when it is a served name. */
  baseModelName?: string;
}

export interface EngineArgs {
  model: string;
  /** `--served-model-name` values, default `[model]`. */
  servedModelNames: string[];
  port: number | undefined;
  enableLora: boolean;
  maxLoras: number;
  maxCpuLoras: number;
  maxLoraRank: number;
  /** `--max-model-len`; undefined when absent (the simulator then shows DEFAULT_MAX_MODEL_LEN). */
  maxModelLen: number | undefined;
  tensorParallelSize: number;
  loraModules: LoraModule[];
}

export class EngineArgsError extends Error {
  override name = 'EngineArgsError';
}

/** vLLM's `--max-lora-rank` choices (vllm/config/lora.py). */
export const MAX_LORA_RANK_CHOICES: readonly number[] = [1, 8, 16, 32, 64, 128, 256, 320, 512];

const VALUE_FLAGS = new Set([
  '--model',
  '--port',
  '--host',
  '--max-loras',
  '--max-cpu-loras',
  '--max-lora-rank',
  '--max-model-len',
  '--tensor-parallel-size',
  '-tp',
  '--lora-dtype',
]);
const MULTI_FLAGS = new Set(['--served-model-name', '--lora-modules']);
const BOOL_FLAGS = new Set(['--enable-lora', '--no-enable-lora', '--fully-sharded-loras']);

function isFlag(token: string): boolean {
  return token.startsWith('-') && !/^-\d/.test(token);
}

function normaliseFlag(flag: string): string {
  if (flag.startsWith('--')) return '--' + flag.slice(2).replaceAll('_', '-');
  return flag;
}

function parseIntArg(flag: string, raw: string): number {
  if (!/^[+-]?\d+$/.test(raw.trim())) {
    throw new EngineArgsError(`argument ${flag}: invalid int value: '${raw}'`);
  }
  return Number.parseInt(raw, 10);
}

/** vLLM's human_readable_int: `4096`, `4k` (x1000), `4K` (x1024), `1m`, `1M`. */
function parseHumanInt(flag: string, raw: string): number {
  const m = /^(\d+(?:\.\d+)?)([kKmMgG]?)$/.exec(raw.trim());
  if (!m) throw new EngineArgsError(`argument ${flag}: invalid human_readable_int value: '${raw}'`);
  const num = Number(m[1]);
  const unit = m[2] ?? '';
  const mult: Record<string, number> = {
    '': 1,
    k: 1e3,
    m: 1e6,
    g: 1e9,
    K: 1024,
    M: 1024 ** 2,
    G: 1024 ** 3,
  };
  const value = num * (mult[unit] ?? 1);
  if (!Number.isInteger(value)) throw new EngineArgsError(`argument ${flag}: invalid value: '${raw}'`);
  return value;
}

function parseLoraModule(raw: string): LoraModule {
  if (raw.trimStart().startsWith('{')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw);
    } catch {
      throw new EngineArgsError(`Invalid JSON format for --lora-modules: ${raw}`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new EngineArgsError(`Invalid JSON format for --lora-modules: ${raw}`);
    }
    const o = parsed as Record<string, unknown>;
    if (typeof o.name !== 'string' || typeof o.path !== 'string') {
      throw new EngineArgsError(`Invalid fields for --lora-modules (need "name" and "path"): ${raw}`);
    }
    const mod: LoraModule = { name: o.name, path: o.path };
    if (typeof o.base_model_name === 'string') mod.baseModelName = o.base_model_name;
    return mod;
  }
  const eq = raw.indexOf('=');
  if (eq <= 0) throw new EngineArgsError(`Invalid format for --lora-modules: ${raw} (expected name=path)`);
  return { name: raw.slice(0, eq), path: raw.slice(eq + 1) };
}

export function parseEngineArgs(args: readonly string[]): EngineArgs {
  const single = new Map<string, string>();
  const multi = new Map<string, string[]>();
  const bools = new Map<string, boolean>();
  let modelTag: string | undefined;

  let i = 0;
  if (args[0] !== undefined && !isFlag(args[0])) {
    modelTag = args[0];
    i = 1;
  }
  while (i < args.length) {
    const token = args[i] ?? '';
    i++;
    if (!isFlag(token)) continue; // a stray positional: ignored, like an unknown flag
    const eq = token.indexOf('=');
    const flag = normaliseFlag(eq >= 0 ? token.slice(0, eq) : token);
    const inline = eq >= 0 ? token.slice(eq + 1) : undefined;
    if (BOOL_FLAGS.has(flag)) {
      if (inline !== undefined)
        throw new EngineArgsError(`argument ${flag}: ignored explicit argument '${inline}'`);
      if (flag === '--enable-lora') bools.set('enable-lora', true);
      else if (flag === '--no-enable-lora') bools.set('enable-lora', false);
      else bools.set(flag.slice(2), true);
    } else if (VALUE_FLAGS.has(flag)) {
      let value = inline;
      if (value === undefined) {
        const next = args[i];
        if (next === undefined || isFlag(next))
          throw new EngineArgsError(`argument ${flag}: expected one argument`);
        value = next;
        i++;
      }
      single.set(flag === '-tp' ? '--tensor-parallel-size' : flag, value);
    } else if (MULTI_FLAGS.has(flag)) {
      const values: string[] = inline !== undefined ? [inline] : [];
      while (inline === undefined && args[i] !== undefined && !isFlag(args[i] ?? '')) {
        values.push(args[i] ?? '');
        i++;
      }
      if (values.length === 0) throw new EngineArgsError(`argument ${flag}: expected at least one argument`);
      multi.set(flag, values);
    } else if (inline === undefined && args[i] !== undefined && !isFlag(args[i] ?? '')) {
      i++; // unknown flag with a separate value: skip both
    }
  }

  const model = modelTag ?? single.get('--model');
  if (model === undefined || model === '') {
    throw new EngineArgsError('no model given: pass --model (or the model tag of `vllm serve <model>`)');
  }
  const portRaw = single.get('--port');
  const port = portRaw === undefined ? undefined : parseIntArg('--port', portRaw);
  if (port !== undefined && (port < 0 || port > 65535))
    throw new EngineArgsError(`--port ${port} out of range`);

  const maxLoras = parseIntArg('--max-loras', single.get('--max-loras') ?? '1');
  if (maxLoras < 1) throw new EngineArgsError(`max_loras (${maxLoras}) must be >= 1.`);
  const maxLoraRank = parseIntArg('--max-lora-rank', single.get('--max-lora-rank') ?? '16');
  if (!MAX_LORA_RANK_CHOICES.includes(maxLoraRank)) {
    throw new EngineArgsError(
      `argument --max-lora-rank: invalid choice: ${maxLoraRank} (choose from ${MAX_LORA_RANK_CHOICES.join(', ')})`,
    );
  }
  const cpuRaw = single.get('--max-cpu-loras');
  const maxCpuLoras = cpuRaw === undefined ? maxLoras : parseIntArg('--max-cpu-loras', cpuRaw);
  if (maxCpuLoras < maxLoras) {
    throw new EngineArgsError(`max_cpu_loras (${maxCpuLoras}) must be >= max_loras (${maxLoras})`);
  }
  const lenRaw = single.get('--max-model-len');
  const maxModelLen = lenRaw === undefined ? undefined : parseHumanInt('--max-model-len', lenRaw);
  if (maxModelLen !== undefined && maxModelLen < 1) {
    throw new EngineArgsError(`--max-model-len must be positive, got ${maxModelLen}`);
  }
  const tensorParallelSize = parseIntArg(
    '--tensor-parallel-size',
    single.get('--tensor-parallel-size') ?? '1',
  );
  if (tensorParallelSize < 1) throw new EngineArgsError('--tensor-parallel-size must be >= 1');

  const served = multi.get('--served-model-name');
  return {
    model,
    servedModelNames: served ?? [model],
    port,
    enableLora: bools.get('enable-lora') ?? false,
    maxLoras,
    maxCpuLoras,
    maxLoraRank,
    maxModelLen,
    tensorParallelSize,
    loraModules: (multi.get('--lora-modules') ?? []).map(parseLoraModule),
  };
}

/** `VLLM_ALLOW_RUNTIME_LORA_UPDATING`: on when the stripped, lower-cased value is `1` or `true`. */
export function runtimeLoraUpdating(env: Readonly<Record<string, string>>): boolean {
  const v = (env.VLLM_ALLOW_RUNTIME_LORA_UPDATING ?? '0').trim().toLowerCase();
  return v === '1' || v === 'true';
}
