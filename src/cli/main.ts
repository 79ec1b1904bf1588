/**
 * `kubectl stacked`, the kubectl plugin (bin/kubectl-stacked runs this file on Node 24): predict,
 * status and experiment for a StackedDeployment. Exit codes: 0 done, 1 failed, 2 bad usage.
 */
import { CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { GROUP, VERSION } from '../api/v1alpha1/common.ts';
import { DEPLOYMENT_PLURAL, type StackedDeployment } from '../api/v1alpha1/deployment.ts';
import { parseCli, USAGE, UsageError, type CliArgs } from './args.ts';
import { CliError } from './errors.ts';
import { experiment } from './experiment.ts';
import { predict } from './predict.ts';
import { status } from './status.ts';

/** The kubeconfig kubectl would use for these flags. */
export function kubeConfigFor(args: Pick<CliArgs, 'kubeconfig' | 'context'>): KubeConfig {
  const kc = new KubeConfig();
  if (args.kubeconfig !== undefined) kc.loadFromFile(args.kubeconfig);
  else kc.loadFromDefault();
  if (args.context !== undefined) {
    if (kc.getContextObject(args.context) === null)
      throw new CliError(`context "${args.context}" does not exist`);
    kc.setCurrentContext(args.context);
  }
  return kc;
}

/** Runs one command line; resolves with the exit code. */
export async function run(
  argv: readonly string[],
  out: (s: string) => void,
  err: (s: string) => void,
): Promise<number> {
  let args: CliArgs | undefined;
  try {
    args = parseCli(argv);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    err(`error: ${e.message}\n\n${USAGE}\n`);
    return 2;
  }
  if (args === undefined) {
    out(`${USAGE}\n`);
    return 0;
  }
  try {
    const kc = kubeConfigFor(args);
    const namespace = args.namespace ?? kc.getContextObject(kc.getCurrentContext())?.namespace ?? 'default';
    const sdep = (await kc.makeApiClient(CustomObjectsApi).getNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace,
      plural: DEPLOYMENT_PLURAL,
      name: args.deployment,
    })) as StackedDeployment;
    if (args.command === 'predict') await predict(kc, sdep, args, out);
    else if (args.command === 'status') await status(kc, sdep, args.output, out);
    else await experiment(kc, sdep, args.output, out);
    return 0;
  } catch (e) {
    err(`error: ${describe(e)}\n`);
    return 1;
  }
}

/** One line for the user: the API server's own message for an API error. */
function describe(e: unknown): string {
  if (e instanceof CliError) return e.message;
  if (e !== null && typeof e === 'object' && 'code' in e && 'body' in e && typeof e.body === 'string') {
    try {
      const status = JSON.parse(e.body) as { message?: string };
      if (status.message !== undefined) return status.message;
    } catch {
      // not a Status: fall through
    }
  }
  return e instanceof Error ? e.message : String(e);
}

if (import.meta.main) {
  const code = await run(
    process.argv.slice(2),
    (s) => process.stdout.write(s),
    (s) => process.stderr.write(s),
  );
  process.exitCode = code;
}
