/**
 * Entry point of the fetch agent sidecar: `node src/agent/main.ts [flags]`. Flags win over the
 * environment, which wins over the defaults; logs are JSON lines on stdout.
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { createLogger } from '../runtime/logger.ts';
import { type AgentOptions, DEFAULT_MAX_BYTES, startAgentServer } from './server.ts';

export class AgentArgsError extends Error {}

export interface AgentArgs {
  host: string;
  port: number;
  root: string;
  caFile: string | undefined;
  secretsDir: string;
  maxBytes: number;
}

export const AGENT_USAGE = `Usage: node src/agent/main.ts [flags]
  --root         the shared volume adapters are fetched into [env AGENT_ROOT, default /mnt/fetched]
  --port         port to listen on [env AGENT_PORT, default 8089]
  --host         address to listen on [default 0.0.0.0]
  --ca-file      PEM file of extra CAs to trust for downloads [env AGENT_CA_FILE]
  --secrets-dir  folder of mounted Secrets, <dir>/<secret>/<key> [env AGENT_SECRETS_DIR, default /var/run/secrets/stacked]
  --max-bytes    largest archive when a request names no maxBytes [default ${DEFAULT_MAX_BYTES}]`;

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
      },
    }));
  } catch (err) {
    throw new AgentArgsError(err instanceof Error ? err.message : String(err));
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
  };
}

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
  const opts: AgentOptions = {
    host: args.host,
    port: args.port,
    root: args.root,
    secretsDir: args.secretsDir,
    defaultMaxBytes: args.maxBytes,
    log: (msg, meta) => logger.info(msg, meta),
  };
  if (args.caFile !== undefined) opts.ca = await readFile(args.caFile, 'utf8');
  const server = await startAgentServer(opts);
  const stop = (signal: string) => {
    logger.info('shutting down', { signal });
    server.close().then(
      () => logger.info('stopped'),
      (err: unknown) => {
        logger.error('close failed', { error: err instanceof Error ? err.message : String(err) });
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
