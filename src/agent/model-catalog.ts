/**
 * Model Catalog sources: the artifact of a Data Science model (by its OCID) is a zip, downloaded
 * within maxBytes (sha256 checked when pinned) and extracted like an https archive.
 */
import { join } from 'node:path';
import type { DataScienceClient } from 'oci-datascience';
import { checkSha256, tooLarge } from './download.ts';
import { Budget } from './meter.ts';
import type { OciFetch, Retrieved, Unpack } from './object-storage.ts';
import { nodeStream, ociCall, saveBody } from './oci-access.ts';

export async function fetchModelCatalog(
  client: DataScienceClient,
  modelId: string,
  req: OciFetch,
  unpack: Unpack,
): Promise<Retrieved> {
  const what = `GetModelArtifactContent ${modelId}`;
  // The SDK takes no signal: a cancel drops the body once it comes.
  const res = await ociCall(what, () => client.getModelArtifactContent({ modelId }));
  const declared = res.contentLength as number | undefined;
  if (declared !== undefined && declared > req.maxBytes) {
    // Frees the connection without reading the body.
    nodeStream(res.value).destroy();
    throw tooLarge(req.name, req.maxBytes);
  }
  const file = join(req.tmp, 'artifact.zip');
  const budget = new Budget(req.maxBytes, () => tooLarge(req.name, req.maxBytes));
  const saved = await saveBody(res.value, file, budget, what, { signal: req.signal, progress: req.progress });
  checkSha256(req.name, req.sha256, saved.sha256);
  return { folder: await unpack('zip', file), sha256: saved.sha256, bytes: saved.bytes };
}
