/**
 * How the agent reaches OCI for oci:// and Model Catalog sources: region, endpoint and auth type come
 * from its flags (the operator sets them from the deployment's spec.vllm.oci); an api-key Secret is
 * read from its mounted files on every fetch, so a rotated key is used without a restart. Nothing
 * read here is ever put in a message or a log line.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { ReadableStream as WebStream } from 'node:stream/web';
import * as common from 'oci-common';
import type { DataScienceClient } from 'oci-datascience';
import type { ObjectStorageClient } from 'oci-objectstorage';
import {
  API_KEY_FIELDS,
  API_KEY_OPTIONAL_FIELDS,
  OciAuthError,
  type OciAuthType,
  apiKeyMaterial,
  authProvider,
} from '../oci/auth.ts';
import { dataScienceClient, objectStorageClient } from '../oci/client.ts';
import { AgentError, badGateway, badRequest, errorMessage } from './errors.ts';
import { type Budget, type MeterOptions, type Saved, saveStream } from './meter.ts';

export interface OciAccess {
  region: string;
  /** One override for both Object Storage and Data Science (tests, a private realm's proxy). */
  endpoint?: string;
  auth: OciAuthType;
  /** The mounted api-key Secret (auth apiKey): its keys are files in <secretsDir>/<secret>. */
  secret?: string;
}

export interface OciClients {
  objectStorage(): Promise<ObjectStorageClient>;
  dataScience(): Promise<DataScienceClient>;
}

/** Reads the api-key Secret's files; a key that is not there is simply absent. */
async function readApiKeySecret(dir: string): Promise<Record<string, string>> {
  const data: Record<string, string> = {};
  for (const key of [...API_KEY_FIELDS, ...API_KEY_OPTIONAL_FIELDS]) {
    try {
      data[key] = await readFile(join(dir, key), 'utf8');
    } catch {
      // apiKeyMaterial names the required keys that are missing.
    }
  }
  return data;
}

/**
 * The SDK clients for one fetch. Token principals (workload identity, instance and resource
 * principals) refresh their own tokens, so their provider is built once and kept.
 */
export function ociClients(access: OciAccess | undefined, secretsDir: string | undefined): OciClients {
  let tokenProvider: Promise<common.AuthenticationDetailsProvider> | undefined;
  const provider = async (): Promise<common.AuthenticationDetailsProvider> => {
    if (access === undefined) {
      throw badRequest(
        'this fetch agent has no OCI access (--oci-region, --oci-auth): set spec.vllm.oci of the StackedDeployment',
      );
    }
    try {
      if (access.auth !== 'apiKey') {
        tokenProvider ??= authProvider(access.auth, undefined);
        return await tokenProvider;
      }
      const secret = access.secret;
      if (secret === undefined || secretsDir === undefined) {
        throw badRequest('auth apiKey needs the api-key Secret mounted (--oci-secret)');
      }
      const data = await readApiKeySecret(join(secretsDir, secret));
      return await authProvider('apiKey', apiKeyMaterial(data, secret));
    } catch (err) {
      if (err instanceof OciAuthError) {
        // Let a token principal try again next time: the metadata service may be back.
        tokenProvider = undefined;
        throw badRequest(err.message);
      }
      throw err;
    }
  };
  const target = () => ({ region: access?.region ?? '', endpoint: access?.endpoint });
  return {
    objectStorage: async () => objectStorageClient(await provider(), target()),
    dataScience: async () => dataScienceClient(await provider(), target()),
  };
}

/**
 * An SDK failure as an agent error naming the call: OCI's own status and code for an answer (401
 * NotAuthenticated, 404 ObjectNotFound, ...), the network error otherwise. OCI's messages describe
 * the request, never the credentials.
 */
export function ociFailure(what: string, err: unknown): AgentError {
  if (err instanceof AgentError) return err;
  if (err instanceof common.OciError) {
    return badGateway(`${what}: ${err.statusCode} ${err.serviceCode}: ${err.message}`);
  }
  // The SDK throws a plain {code, message} object for network failures.
  const message =
    typeof err === 'object' && err !== null && 'message' in err && typeof err.message === 'string'
      ? err.message
      : errorMessage(err);
  return badGateway(`${what}: ${message}`);
}

/** Runs an SDK call, turning its failure into an agent error naming `what`. */
export async function ociCall<T>(what: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    throw ociFailure(what, err);
  }
}

/** The SDK hands back a web stream (it uses Node's fetch) or a Node stream. */
export function nodeStream(value: Readable | ReadableStream | undefined | null): Readable {
  if (value === undefined || value === null) return Readable.from([]);
  if (value instanceof Readable) return value;
  return Readable.fromWeb(value as WebStream);
}

/**
 * Saves a response body to `dest`: a failure of the remote half-way is a 502 naming `what`; a full
 * disk or any other failure of ours stays what it is; the budget's and AgentErrors pass through.
 * Once `signal` aborts, the body is not (or no longer) saved and the save fails with its reason.
 */
export async function saveBody(
  value: Readable | ReadableStream | undefined | null,
  dest: string,
  budget: Budget,
  what: string,
  opts: MeterOptions & { signal?: AbortSignal | undefined } = {},
): Promise<Saved> {
  const { signal, ...meter } = opts;
  const body = nodeStream(value);
  const seen = { remoteFailed: false };
  body.once('error', () => {
    seen.remoteFailed = true;
  });
  // Without an error: a web stream's cancel would reject unobserved with it. The save then fails
  // with a premature close, replaced below by the abort's reason.
  const stop = (): void => {
    body.destroy();
  };
  signal?.addEventListener('abort', stop, { once: true });
  try {
    signal?.throwIfAborted();
    return await saveStream(body, dest, budget, meter);
  } catch (err) {
    signal?.throwIfAborted();
    if (err instanceof AgentError) throw err;
    if (seen.remoteFailed) throw badGateway(`${what}: ${errorMessage(err)}`);
    throw err;
  } finally {
    signal?.removeEventListener('abort', stop);
    body.destroy();
  }
}
