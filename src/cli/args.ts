/**
 * Pure: the command line of `kubectl stacked`, with kubectl's conventions for the flags every command
 * shares (-n/--namespace, --context, --kubeconfig, -o json|yaml|table, --help).
 */
import { parseArgs } from 'node:util';

export class UsageError extends Error {}

export const OUTPUTS = ['table', 'json', 'yaml'] as const;
export type Output = (typeof OUTPUTS)[number];
export const COMMANDS = ['predict', 'status', 'experiment'] as const;
/** How predict reaches an in-cluster endpoint: auto tries service, then pod, then port-forward. */
export const VIAS = ['auto', 'service', 'pod', 'port-forward'] as const;
export type ViaChoice = (typeof VIAS)[number];
export type Command = (typeof COMMANDS)[number];

export const USAGE = `kubectl stacked: talk to StackedDeployments (serving.stacked.dev).

Usage:
  kubectl stacked predict DEPLOYMENT --model NAME --prompt TEXT [--max-tokens N] [--stream] [--via HOW]
      POST the seed's predict call to the deployment's status.endpoint. NAME is an inference key,
      a model id or an experiment. Outside the cluster, where the Service's name does not resolve,
      it goes to a ready pod behind the Service: straight to its IP when reachable, else through a
      port-forward over the API server. --via ${VIAS.join(' | ')} [default auto] takes one of
      these paths only (an OCI predict URL is always called directly).
  kubectl stacked status DEPLOYMENT
      Each member's state on each replica (the pods' serving.stacked.dev/adapter-state).
  kubectl stacked experiment DEPLOYMENT
      Requests, errors and latency per experiment variant, from the routers' /metrics.

Flags:
  -n, --namespace NS    the namespace [default: the context's, else "default"]
      --context NAME    the kubeconfig context to use
      --kubeconfig PATH the kubeconfig file [default: $KUBECONFIG, ~/.kube/config, in-cluster]
  -o, --output FORMAT   ${OUTPUTS.join(' | ')} [default table]
  -h, --help            this help`;

/** The flags of `predict` alone. */
const PREDICT_FLAGS = ['model', 'prompt', 'max-tokens', 'stream', 'via'] as const;

export interface CliArgs {
  command: Command;
  deployment: string;
  namespace: string | undefined;
  context: string | undefined;
  kubeconfig: string | undefined;
  output: Output;
  model: string | undefined;
  prompt: string | undefined;
  maxTokens: number | undefined;
  stream: boolean;
  via: ViaChoice;
}

/** The parsed command line, or undefined when help was asked for. */
export function parseCli(argv: readonly string[]): CliArgs | undefined {
  let values: Record<string, string | boolean | undefined>;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: true,
      options: {
        namespace: { type: 'string', short: 'n' },
        context: { type: 'string' },
        kubeconfig: { type: 'string' },
        output: { type: 'string', short: 'o' },
        model: { type: 'string' },
        prompt: { type: 'string' },
        'max-tokens': { type: 'string' },
        stream: { type: 'boolean' },
        via: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
  if (values['help'] === true || positionals.length === 0) return undefined;
  const [command, deployment, ...extra] = positionals;
  if (!(COMMANDS as readonly string[]).includes(command ?? '')) {
    throw new UsageError(`unknown command "${command ?? ''}": one of ${COMMANDS.join(', ')}`);
  }
  if (deployment === undefined || deployment === '')
    throw new UsageError(`${command ?? ''}: DEPLOYMENT is required`);
  if (extra.length > 0) throw new UsageError(`unexpected arguments: ${extra.join(' ')}`);
  const str = (k: string): string | undefined => {
    const v = values[k];
    return typeof v === 'string' ? v : undefined;
  };
  const output = str('output') ?? 'table';
  if (!(OUTPUTS as readonly string[]).includes(output)) {
    throw new UsageError(`--output must be one of ${OUTPUTS.join(', ')}, got "${output}"`);
  }
  const maxTokensText = str('max-tokens');
  // Decimal digits only: Number() would also take "1e3", "0x10" or " 3".
  const maxTokens =
    maxTokensText === undefined
      ? undefined
      : /^[1-9][0-9]*$/.test(maxTokensText)
        ? Number(maxTokensText)
        : NaN;
  if (maxTokens !== undefined && (!Number.isSafeInteger(maxTokens) || maxTokens < 1)) {
    throw new UsageError(`--max-tokens must be a positive integer, got "${maxTokensText ?? ''}"`);
  }
  const via = str('via') ?? 'auto';
  if (!(VIAS as readonly string[]).includes(via)) {
    throw new UsageError(`--via must be one of ${VIAS.join(', ')}, got "${via}"`);
  }
  // As kubectl refuses a flag its subcommand does not have.
  if (command !== 'predict') {
    for (const flag of PREDICT_FLAGS) {
      if (values[flag] !== undefined) throw new UsageError(`${command}: --${flag} is only for predict`);
    }
  }
  const args: CliArgs = {
    command: command as Command,
    deployment,
    namespace: str('namespace'),
    context: str('context'),
    kubeconfig: str('kubeconfig'),
    output: output as Output,
    model: str('model'),
    prompt: str('prompt'),
    maxTokens,
    stream: values['stream'] === true,
    via: via as ViaChoice,
  };
  if (args.command === 'predict' && (args.model === undefined || args.prompt === undefined)) {
    throw new UsageError('predict: --model and --prompt are required');
  }
  return args;
}
