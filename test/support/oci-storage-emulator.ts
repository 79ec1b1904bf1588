// A loopback stand-in for the two OCI read paths the fetch agent uses: Object Storage ListObjects and
// GetObject (`/n/{namespace}/b/{bucket}/o[/{object}]`) and the Data Science model artifact download
// (`/20190101/models/{modelId}/artifact/content`), answering in the services' shapes, headers and error
// codes. Every request must carry a valid OCI signature from a registered key (the real SDK signs
// them); unsigned or badly signed requests get 401 NotAuthenticated. Faults: latency, and 503s.
import { buffer } from 'node:stream/consumers';
import { createHash, randomUUID, type KeyObject } from 'node:crypto';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ApiKey } from '../../playground/oci-keys.ts';
import { ApiError } from '../../playground/oci-emu/errors.ts';
import { verifySignedRequest } from '../../playground/oci-emu/signature.ts';

interface StoredObject {
  bytes: Buffer;
  md5: string;
  etag: string;
  modified: Date;
}

export interface SeenRequest {
  method: string;
  /** Path as sent (still encoded), query included. */
  url: string;
  operation: string;
  status: number;
  /** The keyId that signed it, if it was signed well. */
  keyId?: string;
}

export interface OciStorageEmulator {
  /** http://127.0.0.1:<port>: the endpoint of both services. */
  readonly url: string;
  /** Registers a user's API signing key (see oci-keys.ts): requests it signs are accepted. */
  addKey(key: Pick<ApiKey, 'keyId' | 'publicKeyPem'>): void;
  createBucket(namespace: string, bucket: string): void;
  putObject(namespace: string, bucket: string, name: string, bytes: Buffer | string): void;
  /** The artifact (a zip) of a Data Science model. */
  putModelArtifact(modelId: string, zip: Buffer): void;
  /** Every request answered, in order. */
  readonly requests: SeenRequest[];
  readonly faults: {
    /** Delay before every answer. */
    latencyMs: number;
    /** Answers the next `count` requests (after the signature check) with 503 ServiceUnavailable. */
    unavailable(count?: number): void;
  };
  close(): Promise<void>;
}

/** Fields a ListObjects summary may carry, named by the `fields` query parameter. */
const SUMMARY_FIELDS = new Set(['name', 'size', 'etag', 'md5', 'timeCreated', 'timeModified', 'storageTier']);
const MAX_LIMIT = 1000;

function decode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new ApiError(400, 'InvalidParameter', 'The request path is not correctly encoded');
  }
}

export interface EmulatorOptions {
  /** Refuse unsigned requests (default true); a signed request is always verified. */
  strict?: boolean;
  host?: string;
  /** Largest ListObjects page, whatever `limit` asks for (the service may return fewer): tests paging. */
  pageLimit?: number;
}

export async function startOciStorageEmulator(opts: EmulatorOptions = {}): Promise<OciStorageEmulator> {
  const strict = opts.strict ?? true;
  const keys = new Map<string, KeyObject | string>();
  /** "namespace/bucket" -> object name -> object */
  const buckets = new Map<string, Map<string, StoredObject>>();
  const artifacts = new Map<string, StoredObject>();
  const requests: SeenRequest[] = [];
  let unavailable = 0;
  const faults = {
    latencyMs: 0,
    unavailable(count = 1): void {
      unavailable += count;
    },
  };

  const stored = (bytes: Buffer): StoredObject => ({
    bytes,
    md5: createHash('md5').update(bytes).digest('base64'),
    etag: randomUUID(),
    modified: new Date(),
  });

  const bucketOf = (namespace: string, bucket: string): Map<string, StoredObject> => {
    const b = buckets.get(`${namespace}/${bucket}`);
    if (b === undefined) {
      throw new ApiError(
        404,
        'BucketNotFound',
        `Either the bucket named '${bucket}' does not exist in the namespace '${namespace}' or you are not authorized to access it`,
      );
    }
    return b;
  };

  function listObjects(namespace: string, bucket: string, q: URLSearchParams): unknown {
    const objects = bucketOf(namespace, bucket);
    const prefix = q.get('prefix') ?? '';
    const start = q.get('start');
    const end = q.get('end');
    const startAfter = q.get('startAfter');
    const delimiter = q.get('delimiter');
    const asked = q.has('limit') ? Number(q.get('limit')) : MAX_LIMIT;
    if (!Number.isInteger(asked) || asked < 1 || asked > MAX_LIMIT) {
      throw new ApiError(400, 'InvalidParameter', `limit must be between 1 and ${MAX_LIMIT}`);
    }
    const limit = Math.min(asked, opts.pageLimit ?? MAX_LIMIT);
    if (delimiter !== null && delimiter !== '/') {
      throw new ApiError(400, 'InvalidParameter', "Only '/' is supported as a delimiter");
    }
    const fields = (q.get('fields') ?? 'name').split(',').map((f) => f.trim());
    const unknown = fields.filter((f) => !SUMMARY_FIELDS.has(f));
    if (unknown.length > 0)
      throw new ApiError(400, 'InvalidParameter', `Unknown fields: ${unknown.join(',')}`);
    // Object names sort by their UTF-8 bytes.
    const names = [...objects.keys()]
      .filter((n) => n.startsWith(prefix))
      .filter((n) => (start === null || n >= start) && (end === null || n < end))
      .filter((n) => startAfter === null || n > startAfter)
      .sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    const out: Record<string, unknown>[] = [];
    const prefixes = new Set<string>();
    let next: string | undefined;
    for (const name of names) {
      if (out.length + prefixes.size >= limit) {
        next = name;
        break;
      }
      const rest = name.slice(prefix.length);
      const cut = delimiter === null ? -1 : rest.indexOf(delimiter);
      if (cut !== -1) {
        prefixes.add(prefix + rest.slice(0, cut + 1));
        continue;
      }
      const o = objects.get(name)!;
      const summary: Record<string, unknown> = { name };
      if (fields.includes('size')) summary['size'] = o.bytes.length;
      if (fields.includes('etag')) summary['etag'] = o.etag;
      if (fields.includes('md5')) summary['md5'] = o.md5;
      if (fields.includes('timeCreated')) summary['timeCreated'] = o.modified.toISOString();
      if (fields.includes('timeModified')) summary['timeModified'] = o.modified.toISOString();
      if (fields.includes('storageTier')) summary['storageTier'] = 'Standard';
      out.push(summary);
    }
    const body: Record<string, unknown> = { objects: out };
    if (prefixes.size > 0) body['prefixes'] = [...prefixes];
    if (next !== undefined) body['nextStartWith'] = next;
    return body;
  }

  function sendObject(
    res: ServerResponse,
    requestId: string,
    o: StoredObject,
    head: boolean,
    extra = {},
  ): void {
    res.writeHead(200, {
      'opc-request-id': requestId,
      'content-type': 'application/octet-stream',
      'content-length': String(o.bytes.length),
      etag: o.etag,
      'content-md5': o.md5,
      'opc-content-md5': o.md5,
      'last-modified': o.modified.toUTCString(),
      ...extra,
    });
    res.end(head ? undefined : o.bytes);
  }

  /** Routes a verified request; returns the operation name. */
  function route(req: IncomingMessage, res: ServerResponse, requestId: string): string {
    const url = new URL(req.url ?? '/', 'http://emulator');
    const method = req.method ?? 'GET';
    const head = method === 'HEAD';
    if (method !== 'GET' && !head)
      throw new ApiError(405, 'MethodNotAllowed', `${method} is not supported here`);
    const os = /^\/n\/([^/]+)\/b\/([^/]+)\/o(?:\/(.+))?$/.exec(url.pathname);
    if (os !== null) {
      const namespace = decode(os[1] ?? '');
      const bucket = decode(os[2] ?? '');
      if (os[3] === undefined) {
        const body = JSON.stringify(listObjects(namespace, bucket, url.searchParams));
        res.writeHead(200, {
          'opc-request-id': requestId,
          'content-type': 'application/json',
          'content-length': String(Buffer.byteLength(body)),
        });
        res.end(body);
        return 'ListObjects';
      }
      const name = decode(os[3]);
      const o = bucketOf(namespace, bucket).get(name);
      if (o === undefined) {
        throw new ApiError(
          404,
          'ObjectNotFound',
          `The object '${name}' was not found in the bucket '${bucket}'`,
        );
      }
      sendObject(res, requestId, o, head);
      return head ? 'HeadObject' : 'GetObject';
    }
    const ds = /^\/20190101\/models\/([^/]+)\/artifact\/content$/.exec(url.pathname);
    if (ds !== null) {
      const modelId = decode(ds[1] ?? '');
      const a = artifacts.get(modelId);
      if (a === undefined) {
        throw new ApiError(
          404,
          'NotAuthorizedOrNotFound',
          `Authorization failed or requested resource not found for model ${modelId}`,
        );
      }
      sendObject(res, requestId, a, head, {
        'content-type': 'application/zip',
        'content-disposition': `attachment; filename=${modelId}.zip`,
      });
      return head ? 'HeadModelArtifact' : 'GetModelArtifactContent';
    }
    throw new ApiError(404, 'NotAuthorizedOrNotFound', `No route for ${method} ${url.pathname}`);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const requestId = (req.headers['opc-request-id'] as string | undefined) ?? randomUUID();
    const seen: SeenRequest = {
      method: req.method ?? '',
      url: req.url ?? '',
      operation: 'Unknown',
      status: 0,
    };
    requests.push(seen);
    const body = await buffer(req);
    if (faults.latencyMs > 0) await sleep(faults.latencyMs);
    try {
      const verdict = verifySignedRequest(req, body, keys, strict);
      if (!verdict.ok) throw new ApiError(401, 'NotAuthenticated', verdict.message);
      if (verdict.keyId !== undefined) seen.keyId = verdict.keyId;
      if (unavailable > 0) {
        unavailable--;
        throw new ApiError(503, 'ServiceUnavailable', 'The service is temporarily unavailable');
      }
      seen.operation = route(req, res, requestId);
      seen.status = 200;
    } catch (err) {
      const e =
        err instanceof ApiError
          ? err
          : new ApiError(500, 'InternalServerError', err instanceof Error ? err.message : String(err));
      seen.status = e.status;
      const body = JSON.stringify({ code: e.code, message: e.message });
      res.writeHead(e.status, {
        'opc-request-id': requestId,
        'content-type': 'application/json',
        'content-length': String(Buffer.byteLength(body)),
      });
      res.end(req.method === 'HEAD' ? undefined : body);
    }
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch(() => res.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, opts.host ?? '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://${opts.host ?? '127.0.0.1'}:${port}`,
    addKey: (key) => keys.set(key.keyId, key.publicKeyPem),
    createBucket: (namespace, bucket) => {
      if (!buckets.has(`${namespace}/${bucket}`)) buckets.set(`${namespace}/${bucket}`, new Map());
    },
    putObject: (namespace, bucket, name, bytes) => {
      bucketOf(namespace, bucket).set(name, stored(Buffer.from(bytes)));
    },
    putModelArtifact: (modelId, zip) => artifacts.set(modelId, stored(zip)),
    requests,
    faults,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => {
          resolve();
        });
      }),
  };
}
