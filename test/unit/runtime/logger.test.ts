import assert from 'node:assert/strict';
import { createLogger } from '../../../src/runtime/logger.ts';
import { captureLogger } from './helpers/util.ts';

describe('runtime/logger', () => {
  it('writes one JSON object per line with timestamp and level', () => {
    const { logger, lines } = captureLogger('info');
    logger.info('hello', { n: 1 });
    assert.equal(lines.length, 1);
    const line = lines[0]!;
    assert.equal(line['message'], 'hello');
    assert.equal(line['level'], 'info');
    assert.equal(line['n'], 1);
    assert.ok(!Number.isNaN(Date.parse(line['timestamp'] as string)));
  });

  it('child loggers put controller and key on every line', () => {
    const { logger, lines } = captureLogger('info');
    const log = logger.child({ controller: 'sd' }).child({ key: 'ns/a' });
    log.info('one');
    log.warn('two', { extra: true });
    assert.deepEqual(
      lines.map((l) => [l['message'], l['controller'], l['key']]),
      [
        ['one', 'sd', 'ns/a'],
        ['two', 'sd', 'ns/a'],
      ],
    );
  });

  it('filters by level', () => {
    const { logger, lines } = captureLogger('warn');
    logger.info('hidden');
    logger.debug('hidden');
    logger.error('shown');
    assert.deepEqual(
      lines.map((l) => l['message']),
      ['shown'],
    );
  });

  it('can be silenced', () => {
    const logger = createLogger({ silent: true });
    assert.equal(logger.silent, true);
    logger.error('nothing');
  });
});
