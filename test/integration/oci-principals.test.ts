// The principal-auth boundary end to end: the operator process with --principal-auth-allow, the OCI
// emulator in this process. A refused deployment makes no OCI call and gets no finalizer; an allowed
// one passes the boundary and goes on to build its credentials.
//
// The allowed path stops at the credentials here: the emulator has no token endpoints. An instance
// principal needs IMDS (src/oci/auth.ts builds it with oci-common's default metadata URL,
// http://169.254.169.254/opc/v2/, which no flag or env moves) and the federation endpoint
// auth.<region>.oraclecloud.com; a resource principal the OCI_RESOURCE_PRINCIPAL_VERSION=2.2 env
// (an RPST and its private key), whose requests are signed with `ST$<token>` keyIds that the
// emulator's signature check does not accept yet; the operator's workload identity the OKE proxymux
// token endpoint on KUBERNETES_SERVICE_HOST:KUBERNETES_SERVICE_PORT_PROXYMUX over TLS, with the
// ServiceAccount token and cluster CA read at the in-pod paths. So each allowed principal is shown to reach its provider (its
// CredentialsInvalid names what it lacks) with still no call to the emulator.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import type { StackedDeployment } from '../../src/api/v1alpha1/deployment.ts';
import type { OciAuthType } from '../../src/oci/auth.ts';
import type { ControlPlane } from '../../playground/controlplane.ts';
import { kubectl } from '../../playground/kubectl.ts';
import { REALISTIC, startOciEmulator, type OciEmulator } from '../../playground/oci-emulator.ts';
import { controlPlaneWithNamespace, startOperator, type OperatorProcess } from '../../playground/operator.ts';
import { condition, eventually, getObject, waitForReady } from '../../playground/wait.ts';
import { ociDeployment } from '../support/objects.ts';

const NS = 'oci-principals';
const BASE = 'ocid1.datasciencemodel.oc1.iad.aaaaaaaabase';
const LORA = 'ocid1.datasciencemodel.oc1.iad.aaaaaaaalora1';
const ALLOWED = 'ocid1.compartment.oc1..aaaaaaaaallowed';
const DENIED = 'ocid1.compartment.oc1..aaaaaaaadenied';

function deployment(
  name: string,
  emu: OciEmulator,
  type: OciAuthType,
  compartmentId: string,
): StackedDeployment {
  return ociDeployment(name, {
    group: 'principals',
    endpoint: emu.url,
    oci: { compartmentId, auth: { type } },
  });
}

describe('principal-based OCI auth: the --principal-auth-allow boundary against the OCI emulator', function () {
  this.timeout(120_000);
  let cp: ControlPlane;
  let emu: OciEmulator;
  let operator: OperatorProcess | undefined;
  const apply = (obj: object) => kubectl(cp, ['apply', '-n', NS, '-f', '-'], { input: JSON.stringify(obj) });

  before(async () => {
    cp = await controlPlaneWithNamespace(NS);
    emu = await startOciEmulator({ models: [BASE, LORA], ...REALISTIC });
    operator = await startOperator(cp, {
      identity: 'oci-principals',
      namespace: NS,
      extraArgs: [
        '--oci-progress-interval-ms=100',
        '--oci-poll-interval=2',
        `--principal-auth-allow=${NS}=${ALLOWED}`,
      ],
    });
    await apply({
      apiVersion: 'serving.stacked.dev/v1alpha1',
      kind: 'StackedModelGroup',
      metadata: { name: 'principals' },
      spec: {
        baseModel: { inferenceKey: 'basemodel', modelId: BASE },
        members: [{ inferenceKey: 'sql-lora-1', modelId: LORA }],
      },
    });
  });

  after(async () => {
    await operator?.stop();
    await emu.close();
  });

  for (const type of ['instancePrincipal', 'resourcePrincipal', 'workloadIdentity'] as const) {
    it(`refuses ${type} in a compartment the flag does not allow for the namespace, with no OCI call and no finalizer`, async () => {
      const name = `denied-${type.toLowerCase()}`;
      await apply(deployment(name, emu, type, DENIED));
      const refused = await waitForReady(cp, NS, 'sdep', name, 'False', 'PrincipalAuthNotAllowed', 30_000);
      const message = condition(refused, 'Ready')!.message;
      for (const part of [`namespace "${NS}"`, type, DENIED, '--principal-auth-allow']) {
        assert.ok(message.includes(part), `the message names ${part}: ${message}`);
      }
      await sleep(2500); // several polls' worth: still nothing
      assert.deepEqual(
        emu.requests().map((r) => r.operation),
        [],
        'no OCI call',
      );
      const o = (await getObject(cp, NS, 'sdep', name)) as
        { metadata: { finalizers?: string[] } } | undefined;
      assert.deepEqual(o?.metadata.finalizers ?? [], [], 'no finalizer: nothing to clean up');
      await kubectl(cp, ['delete', 'sdep', name, '-n', NS, '--wait=true', '--timeout=30s']);
    });
  }

  // Instance principal is left out here: past the boundary, oci-common calls IMDS at 169.254.169.254,
  // which on this machine waits for its connect timeouts (and retries) rather than failing at once.
  for (const [type, lacks] of [
    ['resourcePrincipal', /resource principal credentials unavailable/],
    ['workloadIdentity', /KUBERNETES_SERVICE_PORT_PROXYMUX not set/],
  ] as const) {
    it(`lets ${type} through in an allowed compartment: its provider is built (and, with no token endpoint here, says what it lacks)`, async () => {
      const name = `allowed-${type.toLowerCase()}`;
      await apply(deployment(name, emu, type, ALLOWED));
      const o = await eventually(
        `${name} past the boundary`,
        async () => {
          const x = await getObject(cp, NS, 'sdep', name);
          const r = condition(x, 'Ready');
          return r !== undefined && r.reason !== 'PrincipalAuthNotAllowed' && r.status === 'False'
            ? x
            : undefined;
        },
        30_000,
      );
      assert.equal(condition(o, 'Ready')?.reason, 'CredentialsInvalid');
      assert.match(condition(o, 'Ready')!.message, lacks);
      assert.deepEqual(
        emu.requests().map((r) => r.operation),
        [],
        'no OCI call without credentials',
      );
      await kubectl(cp, ['delete', 'sdep', name, '-n', NS, '--wait=true', '--timeout=30s']);
    });
  }

  it('removes the router of a deployment whose principal the boundary refuses later (it signs with those credentials)', async () => {
    const name = 'routed-workload-identity';
    const d = deployment(name, emu, 'workloadIdentity', ALLOWED);
    (d.spec.oci as { router?: object }).router = { enabled: true, replicas: 1 };
    await apply(d);
    const routerDeployment = async () =>
      (
        await kubectl(cp, ['get', 'deploy', `${name}-router`, '-n', NS, '--ignore-not-found', '-o', 'name'])
      ).stdout.trim();
    await eventually(
      'the router deployed past the boundary',
      async () => ((await routerDeployment()) !== '' ? true : undefined),
      30_000,
    );
    // The cluster admin takes the namespace off the list: the operator restarts with an empty one.
    await operator?.stop();
    operator = await startOperator(cp, {
      identity: 'oci-principals-2',
      namespace: NS,
      extraArgs: ['--oci-progress-interval-ms=100', '--oci-poll-interval=2'],
    });
    await waitForReady(cp, NS, 'sdep', name, 'False', 'PrincipalAuthNotAllowed', 30_000);
    await eventually(
      'the router gone',
      async () => ((await routerDeployment()) === '' ? true : undefined),
      30_000,
    );
    await kubectl(cp, ['delete', 'sdep', name, '-n', NS, '--wait=true', '--timeout=30s']);
  });
});
