import assert from 'node:assert/strict';
import { type ArchiveEntry, planArchive, resolveInside, segments } from '../../../src/agent/entries.ts';
import { AgentError } from '../../../src/agent/errors.ts';

const opts = { name: 'a1', maxExpandedBytes: 1000 };
const file = (path: string, size = 1): ArchiveEntry => ({ path, type: 'file', size });
const dir = (path: string): ArchiveEntry => ({ path, type: 'directory', size: 0 });
const link = (path: string, linkpath: string): ArchiveEntry => ({ path, type: 'symlink', linkpath, size: 0 });
const hard = (path: string, linkpath: string): ArchiveEntry => ({
  path,
  type: 'hardlink',
  linkpath,
  size: 0,
});
const config = file('adapter_config.json');

function refused(entries: ArchiveEntry[], message: string): void {
  assert.throws(
    () => planArchive(entries, opts),
    (err: unknown) => err instanceof AgentError && err.status === 422 && err.message === `a1: ${message}`,
  );
}

describe('agent/entries', () => {
  it('splits archive paths, refusing absolute and ".." ones', () => {
    assert.deepEqual(segments('./a//b/'), ['a', 'b']);
    assert.deepEqual(segments('./'), []);
    assert.equal(segments('/etc/passwd'), undefined);
    assert.equal(segments('C:/x'), undefined);
    assert.equal(segments('a/../../x'), undefined);
    assert.equal(segments('a/../b'), undefined, 'no ".." at all, even when it stays inside');
  });

  it('resolves links the way the kernel would, through other links', () => {
    const links = new Map([
      ['s', '.'],
      ['deep', 'a/b'],
    ]);
    assert.deepEqual(resolveInside([], 'x', links), ['x']);
    assert.deepEqual(resolveInside(['sub'], '../x', links), ['x']);
    assert.equal(resolveInside([], '../x', links), undefined);
    assert.equal(resolveInside([], 's/..', links), undefined, 's is the folder itself');
    assert.deepEqual(resolveInside([], 'deep/..', links), ['a']);
    assert.equal(resolveInside([], '/etc', links), undefined);
    assert.equal(
      resolveInside(
        [],
        'l1',
        new Map([
          ['l1', 'l2'],
          ['l2', 'l1'],
        ]),
      ),
      undefined,
      'a loop',
    );
  });

  it('uses the archive root, or its single top-level folder', () => {
    assert.deepEqual(planArchive([config, file('w.safetensors')], opts), { prefix: undefined });
    assert.deepEqual(planArchive([dir('./'), file('./adapter_config.json')], opts), { prefix: undefined });
    assert.deepEqual(planArchive([dir('mydir/'), file('mydir/adapter_config.json')], opts), {
      prefix: 'mydir',
    });
    assert.deepEqual(
      planArchive([file('mydir/adapter_config.json')], opts),
      { prefix: 'mydir' },
      'implied folder',
    );
    assert.deepEqual(planArchive([dir('./'), dir('./mydir/'), file('./mydir/adapter_config.json')], opts), {
      prefix: 'mydir',
    });
    refused(
      [dir('mydir/'), file('mydir/adapter_config.json'), file('README')],
      'no adapter_config.json in the archive',
    );
    refused([file('README')], 'no adapter_config.json in the archive');
    refused([], 'no adapter_config.json in the archive');
  });

  it('refuses entries escaping the folder', () => {
    refused([config, file('../evil')], 'archive entry ../evil escapes the folder');
    refused([config, file('/etc/cron.d/x')], 'archive entry /etc/cron.d/x escapes the folder');
    refused([config, link('l', '/etc/passwd')], 'symlink l points outside the folder');
    refused([config, link('l', '../x')], 'symlink l points outside the folder');
    refused([config, link('s', '.'), link('t', 's/..')], 'symlink t points outside the folder');
    refused([config, link('l', '')], 'symlink l points outside the folder');
    // Inside the archive, but outside the adapter folder once its top-level folder is used.
    refused(
      [file('mydir/adapter_config.json'), link('mydir/l', '../mydir/adapter_config.json')],
      'symlink mydir/l points outside the folder',
    );
    refused([config, hard('h', '../x')], 'hard link h does not point to a file in the folder');
    refused([config, hard('h', 'missing')], 'hard link h does not point to a file in the folder');
  });

  it('accepts links that stay inside', () => {
    const plan = planArchive(
      [
        config,
        dir('sub/'),
        link('sub/config.json', '../adapter_config.json'),
        link('here', '.'),
        hard('copy.json', 'adapter_config.json'),
      ],
      opts,
    );
    assert.deepEqual(plan, { prefix: undefined });
    assert.deepEqual(
      planArchive([file('mydir/adapter_config.json'), hard('mydir/h', 'mydir/adapter_config.json')], opts),
      { prefix: 'mydir' },
    );
    assert.deepEqual(planArchive([link('adapter_config.json', 'real.json'), file('real.json')], opts), {
      prefix: undefined,
    });
  });

  it('refuses writing through a symlink or into a file', () => {
    refused([config, link('s', 'sub'), dir('sub/'), file('s/x')], 'archive entry s/x goes through symlink s');
    refused([config, file('f'), file('f/x')], 'archive entry f/x is inside file f');
  });

  it('refuses devices, duplicates and archives that expand too much', () => {
    refused(
      [config, { path: 'dev', type: 'CharacterDevice', size: 0 }],
      'archive entry dev has unsupported type CharacterDevice',
    );
    refused([config, file('./adapter_config.json')], 'duplicate archive entry ./adapter_config.json');
    refused([config, dir('x/'), link('x', '.')], 'duplicate archive entry x');
    assert.deepEqual(
      planArchive([config, dir('x/'), dir('./x')], opts),
      { prefix: undefined },
      'folders may repeat',
    );
    refused([file('.', 1)], 'archive entry . is not a file name');
    refused([config, file('a', 500), file('b', 500)], 'archive expands to more than 1000 bytes');
    assert.deepEqual(planArchive([file('adapter_config.json', 500), file('b', 500)], opts), {
      prefix: undefined,
    });
  });
});
