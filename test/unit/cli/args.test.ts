import assert from 'node:assert/strict';
import { parseCli, USAGE, UsageError, type CliArgs } from '../../../src/cli/args.ts';
import { run } from '../../../src/cli/main.ts';

const defaults: CliArgs = {
  command: 'status',
  deployment: 'sql',
  namespace: undefined,
  context: undefined,
  kubeconfig: undefined,
  output: 'table',
  model: undefined,
  prompt: undefined,
  maxTokens: undefined,
  stream: false,
  via: 'auto',
};

describe('kubectl stacked: the command line', () => {
  const parsed: [string, string[], Partial<CliArgs>][] = [
    ['a command and a deployment, kubectl defaults', ['status', 'sql'], {}],
    ['-n NS', ['status', 'sql', '-n', 'ml'], { namespace: 'ml' }],
    ['--namespace NS', ['status', 'sql', '--namespace', 'ml'], { namespace: 'ml' }],
    ['--namespace=NS', ['status', 'sql', '--namespace=ml'], { namespace: 'ml' }],
    [
      'flags before the command',
      ['-n', 'ml', '-o', 'json', 'experiment', 'sql'],
      {
        command: 'experiment',
        namespace: 'ml',
        output: 'json',
      },
    ],
    [
      '--context and --kubeconfig',
      ['status', 'sql', '--context', 'kind-a', '--kubeconfig=/tmp/kc'],
      {
        context: 'kind-a',
        kubeconfig: '/tmp/kc',
      },
    ],
    ['-o json', ['status', 'sql', '-o', 'json'], { output: 'json' }],
    ['-o yaml', ['status', 'sql', '-o', 'yaml'], { output: 'yaml' }],
    ['--output=table', ['status', 'sql', '--output=table'], { output: 'table' }],
    ['-ojson (short flag with its value attached)', ['status', 'sql', '-ojson'], { output: 'json' }],
    [
      'predict with its flags',
      ['predict', 'sql', '--model', 'sql-a', '--prompt', 'SELECT', '--max-tokens', '16', '--stream'],
      {
        command: 'predict',
        model: 'sql-a',
        prompt: 'SELECT',
        maxTokens: 16,
        stream: true,
      },
    ],
    [
      'predict --via port-forward',
      ['predict', 'sql', '--model', 'm', '--prompt', 'p', '--via', 'port-forward'],
      { command: 'predict', model: 'm', prompt: 'p', via: 'port-forward' },
    ],
    [
      'predict with an empty prompt',
      ['predict', 'sql', '--model', 'm', '--prompt', ''],
      {
        command: 'predict',
        model: 'm',
        prompt: '',
      },
    ],
  ];
  for (const [name, argv, want] of parsed) {
    it(`parses ${name}`, () => {
      assert.deepEqual(parseCli(argv), { ...defaults, ...want });
    });
  }

  const help: [string, string[]][] = [
    ['--help', ['--help']],
    ['-h', ['-h']],
    ['--help after a command', ['status', 'sql', '--help']],
    ['--help with an unknown command', ['frobnicate', '--help']],
    ['no arguments at all', []],
  ];
  for (const [name, argv] of help) {
    it(`asks for help on ${name}`, () => {
      assert.equal(parseCli(argv), undefined);
    });
  }

  const refused: [string, string[], RegExp][] = [
    ['an unknown command', ['delete', 'sql'], /unknown command "delete": one of predict, status, experiment/],
    ['a missing DEPLOYMENT', ['status'], /status: DEPLOYMENT is required/],
    ['an extra positional', ['status', 'sql', 'other'], /unexpected arguments: other/],
    ['an unknown long flag', ['status', 'sql', '--replicas', '3'], /--replicas/],
    ['an unknown short flag', ['status', 'sql', '-x'], /-x/],
    ['-n without its value', ['status', 'sql', '-n'], /namespace.*argument missing/],
    ['--context without its value', ['status', 'sql', '--context'], /context.*argument missing/],
    [
      'an unknown output',
      ['status', 'sql', '-o', 'wide'],
      /--output must be one of table, json, yaml, got "wide"/,
    ],
    ['an output in capitals', ['status', 'sql', '-o', 'JSON'], /--output must be one of/],
    [
      'an unknown --via',
      ['predict', 'sql', '--model', 'm', '--prompt', 'p', '--via', 'vpn'],
      /--via must be one of auto, service, pod, port-forward, got "vpn"/,
    ],
    ['--via on another command', ['status', 'sql', '--via', 'pod'], /status: --via is only for predict/],
    [
      'a value for a boolean flag',
      ['predict', 'sql', '--model', 'm', '--prompt', 'p', '--stream=yes'],
      /stream/,
    ],
    [
      'predict without --prompt',
      ['predict', 'sql', '--model', 'm'],
      /predict: --model and --prompt are required/,
    ],
    [
      'predict without --model',
      ['predict', 'sql', '--prompt', 'p'],
      /predict: --model and --prompt are required/,
    ],
    [
      '--max-tokens 0',
      ['predict', 'sql', '--model', 'm', '--prompt', 'p', '--max-tokens', '0'],
      /--max-tokens must be a positive integer, got "0"/,
    ],
    [
      '--max-tokens -1',
      ['predict', 'sql', '--model', 'm', '--prompt', 'p', '--max-tokens=-1'],
      /--max-tokens must be a positive integer/,
    ],
    [
      '--max-tokens 1.5',
      ['predict', 'sql', '--model', 'm', '--prompt', 'p', '--max-tokens', '1.5'],
      /--max-tokens must be a positive integer/,
    ],
    [
      '--max-tokens ten',
      ['predict', 'sql', '--model', 'm', '--prompt', 'p', '--max-tokens', 'ten'],
      /--max-tokens must be a positive integer/,
    ],
    [
      '--max-tokens 1e3',
      ['predict', 'sql', '--model', 'm', '--prompt', 'p', '--max-tokens', '1e3'],
      /--max-tokens must be a positive integer, got "1e3"/,
    ],
    [
      '--max-tokens 0x10',
      ['predict', 'sql', '--model', 'm', '--prompt', 'p', '--max-tokens', '0x10'],
      /--max-tokens must be a positive integer/,
    ],
    [
      '--max-tokens empty',
      ['predict', 'sql', '--model', 'm', '--prompt', 'p', '--max-tokens='],
      /--max-tokens must be a positive integer/,
    ],
    ['--model on status', ['status', 'sql', '--model', 'm'], /status: --model is only for predict/],
    ['--stream on experiment', ['experiment', 'sql', '--stream'], /experiment: --stream is only for predict/],
  ];
  for (const [name, argv, message] of refused) {
    it(`refuses ${name} with a UsageError`, () => {
      assert.throws(
        () => parseCli(argv),
        (e: unknown) => e instanceof UsageError && message.test(e.message),
      );
    });
  }

  describe('run(): exit codes and streams of a usage problem (no cluster is touched)', () => {
    async function runCli(argv: string[]) {
      let stdout = '';
      let stderr = '';
      const code = await run(
        argv,
        (s) => (stdout += s),
        (s) => (stderr += s),
      );
      return { code, stdout, stderr };
    }

    it('prints the usage to stdout and exits 0 on --help', async () => {
      const r = await runCli(['--help']);
      assert.equal(r.code, 0);
      assert.equal(r.stdout, `${USAGE}\n`);
      assert.equal(r.stderr, '');
    });

    const bad: [string[], RegExp][] = [
      [['predict', 'sql', '--model', 'm'], /^error: predict: --model and --prompt are required\n\n/],
      [['status', 'sql', '--bogus'], /^error: .*--bogus/],
      [['status', 'sql', '-o', 'wide'], /^error: --output must be one of/],
      [['explain', 'sql'], /^error: unknown command "explain"/],
    ];
    for (const [argv, message] of bad) {
      it(`exits 2 with the error and the usage on stderr: ${argv.join(' ')}`, async () => {
        const r = await runCli(argv);
        assert.equal(r.code, 2);
        assert.equal(r.stdout, '');
        assert.match(r.stderr, message);
        assert.ok(r.stderr.endsWith(`${USAGE}\n`), 'the usage follows the error');
      });
    }

    it('exits 1 with one line for a kubeconfig that does not exist', async () => {
      const r = await runCli(['status', 'sql', '--kubeconfig', '/nonexistent/kubeconfig']);
      assert.equal(r.code, 1);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, /^error: .*\/nonexistent\/kubeconfig/);
      assert.equal(r.stderr.trimEnd().split('\n').length, 1, r.stderr);
    });
  });

  it('the usage documents every flag the parser takes', () => {
    for (const flag of [
      '-n, --namespace',
      '--context',
      '--kubeconfig',
      '-o, --output',
      '-h, --help',
      '--model',
      '--prompt',
      '--max-tokens',
      '--stream',
    ]) {
      assert.ok(USAGE.includes(flag), flag);
    }
    assert.match(USAGE, /table \| json \| yaml/);
  });
});
