// A loopback HTTPS file server with a throw-away CA, standing in for an artifact store in tests.
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { selfSignedCert } from '../../playground/tls.ts';

export interface FileServer {
  url: string;
  /** PEM of the certificate, to trust as a CA. */
  ca: string;
  /** Authorization headers seen, per path. */
  authorizations: Map<string, string | undefined>;
  /**
   * Paths that never finish: the headers promise `size` bytes, one chunk is sent, then nothing (a
   * stalled artifact store). Requests to them so far are counted in `stalled`.
   */
  stall: Map<string, number>;
  stalled: Map<string, number>;
  close(): Promise<void>;
}

/** Serves `files` (path -> bytes) on https://127.0.0.1:<port>; unknown paths answer 404. */
export async function startFileServer(files: Map<string, Buffer>): Promise<FileServer> {
  const { cert, key } = selfSignedCert();
  const authorizations = new Map<string, string | undefined>();
  const stall = new Map<string, number>();
  const stalled = new Map<string, number>();
  const server: Server = createServer({ cert, key }, (req, res) => {
    const path = req.url ?? '/';
    authorizations.set(path, req.headers.authorization);
    const size = stall.get(path);
    if (size !== undefined) {
      stalled.set(path, (stalled.get(path) ?? 0) + 1);
      res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': size });
      res.write(Buffer.alloc(Math.min(size, 1024)));
      return;
    }
    const body = files.get(path);
    if (body === undefined) {
      res.writeHead(404).end('not found');
      return;
    }
    res
      .writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': body.length })
      .end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `https://127.0.0.1:${port}`,
    ca: cert,
    authorizations,
    stall,
    stalled,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => {
          resolve();
        });
      }),
  };
}
