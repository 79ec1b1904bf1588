import assert from 'node:assert/strict';
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLogger } from '../../../src/runtime/logger.ts';
import { LoraScraper } from '../../../src/router/scraper.ts';
import type { PodEndpoint } from '../../../src/router/pods.ts';

describe('router/scraper', () => {
  let server: Server;
  let text = '';
  let status = 200;
  let origin = '';

  before(async () => {
    server = createServer((_req, res) => {
      res.writeHead(status, { 'content-type': 'text/plain' });
      res.end(text);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => {
    server.closeAllConnections();
    server.close();
  });

  it('keeps the newest lora_requests_info of each pod, and forgets a pod that fails or leaves', async () => {
    let pods: PodEndpoint[] = [{ name: 'p', origin, adapters: new Set() }];
    const scraper = new LoraScraper({ pods: () => pods, log: createLogger({ silent: true }) });
    text =
      'vllm:lora_requests_info{max_lora="2",running_lora_adapters="old",waiting_lora_adapters=""} 1\n' +
      'vllm:lora_requests_info{max_lora="2",running_lora_adapters="sql,chat",waiting_lora_adapters=""} 2\n';
    await scraper.round();
    assert.equal(scraper.running('p', 'sql'), true);
    assert.equal(scraper.running('p', 'old'), false);
    status = 500;
    await scraper.round();
    assert.equal(scraper.running('p', 'sql'), false);
    status = 200;
    await scraper.round();
    assert.equal(scraper.running('p', 'chat'), true);
    pods = [];
    await scraper.round();
    assert.equal(scraper.get('p'), undefined);
    scraper.stop();
  });
});
