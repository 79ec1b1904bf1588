/**
 * Entry point of the fetch agent: `node dist/agent.mjs [flags]` in the image (bundled from this
 * file). As a sidecar it serves its HTTP API; with --fetch it fetches one request and exits (an init
 * container filling a base model's volume before vLLM starts). Flags win over the environment,
 * which wins over the defaults; logs are JSON lines on stdout.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { AUTH_TYPES, type OciAuthType } from '../oci/auth.ts';
import { captureSdkWarnings } from '../oci/client.ts';
import { createLogger } from '../runtime/logger.ts';
import { errorMessage } from './errors.ts';
import type { OciAccess } from './oci-access.ts';
import { fetchOnce } from './once.ts';
import { type AgentOptions, DEFAULT_MAX_BYTES, startAgentServer } from './server.ts';

export class AgentArgsError extends Error {}

export interface AgentArgs {
  host: string;
  port: number;
  root: string;
  caFile: string | undefined;
  secretsDir: string;
  maxBytes: number;
  oci: OciAccess | undefined;
  /** One-shot mode: the JSON fetch request to run before exiting. */
  fetch: string | undefined;
}

export const AGENT_USAGE = `Usage: node dist/agent.mjs [flags]
  --root         the shared volume adapters are fetched into [env AGENT_ROOT, default /mnt/fetched]
  --port         port to listen on [env AGENT_PORT, default 8089]
  --host         address to listen on [default 0.0.0.0]
  --ca-file      PEM file of extra CAs to trust for downloads [env AGENT_CA_FILE]
  --secrets-dir  folder of mounted Secrets, <dir>/<secret>/<key> [env AGENT_SECRETS_DIR, default /var/run/secrets/stacked]
  --max-bytes    largest archive when a request names no maxBytes [default ${DEFAULT_MAX_BYTES}]
  --oci-region   OCI region, for oci:// and Model Catalog sources [env AGENT_OCI_REGION]
  --oci-endpoint one endpoint for Object Storage and Data Science instead of the region's (tests, proxies)
  --oci-auth     ${AUTH_TYPES.join(' | ')} [default apiKey]
  --oci-secret   the api-key Secret, mounted under --secrets-dir (keys tenancy, user, fingerprint, privateKey, ...)
  --fetch        one-shot: fetch this JSON request (as POST /v1/fetch takes it) into --root, then exit`;

function positiveInt(flag: string, v: string, min: number): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < min) {
    throw new AgentArgsError(`--${flag} must be an integer >= ${min}, got "${v}"`);
  }
  return n;
}

export function parseAgentArgs(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): AgentArgs {
  let values: Record<string, string | undefined>;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      strict: true,
      options: {
        root: { type: 'string' },
        port: { type: 'string' },
        host: { type: 'string' },
        'ca-file': { type: 'string' },
        'secrets-dir': { type: 'string' },
        'max-bytes': { type: 'string' },
        'oci-region': { type: 'string' },
        'oci-endpoint': { type: 'string' },
        'oci-auth': { type: 'string' },
        'oci-secret': { type: 'string' },
        fetch: { type: 'string' },
      },
    }));
  } catch (err) {
    throw new AgentArgsError(errorMessage(err));
  }
  const pick = (flag: string, envName?: string): string | undefined => {
    const fromEnv = envName === undefined ? undefined : env[envName];
    return values[flag] ?? (fromEnv === '' ? undefined : fromEnv);
  };
  const port = positiveInt('port', pick('port', 'AGENT_PORT') ?? '8089', 0);
  if (port > 65535) throw new AgentArgsError(`--port must be at most 65535, got ${port}`);
  return {
    root: pick('root', 'AGENT_ROOT') ?? '/mnt/fetched',
    port,
    host: pick('host') ?? '0.0.0.0',
    caFile: pick('ca-file', 'AGENT_CA_FILE'),
    secretsDir: pick('secrets-dir', 'AGENT_SECRETS_DIR') ?? '/var/run/secrets/stacked',
    maxBytes: positiveInt('max-bytes', pick('max-bytes') ?? String(DEFAULT_MAX_BYTES), 1),
    oci: ociAccess(pick),
    fetch: pick('fetch'),
  };
}

function isAuthType(v: string): v is OciAuthType {
  return (AUTH_TYPES as readonly string[]).includes(v);
}

function ociAccess(pick: (flag: string, envName?: string) => string | undefined): OciAccess | undefined {
  const region = pick('oci-region', 'AGENT_OCI_REGION');
  const endpoint = pick('oci-endpoint');
  const auth = pick('oci-auth') ?? 'apiKey';
  const secret = pick('oci-secret');
  if (region === undefined) {
    if (endpoint !== undefined || secret !== undefined || pick('oci-auth') !== undefined) {
      throw new AgentArgsError('--oci-endpoint, --oci-auth and --oci-secret need --oci-region');
    }
    return undefined;
  }
  if (!isAuthType(auth)) throw new AgentArgsError(`--oci-auth must be one of ${AUTH_TYPES.join(', ')}`);
  if ((auth === 'apiKey') !== (secret !== undefined)) {
    throw new AgentArgsError('--oci-secret is required for --oci-auth=apiKey and only for it');
  }
  return {
    region,
    auth,
    ...(endpoint !== undefined ? { endpoint } : {}),
    ...(secret !== undefined ? { secret } : {}),
  };
}

/** Where the kubelet reads a failed container's message from (it creates the file). */
const TERMINATION_LOG = '/dev/termination-log';

async function main(): Promise<void> {
  if (process.argv.includes('--help')) {
    console.log(AGENT_USAGE);
    return;
  }
  let args: AgentArgs;
  try {
    args = parseAgentArgs(process.argv.slice(2), process.env);
  } catch (err) {
    if (!(err instanceof AgentArgsError)) throw err;
    console.error(`${err.message}\n\n${AGENT_USAGE}`);
    process.exit(2);
  }
  const logger = createLogger();
  captureSdkWarnings((message) => logger.warn(message, { source: 'oci-sdk' }));
  const opts: AgentOptions = {
    host: args.host,
    port: args.port,
    root: args.root,
    secretsDir: args.secretsDir,
    defaultMaxBytes: args.maxBytes,
    log: (msg, meta) => logger.info(msg, meta),
  };
  if (args.oci !== undefined) opts.oci = args.oci;
  if (args.caFile !== undefined) opts.ca = await readFile(args.caFile, 'utf8');
  if (args.fetch !== undefined) {
    // As PID 1 of an init container, node gets no default handler: without these the kubelet's
    // SIGTERM would wait out the grace period. Downloads land by rename, so stopping mid-way leaves
    // no half folder under its final name; 143 is the shell's code for death by SIGTERM.
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      process.once(signal, () => {
        logger.info('stopped before the fetch finished', { signal });
        process.exit(128 + (signal === 'SIGTERM' ? 15 : 2));
      });
    }
    try {
      await fetchOnce(opts, args.fetch);
    } catch (err) {
      const message = errorMessage(err);
      logger.error('fetch failed', { error: message });
      // Only where the kubelet made the file ("r+" never creates one): `kubectl describe` shows it.
      await writeFile(TERMINATION_LOG, message, { flag: 'r+' }).catch(() => undefined);
      process.exitCode = 1;
    }
    return;
  }
  const server = await startAgentServer(opts);
  const stop = (signal: string) => {
    logger.info('shutting down', { signal });
    server.close().then(
      () => logger.info('stopped'),
      (err: unknown) => {
        logger.error('close failed', { error: errorMessage(err) });
        process.exitCode = 1;
      },
    );
  };
  process.once('SIGTERM', () => {
    stop('SIGTERM');
  });
  process.once('SIGINT', () => {
    stop('SIGINT');
  });
}

if (import.meta.main) await main();
