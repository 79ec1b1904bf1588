/** A failure the plugin explains in one line, without a stack trace (exit 1). */
export class CliError extends Error {}
