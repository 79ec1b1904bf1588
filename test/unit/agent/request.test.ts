import assert from 'node:assert/strict';
import { AgentError } from '../../../src/agent/errors.ts';
import { archiveKind, checkName, parseFetchRequest } from '../../../src/agent/request.ts';

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
    assert.equal(req.uri.href, 'https://example.com/a/x.tar.gz?X-Sig=abc');
    assert.equal(req.kind, 'tgz');
    assert.equal(req.sha256, 'ab'.repeat(32), 'lower-cased');
    assert.equal(req.maxBytes, 5);
    assert.deepEqual(req.secret, { name: 'reg.creds', key: 'api_token' });
  });

  it('defaults maxBytes and the secret key', () => {
    const req = parseFetchRequest({ name: 'a', uri: 'https://h/x.zip', secret: { name: 's' } }, 100);
    assert.equal(req.maxBytes, 100);
    assert.equal(req.kind, 'zip');
    assert.equal(req.sha256, undefined);
    assert.deepEqual(req.secret, { name: 's', key: 'token' });
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
  });
});
