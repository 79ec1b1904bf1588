/**
 * Safe extraction of .tar.gz/.tgz (node-tar) and .zip (yauzl) archives: the table of contents is
 * read and checked first (see entries.ts), then the archive is extracted into an empty folder.
 */
import { createWriteStream } from 'node:fs';
import { chmod, mkdir, readdir, symlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as tar from 'tar';
import yauzl from 'yauzl';
import { AgentError, errorMessage, unacceptable } from './errors.ts';
import { type ArchiveEntry, type PlanOptions, planArchive, segments } from './entries.ts';
import type { ArchiveKind } from './request.ts';

/** A symlink's target is stored as its data; anything longer is not a real symlink. */
const MAX_LINK_BYTES = 4096;

/** Errors from the operating system (disk full, permissions) are ours, not the archive's. */
function isSystemError(err: unknown): boolean {
  return err instanceof Error && 'syscall' in err;
}

function tarType(type: string): string {
  switch (type) {
    case 'File':
    case 'OldFile':
    case 'ContiguousFile':
      return 'file';
    case 'Directory':
      return 'directory';
    case 'SymbolicLink':
      return 'symlink';
    case 'Link':
      return 'hardlink';
    default:
      return type;
  }
}

/**
 * Makes the adapter readable by vLLM whatever modes the archive carried (vLLM may run as another
 * user than the agent); nothing in an adapter needs to be executable or writable by others.
 */
export async function normalizeModes(dir: string): Promise<void> {
  await chmod(dir, 0o755);
  for (const d of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (d.isDirectory()) await chmod(join(d.parentPath, d.name), 0o755);
    else if (d.isFile()) await chmod(join(d.parentPath, d.name), 0o644);
  }
}

async function extractTgz(file: string, dest: string, opts: PlanOptions): Promise<string | undefined> {
  const entries: ArchiveEntry[] = [];
  // strict: a corrupt or truncated archive fails instead of being extracted in part.
  await tar.t({
    file,
    strict: true,
    onReadEntry: (e) => {
      entries.push({ path: e.path, type: tarType(e.type), linkpath: e.linkpath, size: e.size });
    },
  });
  const { prefix } = planArchive(entries, opts);
  // preserveOwner defaults to true as root: the archive's uids mean nothing in the pod.
  await tar.x({ file, cwd: dest, strict: true, preserveOwner: false });
  return prefix;
}

function zipType(e: yauzl.Entry): string {
  if (e.fileName.endsWith('/')) return 'directory';
  // Unix mode bits live in the high half of the external attributes of zips made on Unix.
  if (e.versionMadeBy >> 8 === 3) {
    const format = (e.externalFileAttributes >>> 16) & 0o170000;
    if (format === 0o120000) return 'symlink';
    if (format === 0o040000) return 'directory';
    if (format !== 0 && format !== 0o100000) return `mode ${format.toString(8)}`;
  }
  return 'file';
}

async function readLink(stream: Readable, path: string, opts: PlanOptions): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_LINK_BYTES) {
      stream.destroy();
      throw unacceptable(`${opts.name}: symlink ${path} is too long`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

async function extractZip(file: string, dest: string, opts: PlanOptions): Promise<string | undefined> {
  // yauzl itself refuses absolute and ".." names and checks sizes against the directory.
  const zip = await yauzl.openPromise(file, { autoClose: false, validateEntrySizes: true });
  try {
    const items: { entry: yauzl.Entry; info: ArchiveEntry }[] = [];
    for await (const entry of zip.eachEntry()) {
      const info: ArchiveEntry = { path: entry.fileName, type: zipType(entry), size: entry.uncompressedSize };
      if (info.type === 'file' || info.type === 'symlink') {
        if (entry.isEncrypted())
          throw unacceptable(`${opts.name}: archive entry ${entry.fileName} is encrypted`);
        if (!entry.canDecodeFileData()) {
          throw unacceptable(`${opts.name}: archive entry ${entry.fileName} uses an unsupported compression`);
        }
      }
      if (info.type === 'symlink') {
        info.linkpath = await readLink(await zip.openReadStreamPromise(entry), entry.fileName, opts);
      }
      items.push({ entry, info });
    }
    const { prefix } = planArchive(
      items.map((i) => i.info),
      opts,
    );
    for (const { entry, info } of items) {
      const target = join(dest, ...(segments(info.path) ?? []));
      if (info.type === 'directory') {
        await mkdir(target, { recursive: true });
        continue;
      }
      await mkdir(dirname(target), { recursive: true });
      if (info.type === 'symlink') await symlink(info.linkpath ?? '', target);
      else {
        // "wx": never write into something already there (planArchive refuses duplicates anyway).
        await pipeline(
          await zip.openReadStreamPromise(entry),
          createWriteStream(target, { flags: 'wx', mode: 0o644 }),
        );
      }
    }
    return prefix;
  } finally {
    zip.close();
  }
}

/**
 * Extracts `file` into the empty folder `dest` and returns the adapter folder: `dest`, or its single
 * top-level folder. Throws a 422 for unsafe, corrupt or non-adapter archives.
 */
export async function extractArchive(
  kind: ArchiveKind,
  file: string,
  dest: string,
  opts: PlanOptions,
): Promise<string> {
  let prefix: string | undefined;
  await mkdir(dest, { recursive: true });
  try {
    prefix = kind === 'zip' ? await extractZip(file, dest, opts) : await extractTgz(file, dest, opts);
  } catch (err) {
    if (err instanceof AgentError || isSystemError(err)) throw err;
    throw unacceptable(`${opts.name}: cannot read archive: ${errorMessage(err)}`);
  }
  await normalizeModes(dest);
  return prefix === undefined ? dest : join(dest, prefix);
}
