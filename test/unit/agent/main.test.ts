import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { AgentArgsError, parseAgentArgs } from '../../../src/agent/main.ts';

describe('agent/main', () => {
  it('has defaults for a pod', () => {
    assert.deepEqual(parseAgentArgs([], {}), {
      root: '/mnt/fetched',
      port: 8089,
      host: '0.0.0.0',
      caFile: undefined,
      secretsDir: '/var/run/secrets/stacked',
      maxBytes: 10 * 1024 ** 3,
      oci: undefined,
      fetch: undefined,
    });
  });

  it('takes flags over the environment', () => {
    const env = { AGENT_ROOT: '/r', AGENT_PORT: '9000', AGENT_CA_FILE: '/ca.pem', AGENT_SECRETS_DIR: '/s' };
    assert.deepEqual(parseAgentArgs([], env), {
      root: '/r',
      port: 9000,
      host: '0.0.0.0',
      caFile: '/ca.pem',
      secretsDir: '/s',
      maxBytes: 10 * 1024 ** 3,
      oci: undefined,
      fetch: undefined,
    });
    assert.deepEqual(
      parseAgentArgs(
        [
          '--root=/x',
          '--port',
          '0',
          '--host',
          '127.0.0.1',
          '--ca-file=/c',
          '--secrets-dir=/y',
          '--max-bytes=5',
        ],
        env,
      ),
      {
        root: '/x',
        port: 0,
        host: '127.0.0.1',
        caFile: '/c',
        secretsDir: '/y',
        maxBytes: 5,
        oci: undefined,
        fetch: undefined,
      },
    );
  });

  it('takes OCI access and a one-shot request', () => {
    const args = parseAgentArgs(
      [
        '--oci-region=us-ashburn-1',
        '--oci-endpoint=http://127.0.0.1:9',
        '--oci-secret=oci-key',
        '--fetch={}',
      ],
      {},
    );
    assert.deepEqual(args.oci, {
      region: 'us-ashburn-1',
      endpoint: 'http://127.0.0.1:9',
      auth: 'apiKey',
      secret: 'oci-key',
    });
    assert.equal(args.fetch, '{}');
    assert.deepEqual(
      parseAgentArgs(['--oci-auth=instancePrincipal'], { AGENT_OCI_REGION: 'eu-frankfurt-1' }).oci,
      {
        region: 'eu-frankfurt-1',
        auth: 'instancePrincipal',
      },
    );
    assert.throws(() => parseAgentArgs(['--oci-region=r'], {}), /--oci-secret is required/);
    assert.throws(
      () => parseAgentArgs(['--oci-region=r', '--oci-auth=resourcePrincipal', '--oci-secret=s'], {}),
      /only for it/,
    );
    assert.throws(
      () => parseAgentArgs(['--oci-region=r', '--oci-auth=password'], {}),
      /--oci-auth must be one of/,
    );
    assert.throws(() => parseAgentArgs(['--oci-secret=s'], {}), /need --oci-region/);
  });

  it('refuses bad flags', () => {
    assert.throws(() => parseAgentArgs(['--port=x'], {}), AgentArgsError);
    assert.throws(() => parseAgentArgs(['--port=70000'], {}), AgentArgsError);
    assert.throws(() => parseAgentArgs(['--max-bytes=0'], {}), AgentArgsError);
    assert.throws(() => parseAgentArgs(['--nope'], {}), AgentArgsError);
  });

  it('runs as a process, logs JSON lines and stops on SIGTERM', async () => {
    const root = await mkdtemp(join(tmpdir(), 'agent-main-'));
    try {
      const child = spawn(
        process.execPath,
        ['src/agent/main.ts', `--root=${root}`, '--port=0', '--host=127.0.0.1'],
        {
          stdio: ['ignore', 'pipe', 'inherit'],
        },
      );
      const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
      const lines: Record<string, unknown>[] = [];
      const lineReader = createInterface({ input: child.stdout });
      const listening = new Promise<Record<string, unknown>>((resolve) => {
        lineReader.on('line', (line) => {
          const entry = JSON.parse(line) as Record<string, unknown>;
          lines.push(entry);
          if (entry['message'] === 'listening') resolve(entry);
        });
      });
      const { port } = await listening;
      const res = await fetch(`http://127.0.0.1:${String(port)}/healthz`);
      assert.equal(await res.text(), 'ok');
      child.kill('SIGTERM');
      assert.equal(await exited, 0);
      assert.deepEqual(
        lines.map((l) => l['message']),
        ['listening', 'shutting down', 'stopped'],
      );
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
