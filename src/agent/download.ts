/**
 * The verified streaming download: the archive goes straight to a file while its size and SHA-256
 * are measured, so a too-large or wrong archive is stopped without ever being held in memory.
 */
import { createWriteStream } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { type Agent, request } from 'node:https';
import { pipeline } from 'node:stream/promises';
import { AgentError, badGateway, displayUri, errorMessage, unacceptable } from './errors.ts';
import { Budget, Meter, type Progress } from './meter.ts';

export const MAX_REDIRECTS = 5;
/** A remote that sends nothing for this long is given up on (the operator retries later). */
export const IDLE_TIMEOUT_MS = 60_000;

export interface DownloadOptions {
  /** The adapter name, for messages. */
  name: string;
  uri: URL;
  /** The file to create (it must not exist). */
  dest: string;
  maxBytes: number;
  /** Expected lower-case hex of the archive, if pinned. */
  sha256?: string;
  /** Bearer token; sent only to the uri's origin, never to a redirect elsewhere. */
  token?: string;
  /** Carries the trusted CAs. */
  agent: Agent;
  /** Cancels the download: the connection is closed and the download fails with the abort's reason. */
  signal?: AbortSignal | undefined;
  /** Counts the bytes saved, for the job's status. */
  progress?: Progress | undefined;
}

export interface DownloadResult {
  sha256: string;
  bytes: number;
}

export const tooLarge = (name: string, maxBytes: number) =>
  unacceptable(`${name}: archive exceeds maxBytes ${maxBytes}`);

/** Refuses a download whose checksum is not the pinned one. */
export function checkSha256(name: string, expected: string | undefined, got: string): void {
  if (expected !== undefined && got !== expected) {
    throw unacceptable(`sha256 mismatch for ${name}: expected ${expected}, got ${got}`);
  }
}

function get(
  url: URL,
  headers: Record<string, string>,
  agent: Agent,
  signal: AbortSignal | undefined,
): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    // The signal also ends the response of a request it aborts, half-way through its body or not.
    const req = request(url, { method: 'GET', headers, agent, ...(signal ? { signal } : {}) }, resolve);
    // The socket timeout also covers a body that stalls half-way.
    req.setTimeout(IDLE_TIMEOUT_MS, () => {
      req.destroy(new Error(`no data for ${IDLE_TIMEOUT_MS / 1000} s`));
    });
    req.on('error', reject);
    req.end();
  });
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/** GETs the uri, following up to MAX_REDIRECTS https redirects, and returns the 2xx response. */
async function open(opts: DownloadOptions): Promise<{ res: IncomingMessage; url: URL }> {
  let url = opts.uri;
  for (let hop = 0; ; hop++) {
    const headers: Record<string, string> = { 'user-agent': 'stacked-fetch-agent' };
    // Like curl and browsers: a token for one origin is not handed to another (e.g. a CDN).
    if (opts.token !== undefined && url.origin === opts.uri.origin) {
      headers['authorization'] = `Bearer ${opts.token}`;
    }
    let res: IncomingMessage;
    try {
      res = await get(url, headers, opts.agent, opts.signal);
    } catch (err) {
      opts.signal?.throwIfAborted();
      throw badGateway(`GET ${displayUri(url)}: ${errorMessage(err)}`);
    }
    const status = res.statusCode ?? 0;
    const location = res.headers.location;
    if (REDIRECTS.has(status) && location !== undefined) {
      res.resume();
      if (hop >= MAX_REDIRECTS)
        throw badGateway(`GET ${displayUri(opts.uri)}: more than ${MAX_REDIRECTS} redirects`);
      let next: URL;
      try {
        next = new URL(location, url);
      } catch {
        throw badGateway(`GET ${displayUri(url)}: invalid redirect location`);
      }
      if (next.protocol !== 'https:') {
        throw badGateway(`GET ${displayUri(url)}: redirect to a non-https URL refused`);
      }
      url = next;
      continue;
    }
    if (status < 200 || status > 299) {
      res.resume();
      throw badGateway(`GET ${displayUri(url)}: ${status} ${res.statusMessage ?? ''}`.trimEnd());
    }
    return { res, url };
  }
}

/** Downloads the archive into opts.dest; throws an AgentError (422/502) when it is refused. */
export async function download(opts: DownloadOptions): Promise<DownloadResult> {
  const { res, url } = await open(opts);
  const declared = Number(res.headers['content-length']);
  if (Number.isFinite(declared) && declared > opts.maxBytes) {
    res.destroy();
    throw tooLarge(opts.name, opts.maxBytes);
  }
  const meter = new Meter(new Budget(opts.maxBytes, () => tooLarge(opts.name, opts.maxBytes)), {
    progress: opts.progress,
  });
  try {
    await pipeline(res, meter, createWriteStream(opts.dest, { flags: 'wx' }));
  } catch (err) {
    opts.signal?.throwIfAborted();
    if (err instanceof AgentError) throw err;
    // Not all of the body arrived: the remote or the network failed, not our disk.
    if (!res.complete) throw badGateway(`GET ${displayUri(url)}: ${errorMessage(err)}`);
    throw err;
  }
  const sha256 = meter.hash.digest('hex');
  checkSha256(opts.name, opts.sha256, sha256);
  return { sha256, bytes: meter.bytes };
}
