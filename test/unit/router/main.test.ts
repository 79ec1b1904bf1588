import assert from 'node:assert/strict';
import { routerArgs } from '../../../src/api/router/v1.ts';
import { RouterArgsError, parseRouterArgs } from '../../../src/router/main.ts';

describe('router/main', () => {
  it('parses what the operator writes (routerArgs), round trip', () => {
    const args = { namespace: 'ml', deployment: 'sql-prod', port: 8080, affinityMargin: 2 };
    assert.deepEqual(parseRouterArgs(routerArgs(args)), args);
  });

  it('defaults the port and the margin', () => {
    assert.deepEqual(parseRouterArgs(['--namespace=ml', '--deployment=d']), {
      namespace: 'ml',
      deployment: 'd',
      port: 8080,
      affinityMargin: 4,
    });
  });

  const bad: [string, string[]][] = [
    ['no namespace', ['--deployment=d']],
    ['no deployment', ['--namespace=ml']],
    ['an unknown flag', ['--namespace=ml', '--deployment=d', '--nope=1']],
    ['a port out of range', ['--namespace=ml', '--deployment=d', '--port=70000']],
    ['a negative margin', ['--namespace=ml', '--deployment=d', '--affinity-margin=-1']],
    ['a fractional margin', ['--namespace=ml', '--deployment=d', '--affinity-margin=1.5']],
  ];
  for (const [name, argv] of bad) {
    it(`refuses ${name}`, () => {
      assert.throws(() => parseRouterArgs(argv), RouterArgsError);
    });
  }
});
