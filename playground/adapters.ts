// Adapter weights on disk for tests: what a PVC or the Hugging Face cache would hold.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Writes a LoRA adapter folder (adapter_config.json + an empty weights file) of the given rank. */
export function writeAdapter(dir: string, rank: number, baseModel = 'org/base'): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, 'adapter_config.json'),
    JSON.stringify({
      peft_type: 'LORA',
      r: rank,
      lora_alpha: rank * 2,
      target_modules: ['q_proj', 'v_proj'],
      base_model_name_or_path: baseModel,
      bias: 'none',
    }),
  );
  writeFileSync(join(dir, 'adapter_model.safetensors'), '');
}
