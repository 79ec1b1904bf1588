/**
 * The proxy against small local HTTP servers standing in for vLLM pods, fed through a
 * StaticRoutingSource (the interface the Kubernetes watch feeds): no cluster involved.
 */
import assert from 'node:assert/strict';
import { type IncomingMessage, type Server, type ServerResponse, createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLogger } from '../../../src/runtime/logger.ts';
import { type RunningRouter, startRouterServer } from '../../../src/router/server.ts';
import { StaticRoutingSource, routingState } from '../../../src/router/state.ts';
import { SQL_ID, deployment, group, pod } from './fixtures.ts';

interface Seen {
  path: string;
  body: Record<string, unknown>;
  headers: IncomingMessage['headers'];
}

/** A stand-in pod: records what it receives, answers with `handler`. */
class FakePod {
  readonly seen: Seen[] = [];
  server: Server;
  port = 0;
  handler: (req: IncomingMessage, res: ServerResponse, body: Record<string, unknown>) => void = (
    _req,
    res,
    body,
  ) => {
    const text = JSON.stringify({
      id: 'cmpl-1',
      object: 'text_completion',
      model: body['model'],
      choices: [{ index: 0, text: `from ${this.name}`, finish_reason: 'length' }],
      usage: { prompt_tokens: 3, completion_tokens: 5, total_tokens: 8 },
    });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  };
  readonly name: string;

  constructor(name: string) {
    this.name = name;
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
        this.seen.push({ path: req.url ?? '', body, headers: req.headers });
        this.handler(req, res, body);
      });
    });
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) =>
      this.server.close(() => {
        resolve();
      }),
    );
  }
}

interface Answer {
  status: number;
  headers: IncomingMessage['headers'];
  body: string;
}

function call(
  port: number,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    const req = request(
      { host: '127.0.0.1', port, method, path, headers: { 'content-type': 'application/json', ...headers } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString('utf8'),
          });
        });
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

function waitFor(cond: () => boolean, ms = 3000): Promise<void> {
  const until = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const tick = (): void => {
      if (cond()) resolve();
      else if (Date.now() > until) reject(new Error('condition not met in time'));
      else setTimeout(tick, 10);
    };
    tick();
  });
}

describe('router/proxy', () => {
  const log = createLogger({ silent: true });
  let a: FakePod;
  let b: FakePod;
  let router: RunningRouter;
  const source = new StaticRoutingSource();
  const g = group([
    { inferenceKey: 'sql', modelId: SQL_ID },
    { inferenceKey: 'chat' },
    { inferenceKey: 'new' },
  ]);
  const sd = deployment([
    {
      name: 'sql-ab',
      stickyHeader: 'x-user-id',
      variants: [
        { inferenceKey: 'sql', weight: 80 },
        { inferenceKey: 'chat', weight: 20 },
      ],
    },
  ]);

  /** Pod a holds sql and chat, pod b holds sql only; `new` is held by nobody. */
  function setPods(pods: { p: FakePod; loaded: string[]; port?: number }[]): void {
    source.set(
      routingState({
        synced: true,
        deployment: sd,
        group: g,
        pods: pods.map(({ p, loaded, port }) =>
          pod({ name: p.name, ip: '127.0.0.1', port: port ?? p.port, loaded }),
        ),
      }),
    );
  }

  beforeEach(async () => {
    a = new FakePod('a');
    b = new FakePod('b');
    await Promise.all([a.listen(), b.listen()]);
    setPods([
      { p: a, loaded: ['sql', 'chat'] },
      { p: b, loaded: ['sql'] },
    ]);
    router = await startRouterServer({ source, host: '127.0.0.1', port: 0, log, scrapeIntervalMs: 0 });
  });

  afterEach(async () => {
    await router.close();
    await Promise.all([a.close(), b.close()]);
  });

  it('answers /predict by model id, forwarded as /v1/completions with the served name', async () => {
    const r = await call(router.port, 'POST', '/predict', {
      model: SQL_ID,
      prompt: 'hi',
      max_tokens: 5,
      temperature: 0,
    });
    assert.equal(r.status, 200);
    const [seen, ...more] = [...a.seen, ...b.seen];
    assert.equal(more.length, 0);
    assert.equal(seen?.path, '/v1/completions');
    assert.deepEqual(seen.body, { model: 'sql', prompt: 'hi', max_tokens: 5, temperature: 0 });
    // The response's model is what vLLM answers: the inference key.
    assert.equal((JSON.parse(r.body) as { model: string }).model, 'sql');
    assert.equal(r.headers['x-stacked-variant'], undefined);
  });

  it('sends the base (named or not) to any pod, and an adapter only to a pod that holds it', async () => {
    for (let i = 0; i < 10; i++) {
      assert.equal(
        (await call(router.port, 'POST', '/v1/chat/completions', { model: 'chat', messages: [] })).status,
        200,
      );
    }
    assert.equal(b.seen.length, 0);
    assert.ok(a.seen.every((s) => s.path === '/v1/chat/completions' && s.body['model'] === 'chat'));
    assert.equal((await call(router.port, 'POST', '/v1/completions', { prompt: 'x' })).status, 200);
    assert.equal([...a.seen, ...b.seen].at(-1)?.body['model'], 'base');
  });

  it('answers an unknown name with vLLM\'s 404, counted under model="unknown"', async () => {
    const r = await call(router.port, 'POST', '/v1/completions', { model: 'foo', prompt: 'x' });
    assert.equal(r.status, 404);
    assert.deepEqual(JSON.parse(r.body), {
      error: { message: 'The model `foo` does not exist.', type: 'NotFoundError', param: 'model', code: 404 },
    });
    const metrics = await call(router.port, 'GET', '/metrics');
    assert.match(metrics.body, /stacked_router_requests_total\{model="unknown",variant="",code="404"\} 1/);
    assert.equal(metrics.body.includes('foo'), false);
  });

  it('answers 503 with Retry-After for a member no Ready pod holds yet', async () => {
    const r = await call(router.port, 'POST', '/v1/completions', { model: 'new', prompt: 'x' });
    assert.equal(r.status, 503);
    assert.equal(r.headers['retry-after'], '1');
    assert.equal((JSON.parse(r.body) as { error: { type: string } }).error.type, 'ServiceUnavailableError');
    assert.equal(a.seen.length + b.seen.length, 0);
  });

  it('names the variant that answered, and keeps a sticky value on it', async () => {
    const variants = new Set<string>();
    for (let i = 0; i < 5; i++) {
      const r = await call(
        router.port,
        'POST',
        '/v1/completions',
        { model: 'sql-ab', prompt: 'x' },
        { 'x-user-id': 'alice' },
      );
      assert.equal(r.status, 200);
      variants.add(String(r.headers['x-stacked-variant']));
      assert.equal((JSON.parse(r.body) as { model: string }).model, r.headers['x-stacked-variant']);
    }
    assert.equal(variants.size, 1);
    const metrics = await call(router.port, 'GET', '/metrics');
    assert.match(
      metrics.body,
      new RegExp(
        `stacked_router_requests_total\\{model="sql-ab",variant="${[...variants][0]}",code="200"\\} 5`,
      ),
    );
    assert.match(metrics.body, /stacked_router_prompt_tokens_total\{model="sql-ab",variant="[a-z]+"\} 15/);
  });

  it('retries a refused connection on another pod, and cools the refusing pod down', async () => {
    const dead = new FakePod('dead');
    await dead.listen();
    const deadPort = dead.port;
    await dead.close();
    setPods([
      { p: dead, loaded: ['sql'], port: deadPort },
      { p: b, loaded: ['sql'] },
    ]);
    // Equally loaded pods are picked at random: in 20 requests the dead one is picked first by some
    // request (but for a 2^-20 chance), where 4 missed it one run in 16.
    for (let i = 0; i < 20; i++) {
      assert.equal(
        (await call(router.port, 'POST', '/v1/completions', { model: 'sql', prompt: 'x' })).status,
        200,
      );
    }
    assert.equal(b.seen.length, 20);
    const metrics = await call(router.port, 'GET', '/metrics');
    // Only the first request to meet the dead pod retried: then it cooled down.
    assert.match(metrics.body, /stacked_router_upstream_retries_total 1\n/);
  });

  it('does not retry once the request went out: the connection cut gets a 502', async () => {
    setPods([
      { p: a, loaded: ['sql'] },
      { p: b, loaded: ['sql'] },
    ]);
    a.handler = (req) => req.socket.destroy();
    b.handler = a.handler;
    const r = await call(router.port, 'POST', '/v1/completions', { model: 'sql', prompt: 'x' });
    assert.equal(r.status, 502);
    assert.equal(a.seen.length + b.seen.length, 1);
  });

  it('passes stream chunks through before the upstream ends, and counts the usage chunk', async () => {
    let release: () => void = () => undefined;
    a.handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: {"choices":[{"text":"one"}],"usage":null}\n\n');
      release = () => {
        res.write(
          'data: {"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":2,"total_tokens":9}}\n\n',
        );
        res.end('data: [DONE]\n\n');
      };
    };
    const got: string[] = [];
    const done = new Promise<number>((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port: router.port,
          method: 'POST',
          path: '/v1/completions',
          headers: { 'content-type': 'application/json' },
        },
        (res) => {
          res.setEncoding('utf8');
          res.on('data', (c: string) => {
            got.push(c);
            if (got.length === 1) release();
          });
          res.on('end', () => {
            resolve(res.statusCode ?? 0);
          });
        },
      );
      req.on('error', reject);
      req.end(
        JSON.stringify({ model: 'chat', prompt: 'x', stream: true, stream_options: { include_usage: true } }),
      );
    });
    assert.equal(await done, 200);
    assert.ok(got[0]?.includes('"one"'), 'the first chunk arrived on its own, before the upstream finished');
    assert.ok(got.join('').endsWith('data: [DONE]\n\n'));
    const metrics = await call(router.port, 'GET', '/metrics');
    assert.match(metrics.body, /stacked_router_completion_tokens_total\{model="chat",variant=""\} 2/);
    assert.match(
      metrics.body,
      /stacked_router_time_to_first_token_seconds_count\{model="chat",variant=""\} 1/,
    );
  });

  it('aborts the upstream request when the client goes away', async () => {
    let upstreamClosed = false;
    a.handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: {"choices":[{"text":"one"}]}\n\n');
      res.on('close', () => {
        upstreamClosed = true;
      });
    };
    await new Promise<void>((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port: router.port,
          method: 'POST',
          path: '/v1/completions',
          headers: { 'content-type': 'application/json' },
        },
        (res) => {
          res.once('data', () => {
            req.destroy();
            resolve();
          });
        },
      );
      req.on('error', () => undefined);
      req.end(JSON.stringify({ model: 'chat', prompt: 'x', stream: true }));
      setTimeout(() => {
        reject(new Error('no first chunk'));
      }, 3000);
    });
    await waitFor(() => upstreamClosed);
    await waitFor(() => router.proxy.requestsInFlight() === 0);
    const metrics = await call(router.port, 'GET', '/metrics');
    assert.match(metrics.body, /stacked_router_requests_total\{model="chat",variant="",code="499"\} 1/);
    assert.match(metrics.body, /stacked_router_in_flight_requests\{model="chat",variant=""\} 0/);
  });

  it('refuses bad JSON with 400, a non-string model with 400, and too large a body with 413', async () => {
    const bad = await call(router.port, 'POST', '/v1/completions', '{"model":');
    assert.equal(bad.status, 400);
    assert.equal((JSON.parse(bad.body) as { error: { type: string; code: number } }).error.code, 400);
    assert.equal((await call(router.port, 'POST', '/v1/completions', { model: 3 })).status, 400);
    assert.equal((await call(router.port, 'POST', '/v1/completions', [1])).status, 400);
    await router.close();
    router = await startRouterServer({
      source,
      host: '127.0.0.1',
      port: 0,
      log,
      scrapeIntervalMs: 0,
      maxBodyBytes: 100,
    });
    const big = await call(router.port, 'POST', '/v1/completions', { model: 'sql', prompt: 'x'.repeat(200) });
    assert.equal(big.status, 413);
    assert.equal(a.seen.length + b.seen.length, 0);
  });

  it('lists every name in /v1/models', async () => {
    const r = await call(router.port, 'GET', '/v1/models');
    assert.equal(r.status, 200);
    const list = JSON.parse(r.body) as {
      object: string;
      data: { id: string; object: string; parent: string | null }[];
    };
    assert.equal(list.object, 'list');
    assert.deepEqual(
      list.data.map((m) => [m.id, m.parent]),
      [
        ['base', null],
        ['sql', 'base'],
        ['chat', 'base'],
        ['new', 'base'],
        ['ocid1.datasciencemodel.oc1.iad.base', null],
        [SQL_ID, 'base'],
        ['sql-ab', null],
      ],
    );
  });

  it('is ready only once synced with a deployment, and answers 404/405 off its routes', async () => {
    assert.equal((await call(router.port, 'GET', '/readyz')).status, 200);
    assert.equal((await call(router.port, 'GET', '/healthz')).status, 200);
    source.set(routingState({ synced: true, deployment: undefined, group: undefined, pods: [] }));
    assert.equal((await call(router.port, 'GET', '/readyz')).status, 503);
    assert.equal((await call(router.port, 'POST', '/v1/completions', { model: 'sql' })).status, 503);
    assert.equal((await call(router.port, 'GET', '/v1/completions')).status, 405);
    assert.equal((await call(router.port, 'GET', '/nope')).status, 404);
  });

  it('lets a request in flight finish on close', async () => {
    let finish: () => void = () => undefined;
    a.handler = (_req, res) => {
      finish = () => res.end('{"usage":null}');
      res.writeHead(200, { 'content-type': 'application/json' });
    };
    setPods([{ p: a, loaded: ['sql'] }]);
    const pending = call(router.port, 'POST', '/v1/completions', { model: 'sql', prompt: 'x' });
    await waitFor(() => a.seen.length === 1);
    const closed = router.close();
    await new Promise((r) => setTimeout(r, 50));
    finish();
    assert.equal((await pending).status, 200);
    await closed;
  });
});
