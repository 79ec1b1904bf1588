import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Marker, Store } from '../../../src/agent/store.ts';

const marker = (name: string, uri = `https://h/${name}.tgz`): Marker => ({
  name,
  uri,
  sha256: 'ab',
  bytes: 3,
});

describe('agent/store', () => {
  let root: string;
  let store: Store;

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'agent-store-'));
    store = new Store(root);
    await store.init();
  });
  afterEach(() => rm(root, { recursive: true, force: true }));

  async function stage(name: string, file: string): Promise<{ tmp: string; folder: string }> {
    const tmp = await store.temp(name);
    const folder = join(tmp, 'x');
    await mkdir(folder);
    await writeFile(join(folder, file), 'x');
    return { tmp, folder };
  }

  it('installs a folder, then its marker, and replaces it whole', async () => {
    const first = await stage('a', 'one');
    await store.install('a', first.folder, first.tmp, marker('a'));
    await store.discard(first.tmp);
    assert.deepEqual(await store.complete('a'), marker('a'));
    assert.deepEqual(await readdir(join(root, 'a')), ['one']);

    const second = await stage('a', 'two');
    await store.install('a', second.folder, second.tmp, marker('a', 'https://h/v2.tgz'));
    await store.discard(second.tmp);
    assert.deepEqual(await readdir(join(root, 'a')), ['two'], 'nothing of the old folder');
    assert.deepEqual(await store.list(), [marker('a', 'https://h/v2.tgz')]);
    assert.deepEqual(await readdir(join(root, '.staging')), []);
  });

  it('takes a folder without marker, or a marker without folder, as incomplete', async () => {
    await mkdir(join(root, 'nomarker'));
    assert.equal(await store.complete('nomarker'), undefined);
    await writeFile(join(root, '.nofolder.json'), JSON.stringify(marker('nofolder')));
    assert.equal(await store.complete('nofolder'), undefined);
    await mkdir(join(root, 'garbled'));
    await writeFile(join(root, '.garbled.json'), '{"name":');
    assert.equal(await store.complete('garbled'), undefined);
    assert.deepEqual(await store.list(), []);
  });

  it('removes a folder and its marker, and absent ones quietly', async () => {
    const s = await stage('b', 'f');
    await store.install('b', s.folder, s.tmp, marker('b'));
    await store.discard(s.tmp);
    await store.remove('b');
    assert.equal(existsSync(join(root, 'b')), false);
    assert.equal(existsSync(join(root, '.b.json')), false);
    await store.remove('b');
    assert.deepEqual(await readdir(root), ['.staging']);
  });

  it('drops what a previous run left half-done on start', async () => {
    const s = await stage('kept', 'f');
    await store.install('kept', s.folder, s.tmp, marker('kept'));
    await mkdir(join(root, 'orphan'));
    await mkdir(join(root, '.staging', 'half-done'));
    await new Store(root).init();
    assert.deepEqual((await readdir(root)).sort(), ['.kept.json', '.staging', 'kept']);
    assert.deepEqual(await readdir(join(root, '.staging')), []);
  });
});
