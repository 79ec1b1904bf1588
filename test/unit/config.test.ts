import assert from 'node:assert/strict';
import { ConfigError, parseConfig } from '../../src/config.ts';

describe('configuration', () => {
  it('has production defaults', () => {
    const c = parseConfig([], {});
    assert.equal(c.leaderElect, true);
    assert.equal(c.leaderElectionNamespace, 'stacked-system');
    assert.equal(c.healthPort, 8081);
    assert.equal(c.namespace, undefined);
  });

  it('takes flags over environment over defaults', () => {
    const env = {
      WATCH_NAMESPACE: 'from-env',
      HEALTH_PORT: '9000',
      LEADER_ELECT: 'false',
      POD_NAMESPACE: 'ops',
    };
    const c = parseConfig(['--namespace=from-flag', '--leader-elect'], env);
    assert.equal(c.namespace, 'from-flag');
    assert.equal(c.healthPort, 9000);
    assert.equal(c.leaderElect, true);
    assert.equal(c.leaderElectionNamespace, 'ops');
    assert.equal(parseConfig(['--no-leader-elect'], {}).leaderElect, false);
  });

  it('refuses bad values with a message naming the flag', () => {
    assert.throws(
      () => parseConfig(['--workers=many'], {}),
      (e: unknown) => e instanceof ConfigError && /--workers/.test(e.message),
    );
    assert.throws(
      () => parseConfig(['--lease-duration=2', '--renew-deadline=3'], {}),
      /retry-period < --renew-deadline < --lease-duration/,
    );
    assert.throws(() => parseConfig(['--unknown-flag'], {}), /Unknown option/);
  });

  describe('--principal-auth-allow', () => {
    const A = 'ocid1.compartment.oc1..aaaaaaaaa';
    const B = 'ocid1.compartment.oc1.iad.aaaaaaaab';
    const T = 'ocid1.tenancy.oc1..aaaaaaaatenancy';

    it('allows no namespace by default', () => {
      assert.deepEqual(parseConfig([], {}).principalAuthAllow, new Map());
      assert.deepEqual(parseConfig(['--principal-auth-allow='], {}).principalAuthAllow, new Map());
    });

    it('reads namespaces with their compartments, or * for any, from the flag or PRINCIPAL_AUTH_ALLOW', () => {
      const value = `team-a=${A}|${B}, team-b=*,root=${T},`;
      const want = new Map<string, '*' | string[]>([
        ['team-a', [A, B]],
        ['team-b', '*'],
        ['root', [T]],
      ]);
      assert.deepEqual(parseConfig([`--principal-auth-allow=${value}`], {}).principalAuthAllow, want);
      assert.deepEqual(parseConfig([], { PRINCIPAL_AUTH_ALLOW: value }).principalAuthAllow, want);
      assert.deepEqual(
        parseConfig([`--principal-auth-allow=x=*`], { PRINCIPAL_AUTH_ALLOW: value }).principalAuthAllow,
        new Map([['x', '*']]),
        'the flag wins over the environment',
      );
    });

    it('refuses what it cannot read, naming the flag and the entry', () => {
      const bad: [string, RegExp][] = [
        ['team-a', /entry "team-a" is not <namespace>=<compartment-ocid>/],
        [`Team_A=${A}`, /"Team_A" is not a namespace name/],
        [`team-a=${A},team-a=*`, /namespace "team-a" is listed twice/],
        [`team-a=${A}|*`, /"\*" must stand alone/],
        ['team-a=ocid1.datascienceproject.oc1.iad.aaaa', /is not a compartment or tenancy OCID/],
        ['team-a=', /"" \(namespace "team-a"\) is not a compartment/],
      ];
      for (const [value, message] of bad) {
        assert.throws(
          () => parseConfig([`--principal-auth-allow=${value}`], {}),
          (e: unknown) =>
            e instanceof ConfigError &&
            message.test(e.message) &&
            e.message.includes('--principal-auth-allow'),
          value,
        );
      }
    });
  });
});
