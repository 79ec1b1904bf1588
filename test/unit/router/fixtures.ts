/** Objects the router's unit tests share: a deployment, its group and pods, as the API returns them. */
import type { V1Pod } from '@kubernetes/client-node';
import type { StackedDeployment } from '../../../src/api/v1alpha1/deployment.ts';
import type { StackedModelGroup } from '../../../src/api/v1alpha1/modelgroup.ts';
import { ADAPTER_STATE_ANNOTATION, writePodState } from '../../../src/backends/vllm/pod-state.ts';

export const BASE_ID = 'ocid1.datasciencemodel.oc1.iad.base';
export const SQL_ID = 'ocid1.datasciencemodel.oc1.iad.sql';

export function group(members: { inferenceKey: string; modelId?: string }[] = []): StackedModelGroup {
  return {
    apiVersion: 'serving.stacked.dev/v1alpha1',
    kind: 'StackedModelGroup',
    metadata: { name: 'g', namespace: 'ns' },
    spec: {
      baseModel: { inferenceKey: 'base', modelId: BASE_ID, source: { huggingface: 'org/base' } },
      members: members.map((m) => ({ ...m, source: { huggingface: `org/${m.inferenceKey}` } })),
    },
  };
}

export function deployment(
  experiments: {
    name: string;
    stickyHeader?: string;
    variants: { inferenceKey: string; weight: number }[];
  }[] = [],
): StackedDeployment {
  return {
    apiVersion: 'serving.stacked.dev/v1alpha1',
    kind: 'StackedDeployment',
    metadata: { name: 'sd', namespace: 'ns' },
    spec: {
      modelGroupRef: { name: 'g' },
      backend: 'vllm',
      engine: { maxLoraRank: 16, maxLoras: 4 },
      vllm: {
        replicas: 1,
        gpusPerReplica: 1,
        port: 8000,
        router: { enabled: true, replicas: 1, affinityMargin: 4 },
      },
      experiments,
    },
  };
}

export interface PodOptions {
  name: string;
  ip?: string;
  port?: number;
  ready?: boolean;
  loaded?: string[];
  /** The restartCount the published state describes (default: the container's). */
  stateRestartCount?: number;
  restartCount?: number;
  terminating?: boolean;
}

export function pod(o: PodOptions): V1Pod {
  const restartCount = o.restartCount ?? 0;
  const annotations: Record<string, string> = {};
  if (o.loaded !== undefined) {
    annotations[ADAPTER_STATE_ANNOTATION] = writePodState({
      restartCount: o.stateRestartCount ?? restartCount,
      loaded: o.loaded,
      failed: {},
      fetching: [],
    });
  }
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: o.name,
      namespace: 'ns',
      annotations,
      labels: { 'serving.stacked.dev/deployment': 'sd' },
      ...(o.terminating === true ? { deletionTimestamp: new Date(0) } : {}),
    },
    spec: {
      containers: [
        { name: 'fetcher', ports: [{ name: 'http', containerPort: 8089 }] },
        { name: 'vllm', ports: [{ name: 'http', containerPort: o.port ?? 8000 }] },
      ],
    },
    status: {
      ...(o.ip === '' ? {} : { podIP: o.ip ?? '10.0.0.1' }),
      conditions: [{ type: 'Ready', status: o.ready === false ? 'False' : 'True' }],
      containerStatuses: [
        { name: 'vllm', image: 'vllm', imageID: '', ready: o.ready !== false, restartCount },
      ],
    },
  };
}
