import assert from 'node:assert/strict';
import { parseLoraInfo } from '../../../src/router/lora-info.ts';

const HEAD =
  '# HELP vllm:lora_requests_info Running stats on lora requests.\n# TYPE vllm:lora_requests_info gauge\n';

function series(running: string, waiting: string, at: string): string {
  return `vllm:lora_requests_info{max_lora="4",waiting_lora_adapters="${waiting}",running_lora_adapters="${running}"} ${at}\n`;
}

describe('router/lora-info', () => {
  const cases: { name: string; text: string; want: [string[], string[], number] | undefined }[] = [
    { name: 'no such metric', text: 'vllm:num_requests_running{model_name="b"} 0\n', want: undefined },
    { name: 'empty labels', text: HEAD + series('', '', '1.7e+09'), want: [[], [], 1.7e9] },
    {
      name: 'the newest series by value, not by position',
      text:
        HEAD +
        series('sql', '', '1700000005.5') +
        series('chat,sql', 'x', '1700000009') +
        series('a', '', '1700000001'),
      want: [['chat', 'sql'], ['x'], 1700000009],
    },
    {
      name: 'labels in any order, escapes, a timestamp and other metrics around',
      text:
        'vllm:lora_requests_info_created{max_lora="4"} 1.8e9\n' +
        'vllm:num_requests_waiting 3\n' +
        'vllm:lora_requests_info{running_lora_adapters="a\\"b, c",max_lora="4",waiting_lora_adapters=""} 17 1700000000000\n',
      want: [['a"b', 'c'], [], 17],
    },
    {
      name: 'a malformed line is skipped',
      text: 'vllm:lora_requests_info{running_lora_adapters="a} 5\n',
      want: undefined,
    },
    {
      name: 'a non-numeric value is skipped',
      text: series('a', '', 'NaN') + series('b', '', 'x'),
      want: undefined,
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const got = parseLoraInfo(c.text);
      assert.deepEqual(
        got === undefined ? undefined : [[...got.running], [...got.waiting], got.updatedAt],
        c.want,
      );
    });
  }
});
