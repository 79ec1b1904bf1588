/**
 * The shared volume's layout: <root>/<name> is an adapter folder, <root>/.<name>.json its marker,
 * written last so that a folder without a marker is never taken as complete, and <root>/.staging
 * holds downloads in progress (same file system, so moving a finished folder in is one rename).
 * Adapter names never start with a dot, so none of these can collide with an adapter.
 */
import { mkdir, mkdtemp, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { NAME_PATTERN } from './request.ts';

/** What was fetched into a folder; also the body of GET /v1/fetch entries. */
export interface Marker {
  name: string;
  uri: string;
  /** Hex SHA-256 of the archive. */
  sha256: string;
  /** Size of the archive. */
  bytes: number;
}

function isMarker(v: unknown): v is Marker {
  if (typeof v !== 'object' || v === null) return false;
  const m = v as Record<string, unknown>;
  return (
    typeof m['name'] === 'string' &&
    typeof m['uri'] === 'string' &&
    typeof m['sha256'] === 'string' &&
    typeof m['bytes'] === 'number'
  );
}

function isNotFound(err: unknown): boolean {
  return err instanceof Error && 'code' in err && err.code === 'ENOENT';
}

export class Store {
  readonly root: string;
  private readonly staging: string;

  /** `root` must be absolute (the paths are handed to vLLM). */
  constructor(root: string) {
    this.root = root;
    this.staging = join(root, '.staging');
  }

  /**
   * Creates the root and drops what a previous run left half-done (one agent owns a root): staged
   * downloads, and folders without a marker (a crash between moving a folder in and writing its
   * marker, or during a removal), which nobody could list or delete otherwise.
   */
  async init(): Promise<void> {
    await rm(this.staging, { recursive: true, force: true });
    await mkdir(this.staging, { recursive: true });
    for (const entry of await readdir(this.root, { withFileTypes: true })) {
      if (!entry.isDirectory() || !NAME_PATTERN.test(entry.name)) continue;
      if ((await this.complete(entry.name)) === undefined) {
        await rm(this.path(entry.name), { recursive: true, force: true });
      }
    }
  }

  path(name: string): string {
    return join(this.root, name);
  }

  private markerPath(name: string): string {
    return join(this.root, `.${name}.json`);
  }

  /** The marker of a complete folder, or undefined (no marker, unreadable marker or no folder). */
  async complete(name: string): Promise<Marker | undefined> {
    let marker: unknown;
    try {
      marker = JSON.parse(await readFile(this.markerPath(name), 'utf8'));
    } catch {
      return undefined;
    }
    if (!isMarker(marker) || marker.name !== name) return undefined;
    try {
      return (await stat(this.path(name))).isDirectory() ? marker : undefined;
    } catch {
      return undefined;
    }
  }

  /** A fresh empty folder in the staging area; remove it with {@link discard}. */
  async temp(name: string): Promise<string> {
    return mkdtemp(join(this.staging, `${name}-`));
  }

  async discard(tmp: string): Promise<void> {
    await rm(tmp, { recursive: true, force: true });
  }

  /**
   * Moves `folder` (inside the staging folder `tmp`) into place as <root>/<name>, then writes the
   * marker. A previous folder of that name is moved into `tmp` (the caller discards it), so readers
   * see either the old or the new folder, never a mix.
   */
  async install(name: string, folder: string, tmp: string, marker: Marker): Promise<void> {
    // Gone first: from here until the end the folder is not complete.
    await rm(this.markerPath(name), { force: true });
    try {
      await rename(this.path(name), join(tmp, '.previous'));
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    await rename(folder, this.path(name));
    const staged = join(tmp, '.marker.json');
    await writeFile(staged, `${JSON.stringify(marker)}\n`);
    await rename(staged, this.markerPath(name));
  }

  /** Removes <root>/<name> and its marker; nothing to do when absent. */
  async remove(name: string): Promise<void> {
    await rm(this.markerPath(name), { force: true });
    const tmp = await this.temp(name);
    try {
      // One rename takes the folder away at once; the slow delete happens out of sight.
      await rename(this.path(name), join(tmp, 'removed'));
    } catch (err) {
      if (!isNotFound(err)) throw err;
    } finally {
      await this.discard(tmp);
    }
  }

  /** Complete folders, by name. */
  async list(): Promise<Marker[]> {
    const names = (await readdir(this.root))
      .map((f) => /^\.(.+)\.json$/.exec(f)?.[1])
      .filter((n): n is string => n !== undefined && NAME_PATTERN.test(n))
      .sort();
    const markers = await Promise.all(names.map((n) => this.complete(n)));
    return markers.filter((m): m is Marker => m !== undefined);
  }
}
