// What vLLM's worker does when it adds a LoRA adapter (`WorkerLoRAManager._load_adapter`):
// read `<dir>/adapter_config.json` (`PEFTHelper.from_local_dir`), check the required fields,
// `validate_legal` against the LoRA config, then load the weights. A missing file or directory is a
// FileNotFoundError, which vLLM reports as 404 `Loading lora <n> failed: No adapter found for <path>`;
// every other failure is `str(exception)` with status 500.

import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';

export interface LoadFailure {
  status: 404 | 500;
  type: 'NotFoundError' | 'InternalServerError';
  message: string;
}

export interface AdapterInfo {
  /** max(r, ...rank_pattern values) */
  rank: number;
}

const REQUIRED_FIELDS = ['r', 'lora_alpha', 'target_modules'];
const WEIGHT_FILES = ['adapter_model.safetensors', 'adapter_model.bin', 'adapter_model.pt'];

export function notFound(loraName: string, loraPath: string): LoadFailure {
  return {
    status: 404,
    type: 'NotFoundError',
    message: `Loading lora ${loraName} failed: No adapter found for ${loraPath}`,
  };
}

export function internal(message: string): LoadFailure {
  return { status: 500, type: 'InternalServerError', message };
}

function pyTypeName(v: unknown): string {
  if (v === null) return 'NoneType';
  if (Array.isArray(v)) return 'list';
  if (typeof v === 'string') return 'str';
  if (typeof v === 'boolean') return 'bool';
  if (typeof v === 'number') return Number.isInteger(v) ? 'int' : 'float';
  return 'dict';
}

function isPositiveInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v > 0;
}

function isFileNotFound(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

/**
 * Validates the adapter at `dir` (the host directory `resolvePath` gave for `loraPath`, or undefined when
 * nothing is mounted there). Messages name `loraPath`, the path as the client sent it, like vLLM does.
 */
export async function inspectAdapter(
  loraName: string,
  loraPath: string,
  dir: string | undefined,
  maxLoraRank: number,
): Promise<AdapterInfo | LoadFailure> {
  if (dir === undefined) return notFound(loraName, loraPath);
  let text: string;
  try {
    text = await readFile(join(dir, 'adapter_config.json'), 'utf8');
  } catch (e) {
    if (isFileNotFound(e)) return notFound(loraName, loraPath);
    const file = join(loraPath, 'adapter_config.json');
    const code = (e as { code?: unknown } | null)?.code;
    if (code === 'EISDIR') return internal(`[Errno 21] Is a directory: '${file}'`);
    if (code === 'EACCES') return internal(`[Errno 13] Permission denied: '${file}'`);
    return internal(`Cannot read '${file}': ${e instanceof Error ? e.message : String(e)}`);
  }
  let config: unknown;
  try {
    config = JSON.parse(text);
  } catch (e) {
    return internal(
      `Invalid JSON in ${join(loraPath, 'adapter_config.json')}: ${e instanceof Error ? e.message : String(e)}`,
    );
  }
  if (typeof config !== 'object' || config === null || Array.isArray(config)) {
    return internal(`'${pyTypeName(config)}' object has no attribute 'keys'`);
  }
  const c = config as Record<string, unknown>;
  const missing = REQUIRED_FIELDS.filter((f) => !(f in c)).sort();
  if (missing.length > 0) {
    return internal(`Missing required configuration fields: {${missing.map((f) => `'${f}'`).join(', ')}}`);
  }
  // Stricter than vLLM (which would fail later, with a Python TypeError): the types must be right.
  if (!isPositiveInt(c.r)) {
    return internal(
      `Invalid LoRA rank in adapter_config.json: r must be a positive integer, got ${JSON.stringify(c.r)}`,
    );
  }
  const pattern = c.rank_pattern ?? {}; // PEFT writes {} by default; null is read as "none"
  if (typeof pattern !== 'object' || Array.isArray(pattern)) {
    return internal(
      `Invalid rank_pattern in adapter_config.json: expected an object, got ${JSON.stringify(pattern)}`,
    );
  }
  const patternRanks = Object.values(pattern as Record<string, unknown>);
  if (!patternRanks.every(isPositiveInt)) {
    return internal('Invalid rank_pattern in adapter_config.json: every value must be a positive integer');
  }
  if (typeof c.lora_alpha !== 'number') {
    return internal(
      `Invalid lora_alpha in adapter_config.json: expected a number, got ${JSON.stringify(c.lora_alpha)}`,
    );
  }
  const tm = c.target_modules;
  if (!(typeof tm === 'string' || (Array.isArray(tm) && tm.every((m) => typeof m === 'string')))) {
    return internal('Invalid target_modules in adapter_config.json: expected a string or a list of strings');
  }

  // PEFTHelper.validate_legal: every problem, joined by a space.
  const errors: string[] = [];
  if (c.peft_type !== undefined && c.peft_type !== 'LORA') {
    // vLLM's PEFTHelper does not look at peft_type (the filesystem resolver does); stricter here.
    errors.push(`vLLM only supports LoRA adapters, got peft_type ${JSON.stringify(c.peft_type)}.`);
  }
  if (Array.isArray(c.modules_to_save) ? c.modules_to_save.length > 0 : Boolean(c.modules_to_save)) {
    errors.push('vLLM only supports modules_to_save being None.');
  }
  if (c.use_dora) errors.push('vLLM does not yet support DoRA.');
  const rank = Math.max(c.r, ...patternRanks);
  if (rank > maxLoraRank) errors.push(`LoRA rank ${rank} is greater than max_lora_rank ${maxLoraRank}.`);
  if (c.bias !== undefined && c.bias !== 'none') errors.push('Adapter bias is not supported.');
  if (errors.length > 0) return internal(errors.join(' '));

  // LoRAModel.from_local_checkpoint: the weights must be there too.
  let hasWeights = false;
  for (const f of WEIGHT_FILES) {
    if (await isFile(join(dir, f))) {
      hasWeights = true;
      break;
    }
  }
  if (!hasWeights) return internal(`${loraPath} doesn't contain tensors`);
  return { rank };
}

/** True when the adapter's files are still readable (an LRU-evicted adapter is re-read on next use). */
export async function adapterReadable(dir: string | undefined): Promise<boolean> {
  if (dir === undefined) return false;
  return isFile(join(dir, 'adapter_config.json'));
}

export function isLoadFailure(r: AdapterInfo | LoadFailure): r is LoadFailure {
  return 'status' in r;
}
