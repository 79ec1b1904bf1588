// The kubelet's streaming server, port-forward only: what the API server's pods/portforward proxies to
// (pkg/registry/core/pod/strategy.go PortForwardLocation: https://<node address>:<daemonEndpoints
// port>/portForward/<namespace>/<pod>?port=<p>[,<p>...], the client's WebSocket upgrade passed
// through as is). The protocol is the kubelet's WebSocket one (pkg/kubelet/cri/streaming/portforward/
// websocket.go, wsstream's channel protocol):
//   - subprotocols "v4.channel.k8s.io" (binary) and "v4.base64.channel.k8s.io", or none (binary); a
//     client that offers only others is refused, as wsstream refuses it;
//   - per port i, channel 2i carries data both ways and channel 2i+1 errors from the kubelet; every
//     message starts with its channel byte;
//   - the kubelet first writes each port, 2 bytes little-endian, on both of its channels;
//   - the pod's port is dialled once per connection; when it closes, so does the WebSocket, and a
//     dial that fails is reported on the error channel, then the WebSocket closes.
// The SPDY upgrade (kubectl's, tunnelled by the API server) is not spoken here: it gets a 400.
import { createServer, type Server } from 'node:https';
import type { IncomingMessage } from 'node:http';
import { createConnection, type AddressInfo, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { selfSignedCert } from '../tls.ts';

const BINARY = 'v4.channel.k8s.io';
const BASE64 = 'v4.base64.channel.k8s.io';

export interface StreamingServer {
  /** The port to publish as status.daemonEndpoints.kubeletEndpoint.Port. */
  port: number;
  close(): Promise<void>;
}

export interface StreamingOptions {
  /** The IP of a pod this kubelet runs now, else undefined. */
  podIp(namespace: string, name: string): string | undefined;
  log(line: string): void;
}

function refuse(socket: Duplex, status: number, text: string, message: string): void {
  socket.end(
    `HTTP/1.1 ${String(status)} ${text}\r\nContent-Type: text/plain\r\nContent-Length: ${String(Buffer.byteLength(message))}\r\nConnection: close\r\n\r\n${message}`,
  );
}

/** The `port` query parameter as the kubelet reads it (NewV4Options): comma-separated, each 1-65535. */
export function parsePorts(values: readonly string[]): number[] | string {
  if (values.length === 0) return '"port" is required';
  const ports: number[] = [];
  for (const v of values) {
    if (v === '') return 'query parameter "port" cannot be empty';
    for (const p of v.split(',')) {
      const n = /^\d+$/.test(p) ? Number(p) : NaN;
      if (!Number.isInteger(n) || n > 65535) return `unable to parse "${v}" as a port`;
      if (n < 1) return `port "${v}" must be > 0`;
      ports.push(n);
    }
  }
  return ports;
}

/** One certificate per process: every test kubelet's server can share it (openssl is not free). */
let tls: { cert: string; key: string } | undefined;

export async function startStreamingServer(opts: StreamingOptions): Promise<StreamingServer> {
  tls ??= selfSignedCert();
  const { cert, key } = tls;
  const wss = new WebSocketServer({
    noServer: true,
    handleProtocols: (offered) => {
      for (const p of offered) if (p === BINARY || p === BASE64) return p;
      return false;
    },
  });
  const server: Server = createServer({ cert, key }, (_req, res) => {
    res.writeHead(400, { 'Content-Type': 'text/plain' });
    res.end('this test kubelet serves port-forward over WebSocket only');
  });
  const open = new Set<WebSocket>();

  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = new URL(req.url ?? '/', 'https://kubelet');
    const m = /^\/portForward\/([^/]+)\/([^/]+)$/.exec(url.pathname);
    if (m === null) {
      refuse(socket, 404, 'Not Found', 'not found');
      return;
    }
    if ((req.headers.upgrade ?? '').toLowerCase() !== 'websocket') {
      refuse(socket, 400, 'Bad Request', 'this test kubelet speaks the WebSocket port-forward protocol only');
      return;
    }
    const [namespace, name] = [decodeURIComponent(m[1] ?? ''), decodeURIComponent(m[2] ?? '')];
    const ports = parsePorts(url.searchParams.getAll('port'));
    if (typeof ports === 'string') {
      refuse(socket, 400, 'Bad Request', ports);
      return;
    }
    const offered = (req.headers['sec-websocket-protocol'] ?? '')
      .split(',')
      .map((p) => p.trim())
      .filter((p) => p !== '');
    if (offered.length > 0 && !offered.includes(BINARY) && !offered.includes(BASE64)) {
      refuse(socket, 400, 'Bad Request', `requested protocol(s) are not supported: ${offered.join(', ')}`);
      return;
    }
    const ip = opts.podIp(namespace, name);
    if (ip === undefined) {
      refuse(socket, 404, 'Not Found', `pod ${namespace}/${name} is not running on this kubelet`);
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      open.add(ws);
      ws.once('close', () => open.delete(ws));
      forward(ws, ip, ports, `${namespace}/${name}`, (line) => {
        opts.log(line);
      });
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const ws of open) ws.terminate();
        wss.close();
        server.close(() => {
          resolve();
        });
        server.closeAllConnections();
      }),
  };
}

/** One port-forward session: a TCP connection to the pod per port, framed on its two channels. */
function forward(
  ws: WebSocket,
  ip: string,
  ports: readonly number[],
  pod: string,
  log: (line: string) => void,
): void {
  const base64 = ws.protocol === BASE64;
  const send = (channel: number, data: Buffer): void => {
    if (ws.readyState !== ws.OPEN) return;
    if (base64) ws.send(String.fromCharCode(48 + channel) + data.toString('base64'));
    else ws.send(Buffer.concat([Buffer.from([channel]), data]));
  };
  const sockets: Socket[] = [];
  let done = 0;
  ports.forEach((port, i) => {
    const portBytes = Buffer.alloc(2);
    portBytes.writeUInt16LE(port);
    send(2 * i, portBytes);
    send(2 * i + 1, portBytes);
    const socket = createConnection({ host: ip, port });
    sockets.push(socket);
    socket.on('data', (chunk: Buffer) => {
      send(2 * i, chunk);
    });
    socket.once('error', (err) => {
      const message = `error forwarding port ${String(port)} to pod ${pod}: ${err.message}`;
      log(message);
      send(2 * i + 1, Buffer.from(message));
    });
    socket.once('close', () => {
      // The kubelet closes the WebSocket once every port's connection has ended.
      if (++done === ports.length) ws.close();
    });
  });
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    const bytes = isBinary ? data : Buffer.from(data.toString().slice(1), 'base64');
    const channel = isBinary ? bytes[0] : data.toString().charCodeAt(0) - 48;
    const payload = isBinary ? bytes.subarray(1) : bytes;
    if (channel === undefined || channel % 2 !== 0) return;
    sockets[channel / 2]?.write(payload);
  });
  ws.once('close', () => {
    for (const s of sockets) s.destroy();
  });
}
