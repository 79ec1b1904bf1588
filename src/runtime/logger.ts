import type { Writable } from 'node:stream';
import winston from 'winston';

/** The logger type used across the operator; controllers get children carrying {controller, key}. */
export type Logger = winston.Logger;

/** Options for {@link createLogger}. */
export interface LoggerOptions {
  /** Minimum level (error, warn, info, debug); defaults to $LOG_LEVEL or 'info'. */
  level?: string;
  /** Drops every line; for tests that don't care about logs. */
  silent?: boolean;
  /** Writes here instead of stdout; lets tests read the JSON lines back. */
  stream?: Writable;
}

/**
 * Creates a JSON-lines logger on stdout (one object per line with timestamp, level, message and
 * metadata), which is what log collectors in a cluster parse without configuration.
 * Use `logger.child({ controller, key })` so every line of a reconcile names the object.
 */
export function createLogger(opts: LoggerOptions = {}): Logger {
  const transport = opts.stream
    ? new winston.transports.Stream({ stream: opts.stream })
    : new winston.transports.Console();
  return winston.createLogger({
    level: opts.level ?? process.env['LOG_LEVEL'] ?? 'info',
    silent: opts.silent ?? false,
    format: winston.format.combine(winston.format.timestamp(), winston.format.json()),
    // winston types its transport instances as interfaces extending the TransportStream class.
    // eslint-disable-next-line @typescript-eslint/no-unsafe-class-instance-assignment
    transports: [transport],
  });
}
