/**
 * Benchmark: what the router adds to a request, against the simulator called directly and against
 * Debian's nginx as a plain reverse proxy in front of the same simulator, measured in one run by
 * autocannon from a separate process on loopback. Non-streaming completions and streams of 64 tokens.
 * Prints a table; asserts nothing (these machines are shared and noisy).
 *
 * The router is the real one: the operator deploys it for a StackedDeployment, the test kubelet runs
 * its container as a process with the router's own ServiceAccount token, and it routes by the pods'
 * published adapter state, as in a cluster.
 *
 *   npm run bench:router      (CONNECTIONS, SECONDS override the defaults 16 and 10)
 */
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { writeAdapter } from '../playground/adapters.ts';
import { startKubelet, type Kubelet } from '../playground/kubelet.ts';
import { startOperator } from '../playground/operator.ts';
import { routerRunner } from '../playground/router-container.ts';
import { freePort, startBenchCluster, until } from './support.ts';
import { adaptersClaim } from '../test/support/objects.ts';

const NS = 'bench-router';
const CONNECTIONS = Number(process.env.CONNECTIONS ?? 16);
const SECONDS = Number(process.env.SECONDS ?? 10);
const WARMUP_SECONDS = 2;
const repoRoot = resolve(import.meta.dirname, '..');

interface Load {
  rps: number;
  p50: number;
  p99: number;
  non2xx: number;
  errors: number;
}

/** One autocannon run in its own process; its --json summary. */
async function autocannon(url: string, body: object, seconds: number): Promise<Load> {
  const child = spawn(
    process.execPath,
    [
      join(repoRoot, 'node_modules', 'autocannon', 'autocannon.js'),
      '--json',
      '-c',
      String(CONNECTIONS),
      '-d',
      String(seconds),
      '-m',
      'POST',
      '-H',
      'content-type=application/json',
      '-b',
      JSON.stringify(body),
      url,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
  const [code] = (await once(child, 'exit')) as [number | null];
  if (code !== 0) throw new Error(`autocannon exited ${String(code)}`);
  const r = JSON.parse(out) as {
    requests: { average: number };
    latency: { p50: number; p99: number };
    non2xx: number;
    errors: number;
  };
  return {
    rps: r.requests.average,
    p50: r.latency.p50,
    p99: r.latency.p99,
    non2xx: r.non2xx,
    errors: r.errors,
  };
}

/** nginx as a plain reverse proxy (keep-alive upstream, no buffering so streams pass through). */
async function startNginx(
  root: string,
  upstream: string,
): Promise<{ url: string; stop: () => Promise<void> }> {
  const nginx = ['/usr/sbin/nginx', '/usr/local/sbin/nginx'].find((p) => spawnSync(p, ['-v']).status === 0);
  if (nginx === undefined) throw new Error('nginx is not installed: apt-get install nginx-light');
  const port = await freePort();
  const dir = join(root, 'nginx');
  rmSync(dir, { recursive: true, force: true });
  spawnSync('mkdir', ['-p', join(dir, 'logs'), join(dir, 'tmp')]);
  // One worker: the router is one Node process, so each proxy gets one core's worth of event loop.
  writeFileSync(
    join(dir, 'nginx.conf'),
    `worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/tmp/body;
  proxy_temp_path ${dir}/tmp/proxy;
  fastcgi_temp_path ${dir}/tmp/fastcgi;
  uwsgi_temp_path ${dir}/tmp/uwsgi;
  scgi_temp_path ${dir}/tmp/scgi;
  upstream vllm { server ${upstream}; keepalive 64; }
  server {
    listen 127.0.0.1:${String(port)};
    location / {
      proxy_pass http://vllm;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }
  }
}
`,
  );
  const proc = spawn(nginx, ['-p', dir, '-c', join(dir, 'nginx.conf')], { stdio: 'ignore' });
  const url = `http://127.0.0.1:${String(port)}`;
  await until('nginx listening', async () => {
    try {
      await fetch(`${url}/health`);
      return true;
    } catch {
      return false;
    }
  });
  return {
    url,
    stop: async () => {
      proc.kill('SIGQUIT');
      await once(proc, 'exit');
    },
  };
}

const ms = (x: number) => x.toFixed(2).padStart(8);

async function main(): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'bench-router-'));
  const { cp, apply } = await startBenchCluster(NS);
  const runner = routerRunner(cp);
  let kubelet: Kubelet | undefined;
  let operator: Awaited<ReturnType<typeof startOperator>> | undefined;
  let nginx: Awaited<ReturnType<typeof startNginx>> | undefined;
  try {
    writeAdapter(join(root, 'pvc', NS, 'adapters', 'lora-1'), 16);
    kubelet = await startKubelet({
      kubeconfigPath: cp.kubeconfigPath,
      nodes: [{ name: 'bench-gpu-1', gpus: 1 }],
      pvcRoot: join(root, 'pvc'),
      hfRoot: join(root, 'hf'),
      namespaces: [NS],
      runContainer: runner.run,
    });
    operator = await startOperator(cp, {
      identity: 'bench-router',
      namespace: NS,
      extraArgs: ['--leader-election-id=bench-router', '--log-level=warn'],
    });
    await apply(adaptersClaim('adapters', NS));
    await apply({
      apiVersion: 'serving.stacked.dev/v1alpha1',
      kind: 'StackedModelGroup',
      metadata: { name: 'bench', namespace: NS },
      spec: {
        baseModel: { inferenceKey: 'base', source: { huggingface: 'org/base' } },
        members: [{ inferenceKey: 'lora-1', source: { pvc: { claimName: 'adapters', path: 'lora-1' } } }],
      },
    });
    await apply({
      apiVersion: 'serving.stacked.dev/v1alpha1',
      kind: 'StackedDeployment',
      metadata: { name: 'bench', namespace: NS },
      spec: {
        modelGroupRef: { name: 'bench' },
        backend: 'vllm',
        engine: {},
        vllm: { replicas: 1, router: { enabled: true, replicas: 1 } },
      },
    });
    const k = kubelet;
    const vllmPod = () => k.runningPods().find((p) => p.startsWith(`${NS}/bench-vllm-`));
    await until(
      'the vLLM pod holds lora-1',
      () =>
        k
          .simulator(vllmPod() ?? '')
          ?.loadedAdapters()
          .includes('lora-1') === true,
      300_000,
      50,
    );
    await until('a router process', () => runner.running.size > 0, 300_000, 50);
    const router = [...runner.running.values()][0]!;
    const routerUrl = `http://${router.ip}:${String(router.port)}`;
    await until(
      'the router routes lora-1',
      async () => {
        const res = await fetch(`${routerUrl}/v1/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ model: 'lora-1', prompt: 'hi', max_tokens: 1 }),
        });
        await res.body?.cancel();
        return res.ok;
      },
      300_000,
      100,
    );
    const sim = k.simulator(vllmPod()!)!;
    const simUrl = sim.url;
    nginx = await startNginx(root, new URL(simUrl).host);

    const targets = [
      ['direct', simUrl],
      ['nginx', nginx.url],
      ['router', routerUrl],
    ] as const;
    const modes = [
      ['completion', { model: 'lora-1', prompt: 'hello there', max_tokens: 16, ignore_eos: true }],
      [
        'stream-64',
        { model: 'lora-1', prompt: 'hello there', max_tokens: 64, stream: true, ignore_eos: true },
      ],
    ] as const;
    const rows: { mode: string; target: string; load: Load }[] = [];
    for (const [mode, body] of modes) {
      for (const [target, url] of targets) {
        await autocannon(`${url}/v1/completions`, body, WARMUP_SECONDS);
        rows.push({ mode, target, load: await autocannon(`${url}/v1/completions`, body, SECONDS) });
      }
    }

    console.log(
      `\nrouter benchmark: ${String(CONNECTIONS)} connections, ${String(SECONDS)} s per run, autocannon on loopback`,
    );
    console.log('mode        target     req/s      p50 ms   p99 ms   +p50 ms  +p99 ms  non-2xx  errors');
    for (const { mode, target, load } of rows) {
      const direct = rows.find((r) => r.mode === mode && r.target === 'direct')!.load;
      console.log(
        `${mode.padEnd(11)} ${target.padEnd(8)} ${load.rps.toFixed(0).padStart(8)} ${ms(load.p50)} ${ms(load.p99)} ` +
          `${ms(load.p50 - direct.p50)} ${ms(load.p99 - direct.p99)} ${String(load.non2xx).padStart(8)} ${String(load.errors).padStart(7)}`,
      );
    }
    for (const [mode] of modes) {
      const of = (t: string) => rows.find((r) => r.mode === mode && r.target === t)!.load;
      const direct = of('direct');
      const addedRouter = of('router').p99 - direct.p99;
      const addedNginx = of('nginx').p99 - direct.p99;
      console.log(
        `${mode}: router p99 added ${addedRouter.toFixed(2)} ms vs nginx ${addedNginx.toFixed(2)} ms ` +
          `(${(addedRouter / Math.max(addedNginx, 0.01)).toFixed(2)}x, target <= 2x); ` +
          `throughput ${((100 * of('router').rps) / of('nginx').rps).toFixed(0)}% of nginx (target >= 60%)`,
      );
    }
  } finally {
    await nginx?.stop();
    await operator?.stop();
    await kubelet?.stop();
    await cp.stop();
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
