/**
 * The router block, in both backends' blocks: the same fields, a default and a description per backend.
 * Its own module because oci.ts and deployment.ts both need it and deployment.ts imports oci.ts.
 */
import Type from 'typebox';
import { DEFAULT_AFFINITY_MARGIN } from '../router/v1.ts';

/**
 * `spec.<backend>.router`. `enabledByDefault` differs by backend: vLLM pods answer only the served
 * names, so the vllm backend needs the router for model ids, /predict and experiments; an OCI stacked
 * deployment already routes by inference key and model OCID itself, so there the router is opt-in.
 */
export function routerSchema(enabledByDefault: boolean, description: string) {
  return Type.Object(
    {
      enabled: Type.Boolean({
        default: enabledByDefault,
        description:
          'Run the router: a Deployment and Service in this namespace that answer POST /predict and the ' +
          'OpenAI routes for any inference key, model id or experiment name, split spec.experiments by ' +
          'weight and count requests per key and variant. status.endpoint names its Service while it is ' +
          'enabled. spec.experiments need it.',
      }),
      replicas: Type.Integer({
        minimum: 0,
        maximum: 100,
        default: 1,
        description: "Replicas of the router's Deployment.",
      }),
      affinityMargin: Type.Integer({
        minimum: 0,
        maximum: 1000,
        default: DEFAULT_AFFINITY_MARGIN,
        description:
          "LoRA affinity: a request goes to a pod already running its adapter in a GPU slot (vLLM's " +
          'vllm:lora_requests_info) unless that pod has more than this many outstanding requests beyond ' +
          'the least busy pod holding the adapter. 0 ignores affinity; vllm backend only.',
      }),
    },
    // `default: {}` lets the API server fill `enabled` and `replicas` when the block is left out.
    { description, default: {}, additionalProperties: false },
  );
}
