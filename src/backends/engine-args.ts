/**
 * The vLLM engine flags both backends pass: the vllm backend as the container's args, the oci backend
 * as the PARAMS string of OCI's vLLM container. One builder, so the two cannot drift apart in order
 * or defaults. Pure; the golden files of both backends pin the output.
 */
import type { DeploymentSpec } from '../api/v1alpha1/deployment.ts';
import type { BaseModel } from '../api/v1alpha1/modelgroup.ts';

/**
 * Served names, context length, LoRA limits, then the user's extraArgs (which may not repeat any of
 * these: the API refuses MANAGED_VLLM_FLAGS there). The order is the seed's PARAMS order, extended.
 *
 * - The base is served under its inference key and, when it has one, its OCID: the seed uses the
 *   OCID, ADS the key, and clients may send either in "model".
 * - `--max-cpu-loras` only when the user set it. vLLM sets max_cpu_loras to max_loras when the flag
 *   is absent (vllm/config/lora.py), which is the default the API
 *   documents, so writing it out would change nothing the engine does; leaving it out keeps the
 *   command line to what the user chose, as the seed's PARAMS do, and means an operator upgrade
 *   changes no OCI deployment's PARAMS (which would roll it with a ZDT update).
 */
export function engineArgs(engine: DeploymentSpec['engine'], base: BaseModel): string[] {
  const servedNames = base.modelId === undefined ? [base.inferenceKey] : [base.inferenceKey, base.modelId];
  const args = ['--served-model-name', ...servedNames];
  if (engine.maxModelLen !== undefined) args.push('--max-model-len', String(engine.maxModelLen));
  args.push(
    '--enable-lora',
    '--max-lora-rank',
    String(engine.maxLoraRank),
    '--max-loras',
    String(engine.maxLoras),
  );
  if (engine.maxCpuLoras !== undefined) args.push('--max-cpu-loras', String(engine.maxCpuLoras));
  return [...args, ...(engine.extraArgs ?? [])];
}
