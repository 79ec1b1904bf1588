import assert from 'node:assert/strict';
import { AgentError } from '../../../src/agent/errors.ts';
import { archiveKind, checkName, parseFetchRequest, sourceId } from '../../../src/agent/request.ts';

function bad(body: unknown, message: RegExp): void {
  assert.throws(
    () => parseFetchRequest(body, 100),
    (err: unknown) => err instanceof AgentError && err.status === 400 && message.test(err.message),
  );
}

describe('agent/request', () => {
  it('parses a full request', () => {
    const req = parseFetchRequest(
      {
        name: 'sql-v2_a.b',
        uri: 'https://example.com/a/x.tar.gz?X-Sig=abc',
        sha256: 'AB'.repeat(32),
        maxBytes: 5,
        secret: { name: 'reg.creds', key: 'api_token' },
      },
      100,
    );
    assert.equal(req.name, 'sql-v2_a.b');
    assert.deepEqual(req.source, {
      type: 'https',
      uri: new URL('https://example.com/a/x.tar.gz?X-Sig=abc'),
      kind: 'tgz',
    });
    assert.equal(req.content, 'adapter', 'an adapter unless told otherwise');
    assert.equal(req.sha256, 'ab'.repeat(32), 'lower-cased');
    assert.equal(req.maxBytes, 5);
    assert.deepEqual(req.secret, { name: 'reg.creds', key: 'api_token' });
  });

  it('defaults maxBytes and the secret key', () => {
    const req = parseFetchRequest({ name: 'a', uri: 'https://h/x.zip', secret: { name: 's' } }, 100);
    assert.equal(req.maxBytes, 100);
    assert.equal(req.source.type === 'https' && req.source.kind, 'zip');
    assert.equal(req.sha256, undefined);
    assert.deepEqual(req.secret, { name: 's', key: 'token' });
  });

  it('parses oci:// locations and Model Catalog ids', () => {
    const oci = parseFetchRequest({ name: 'a', uri: 'oci://my-bucket@tenancyns/adapters/sql a/' }, 100);
    assert.deepEqual(oci.source, {
      type: 'objectStorage',
      uri: 'oci://my-bucket@tenancyns/adapters/sql a/',
      bucket: 'my-bucket',
      namespace: 'tenancyns',
      prefix: 'adapters/sql a/',
    });
    assert.equal(sourceId(oci.source), 'oci://my-bucket@tenancyns/adapters/sql a/');
    const whole = parseFetchRequest({ name: 'a', uri: 'oci://b@ns' }, 100);
    assert.equal(whole.source.type === 'objectStorage' && whole.source.prefix, '');
    const pinned = parseFetchRequest({ name: 'a', uri: 'oci://b@ns/x/a.TGZ', sha256: 'a'.repeat(64) }, 100);
    assert.equal(pinned.sha256, 'a'.repeat(64), 'one archive object can be pinned');
    const id = 'ocid1.datasciencemodel.oc1.iad.amaaaaaabbbb';
    const catalog = parseFetchRequest({ name: 'base', modelId: id, content: 'model' }, 100);
    assert.deepEqual(catalog.source, { type: 'modelCatalog', modelId: id });
    assert.equal(catalog.content, 'model');
    assert.equal(sourceId(catalog.source), id);
  });

  it('finds the archive type from the path', () => {
    assert.equal(archiveKind(new URL('https://h/A.TGZ')), 'tgz');
    assert.equal(archiveKind(new URL('https://h/a.tar.gz#x')), 'tgz');
    assert.equal(archiveKind(new URL('https://h/a.zip?x=.tgz')), 'zip');
    assert.equal(archiveKind(new URL('https://h/a.tar')), undefined);
    assert.equal(archiveKind(new URL('https://h/a?f=x.zip')), undefined);
  });

  it('accepts only single safe path segments as names', () => {
    for (const ok of ['a', '0', 'a-b.c_d', 'x'.repeat(200)]) assert.equal(checkName(ok), ok);
    for (const no of ['', '.', '..', '.a', 'a.', '-a', 'A', 'a/b', 'a\\b', 'é', 'x'.repeat(201), 3, null]) {
      assert.throws(() => checkName(no), AgentError, String(no));
    }
  });

  it('refuses what it cannot use', () => {
    bad(null, /body must be a JSON object/);
    bad([], /body must be a JSON object/);
    bad({ uri: 'https://h/x.tgz' }, /^name must be/);
    bad({ name: 'a' }, /uri is required/);
    bad({ name: 'a', uri: 'not a url' }, /not a valid URL/);
    bad({ name: 'a', uri: 'http://h/x.tgz' }, /https/);
    bad({ name: 'a', uri: 'https://u:p@h/x.tgz' }, /must not carry credentials/);
    bad({ name: 'a', uri: 'https://h/x.7z' }, /\.tar\.gz, \.tgz or \.zip/);
    bad({ name: 'a', uri: 'https://h/x.tgz', sha256: 'z'.repeat(64) }, /sha256/);
    for (const maxBytes of [0, -1, 1.5, '10', 2 ** 53]) {
      bad({ name: 'a', uri: 'https://h/x.tgz', maxBytes }, /maxBytes must be a positive integer/);
    }
    bad({ name: 'a', uri: 'https://h/x.tgz', secret: 's' }, /secret must be an object/);
    bad({ name: 'a', uri: 'https://h/x.tgz', secret: { name: '../s' } }, /secret.name/);
    bad({ name: 'a', uri: 'https://h/x.tgz', secret: { name: 's', key: '..' } }, /secret.key/);
    bad({ name: 'a', uri: 'https://h/x.tgz', secret: { name: 's', key: 'a/b' } }, /secret.key/);
    bad({ name: 'a', uri: 'https://h/x.tgz', checksum: 'x' }, /unknown field\(s\): checksum/);
    bad({ name: 'a', uri: 'oci://bucket/x' }, /oci:\/\/bucket@namespace\/prefix/);
    bad(
      { name: 'a', uri: 'oci://b@ns/folder/', sha256: 'a'.repeat(64) },
      /sha256 applies to an oci:\/\/ uri naming one/,
    );
    bad({ name: 'a', uri: 'oci://b@ns/a.tgz', secret: { name: 's' } }, /secret applies to https uris only/);
    bad({ name: 'a', modelId: 'ocid1.datasciencemodel.oc1.iad.x', uri: 'https://h/x.tgz' }, /not both/);
    bad({ name: 'a', modelId: 'ocid1.bucket.oc1.iad.x' }, /modelId must be/);
    bad({ name: 'a', uri: 'https://h/x.tgz', content: 'weights' }, /content must be/);
  });
});
