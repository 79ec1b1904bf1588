// The router's predict signer against the OCI emulator, which verifies every signature as OCI does:
// what signPredict signs is answered, a tampered body or a wrong key is refused with 401. The
// credentials come from an api-key Secret the way the operator builds them.

import assert from 'node:assert/strict';
import * as common from 'oci-common';
import * as ds from 'oci-datascience';
import { OciAuthError } from '../../../src/oci/auth.ts';
import { predictCredentials, type SecretData } from '../../../src/router/oci-credentials.ts';
import { PredictSignError, signPredict } from '../../../src/router/oci-signer.ts';
import { type OciEmulator, startOciEmulator } from '../../../playground/oci-emulator.ts';
import { apiKeyProvider, apiKeySecret, makeApiKey, type ApiKey } from '../../../playground/oci-keys.ts';

const COMPARTMENT = 'ocid1.compartment.oc1..aaaaaaaacompartment';
const PROJECT = 'ocid1.datascienceproject.oc1.iad.aaaaaaaaproject';
const BASE = 'ocid1.datasciencemodel.oc1.iad.aaaaaaaabase';
const LORA1 = 'ocid1.datasciencemodel.oc1.iad.aaaaaaaalora1';
const LORA2 = 'ocid1.datasciencemodel.oc1.iad.aaaaaaaalora2';
const NS = 'team-a';
const AUTH = { type: 'apiKey' as const, secretRef: { name: 'oci-api-key' } };

/** The api-key Secret as the API server returns it: base64 `data`. */
function secretOf(key: ApiKey): SecretData {
  const { stringData } = apiKeySecret('oci-api-key', key) as { stringData: Record<string, string> };
  return {
    data: Object.fromEntries(
      Object.entries(stringData).map(([k, v]) => [k, Buffer.from(v).toString('base64')]),
    ),
  };
}

/** A stacked model group deployed as the seed does it, ACTIVE; returns its predict URL. */
async function stackedDeployment(emu: OciEmulator, key: ApiKey): Promise<string> {
  const client = new ds.DataScienceClient(
    { authenticationDetailsProvider: apiKeyProvider(key, common.Region.US_ASHBURN_1) },
    { retryConfiguration: common.NoRetryConfigurationDetails },
  );
  client.endpoint = emu.url;
  const fast = {
    terminationStrategy: new common.MaxTimeTerminationStrategy(10),
    delayStrategy: { delay: () => 0.02 },
  };
  client.createWaiters(fast);
  const groupDetails: ds.models.StackedModelGroupDetails = { type: 'STACKED', baseModelId: BASE };
  const group = await client.createModelGroup({
    createBaseModelGroupDetails: {
      createType: 'CREATE',
      compartmentId: COMPARTMENT,
      projectId: PROJECT,
      modelGroupDetails: groupDetails,
      memberModelEntries: {
        memberModelDetails: [
          { modelId: BASE, inferenceKey: 'basemodel' },
          { modelId: LORA1, inferenceKey: 'sql-lora-1' },
          { modelId: LORA2, inferenceKey: 'sql-lora-2' },
        ],
      },
    } satisfies ds.models.CreateModelGroupDetails,
  });
  const groupId = group.modelGroup.id;
  await client
    .getWaiters()
    .forModelGroup({ modelGroupId: groupId }, ds.models.ModelGroupLifecycleState.Active);
  const scaling: ds.models.FixedSizeScalingPolicy = { policyType: 'FIXED_SIZE', instanceCount: 1 };
  const environment: ds.models.OcirModelDeploymentEnvironmentConfigurationDetails = {
    environmentConfigurationType: 'OCIR_CONTAINER',
    serverPort: 8080,
    image: 'iad.ocir.io/ns/odsc-vllm-serving:0.6.4.post1.1',
    environmentVariables: { MODEL_DEPLOY_PREDICT_ENDPOINT: '/v1/completions' },
  };
  const config: ds.models.ModelGroupDeploymentConfigurationDetails = {
    deploymentType: 'MODEL_GROUP',
    modelGroupConfigurationDetails: { modelGroupId: groupId },
    infrastructureConfigurationDetails: {
      infrastructureType: 'INSTANCE_POOL',
      instanceConfiguration: { instanceShapeName: 'VM.GPU.A10.1' },
      scalingPolicy: scaling,
    },
    environmentConfigurationDetails: environment,
  };
  const created = await client.createModelDeployment({
    createModelDeploymentDetails: {
      compartmentId: COMPARTMENT,
      projectId: PROJECT,
      modelDeploymentConfigurationDetails: config,
    },
  });
  const active = await client
    .getWaiters()
    .forModelDeployment(
      { modelDeploymentId: created.modelDeployment.id },
      ds.models.ModelDeploymentLifecycleState.Active,
    );
  client.close();
  return `${active!.modelDeployment.modelDeploymentUrl}/predict`;
}

interface Completion {
  model: string;
  choices: { text: string }[];
}

async function send(
  url: string,
  headers: Record<string, string>,
  body: Buffer,
): Promise<{ status: number; json: unknown }> {
  const res = await fetch(url, { method: 'POST', headers, body });
  return { status: res.status, json: await res.json() };
}

const bodyOf = (model: string, prompt = '[user] Write a SQL query [/user] [assistant]') =>
  Buffer.from(JSON.stringify({ model, prompt, max_tokens: 4, temperature: 0 }));

const signedNames = (authorization: string | undefined): string[] =>
  (/headers="([^"]*)"/.exec(authorization ?? '')?.[1] ?? '').toLowerCase().split(' ');

describe('router: OCI predict signer', function () {
  this.timeout(20_000);
  let emu: OciEmulator;
  let key: ApiKey;
  let url = '';
  let provider: common.AuthenticationDetailsProvider;
  const secrets = new Map<string, SecretData>();
  const credentials = predictCredentials((namespace, name) =>
    Promise.resolve(secrets.get(`${namespace}/${name}`)),
  );

  before(async () => {
    key = makeApiKey('router');
    emu = await startOciEmulator({
      keys: { [key.keyId]: key.publicKeyPem },
      models: [BASE, LORA1, LORA2],
      delays: { groupCreateMs: 10, deploymentCreateMs: 10 },
    });
    url = await stackedDeployment(emu, key);
    secrets.set(`${NS}/oci-api-key`, secretOf(key));
    provider = await credentials(NS, { auth: AUTH });
  });

  after(() => emu.close());

  it("signs what the SDK signs for a POST, and the emulator answers with the member's completion", async () => {
    const body = bodyOf('sql-lora-1');
    // What a client sent the router: its own host and credentials must not reach OCI.
    const headers = await signPredict(provider, url, body, {
      'Content-Type': 'application/json',
      host: 'router.team-a.svc',
      authorization: 'Bearer from-the-client',
      'content-length': '1',
      accept: 'application/json',
    });
    assert.equal(headers.host, new URL(url).host);
    assert.equal(headers['content-length'], String(body.length));
    assert.equal(headers.accept, 'application/json');
    assert.ok(headers['x-date'] !== undefined && headers['x-content-sha256'] !== undefined);
    assert.match(headers.authorization ?? '', new RegExp(`^Signature version="1",.*keyId="${key.keyId}"`));
    assert.deepEqual(signedNames(headers.authorization), [
      'x-date',
      '(request-target)',
      'host',
      'content-type',
      'content-length',
      'x-content-sha256',
    ]);
    const r = await send(url, headers, body);
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.match((r.json as Completion).choices[0]!.text, /^\[sql-lora-1\]/);
    const last = emu.requests().at(-1)!;
    assert.equal(last.operation, 'Predict');
    assert.equal(last.keyId, key.keyId);
  });

  it('signs the bytes sent: by model OCID, with a prompt beyond ASCII', async () => {
    const body = bodyOf(LORA2, 'Écris une requête SQL 🚀 – 日本語');
    const r = await send(url, await signPredict(provider, url, body), body);
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.match((r.json as Completion).choices[0]!.text, /^\[sql-lora-2\]/);
  });

  it('is refused when the body is not the one signed', async () => {
    const signed = bodyOf('sql-lora-1');
    const tampered = bodyOf('sql-lora-2'); // same length: only the hash can tell
    assert.equal(tampered.length, signed.length);
    const r = await send(url, await signPredict(provider, url, signed), tampered);
    assert.equal(r.status, 401);
    assert.deepEqual(r.json, {
      code: 'NotAuthenticated',
      message: 'x-content-sha256 does not match the body',
    });
  });

  it('is refused when signed with a wrong key', async () => {
    const stranger = makeApiKey('stranger');
    const unknown = await signPredict(apiKeyProvider(stranger), url, bodyOf('sql-lora-1'));
    const r1 = await send(url, unknown, bodyOf('sql-lora-1'));
    assert.equal(r1.status, 401);
    assert.match((r1.json as { message: string }).message, /Unknown keyId/);
    // The registered key's id with another private key: a forgery.
    const forged = new common.SimpleAuthenticationDetailsProvider(
      key.tenancy,
      key.user,
      key.fingerprint,
      stranger.privateKeyPem,
      null,
    );
    const r2 = await send(url, await signPredict(forged, url, bodyOf('sql-lora-1')), bodyOf('sql-lora-1'));
    assert.equal(r2.status, 401);
    assert.deepEqual(r2.json, {
      code: 'NotAuthenticated',
      message: 'The signature does not match the request',
    });
  });

  it('the emulator refuses a POST whose signature leaves out the body headers, as OCI does', async () => {
    const body = bodyOf('sql-lora-1');
    const headers = new Headers({ 'content-type': 'application/json' });
    // forceExcludeBody: the signer signs x-date, (request-target) and host only.
    await new common.DefaultRequestSigner(provider).signHttpRequest(
      { method: 'POST', uri: url, headers, body: body.toString() },
      true,
    );
    const r = await send(url, Object.fromEntries(headers), body);
    assert.equal(r.status, 401);
    assert.match(
      (r.json as { message: string }).message,
      /Required headers not signed: content-type content-length x-content-sha256/,
    );
    const unsigned = await send(url, { 'content-type': 'application/json' }, body);
    assert.equal(unsigned.status, 401, 'an unsigned predict is refused');
  });

  it('refuses to sign what it cannot sign as sent', async () => {
    await assert.rejects(signPredict(provider, url, Buffer.from([0x7b, 0xff, 0x7d])), PredictSignError);
    await assert.rejects(
      signPredict(provider, 'http://modeldeployment.example.com/md/x/predict', bodyOf('a')),
      /must be https:\/\//,
    );
    await assert.rejects(signPredict(provider, 'not a url', bodyOf('a')), PredictSignError);
    const empty = await signPredict(provider, url, Buffer.alloc(0));
    assert.equal(empty['content-length'], '0');
    assert.equal(empty['x-content-sha256'], '47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=');
  });

  it("builds the provider from the deployment's Secret like the operator, once per Secret content", async () => {
    assert.equal(await credentials(NS, { auth: AUTH }), provider, 'the same Secret, the same provider');
    await assert.rejects(credentials('elsewhere', { auth: AUTH }), (e: unknown) => {
      assert.ok(e instanceof OciAuthError);
      assert.equal(e.message, 'Secret "oci-api-key" not found in namespace elsewhere');
      return true;
    });
    const rotated = makeApiKey('router');
    emu.addKey(rotated.keyId, rotated.publicKeyPem);
    secrets.set(`${NS}/oci-api-key`, secretOf(rotated));
    const next = await credentials(NS, { auth: AUTH });
    assert.notEqual(next, provider, 'a rotated key builds a new provider');
    const body = bodyOf('basemodel');
    const r = await send(url, await signPredict(next, url, body), body);
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.equal(emu.requests().at(-1)!.keyId, rotated.keyId);
    secrets.set(`${NS}/oci-api-key`, { data: { tenancy: Buffer.from('t').toString('base64') } });
    await assert.rejects(
      credentials(NS, { auth: AUTH }),
      /Secret "oci-api-key" lacks user, fingerprint, privateKey/,
    );
  });
});
