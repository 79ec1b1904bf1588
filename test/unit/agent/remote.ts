// A loopback HTTPS source for the fetch agent's job tests: archives by path, and sources that send
// their first bytes and then stall until released (a download that does not finish on its own).
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import { type Server, createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tar from 'tar';

export interface Stall {
  /** Requests the source has received. */
  requests: number;
  /** Responses that were closed before they were complete: the agent hung up. */
  cutOff: number;
  /** Sends the rest of the body to the requests waiting, and the whole of it to later ones. */
  release(): void;
}

export interface Remote {
  url: string;
  /** PEM of the self-signed certificate, for the agent's `ca`. */
  ca: string;
  /** Archives served whole, by path. */
  files: Map<string, Buffer>;
  /** GET requests per path. */
  hits: Map<string, number>;
  /** Serves `body` at `path`: the Content-Length and the first bytes, then nothing until released. */
  stall(path: string, body: Buffer): Stall;
  close(): Promise<void>;
}

/** The first bytes a stalled source sends: what the job shows as progress. */
export const STALL_FIRST_BYTES = 100;

export async function startRemote(): Promise<Remote> {
  const dir = await mkdtemp(join(tmpdir(), 'agent-remote-'));
  try {
    execFileSync(
      'openssl',
      [
        ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'],
        ...['-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '2'],
        ...['-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'],
      ],
      { stdio: 'ignore' },
    );
    const ca = await readFile(join(dir, 'cert.pem'), 'utf8');
    const key = await readFile(join(dir, 'key.pem'), 'utf8');
    const files = new Map<string, Buffer>();
    const hits = new Map<string, number>();
    const stalls = new Map<string, (res: ServerResponse) => void>();
    const server: Server = createServer({ key, cert: ca }, (req, res) => {
      const path = new URL(req.url ?? '/', 'https://x').pathname;
      hits.set(path, (hits.get(path) ?? 0) + 1);
      const stalled = stalls.get(path);
      if (stalled !== undefined) {
        stalled(res);
        return;
      }
      const body = files.get(path);
      if (body === undefined) res.writeHead(404).end('not here');
      else res.writeHead(200, { 'content-length': body.length }).end(body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return {
      url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
      ca,
      files,
      hits,
      stall(path, body) {
        const { promise: released, resolve: release } = Promise.withResolvers<undefined>();
        const stall: Stall = {
          requests: 0,
          cutOff: 0,
          release: () => {
            release(undefined);
          },
        };
        stalls.set(path, (res) => {
          stall.requests++;
          res.on('close', () => {
            if (!res.writableFinished) stall.cutOff++;
          });
          res.writeHead(200, { 'content-length': body.length });
          res.write(body.subarray(0, STALL_FIRST_BYTES));
          void released.then(() => {
            if (!res.destroyed) res.end(body.subarray(STALL_FIRST_BYTES));
          });
        });
        return stall;
      },
      close: async () => {
        server.closeAllConnections();
        await new Promise<void>((resolve) => {
          server.close(() => {
            resolve();
          });
        });
      },
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** A .tar.gz of a LoRA adapter whose weights are `weightBytes` of random data (each one different). */
export async function adapterArchive(weightBytes = 64 * 1024): Promise<Buffer> {
  const dir = await mkdtemp(join(tmpdir(), 'agent-archive-'));
  try {
    const src = join(dir, 'src');
    await mkdir(src);
    await writeFile(join(src, 'adapter_config.json'), JSON.stringify({ r: 8, peft_type: 'LORA' }));
    // Incompressible, so the archive is about as large as the weights.
    await writeFile(join(src, 'adapter_model.safetensors'), randomBytes(weightBytes));
    const file = join(dir, 'a.tgz');
    await tar.c({ cwd: src, gzip: true, file, portable: true }, [
      'adapter_config.json',
      'adapter_model.safetensors',
    ]);
    return await readFile(file);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Polls `probe` until it returns a value, or fails after `timeoutMs`. */
export async function until<T>(
  what: string,
  probe: () => T | undefined | Promise<T | undefined>,
  timeoutMs = 5_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const got = await probe();
    if (got !== undefined) return got;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
