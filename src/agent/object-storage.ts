/**
 * oci://bucket@namespace/prefix sources. A prefix that names one .tar.gz/.tgz/.zip object is that
 * archive (downloaded and extracted like an https one, sha256 checked); any other prefix is a folder
 * whose objects are written under the target folder by their names relative to it. Object names
 * are checked like archive entries (no "..", no absolute names, no duplicates) before anything is
 * written, and all of them together must fit in maxBytes.
 */
import { createHash } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { ObjectStorageClient, models } from 'oci-objectstorage';
import { checkSha256, tooLarge } from './download.ts';
import { type ArchiveEntry, planArchive, segments } from './entries.ts';
import { badGateway, unacceptable } from './errors.ts';
import { normalizeModes } from './extract.ts';
import { Budget, type Progress } from './meter.ts';
import { ociCall, saveBody } from './oci-access.ts';
import { type Content, REQUIRED_FILE, type Source, pathArchiveKind } from './request.ts';

type ObjectStorageSource = Extract<Source, { type: 'objectStorage' }>;

/** ListObjects' largest page. */
const PAGE = 1000;
/** An adapter is a handful of files, a base model a few hundred; more is a wrong prefix. */
export const MAX_OBJECTS = 10_000;
/** Objects downloaded at once. */
const PARALLEL = 4;

export interface OciFetch {
  /** The folder name, for messages. */
  name: string;
  /** An empty staging folder owned by this fetch. */
  tmp: string;
  maxBytes: number;
  sha256?: string;
  content: Content;
  /** Cancels the fetch (a DELETE, or a newer request for the name): nothing more is read or written. */
  signal?: AbortSignal;
  /** Counts the bytes saved, for the job's status. */
  progress?: Progress;
}

/** What a fetch produced: the folder to install and what its marker records. */
export interface Retrieved {
  folder: string;
  /** The archive's SHA-256, or for a folder of objects the digest of its manifest. */
  sha256: string;
  bytes: number;
}

/** Extracts an archive file the way every source does; see extract.ts. */
export type Unpack = (kind: 'tgz' | 'zip', file: string) => Promise<string>;

async function listAll(
  client: ObjectStorageClient,
  src: ObjectStorageSource,
  prefix: string,
  opts: { pages?: number; signal?: AbortSignal | undefined } = {},
): Promise<models.ObjectSummary[]> {
  const objects: models.ObjectSummary[] = [];
  let start: string | undefined;
  let pages = 0;
  do {
    // The SDK takes no signal: a cancelled fetch stops between pages.
    opts.signal?.throwIfAborted();
    const res = await ociCall(`ListObjects oci://${src.bucket}@${src.namespace}/${prefix}`, () =>
      client.listObjects({
        namespaceName: src.namespace,
        bucketName: src.bucket,
        prefix,
        fields: 'name,size,md5',
        limit: PAGE,
        ...(start !== undefined ? { start } : {}),
      }),
    );
    objects.push(...res.listObjects.objects);
    if (objects.length > MAX_OBJECTS) {
      throw unacceptable(
        `more than ${MAX_OBJECTS} objects under oci://${src.bucket}@${src.namespace}/${prefix}`,
      );
    }
    start = res.listObjects.nextStartWith;
    pages++;
  } while (start !== undefined && pages !== opts.pages);
  return objects;
}

/**
 * Downloads one object into `dest`, checking its Content-MD5 when the service states one. Once
 * `signal` aborts, the body is not (or no longer) saved: the download fails with the abort's reason.
 */
async function getObject(
  client: ObjectStorageClient,
  src: ObjectStorageSource,
  objectName: string,
  dest: string,
  budget: Budget,
  opts: { signal?: AbortSignal | undefined; progress?: Progress | undefined },
) {
  const what = `GetObject oci://${src.bucket}@${src.namespace}/${objectName}`;
  // The SDK takes no signal: a request already sent is answered, but its body is then dropped.
  const res = await ociCall(what, () =>
    client.getObject({ namespaceName: src.namespace, bucketName: src.bucket, objectName }),
  );
  // Multipart objects carry no Content-MD5 (only a digest of their parts): nothing to compare then.
  const expected = res.contentMd5 as string | undefined;
  const saved = await saveBody(res.value, dest, budget, what, { ...opts, md5: expected !== undefined });
  if (expected !== undefined && saved.md5 !== expected) {
    throw badGateway(`${what}: content MD5 ${saved.md5 ?? ''} differs from the stated ${expected}`);
  }
  return saved;
}

async function fetchArchive(
  client: ObjectStorageClient,
  src: ObjectStorageSource,
  object: models.ObjectSummary,
  kind: 'tgz' | 'zip',
  req: OciFetch,
  unpack: Unpack,
): Promise<Retrieved> {
  if (object.size !== undefined && object.size > req.maxBytes) throw tooLarge(req.name, req.maxBytes);
  const file = join(req.tmp, 'archive');
  const budget = new Budget(req.maxBytes, () => tooLarge(req.name, req.maxBytes));
  const saved = await getObject(client, src, object.name, file, budget, req);
  checkSha256(req.name, req.sha256, saved.sha256);
  return { folder: await unpack(kind, file), sha256: saved.sha256, bytes: saved.bytes };
}

async function fetchFolder(
  client: ObjectStorageClient,
  src: ObjectStorageSource,
  folderPrefix: string,
  req: OciFetch,
): Promise<Retrieved> {
  const where = `oci://${src.bucket}@${src.namespace}/${folderPrefix}`;
  const objects = await listAll(client, src, folderPrefix, { signal: req.signal });
  if (objects.length === 0) throw unacceptable(`${req.name}: no objects under ${where}`);
  const total = objects.reduce((n, o) => n + (o.size ?? 0), 0);
  if (total > req.maxBytes) {
    throw unacceptable(
      `${req.name}: the objects under ${where} total ${total} bytes, more than maxBytes ${req.maxBytes}`,
    );
  }
  // Console "folders" are empty objects whose names end in "/" (the prefix itself among them).
  const entries: (ArchiveEntry & { object: string })[] = objects
    .map((o) => ({ o, path: o.name.slice(folderPrefix.length) }))
    .filter(({ path }) => path !== '')
    .map(({ o, path }) => ({
      path,
      type: path.endsWith('/') ? 'directory' : 'file',
      size: o.size ?? 0,
      object: o.name,
    }));
  const { prefix } = planArchive(entries, {
    name: req.name,
    maxExpandedBytes: req.maxBytes,
    required: REQUIRED_FILE[req.content],
    entryLabel: 'object',
    where,
  });
  const dest = join(req.tmp, 'x');
  await mkdir(dest, { recursive: true });
  const budget = new Budget(req.maxBytes, () =>
    unacceptable(`${req.name}: the objects under ${where} exceed maxBytes ${req.maxBytes}`),
  );
  const files = entries.filter((e) => e.type === 'file');
  const digests = new Map<string, string>();
  // The first failure stops every worker: none starts another object, a download under way is
  // cut off, and the error is thrown only once all of them have settled, so nothing is written into
  // req.tmp after this returns (the caller removes it, and may start the same name again).
  const stop = new AbortController();
  // A cancelled fetch stops them the same way.
  const cancel = (): void => {
    stop.abort(req.signal?.reason);
  };
  if (req.signal?.aborted === true) cancel();
  req.signal?.addEventListener('abort', cancel, { once: true });
  /** What the workers threw, the first (the one that stopped the others) first. */
  const failures: unknown[] = [];
  const stopped = (): boolean => stop.signal.aborted;
  let next = 0;
  const worker = async (): Promise<void> => {
    try {
      while (!stopped()) {
        const e = files[next++];
        if (e === undefined) return;
        // planArchive refused every name segments() cannot place inside the folder.
        const rel = segments(e.path) ?? [];
        const target = join(dest, ...rel);
        await mkdir(dirname(target), { recursive: true });
        if (stopped()) return;
        const saved = await getObject(client, src, e.object, target, budget, {
          signal: stop.signal,
          progress: req.progress,
        });
        digests.set(rel.join('/'), saved.sha256);
      }
    } catch (err) {
      failures.push(err);
      stop.abort(err);
    }
  };
  try {
    await Promise.allSettled(Array.from({ length: Math.min(PARALLEL, files.length) }, worker));
  } finally {
    req.signal?.removeEventListener('abort', cancel);
  }
  // Cancelled between two objects, no worker failed: the cancel is the outcome, not a half folder.
  req.signal?.throwIfAborted();
  if (failures.length > 0) throw failures[0];
  for (const e of entries) {
    if (e.type === 'directory') await mkdir(join(dest, ...(segments(e.path) ?? [])), { recursive: true });
  }
  await normalizeModes(dest);
  // A stable digest of what was written: the same objects give the same value on every pod.
  const manifest = [...digests].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const sha256 = createHash('sha256')
    .update(manifest.map(([path, digest]) => `${digest}  ${path}\n`).join(''))
    .digest('hex');
  return { folder: prefix === undefined ? dest : join(dest, prefix), sha256, bytes: budget.used };
}

/** Fetches an oci:// source into req.tmp and returns the folder to install. */
export async function fetchObjectStorage(
  client: ObjectStorageClient,
  src: ObjectStorageSource,
  req: OciFetch,
  unpack: Unpack,
): Promise<Retrieved> {
  const kind = pathArchiveKind(src.prefix);
  if (kind !== undefined) {
    // Names sort by bytes, so an object named exactly the prefix comes first among those it begins.
    const [first] = await listAll(client, src, src.prefix, { pages: 1, signal: req.signal });
    if (first?.name === src.prefix) return fetchArchive(client, src, first, kind, req, unpack);
    if (req.sha256 !== undefined) {
      throw unacceptable(`${req.name}: no object ${src.prefix} in oci://${src.bucket}@${src.namespace}`);
    }
  }
  const folderPrefix = src.prefix === '' || src.prefix.endsWith('/') ? src.prefix : `${src.prefix}/`;
  return fetchFolder(client, src, folderPrefix, req);
}
