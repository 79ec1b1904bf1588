import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { OciMetrics, instrumented } from '../../../../src/backends/oci/metrics.ts';
import { dataScienceClient } from '../../../../src/oci/client.ts';
import { startOciEmulator, type OciEmulator } from '../../../../playground/oci-emulator.ts';
import { apiKeyProvider, makeApiKey } from '../../../../playground/oci-keys.ts';

const COMPARTMENT = 'ocid1.compartment.oc1..aaaaaaaacompartment';

describe('OCI call metrics', () => {
  let emu: OciEmulator;
  const key = makeApiKey();

  before(async () => {
    emu = await startOciEmulator({ keys: { [key.keyId]: key.publicKeyPem } });
  });
  after(() => emu.close());

  it('counts every operation by result, including the pages a record iterator reads', async () => {
    const registry = new Registry();
    const metrics = new OciMetrics(registry);
    const provider = apiKeyProvider(key);
    const client = instrumented(
      dataScienceClient(provider, { region: 'us-ashburn-1', endpoint: emu.url }),
      metrics,
    );

    const listed = [];
    for await (const g of client.listModelGroupsRecordIterator({ compartmentId: COMPARTMENT }))
      listed.push(g);
    assert.deepEqual(listed, []);
    await assert.rejects(
      client.getModelGroup({ modelGroupId: 'ocid1.datasciencemodelgroup.oc1.iad.absent' }),
    );

    const text = await registry.metrics();
    assert.match(text, /stacked_oci_requests_total\{operation="listModelGroups",result="ok"\} 1/);
    assert.match(text, /stacked_oci_requests_total\{operation="getModelGroup",result="404"\} 1/);
    assert.match(text, /stacked_oci_request_duration_seconds_count\{operation="getModelGroup"\} 1/);
    assert.equal(emu.requests().length, 2, 'the proxy adds no call of its own');
  });
});
