/**
 * The fetch agent's OCI sources (oci:// Object Storage locations and Model Catalog artifacts) through
 * the real oci-objectstorage / oci-datascience SDK, signing with an api-key Secret mounted as files,
 * against the loopback storage emulator, which verifies every signature.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tar from 'tar';
import { fetchObjectStorage } from '../../../src/agent/object-storage.ts';
import { fetchOnce } from '../../../src/agent/once.ts';
import { type OciAccess, ociClients } from '../../../src/agent/oci-access.ts';
import { type AgentServer, startAgentServer } from '../../../src/agent/server.ts';
import { type ApiKey, apiKeySecret, makeApiKey } from '../../../playground/oci-keys.ts';
import { type OciStorageEmulator, startOciStorageEmulator } from '../../support/oci-storage-emulator.ts';
import { makeZip } from '../../support/zip.ts';
import { fetchSettled, getJob, postFetch, sha256, type Reply } from './fetch-api.ts';
import { until } from './remote.ts';

const NS = 'tenancyns';
const BUCKET = 'adapters';
const REGION = 'us-ashburn-1';
const MODEL_ID = 'ocid1.datasciencemodel.oc1.iad.amaaaaaacatalog';

/** The api-key Secret's files, as the kubelet would mount them. */
function secretData(key: ApiKey): Record<string, string> {
  return (apiKeySecret('oci-api-key', key, REGION) as { stringData: Record<string, string> }).stringData;
}

/** The body lines of a PEM (what would leak if a key were ever echoed). */
function pemBody(pem: string): string[] {
  return pem.split('\n').filter((l) => l !== '' && !l.startsWith('-----'));
}

describe('agent: OCI Object Storage and Model Catalog sources (real SDK, signed requests)', function () {
  this.timeout(30_000);
  let dir: string;
  let secretsDir: string;
  let emu: OciStorageEmulator;
  let key: ApiKey;
  let stranger: ApiKey;
  const agents: AgentServer[] = [];
  /** The root of each agent. */
  const roots = new Map<AgentServer, string>();
  const logs: string[] = [];
  const answers: string[] = [];
  const config = JSON.stringify({ r: 8, peft_type: 'LORA', target_modules: ['q_proj'] });
  const weights = randomBytes(32 * 1024);
  let archive: Buffer;

  async function writeSecret(name: string, data: Record<string, string>): Promise<void> {
    await mkdir(join(secretsDir, name), { recursive: true });
    for (const [k, v] of Object.entries(data)) await writeFile(join(secretsDir, name, k), v);
  }

  async function agent(
    oci: OciAccess | undefined,
    root = join(dir, `root-${agents.length}`),
  ): Promise<AgentServer> {
    const a = await startAgentServer({
      host: '127.0.0.1',
      port: 0,
      root,
      secretsDir,
      ...(oci !== undefined ? { oci } : {}),
      log: (msg, meta) => logs.push(JSON.stringify({ msg, meta })),
    });
    agents.push(a);
    roots.set(a, root);
    return a;
  }

  const access = (secret = 'oci-api-key'): OciAccess => ({
    region: REGION,
    endpoint: emu.url,
    auth: 'apiKey',
    secret,
  });

  /** POSTs and follows the job until it settles. */
  const post = (a: AgentServer, body: unknown): Promise<Reply> => fetchSettled(a, body, answers);
  const folder = (a: AgentServer, name: string): string => join(roots.get(a) ?? '', name);
  /** A failure of the source's own (a 400, 422 or 502 of the synchronous API). */
  const assertRejected = (r: Reply): void => {
    assert.equal(r.body.state, 'Failed', JSON.stringify(r.body));
    assert.equal(r.body.reason, 'Rejected');
  };

  // The SDK reports its retries and failures with console.warn: kept out of the test output, checked.
  const warnings: string[] = [];
  const consoleWarn = console.warn;

  before(async () => {
    console.warn = (...args: unknown[]) => warnings.push(args.map(String).join(' '));
    dir = await mkdtemp(join(tmpdir(), 'agent-oci-'));
    secretsDir = join(dir, 'secrets');
    // A page of two objects: every listing here takes several pages.
    emu = await startOciStorageEmulator({ pageLimit: 2 });
    key = makeApiKey('fetcher');
    stranger = makeApiKey('stranger');
    emu.addKey(key);
    emu.createBucket(NS, BUCKET);
    await writeSecret('oci-api-key', secretData(key));
    await writeSecret('wrong-key', secretData(stranger));
    await writeSecret('no-fingerprint', {
      tenancy: key.tenancy,
      user: key.user,
      privateKey: key.privateKeyPem,
    });

    // A folder of objects, with a console "folder" marker and a neighbour that shares the prefix.
    emu.putObject(NS, BUCKET, 'sql/', '');
    emu.putObject(NS, BUCKET, 'sql/adapter_config.json', config);
    emu.putObject(NS, BUCKET, 'sql/adapter_model.safetensors', weights);
    emu.putObject(NS, BUCKET, 'sql/tokenizer/vocab.txt', 'a b c');
    emu.putObject(NS, BUCKET, 'sql-other/adapter_config.json', '{"r": 99}');
    // One archive object.
    const src = join(dir, 'src');
    await mkdir(src);
    await writeFile(join(src, 'adapter_config.json'), config);
    await writeFile(join(src, 'adapter_model.safetensors'), weights);
    await tar.c({ cwd: src, gzip: true, file: join(dir, 'a.tgz'), portable: true }, [
      'adapter_config.json',
      'adapter_model.safetensors',
    ]);
    archive = await readFile(join(dir, 'a.tgz'));
    emu.putObject(NS, BUCKET, 'archives/sql.tgz', archive);
    // Unsafe names, and a base model.
    emu.putObject(NS, BUCKET, 'evil/adapter_config.json', config);
    emu.putObject(NS, BUCKET, 'evil/../../outside.txt', 'gotcha');
    emu.putObject(NS, BUCKET, 'base/config.json', '{"architectures": ["LlamaForCausalLM"]}');
    emu.putObject(NS, BUCKET, 'base/model.safetensors', randomBytes(1024));
    emu.putModelArtifact(
      MODEL_ID,
      makeZip([
        { name: 'adapter_config.json', data: config },
        { name: 'adapter_model.safetensors', data: weights },
      ]),
    );
  });

  after(async () => {
    console.warn = consoleWarn;
    for (const a of agents) await a.close();
    await emu.close();
    await rm(dir, { recursive: true, force: true });
    // Whatever was logged or answered, no key material ever appears.
    for (const k of [key, stranger]) {
      for (const line of pemBody(k.privateKeyPem)) {
        assert.ok(!logs.join('\n').includes(line), 'no private key in the logs');
        assert.ok(!answers.join('\n').includes(line), 'no private key in an answer');
        assert.ok(!warnings.join('\n').includes(line), 'no private key in what the SDK prints');
      }
    }
  });

  it('refuses unsigned and badly signed requests, like the service (401 NotAuthenticated)', async () => {
    const unsigned = await fetch(`${emu.url}/n/${NS}/b/${BUCKET}/o`);
    assert.equal(unsigned.status, 401);
    assert.equal(((await unsigned.json()) as { code: string }).code, 'NotAuthenticated');
  });

  it('writes every object under a prefix, keeping relative paths, paging through the listing', async () => {
    const a = await agent(access());
    const before = emu.requests.length;
    const r = await post(a, { name: 'sql-1', uri: `oci://${BUCKET}@${NS}/sql` });
    assert.equal(r.body.state, 'Fetched', r.body.message);
    const root = folder(a, 'sql-1');
    assert.deepEqual((await readdir(root, { recursive: true })).sort(), [
      'adapter_config.json',
      'adapter_model.safetensors',
      'tokenizer',
      'tokenizer/vocab.txt',
    ]);
    assert.deepEqual(await readFile(join(root, 'adapter_model.safetensors')), weights);
    assert.equal(r.body.bytes, config.length + weights.length + 5);
    assert.match(r.body.sha256 ?? '', /^[0-9a-f]{64}$/);
    const calls = emu.requests.slice(before);
    assert.ok(calls.filter((c) => c.operation === 'ListObjects').length >= 2, 'followed nextStartWith');
    assert.ok(
      calls.every((c) => c.keyId === key.keyId),
      'every call signed with the Secret key',
    );
    assert.ok(!calls.some((c) => c.url.includes('sql-other')), 'the neighbour is not read');
    // Asked again: answered from the folder at once, without a download.
    const calls2 = emu.requests.length;
    const again = await postFetch(a, { name: 'sql-1', uri: `oci://${BUCKET}@${NS}/sql` }, answers);
    assert.equal(again.status, 200);
    assert.equal(again.body.state, 'Fetched');
    assert.equal(again.body.sha256, r.body.sha256, 'the manifest digest is stable');
    assert.equal(emu.requests.length, calls2, 'no call to OCI');
  });

  it('downloads, checks and extracts a prefix naming one archive object', async () => {
    const a = await agent(access());
    const uri = `oci://${BUCKET}@${NS}/archives/sql.tgz`;
    const r = await post(a, { name: 'sql-2', uri, sha256: sha256(archive) });
    assert.equal(r.body.state, 'Fetched', r.body.message);
    assert.equal(r.body.sha256, sha256(archive));
    assert.deepEqual((await readdir(folder(a, 'sql-2'))).sort(), [
      'adapter_config.json',
      'adapter_model.safetensors',
    ]);
    const bad = await post(a, { name: 'sql-3', uri, sha256: '0'.repeat(64) });
    assertRejected(bad);
    assert.equal(
      bad.body.message,
      `sha256 mismatch for sql-3: expected ${'0'.repeat(64)}, got ${sha256(archive)}`,
    );
    assert.ok(!existsSync(join(dir, `root-${agents.length - 1}`, 'sql-3')), 'nothing installed');
  });

  it('extracts a Model Catalog artifact, and names an unknown model', async () => {
    const a = await agent(access());
    const r = await post(a, { name: 'cat-1', modelId: MODEL_ID });
    assert.equal(r.body.state, 'Fetched', r.body.message);
    assert.deepEqual(await readFile(join(folder(a, 'cat-1'), 'adapter_config.json'), 'utf8'), config);
    const unknown = 'ocid1.datasciencemodel.oc1.iad.amaaaaaanothere';
    const missing = await post(a, { name: 'cat-2', modelId: unknown });
    assertRejected(missing);
    assert.match(
      missing.body.message ?? '',
      new RegExp(`^GetModelArtifactContent ${unknown}: 404 NotAuthorizedOrNotFound: `),
    );
  });

  it('fails with a clear message, and no key material, when the key is not the registered one', async () => {
    const a = await agent(access('wrong-key'));
    const r = await post(a, { name: 'sql-4', uri: `oci://${BUCKET}@${NS}/sql/` });
    assertRejected(r);
    assert.match(
      r.body.message ?? '',
      /^ListObjects oci:\/\/adapters@tenancyns\/sql\/: 401 NotAuthenticated: /,
    );
    const text = JSON.stringify(r.body);
    for (const line of pemBody(stranger.privateKeyPem)) assert.ok(!text.includes(line));
    const incomplete = await post(await agent(access('no-fingerprint')), {
      name: 'sql-5',
      modelId: MODEL_ID,
    });
    assertRejected(incomplete);
    assert.equal(incomplete.body.message, 'Secret "no-fingerprint" lacks fingerprint');
    const none = await post(await agent(undefined), { name: 'sql-6', modelId: MODEL_ID });
    assertRejected(none);
    assert.match(none.body.message ?? '', /no OCI access .* set spec\.vllm\.oci/);
  });

  it('enforces maxBytes on the sum of the objects and on one archive', async () => {
    const a = await agent(access());
    const objects = await post(a, { name: 'big-1', uri: `oci://${BUCKET}@${NS}/sql/`, maxBytes: 1000 });
    assertRejected(objects);
    assert.match(
      objects.body.message ?? '',
      /^big-1: the objects under oci:\/\/adapters@tenancyns\/sql\/ total \d+ bytes, more than maxBytes 1000$/,
    );
    const one = await post(a, {
      name: 'big-2',
      uri: `oci://${BUCKET}@${NS}/archives/sql.tgz`,
      maxBytes: 1000,
    });
    assertRejected(one);
    assert.equal(one.body.message, 'big-2: archive exceeds maxBytes 1000');
    const cat = await post(a, { name: 'big-3', modelId: MODEL_ID, maxBytes: 1000 });
    assertRejected(cat);
    assert.equal(cat.body.message, 'big-3: archive exceeds maxBytes 1000');
  });

  it('refuses an object name that escapes the folder before writing anything', async () => {
    const root = join(dir, 'escape-root');
    const a = await agent(access(), root);
    const r = await post(a, { name: 'evil', uri: `oci://${BUCKET}@${NS}/evil/` });
    assertRejected(r);
    assert.equal(r.body.message, 'evil: object ../../outside.txt escapes the folder');
    assert.ok(
      !emu.requests.some((c) => c.operation === 'GetObject' && c.url.includes('evil')),
      'nothing downloaded',
    );
    assert.deepEqual(await readdir(root), ['.staging']);
    assert.deepEqual(await readdir(join(root, '.staging')), []);
  });

  it('rides out a 503 and latency (the SDK retries), then succeeds', async () => {
    const a = await agent(access());
    emu.faults.latencyMs = 50;
    emu.faults.unavailable(1);
    try {
      const r = await post(a, { name: 'flaky', modelId: MODEL_ID });
      assert.equal(r.body.state, 'Fetched', r.body.message);
      assert.ok(emu.requests.some((c) => c.status === 503));
    } finally {
      emu.faults.latencyMs = 0;
    }
  });

  it('stops every download at the first failure and returns only once none writes any more', async () => {
    // Many objects behind latency; one of them is gone by the time it is read (a real 404).
    const files = Array.from({ length: 24 }, (_, i) => `many/w-${String(i).padStart(2, '0')}.bin`);
    emu.putObject(NS, BUCKET, 'many/adapter_config.json', config);
    for (const f of files) emu.putObject(NS, BUCKET, f, randomBytes(1024));
    const client = await ociClients(access(), secretsDir).objectStorage();
    const getObject = client.getObject.bind(client);
    client.getObject = (r) =>
      getObject(r.objectName === files[4] ? { ...r, objectName: 'many/vanished.bin' } : r);
    const staging = join(dir, 'abort-staging');
    await mkdir(staging);
    const tmp = await mkdtemp(join(staging, 'many-'));
    const isGet = (c: { method: string; url: string }) => c.method === 'GET' && c.url.includes('/o/many%2F');
    const before = emu.requests.length;
    emu.faults.latencyMs = 40;
    try {
      await assert.rejects(
        fetchObjectStorage(
          client,
          {
            type: 'objectStorage',
            uri: `oci://${BUCKET}@${NS}/many/`,
            namespace: NS,
            bucket: BUCKET,
            prefix: 'many/',
          },
          { name: 'many', tmp, maxBytes: 1 << 20, content: 'adapter' },
          () => Promise.reject(new Error('no archive here')),
        ),
        (err: Error) => {
          assert.match(
            err.message,
            /^GetObject oci:\/\/adapters@tenancyns\/many\/w-04\.bin: 404 ObjectNotFound: /,
          );
          return true;
        },
      );
      const seen = emu.requests.slice(before);
      assert.ok(
        seen.every((c) => c.status !== 0),
        'every request the fetch made was answered before it returned',
      );
      const gets = seen.filter(isGet).length;
      assert.ok(gets < files.length, `stopped early (${gets} GETs for ${files.length + 1} objects)`);
      // The caller discards its staging folder; nothing comes back or is fetched after that.
      await rm(tmp, { recursive: true });
      await new Promise((resolve) => setTimeout(resolve, 500));
      assert.equal(emu.requests.slice(before).filter(isGet).length, gets, 'no GetObject after the failure');
      assert.deepEqual(await readdir(staging), [], 'nothing written into the staging folder afterwards');
    } finally {
      emu.faults.latencyMs = 0;
    }
  });

  it('cancels an oci:// download on DELETE: no object is read after it answers, nothing is left', async () => {
    const files = Array.from({ length: 24 }, (_, i) => `slow/w-${String(i).padStart(2, '0')}.bin`);
    emu.putObject(NS, BUCKET, 'slow/adapter_config.json', config);
    for (const f of files) emu.putObject(NS, BUCKET, f, randomBytes(1024));
    const root = join(dir, 'cancel-root');
    const a = await agent(access(), root);
    const isGet = (c: { method: string; url: string }) => c.method === 'GET' && c.url.includes('/o/slow%2F');
    const before = emu.requests.length;
    emu.faults.latencyMs = 100;
    try {
      const posted = await postFetch(a, { name: 'slow', uri: `oci://${BUCKET}@${NS}/slow/` }, answers);
      assert.equal(posted.status, 202, JSON.stringify(posted.body));
      await until('the first object downloads', () =>
        emu.requests.slice(before).some((c) => isGet(c) && c.status === 200) ? true : undefined,
      );
      const res = await fetch(`${a.url}/v1/fetch/slow`, { method: 'DELETE' });
      assert.equal(res.status, 204);
      const gets = emu.requests.slice(before).filter(isGet).length;
      assert.ok(gets < files.length, `stopped early (${gets} GETs for ${files.length + 1} objects)`);
      assert.deepEqual(await readdir(join(root, '.staging')), [], 'the staging folder is gone');
      await new Promise((resolve) => setTimeout(resolve, 500));
      assert.equal(emu.requests.slice(before).filter(isGet).length, gets, 'no GetObject after the DELETE');
      assert.deepEqual(await readdir(root), ['.staging'], 'nothing installed');
      assert.equal((await getJob(a, 'slow', answers)).status, 404);
    } finally {
      emu.faults.latencyMs = 0;
    }
  });

  it('fetches a base model in one-shot mode, which needs config.json instead of adapter_config.json', async () => {
    const root = join(dir, 'model-root');
    const opts = { root, secretsDir, oci: access() };
    const got = await fetchOnce(
      opts,
      JSON.stringify({ name: 'base-1', uri: `oci://${BUCKET}@${NS}/base`, content: 'model' }),
    );
    assert.equal(got.path, join(root, 'base-1'));
    assert.ok(existsSync(join(root, 'base-1', 'config.json')));
    await assert.rejects(
      fetchOnce(
        opts,
        JSON.stringify({ name: 'base-2', uri: `oci://${BUCKET}@${NS}/sql/`, content: 'model' }),
      ),
      /^AgentError: base-2: no config\.json in oci:\/\/adapters@tenancyns\/sql\/$/,
    );
  });
});
