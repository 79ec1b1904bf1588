/**
 * The fetch agent end to end: a local HTTPS server with a self-signed certificate (made with
 * openssl) serves archives built here; the agent downloads them into a temporary root.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import {
  chmod,
  mkdir,
  mkdtemp,
  readFile,
  readdir,
  readlink,
  rm,
  stat,
  symlink,
  writeFile,
} from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type Server, createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tar from 'tar';
import { type AgentServer, startAgentServer } from '../../../src/agent/server.ts';
import { fetchSettled, postFetch, sha256, type Reply } from './fetch-api.ts';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

interface Listed {
  adapters: { name: string; uri: string; sha256: string; bytes: number }[];
}

const TOKEN = 's3cr3t-token-value';
const HAS_ZIP = (() => {
  try {
    execFileSync('zip', ['-v'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => {
    server.close(() => {
      resolve();
    });
  });
}

describe('agent/server', function () {
  let dir: string;
  let root: string;
  let secretsDir: string;
  let ca: string;
  let remote: Server;
  let other: Server;
  let base: string;
  let otherBase: string;
  let agent: AgentServer;
  const archives = new Map<string, Buffer>();
  const routes = new Map<string, Handler>();
  /** GET requests per path, on both remotes. */
  const hits = new Map<string, number>();
  /** The Authorization header of each request, per path. */
  const auth = new Map<string, string | undefined>();
  const logs: { msg: string; meta?: Record<string, unknown> }[] = [];
  const bodies: string[] = [];

  const serve = (req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? '/', 'https://x').pathname;
    hits.set(path, (hits.get(path) ?? 0) + 1);
    auth.set(path, req.headers.authorization);
    const route = routes.get(path);
    if (route) {
      route(req, res);
      return;
    }
    const body = archives.get(path);
    if (!body) {
      res.writeHead(404).end('not here');
      return;
    }
    res.writeHead(200, { 'content-length': body.length }).end(body);
  };

  /** POSTs and follows the job until it settles. */
  const post = (body: unknown, to: AgentServer = agent): Promise<Reply> => fetchSettled(to, body, bodies);
  /** A failure of the source's own (a 400, 422 or 502 of the synchronous API), with its message. */
  const assertRejected = (r: Reply, message: string | RegExp): void => {
    assert.equal(r.body.state, 'Failed', JSON.stringify(r.body));
    assert.equal(r.body.reason, 'Rejected');
    if (typeof message === 'string') assert.equal(r.body.message, message);
    else assert.match(r.body.message ?? '', message);
  };

  async function tgz(name: string, cwd: string, files: string[], opts: { preservePaths?: boolean } = {}) {
    const file = join(dir, `${name}.tgz`);
    await tar.c({ cwd, gzip: true, file, portable: true, ...opts }, files);
    archives.set(`/${name}.tgz`, await readFile(file));
  }

  function zip(name: string, cwd: string, files: string[]): Buffer {
    const file = join(dir, `${name}.zip`);
    execFileSync('zip', ['-q', '-r', '-y', file, ...files], { cwd });
    return readFileSync(file);
  }

  /** Nothing of `name` in the root: no folder, no marker, no staging leftovers. */
  async function assertNothingLeft(name: string): Promise<void> {
    assert.equal(existsSync(join(root, name)), false, 'no folder');
    assert.equal(existsSync(join(root, `.${name}.json`)), false, 'no marker');
    assert.deepEqual(await readdir(join(root, '.staging')), [], 'no staging leftovers');
  }

  before(async function () {
    dir = await mkdtemp(join(tmpdir(), 'agent-test-'));
    root = join(dir, 'root');
    secretsDir = join(dir, 'secrets');
    execFileSync(
      'openssl',
      [
        ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'],
        ...['-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '2'],
        ...['-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'],
      ],
      { stdio: 'ignore' },
    );
    ca = await readFile(join(dir, 'cert.pem'), 'utf8');
    const key = await readFile(join(dir, 'key.pem'), 'utf8');

    // An adapter, flat and inside a top-level folder.
    const src = join(dir, 'src');
    await mkdir(join(src, 'mydir'), { recursive: true });
    const config = JSON.stringify({ r: 8, peft_type: 'LORA' });
    const weights = randomBytes(64 * 1024);
    for (const d of [src, join(src, 'mydir')]) {
      await writeFile(join(d, 'adapter_config.json'), config);
      await writeFile(join(d, 'adapter_model.safetensors'), weights);
    }
    // Private modes in the archive must not hide the files from vLLM (maybe another user).
    await chmod(join(src, 'mydir', 'adapter_model.safetensors'), 0o600);
    await chmod(join(src, 'mydir'), 0o700);
    await tgz('flat', src, ['adapter_config.json', 'adapter_model.safetensors']);
    await tgz('nested', src, ['mydir']);
    await tgz('private', src, ['adapter_config.json', 'adapter_model.safetensors']);
    await tgz('v2', join(src, 'mydir'), ['adapter_config.json']);
    // Unsafe or wrong ones.
    await writeFile(join(dir, 'evil'), 'evil');
    await tgz('traversal', src, ['adapter_config.json', '../evil'], { preservePaths: true });
    const linked = join(dir, 'linked');
    await mkdir(linked);
    await writeFile(join(linked, 'adapter_config.json'), config);
    await symlink('../../../etc/passwd', join(linked, 'passwd'));
    await tgz('symlink', linked, ['adapter_config.json', 'passwd']);
    const readme = join(dir, 'readme');
    await mkdir(readme);
    await writeFile(join(readme, 'README.md'), 'no adapter here');
    await tgz('noconfig', readme, ['README.md']);
    if (HAS_ZIP) {
      archives.set('/flat.zip', zip('flat', src, ['adapter_config.json', 'adapter_model.safetensors']));
      archives.set('/nested.zip', zip('nested', src, ['mydir']));
      const inside = join(dir, 'inside');
      await mkdir(inside);
      await writeFile(join(inside, 'adapter_config.json'), config);
      await symlink('adapter_config.json', join(inside, 'config-link.json'));
      archives.set(
        '/inside-link.zip',
        zip('inside-link', inside, ['adapter_config.json', 'config-link.json']),
      );
      archives.set('/symlink.zip', zip('symlink', linked, ['adapter_config.json', 'passwd']));
      // Same length as "../evil": patching the name in place keeps the zip valid.
      const z = zip('traversal', src, ['adapter_config.json', 'mydir/adapter_model.safetensors']);
      const from = Buffer.from('mydir/adapter_model.safetensors');
      const to = Buffer.from('../../adapter_model.safetensors');
      assert.equal(from.length, to.length);
      for (let i = z.indexOf(from); i !== -1; i = z.indexOf(from, i + 1)) to.copy(z, i);
      archives.set('/traversal.zip', z);
    }

    routes.set('/private.tgz', (req, res) => {
      if (req.headers.authorization !== `Bearer ${TOKEN}`) res.writeHead(401).end();
      else res.writeHead(200).end(archives.get('/private.tgz'));
    });
    routes.set('/redirect.tgz', (_req, res) => res.writeHead(302, { location: '/flat.tgz' }).end());
    routes.set('/to-http.tgz', (_req, res) =>
      res.writeHead(302, { location: 'http://127.0.0.1:1/a.tgz' }).end(),
    );
    routes.set('/loop.tgz', (_req, res) => res.writeHead(302, { location: '/loop.tgz' }).end());
    routes.set('/big.tgz', (_req, res) => res.writeHead(200, { 'content-length': 10_000_000 }).end());
    // No Content-Length and no end: only the agent's own limit stops it.
    routes.set('/endless.tgz', (_req, res) => {
      res.writeHead(200);
      const chunk = Buffer.alloc(16 * 1024, 1);
      const pump = () => {
        while (!res.destroyed && res.write(chunk));
        if (!res.destroyed) res.once('drain', pump);
      };
      res.on('error', () => undefined);
      pump();
    });

    remote = createServer({ key, cert: ca }, serve);
    base = await listen(remote);
    other = createServer({ key, cert: ca }, serve);
    otherBase = await listen(other);
    routes.set('/cross-origin.tgz', (_req, res) =>
      res.writeHead(302, { location: `${otherBase}/flat.tgz` }).end(),
    );

    await mkdir(join(secretsDir, 'registry'), { recursive: true });
    await writeFile(join(secretsDir, 'registry', 'token'), `${TOKEN}\n`);
    await writeFile(join(secretsDir, 'registry', 'other-key'), `${TOKEN}\n`);

    agent = await startAgentServer({
      host: '127.0.0.1',
      port: 0,
      root,
      ca,
      secretsDir,
      log: (msg, meta) => {
        logs.push(meta === undefined ? { msg } : { msg, meta });
      },
    });
  });

  after(async function () {
    await agent.close();
    await closeServer(remote);
    await closeServer(other);
    await rm(dir, { recursive: true, force: true });
    // Whatever was logged or answered, the token never appears.
    assert.doesNotMatch(JSON.stringify(logs), new RegExp(TOKEN));
    assert.doesNotMatch(bodies.join('\n'), new RegExp(TOKEN));
  });

  it('answers /healthz', async () => {
    const res = await fetch(`${agent.url}/healthz`);
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'ok');
  });

  it('fetches and extracts a .tar.gz, then lists it', async () => {
    const archive = archives.get('/flat.tgz')!;
    const res = await post({ name: 'flat', uri: `${base}/flat.tgz`, sha256: sha256(archive) });
    assert.deepEqual(res.body, {
      name: 'flat',
      state: 'Fetched',
      sha256: sha256(archive),
      bytes: archive.length,
    });
    assert.deepEqual((await readdir(join(root, 'flat'))).sort(), [
      'adapter_config.json',
      'adapter_model.safetensors',
    ]);
    const list = (await (await fetch(`${agent.url}/v1/fetch`)).json()) as Listed;
    assert.deepEqual(
      list.adapters.find((a) => a.name === 'flat'),
      { name: 'flat', uri: `${base}/flat.tgz`, sha256: sha256(archive), bytes: archive.length },
    );
  });

  it('uses the single top-level folder of an archive as the adapter folder', async () => {
    const res = await post({ name: 'nested', uri: `${base}/nested.tgz` });
    assert.equal(res.body.state, 'Fetched', JSON.stringify(res.body));
    assert.deepEqual((await readdir(join(root, 'nested'))).sort(), [
      'adapter_config.json',
      'adapter_model.safetensors',
    ]);
    assert.equal((await stat(join(root, 'nested'))).mode & 0o777, 0o755);
    assert.equal((await stat(join(root, 'nested', 'adapter_model.safetensors'))).mode & 0o777, 0o644);
  });

  it('fetches and extracts .zip archives, flat and nested', async function () {
    if (!HAS_ZIP) this.skip(); // the zip CLI builds the fixtures; yauzl only reads
    for (const name of ['flat', 'nested']) {
      const res = await post({ name: `${name}-zip`, uri: `${base}/${name}.zip` });
      assert.equal(res.body.state, 'Fetched', JSON.stringify(res.body));
      assert.equal(res.body.sha256, sha256(archives.get(`/${name}.zip`)!));
      assert.deepEqual((await readdir(join(root, `${name}-zip`))).sort(), [
        'adapter_config.json',
        'adapter_model.safetensors',
      ]);
      assert.equal(
        sha256(await readFile(join(root, `${name}-zip`, 'adapter_model.safetensors'))),
        sha256(await readFile(join(dir, 'src', 'adapter_model.safetensors'))),
      );
    }
  });

  it('keeps symlinks of a .zip that stay inside the folder, refuses the others', async function () {
    if (!HAS_ZIP) this.skip();
    const res = await post({ name: 'inside-link', uri: `${base}/inside-link.zip` });
    assert.equal(res.body.state, 'Fetched', JSON.stringify(res.body));
    assert.equal(await readlink(join(root, 'inside-link', 'config-link.json')), 'adapter_config.json');
    const outside = await post({ name: 'symlink-zip', uri: `${base}/symlink.zip` });
    assertRejected(outside, 'symlink-zip: symlink passwd points outside the folder');
    await assertNothingLeft('symlink-zip');
  });

  it('answers a repeated request at once (200 Fetched) from the folder, without downloading again', async () => {
    const uri = `${base}/redirect.tgz`; // also follows a redirect
    const first = await post({ name: 'again', uri });
    assert.equal(first.body.state, 'Fetched', JSON.stringify(first.body));
    const count = hits.get('/redirect.tgz');
    const second = await postFetch(agent, { name: 'again', uri, sha256: first.body.sha256 }, bodies);
    assert.equal(second.status, 200);
    assert.equal(second.body.state, 'Fetched');
    assert.equal(second.body.sha256, first.body.sha256);
    assert.equal(second.body.bytes, first.body.bytes);
    assert.equal(hits.get('/redirect.tgz'), count, 'no second download');
  });

  it('replaces a folder when the same name is asked with another uri', async () => {
    assert.equal((await post({ name: 'replaced', uri: `${base}/flat.tgz` })).body.state, 'Fetched');
    const res = await post({ name: 'replaced', uri: `${base}/v2.tgz` });
    assert.equal(res.body.state, 'Fetched', JSON.stringify(res.body));
    assert.equal(res.body.sha256, sha256(archives.get('/v2.tgz')!));
    assert.deepEqual(await readdir(join(root, 'replaced')), ['adapter_config.json']);
  });

  it('refuses a sha256 mismatch and leaves nothing behind', async () => {
    const wrong = 'ab'.repeat(32);
    const res = await post({ name: 'mismatch', uri: `${base}/flat.tgz`, sha256: wrong });
    assertRejected(
      res,
      `sha256 mismatch for mismatch: expected ${wrong}, got ${sha256(archives.get('/flat.tgz')!)}`,
    );
    await assertNothingLeft('mismatch');
  });

  it('refuses an archive whose Content-Length exceeds maxBytes', async () => {
    const res = await post({ name: 'big', uri: `${base}/big.tgz`, maxBytes: 1_000_000 });
    assertRejected(res, 'big: archive exceeds maxBytes 1000000');
    await assertNothingLeft('big');
  });

  it('stops a body without Content-Length as soon as it exceeds maxBytes', async () => {
    const res = await post({ name: 'endless', uri: `${base}/endless.tgz`, maxBytes: 100_000 });
    assertRejected(res, 'endless: archive exceeds maxBytes 100000');
    await assertNothingLeft('endless');
  });

  it('refuses entries escaping the folder', async () => {
    const traversal = await post({ name: 'traversal', uri: `${base}/traversal.tgz` });
    assertRejected(traversal, 'traversal: archive entry ../evil escapes the folder');
    await assertNothingLeft('traversal');
    const link = await post({ name: 'symlink', uri: `${base}/symlink.tgz` });
    assertRejected(link, 'symlink: symlink passwd points outside the folder');
    await assertNothingLeft('symlink');
  });

  it('refuses a .zip entry escaping the folder', async function () {
    if (!HAS_ZIP) this.skip();
    const res = await post({ name: 'traversal-zip', uri: `${base}/traversal.zip` });
    assertRejected(res, /^traversal-zip: cannot read archive: invalid relative path/);
    await assertNothingLeft('traversal-zip');
  });

  it('refuses an archive without adapter_config.json', async () => {
    const res = await post({ name: 'noconfig', uri: `${base}/noconfig.tgz` });
    assertRejected(res, 'noconfig: no adapter_config.json in the archive');
    await assertNothingLeft('noconfig');
  });

  it('fails the job as Rejected when the remote fails', async () => {
    const missing = await post({ name: 'missing', uri: `${base}/missing.tgz` });
    assertRejected(missing, `GET ${base}/missing.tgz: 404 Not Found`);
    const toHttp = await post({ name: 'to-http', uri: `${base}/to-http.tgz` });
    assertRejected(toHttp, /redirect to a non-https URL refused/);
    const loop = await post({ name: 'loop', uri: `${base}/loop.tgz` });
    assertRejected(loop, /more than 5 redirects/);
    assert.equal(hits.get('/loop.tgz'), 6);
    const refused = await post({ name: 'refused', uri: 'https://127.0.0.1:1/x.tgz' });
    assertRejected(refused, /^GET https:\/\/127\.0\.0\.1:1\/x\.tgz: .*ECONNREFUSED/);
    await assertNothingLeft('missing');
  });

  it('fails the job as Rejected for a certificate it does not trust (no ca given)', async () => {
    const untrusting = await startAgentServer({ host: '127.0.0.1', port: 0, root: join(dir, 'root2') });
    try {
      const res = await post({ name: 'untrusted', uri: `${base}/flat.tgz` }, untrusting);
      assertRejected(res, /self-signed certificate/);
    } finally {
      await untrusting.close();
    }
  });

  it('sends the bearer token of a mounted Secret, only to the origin of the uri', async () => {
    const res = await post({ name: 'private', uri: `${base}/private.tgz`, secret: { name: 'registry' } });
    assert.equal(res.body.state, 'Fetched', JSON.stringify(res.body));
    assert.equal(auth.get('/private.tgz'), `Bearer ${TOKEN}`);
    const key = await post({
      name: 'private-key',
      uri: `${base}/private.tgz`,
      secret: { name: 'registry', key: 'other-key' },
    });
    assert.equal(key.body.state, 'Fetched', JSON.stringify(key.body));

    auth.delete('/flat.tgz');
    const moved = await post({
      name: 'moved',
      uri: `${base}/cross-origin.tgz`,
      secret: { name: 'registry' },
    });
    assert.equal(moved.body.state, 'Fetched', JSON.stringify(moved.body));
    assert.equal(auth.get('/cross-origin.tgz'), `Bearer ${TOKEN}`);
    assert.equal(auth.get('/flat.tgz'), undefined, 'not sent to the other origin');

    const missing = await post({ name: 'nosecret', uri: `${base}/private.tgz`, secret: { name: 'nope' } });
    assertRejected(missing, 'secret nope/token is not mounted');
    assert.doesNotMatch(JSON.stringify(logs), new RegExp(TOKEN), 'not in the logs');
    assert.doesNotMatch(bodies.join('\n'), new RegExp(TOKEN), 'not in the answers');
  });

  it('removes a folder and its marker on DELETE', async () => {
    assert.equal((await post({ name: 'gone', uri: `${base}/flat.tgz` })).body.state, 'Fetched');
    assert.equal(existsSync(join(root, 'gone')), true);
    const res = await fetch(`${agent.url}/v1/fetch/gone`, { method: 'DELETE' });
    assert.equal(res.status, 204);
    await assertNothingLeft('gone');
    const list = (await (await fetch(`${agent.url}/v1/fetch`)).json()) as Listed;
    assert.equal(
      list.adapters.some((a) => a.name === 'gone'),
      false,
    );
    assert.equal((await fetch(`${agent.url}/v1/fetch/gone`, { method: 'DELETE' })).status, 204, 'absent');
    assert.equal((await fetch(`${agent.url}/v1/fetch/..%2Fx`, { method: 'DELETE' })).status, 400);
  });

  it('answers 400 to bad requests', async () => {
    const cases: [unknown, RegExp][] = [
      [{ name: 'plain', uri: `http://127.0.0.1/flat.tgz` }, /uri must be an https URL/],
      [{ name: 'ftp', uri: 'ftp://127.0.0.1/flat.tgz' }, /uri must be an https URL/],
      [{ name: '../x', uri: `${base}/flat.tgz` }, /^name must be/],
      [{ name: 'Upper', uri: `${base}/flat.tgz` }, /^name must be/],
      [{ name: '.hidden', uri: `${base}/flat.tgz` }, /^name must be/],
      [{ name: 'a/b', uri: `${base}/flat.tgz` }, /^name must be/],
      [{ name: 'rar', uri: `${base}/flat.rar` }, /\.tar\.gz, \.tgz or \.zip/],
      [{ name: 'shaa', uri: `${base}/flat.tgz`, sha256: 'abc' }, /sha256 must be 64 hex digits/],
      [{ name: 'typo', uri: `${base}/flat.tgz`, sha: 'abc' }, /unknown field\(s\): sha/],
    ];
    for (const [body, message] of cases) {
      const res = await post(body);
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.match(res.body.error?.message ?? '', message);
    }
    const notJson = await fetch(`${agent.url}/v1/fetch`, { method: 'POST', body: '{' });
    assert.equal(notJson.status, 400);
    assert.equal((await fetch(`${agent.url}/nowhere`)).status, 404);
  });
});
