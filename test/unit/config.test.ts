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
});
