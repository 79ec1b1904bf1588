// The principal-auth boundary (src/oci/principals.ts) as both backends' preflights apply it: which
// namespace may use instancePrincipal, resourcePrincipal or workloadIdentity, and in which
// compartment; apiKey needs no entry. A refusal names the namespace, the type, the compartment and
// the flag. The oci backend's finalizer asks the same question (ociAuthPreflight).
import assert from 'node:assert/strict';
import type { StackedDeployment } from '../../../../src/api/v1alpha1/deployment.ts';
import { withDefaults } from '../../../../src/api/v1alpha1/validate.ts';
import { ociAuthPreflight, ociPreflight } from '../../../../src/backends/oci/preflight.ts';
import { vllmPreflight } from '../../../../src/backends/vllm/preflight.ts';
import { parsePrincipalAuthAllow } from '../../../../src/config.ts';
import type { OciAuthType } from '../../../../src/oci/auth.ts';
import { sampleDeployment, sampleGroup } from '../../../support/objects.ts';

const COMPARTMENT = 'ocid1.compartment.oc1..aaaaaaaacompartment'; // the sample's
const OTHER = 'ocid1.compartment.oc1..aaaaaaaaother';
const PRINCIPALS: OciAuthType[] = ['instancePrincipal', 'resourcePrincipal', 'workloadIdentity'];

function ociDeployment(namespace: string, type: OciAuthType): StackedDeployment {
  const d = withDefaults(
    'StackedDeployment',
    sampleDeployment('deployment-oci.yaml', 'd', (x) => {
      x.metadata.namespace = namespace;
      x.spec.oci!.auth = type === 'apiKey' ? { type, secretRef: { name: 'oci-api-key' } } : { type };
    }),
  );
  return d;
}

function vllmDeployment(namespace: string, type: OciAuthType): StackedDeployment {
  return withDefaults(
    'StackedDeployment',
    sampleDeployment('deployment-vllm.yaml', 'd', (x) => {
      x.metadata.namespace = namespace;
      x.spec.vllm!.oci = {
        region: 'us-ashburn-1',
        auth: type === 'apiKey' ? { type, secretRef: { name: 'oci-api-key' } } : { type },
      };
    }),
  );
}

const group = sampleGroup('sql-assistants', (g) => {
  g.spec.baseModel.modelId = 'ocid1.datasciencemodel.oc1.iad.aaaaaaaabase';
  for (const [i, m] of (g.spec.members ?? []).entries()) {
    m.modelId = `ocid1.datasciencemodel.oc1.iad.aaaaaaaalora${String(i)}`;
  }
});

describe('principal-based OCI auth: the boundary of --principal-auth-allow (pure)', () => {
  const allow = parsePrincipalAuthAllow(`team-a=${COMPARTMENT},team-b=${OTHER},team-star=*`);

  describe('oci backend', () => {
    it('needs no entry for apiKey, in any namespace', () => {
      assert.equal(ociPreflight(ociDeployment('anyone', 'apiKey'), group, new Map()), undefined);
      assert.equal(ociPreflight(ociDeployment('anyone', 'apiKey'), group, allow), undefined);
    });

    for (const type of PRINCIPALS) {
      it(`refuses ${type} in a namespace the flag does not list (and by default), before any OCI call`, () => {
        for (const a of [allow, new Map()]) {
          const v = ociPreflight(ociDeployment('intruder', type), group, a);
          assert.deepEqual(v, {
            ready: false,
            reason: 'PrincipalAuthNotAllowed',
            message:
              `namespace "intruder" may not use ${type} auth in compartment ${COMPARTMENT}: ` +
              '--principal-auth-allow does not list namespace "intruder". Use an apiKey Secret of the ' +
              'namespace, or ask the cluster admin to allow it in --principal-auth-allow',
          });
        }
      });

      it(`refuses ${type} in a compartment not listed for the namespace`, () => {
        const v = ociPreflight(ociDeployment('team-b', type), group, allow);
        assert.equal(v?.reason, 'PrincipalAuthNotAllowed');
        assert.equal(
          v.message,
          `namespace "team-b" may not use ${type} auth in compartment ${COMPARTMENT}: ` +
            `--principal-auth-allow allows namespace "team-b" only in ${OTHER}. Use an apiKey Secret of ` +
            'the namespace, or ask the cluster admin to allow it in --principal-auth-allow',
        );
      });

      it(`allows ${type} in a listed compartment, and anywhere for *`, () => {
        assert.equal(ociPreflight(ociDeployment('team-a', type), group, allow), undefined);
        assert.equal(ociPreflight(ociDeployment('team-star', type), group, allow), undefined);
      });
    }

    it('checks the auth before the model ids, and the model ids once the auth is allowed', () => {
      const noIds = sampleGroup('sql-assistants', (g) => {
        delete g.spec.baseModel.modelId;
      });
      assert.equal(
        ociPreflight(ociDeployment('intruder', 'instancePrincipal'), noIds, allow)?.reason,
        'PrincipalAuthNotAllowed',
      );
      assert.equal(
        ociPreflight(ociDeployment('team-a', 'instancePrincipal'), noIds, allow)?.reason,
        'ModelIdMissing',
      );
    });

    it('gives the finalizer the same answer: an entry removed since the resources were made blocks their deletion', () => {
      assert.equal(ociAuthPreflight(ociDeployment('team-a', 'resourcePrincipal'), allow), undefined);
      assert.equal(
        ociAuthPreflight(ociDeployment('team-a', 'resourcePrincipal'), new Map())?.reason,
        'PrincipalAuthNotAllowed',
      );
    });
  });

  describe("vllm backend (the fetch agent's spec.vllm.oci.auth)", () => {
    it('needs no entry for apiKey', () => {
      assert.equal(vllmPreflight(vllmDeployment('anyone', 'apiKey'), sampleGroup('g'), new Map()), undefined);
    });

    for (const type of PRINCIPALS) {
      it(`refuses ${type} unless the namespace may use it in any compartment (*)`, () => {
        const unlisted = vllmPreflight(vllmDeployment('intruder', type), sampleGroup('g'), allow);
        assert.equal(unlisted?.reason, 'PrincipalAuthNotAllowed');
        assert.equal(
          unlisted.message,
          `namespace "intruder" may not use ${type} auth in any compartment: --principal-auth-allow does ` +
            'not list namespace "intruder". Use an apiKey Secret of the namespace, or ask the cluster ' +
            'admin to allow it in --principal-auth-allow',
        );
        // The agent reads buckets and catalog models whose compartment it cannot name in advance.
        const someCompartments = vllmPreflight(vllmDeployment('team-a', type), sampleGroup('g'), allow);
        assert.equal(someCompartments?.reason, 'PrincipalAuthNotAllowed');
        assert.match(
          someCompartments.message,
          new RegExp(
            `only in ${COMPARTMENT}, and the fetch agent names no compartment \\(it would need "team-a=\\*"\\)`,
          ),
        );
        assert.equal(vllmPreflight(vllmDeployment('team-star', type), sampleGroup('g'), allow), undefined);
      });
    }
  });
});
