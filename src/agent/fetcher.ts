/**
 * One fetch from request to installed folder: cache check, credentials, verified download (https,
 * OCI Object Storage or the Model Catalog), safe extraction, atomic install. Work on one name is
 * serialized, so a delete never races a fetch and a fetch cancelled for a newer request has cleaned
 * up before the newer one starts. A fetch can be cancelled with an AbortSignal: the download stops,
 * its staging folder is removed, nothing is installed.
 */
import { readFile } from 'node:fs/promises';
import type { Agent } from 'node:https';
import { join } from 'node:path';
import { download } from './download.ts';
import { badRequest, displayUri } from './errors.ts';
import { extractArchive } from './extract.ts';
import type { Progress } from './meter.ts';
import { fetchModelCatalog } from './model-catalog.ts';
import { type OciFetch, type Retrieved, type Unpack, fetchObjectStorage } from './object-storage.ts';
import type { OciClients } from './oci-access.ts';
import { type FetchRequest, REQUIRED_FILE, type SecretRef, sourceId } from './request.ts';
import type { Store } from './store.ts';

/**
 * How much larger than its archive an adapter may be once extracted. Safetensors barely compress;
 * the limit only stops decompression bombs from filling the volume vLLM also reads from.
 */
export const EXPANSION_FACTOR = 16;

export interface FetchResult {
  name: string;
  path: string;
  sha256: string;
  bytes: number;
  cached: boolean;
}

export type Log = (msg: string, meta?: Record<string, unknown>) => void;

/** How a caller follows and stops one fetch (the server's jobs; the one-shot mode needs none). */
export interface FetchControl {
  /** Aborting it stops the fetch, which then fails with the abort's reason. */
  signal?: AbortSignal;
  /** Counts the bytes downloaded so far. */
  progress?: Progress;
  /** Called when the folder is not there already and the download starts. */
  onDownload?: () => void;
}

export interface FetcherOptions {
  store: Store;
  agent: Agent;
  secretsDir: string | undefined;
  /** SDK clients for oci:// and Model Catalog sources. */
  oci: OciClients;
  log: Log;
}

export class Fetcher {
  private readonly opts: FetcherOptions;
  /** The tail of each name's queue of work. */
  private readonly tails = new Map<string, Promise<void>>();

  constructor(opts: FetcherOptions) {
    this.opts = opts;
  }

  /** Runs `fn` once the work queued before it for `name` is done. */
  private async exclusive<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(name);
    if (previous !== undefined) this.opts.log('waiting for the work in progress on the same name', { name });
    const { promise: mine, resolve: release } = Promise.withResolvers<undefined>();
    const tail = (previous ?? Promise.resolve()).then(() => mine);
    this.tails.set(name, tail);
    await previous;
    try {
      return await fn();
    } finally {
      release(undefined);
      if (this.tails.get(name) === tail) this.tails.delete(name);
    }
  }

  private async token(secret: SecretRef): Promise<string> {
    const notMounted = () => badRequest(`secret ${secret.name}/${secret.key} is not mounted`);
    if (this.opts.secretsDir === undefined) throw notMounted();
    let token: string;
    try {
      token = (await readFile(join(this.opts.secretsDir, secret.name, secret.key), 'utf8')).trim();
    } catch {
      throw notMounted();
    }
    if (token === '') throw badRequest(`secret ${secret.name}/${secret.key} is empty`);
    return token;
  }

  /** Downloads and unpacks the source into the staging folder `tmp`. */
  private async retrieve(req: FetchRequest, tmp: string, control: FetchControl): Promise<Retrieved> {
    const { name } = req;
    const { signal, progress } = control;
    // Extraction itself cannot be stopped half-way (it is local and bounded): a cancel waits for it.
    const unpack: Unpack = async (kind, file) => {
      signal?.throwIfAborted();
      return extractArchive(kind, file, join(tmp, 'x'), {
        name,
        maxExpandedBytes: req.maxBytes * EXPANSION_FACTOR,
        required: REQUIRED_FILE[req.content],
      });
    };
    const oci: OciFetch = {
      name,
      tmp,
      maxBytes: req.maxBytes,
      content: req.content,
      ...(req.sha256 !== undefined ? { sha256: req.sha256 } : {}),
      ...(signal !== undefined ? { signal } : {}),
      ...(progress !== undefined ? { progress } : {}),
    };
    const { source } = req;
    switch (source.type) {
      case 'https': {
        // Only now: a complete folder is answered even if its Secret has since been unmounted.
        const token = req.secret ? await this.token(req.secret) : undefined;
        const archive = join(tmp, 'archive');
        const got = await download({
          name,
          uri: source.uri,
          dest: archive,
          maxBytes: req.maxBytes,
          agent: this.opts.agent,
          signal,
          progress,
          ...(req.sha256 !== undefined ? { sha256: req.sha256 } : {}),
          ...(token !== undefined ? { token } : {}),
        });
        return { folder: await unpack(source.kind, archive), sha256: got.sha256, bytes: got.bytes };
      }
      case 'objectStorage':
        return fetchObjectStorage(await this.opts.oci.objectStorage(), source, oci, unpack);
      case 'modelCatalog':
        return fetchModelCatalog(await this.opts.oci.dataScience(), source.modelId, oci, unpack);
    }
  }

  async fetch(req: FetchRequest, control: FetchControl = {}): Promise<FetchResult> {
    const { store, log } = this.opts;
    const { name } = req;
    const { signal } = control;
    const uri = sourceId(req.source);
    return this.exclusive(name, async () => {
      signal?.throwIfAborted();
      const path = store.path(name);
      const have = await store.complete(name);
      if (have && have.uri === uri && (req.sha256 === undefined || have.sha256 === req.sha256)) {
        return { name, path, sha256: have.sha256, bytes: have.bytes, cached: true };
      }
      log('downloading', { name, uri: displayUri(uri), maxBytes: req.maxBytes });
      control.onDownload?.();
      const tmp = await store.temp(name);
      try {
        const got = await this.retrieve(req, tmp, control);
        // The last moment a cancel can keep the folder from being replaced.
        signal?.throwIfAborted();
        await store.install(name, got.folder, tmp, { name, uri, sha256: got.sha256, bytes: got.bytes });
        log('fetched', { name, uri: displayUri(uri), sha256: got.sha256, bytes: got.bytes });
        return { name, path, sha256: got.sha256, bytes: got.bytes, cached: false };
      } finally {
        await store.discard(tmp);
      }
    });
  }

  async remove(name: string): Promise<void> {
    await this.exclusive(name, async () => {
      await this.opts.store.remove(name);
      this.opts.log('removed', { name });
    });
  }
}
