/**
 * Safety checks on an archive's table of contents, done before anything is written: the archive is
 * read from a file the agent just verified, so what is checked here is exactly what is extracted.
 */
import { unacceptable } from './errors.ts';

export type EntryType = 'file' | 'directory' | 'symlink' | 'hardlink';

export interface ArchiveEntry {
  /** The path as stored in the archive. */
  path: string;
  /** An EntryType, or the archive's own name for anything else (devices, FIFOs, ...), refused. */
  type: string;
  /** Target of a symlink (relative to its folder) or a hard link (relative to the archive root). */
  linkpath?: string;
  /** Uncompressed size in bytes. */
  size: number;
}

export interface ArchivePlan {
  /**
   * The single top-level folder whose contents are the adapter (archives made with
   * `tar czf x.tgz mydir`), or undefined when the archive root is the adapter folder.
   */
  prefix: string | undefined;
}

export interface PlanOptions {
  /** The adapter name, for messages. */
  name: string;
  /** Refuses archives that expand to more than this (a decompression bomb fills the shared volume). */
  maxExpandedBytes: number;
  /** The file that must be in the folder: adapter_config.json (default) or a base model's config.json. */
  required?: string;
  /** What an entry is called in messages: 'archive entry' (default), or 'object' for an oci:// prefix. */
  entryLabel?: string;
  /** What holds the entries, in messages: 'the archive' (default), or the oci:// location. */
  where?: string;
}

const ALLOWED = new Set<string>(['file', 'directory', 'symlink', 'hardlink']);
/** Like the kernel's limit on nested symlinks, so a loop is refused instead of followed forever. */
const MAX_LINK_HOPS = 40;

/** Path segments of an archive path, or undefined when it is absolute or goes up with "..". */
export function segments(path: string): string[] | undefined {
  // Drive letters count as absolute too: node-tar strips them, which would move the entry.
  if (path.startsWith('/') || /^[a-zA-Z]:/.test(path)) return undefined;
  const parts = path.split('/').filter((s) => s !== '' && s !== '.');
  return parts.includes('..') ? undefined : parts;
}

/**
 * Resolves `target` from the folder `from` (both relative to the adapter folder) the way the
 * kernel would, following the archive's own symlinks met on the way: `s -> .` followed by
 * `t -> s/..` looks harmless as text but leaves the folder. Undefined when the walk leaves the
 * folder (or loops).
 */
export function resolveInside(
  from: readonly string[],
  target: string,
  symlinks: ReadonlyMap<string, string>,
): string[] | undefined {
  let hops = 0;
  const walk = (base: readonly string[], rel: string): string[] | undefined => {
    if (rel.startsWith('/')) return undefined;
    const cur = [...base];
    for (const seg of rel.split('/')) {
      if (seg === '' || seg === '.') continue;
      if (seg === '..') {
        if (cur.length === 0) return undefined;
        cur.pop();
        continue;
      }
      const link = symlinks.get([...cur, seg].join('/'));
      if (link === undefined) {
        cur.push(seg);
        continue;
      }
      if (++hops > MAX_LINK_HOPS) return undefined;
      const next = walk(cur, link);
      if (next === undefined) return undefined;
      cur.splice(0, cur.length, ...next);
    }
    return cur;
  };
  return walk(from, target);
}

/** The single top-level folder to use as the adapter folder, if the archive has one. */
function topFolder(entries: readonly { parts: string[]; type: string }[]): string | undefined {
  const tops = new Set(entries.filter((e) => e.parts.length > 0).map((e) => e.parts[0]));
  if (tops.size !== 1) return undefined;
  const [top] = tops;
  // Only a folder with something in it: a lone file or symlink at the top is the adapter root.
  const isFolder = entries.every((e) => e.parts.length !== 1 || e.type === 'directory');
  const hasChildren = entries.some((e) => e.parts.length > 1);
  return isFolder && hasChildren ? top : undefined;
}

/**
 * Checks every entry (no absolute or ".." paths, no devices, no duplicates, nothing written through
 * a symlink, links resolving inside the adapter folder, total size) and finds the folder to use.
 * Throws a 422 naming the first offending entry.
 */
export function planArchive(entries: readonly ArchiveEntry[], opts: PlanOptions): ArchivePlan {
  const { name } = opts;
  const label = opts.entryLabel ?? 'archive entry';
  const required = opts.required ?? 'adapter_config.json';
  const refuse = (what: string) => unacceptable(`${name}: ${what}`);
  const parsed = entries.map((e) => {
    const parts = segments(e.path);
    if (parts === undefined) throw refuse(`${label} ${e.path} escapes the folder`);
    if (!ALLOWED.has(e.type)) throw refuse(`${label} ${e.path} has unsupported type ${e.type}`);
    if (parts.length === 0 && e.type !== 'directory') throw refuse(`${label} ${e.path} is not a file name`);
    return { ...e, parts };
  });
  const prefix = topFolder(parsed);
  // Links are judged from where they will be after flattening: `mydir/l -> ../other` would
  // otherwise point into the shared volume's other adapters.
  const inFolder = prefix === undefined ? parsed : parsed.map((e) => ({ ...e, parts: e.parts.slice(1) }));

  const kinds = new Map<string, string>();
  const symlinks = new Map<string, string>();
  let total = 0;
  for (const e of inFolder) {
    const key = e.parts.join('/');
    const seen = kinds.get(key);
    if (seen !== undefined && (seen !== 'directory' || e.type !== 'directory')) {
      throw refuse(`duplicate ${label} ${e.path}`);
    }
    kinds.set(key, e.type);
    if (e.type === 'symlink') symlinks.set(key, e.linkpath ?? '');
    if (e.type === 'file') total += e.size;
  }
  if (total > opts.maxExpandedBytes) {
    throw refuse(`archive expands to more than ${opts.maxExpandedBytes} bytes`);
  }
  for (const e of inFolder) {
    for (let i = 1; i < e.parts.length; i++) {
      const dir = e.parts.slice(0, i).join('/');
      const kind = kinds.get(dir);
      // Writing through an archive symlink could land anywhere the link's target moves to.
      if (kind === 'symlink') throw refuse(`${label} ${e.path} goes through symlink ${dir}`);
      if (kind !== undefined && kind !== 'directory')
        throw refuse(`${label} ${e.path} is inside file ${dir}`);
    }
    if (e.type === 'symlink') {
      const target = e.linkpath ?? '';
      if (target === '' || resolveInside(e.parts.slice(0, -1), target, symlinks) === undefined) {
        throw refuse(`symlink ${e.path} points outside the folder`);
      }
    }
    if (e.type === 'hardlink') {
      // Hard link targets are archive paths (from the archive root), and must be files in it.
      const target = segments(e.linkpath ?? '');
      const rebased = prefix === undefined ? target : target?.[0] === prefix ? target.slice(1) : undefined;
      if (rebased === undefined || kinds.get(rebased.join('/')) !== 'file') {
        throw refuse(`hard link ${e.path} does not point to a file in the folder`);
      }
    }
  }
  if (!['file', 'symlink', 'hardlink'].includes(kinds.get(required) ?? '')) {
    throw refuse(`no ${required} in ${opts.where ?? 'the archive'}`);
  }
  return { prefix };
}
