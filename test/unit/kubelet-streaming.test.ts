// The test kubelet's streaming server speaks the kubelet's WebSocket port-forward protocol as the
// kubelet does (playground/kubelet/streaming.ts has the sources): these pin the details a client
// relies on, and the refusals.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { WebSocket } from 'ws';
import {
  parsePorts,
  startStreamingServer,
  type StreamingServer,
} from '../../playground/kubelet/streaming.ts';

describe('test kubelet: streaming server (port-forward)', () => {
  let echo: Server;
  let echoPort: number;
  let kubelet: StreamingServer;

  before(async () => {
    echo = createServer((socket) => socket.pipe(socket)).listen(0, '127.0.0.1');
    await once(echo, 'listening');
    echoPort = (echo.address() as AddressInfo).port;
    kubelet = await startStreamingServer({
      podIp: (ns, name) => (ns === 'ml' && name === 'router-0' ? '127.0.0.1' : undefined),
      log: () => undefined,
    });
  });
  after(async () => {
    await kubelet.close();
    echo.close();
  });

  const connect = (path: string, protocols: string[]) =>
    new WebSocket(`wss://127.0.0.1:${String(kubelet.port)}${path}`, protocols, { rejectUnauthorized: false });

  /** The next `n` binary messages, as [channel, payload]. */
  async function messages(ws: WebSocket, n: number): Promise<[number, Buffer][]> {
    const out: [number, Buffer][] = [];
    return new Promise((resolve, reject) => {
      const onMessage = (data: Buffer) => {
        out.push([data[0] ?? -1, data.subarray(1)]);
        if (out.length === n) {
          ws.off('message', onMessage);
          resolve(out);
        }
      };
      ws.on('message', onMessage);
      ws.once('error', reject);
    });
  }

  it('negotiates v4.channel.k8s.io, sends each port first on both channels, then carries data both ways', async () => {
    const ws = connect(`/portForward/ml/router-0?port=${String(echoPort)}`, [
      'v5.channel.k8s.io',
      'v4.channel.k8s.io',
    ]);
    const first = messages(ws, 2);
    await once(ws, 'open');
    assert.equal(ws.protocol, 'v4.channel.k8s.io');
    const port = Buffer.alloc(2);
    port.writeUInt16LE(echoPort);
    assert.deepEqual(await first, [
      [0, port],
      [1, port],
    ]);
    const echoed = messages(ws, 1);
    ws.send(Buffer.concat([Buffer.from([0]), Buffer.from('hello')]));
    assert.deepEqual(await echoed, [[0, Buffer.from('hello')]]);
    ws.close();
    await once(ws, 'close');
  });

  it('reports a refused dial on the error channel, then closes', async () => {
    const closed = createServer().listen(0, '127.0.0.1');
    await once(closed, 'listening');
    const deadPort = (closed.address() as AddressInfo).port;
    closed.close();
    const ws = connect(`/portForward/ml/router-0?port=${String(deadPort)}`, ['v4.channel.k8s.io']);
    const [, , error] = await messages(ws, 3);
    assert.equal(error?.[0], 1, 'the error channel');
    assert.match(
      error[1].toString(),
      new RegExp(`error forwarding port ${String(deadPort)} to pod ml/router-0`),
    );
    await once(ws, 'close');
  });

  const refused: [string, string, string[], number][] = [
    ['a pod this kubelet does not run', '/portForward/ml/other?port=8080', ['v4.channel.k8s.io'], 404],
    ['no port', '/portForward/ml/router-0', ['v4.channel.k8s.io'], 400],
    [
      'only protocols the kubelet does not speak',
      '/portForward/ml/router-0?port=8080',
      ['v5.channel.k8s.io'],
      400,
    ],
  ];
  for (const [name, path, protocols, status] of refused) {
    it(`refuses ${name} with ${String(status)}`, async () => {
      const ws = connect(path, protocols);
      // Ending a WebSocket that never opened is reported as an error: expected here.
      ws.on('error', () => undefined);
      const [, res] = (await once(ws, 'unexpected-response')) as [unknown, { statusCode: number }];
      assert.equal(res.statusCode, status);
      ws.terminate();
    });
  }

  it('reads the port parameter as the kubelet does', () => {
    assert.deepEqual(parsePorts(['8080,9090']), [8080, 9090]);
    assert.deepEqual(parsePorts(['8080', '9090']), [8080, 9090]);
    assert.equal(parsePorts([]), '"port" is required');
    assert.equal(parsePorts(['']), 'query parameter "port" cannot be empty');
    assert.equal(parsePorts(['0']), 'port "0" must be > 0');
    assert.equal(parsePorts(['http']), 'unable to parse "http" as a port');
    assert.equal(parsePorts(['70000']), 'unable to parse "70000" as a port');
  });
});
