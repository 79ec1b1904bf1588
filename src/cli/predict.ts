/**
 * `kubectl stacked predict`: the seed's predict call, sent where status.endpoint says. The router
 * takes the seed's body at /predict; the vLLM Service (router disabled) only speaks OpenAI, so the
 * same body goes to /v1/completions there; OCI's endpoint is its /predict URL itself. --stream asks
 * for server-sent events on /v1/completions and prints the text as it arrives.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import { VARIANT_HEADER } from '../api/router/v1.ts';
import type { StackedDeployment } from '../api/v1alpha1/deployment.ts';
import { routerName } from '../backends/router/desired.ts';
import type { CliArgs } from './args.ts';
import { CliError } from './errors.ts';
import { render } from './output.ts';
import { openEndpoint, serviceOf, type Endpoint } from './transport.ts';

/** The URL path a predict call goes to at this endpoint. */
export function predictPath(sdep: StackedDeployment, endpoint: URL, stream: boolean): string {
  if (endpoint.pathname.endsWith('/predict')) return endpoint.pathname;
  const isRouter = serviceOf(endpoint.hostname)?.name === routerName(sdep.metadata.name ?? '');
  return isRouter && !stream ? '/predict' : '/v1/completions';
}

interface Completion {
  model?: string;
  choices?: { text?: string }[];
}

/** The text of each `data:` event of a completion stream, as it arrives. */
async function* streamedText(body: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let buffered = '';
  for await (const chunk of body) {
    buffered += decoder.decode(chunk, { stream: true });
    let end: number;
    while ((end = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, end).trim();
      buffered = buffered.slice(end + 1);
      if (!line.startsWith('data:')) continue;
      const data = line.slice('data:'.length).trim();
      if (data === '[DONE]') return;
      const event = JSON.parse(data) as Completion;
      const text = event.choices?.[0]?.text;
      if (text !== undefined) yield text;
    }
  }
}

export async function predict(
  kc: KubeConfig,
  sdep: StackedDeployment,
  args: CliArgs,
  write: (s: string) => void,
): Promise<void> {
  const endpointText = sdep.status?.endpoint;
  if (endpointText === undefined) {
    throw new CliError(`StackedDeployment ${sdep.metadata.name ?? ''} has no status.endpoint yet`);
  }
  const endpoint: Endpoint = await openEndpoint(kc, endpointText, args.via);
  try {
    const url = new URL(predictPath(sdep, new URL(endpointText), args.stream), endpoint.url);
    const body = {
      model: args.model,
      prompt: args.prompt,
      ...(args.maxTokens !== undefined ? { max_tokens: args.maxTokens } : {}),
      ...(args.stream ? { stream: true } : {}),
    };
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const variant = res.headers.get(VARIANT_HEADER) ?? undefined;
    if (!res.ok || res.body === null) {
      throw new CliError(`${url.pathname} answered ${String(res.status)}: ${(await res.text()).trim()}`);
    }
    if (args.stream) {
      for await (const text of streamedText(res.body)) write(text);
      write('\n');
      return;
    }
    const response = (await res.json()) as Completion;
    const result = {
      endpoint: endpointText,
      via: endpoint.via,
      ...(endpoint.pod !== undefined ? { pod: endpoint.pod } : {}),
      model: response.model,
      ...(variant !== undefined ? { variant } : {}),
      response,
    };
    write(render(args.output, result, () => `${response.choices?.[0]?.text ?? ''}\n`));
  } finally {
    await endpoint.close();
  }
}
