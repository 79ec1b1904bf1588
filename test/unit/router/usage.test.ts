import assert from 'node:assert/strict';
import { UsageReader } from '../../../src/router/usage.ts';

/** Feeds text in pieces of `size` bytes, as a socket may cut it. */
function read(sse: boolean, text: string, size: number): [number, number] | undefined {
  const r = new UsageReader(sse);
  const buf = Buffer.from(text);
  for (let i = 0; i < buf.length; i += size) r.push(buf.subarray(i, i + size));
  const u = r.end();
  return u === undefined ? undefined : [u.promptTokens, u.completionTokens];
}

const STREAM =
  'data: {"id":"c","choices":[{"text":"a"}],"usage":null}\n\n' +
  'data: {"id":"c","choices":[{"text":"b"}],"usage":null}\n\n' +
  'data: {"id":"c","choices":[],"usage":{"prompt_tokens":11,"total_tokens":15,"completion_tokens":4}}\n\n' +
  'data: [DONE]\n\n';

describe('router/usage', () => {
  const cases: { name: string; sse: boolean; text: string; want: [number, number] | undefined }[] = [
    {
      name: 'a JSON body',
      sse: false,
      text: '{"usage":{"prompt_tokens":3,"completion_tokens":5}}',
      want: [3, 5],
    },
    { name: 'a JSON body without usage', sse: false, text: '{"choices":[]}', want: undefined },
    { name: 'a JSON error body', sse: false, text: '{"error":{"code":404}}', want: undefined },
    { name: 'not JSON', sse: false, text: 'oops', want: undefined },
    { name: 'an event stream with a usage chunk', sse: true, text: STREAM, want: [11, 4] },
    {
      name: 'an event stream without one',
      sse: true,
      text: 'data: {"usage":null}\n\ndata: [DONE]\n\n',
      want: undefined,
    },
    {
      name: "an event stream with Python's json.dumps spacing",
      sse: true,
      text: 'data: {"usage": null}\n\ndata: {"choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 3}}\n\ndata: [DONE]\n\n',
      want: [7, 3],
    },
    {
      name: 'continuous usage: the last one counts',
      sse: true,
      text: 'data: {"usage":{"prompt_tokens":2,"completion_tokens":1}}\r\n\r\ndata: {"usage":{"prompt_tokens":2,"completion_tokens":2}}',
      want: [2, 2],
    },
  ];
  for (const c of cases) {
    for (const size of [1, 7, 1 << 20]) {
      it(`${c.name} (in pieces of ${size} bytes)`, () => {
        assert.deepEqual(read(c.sse, c.text, size), c.want);
      });
    }
  }
});
