// Fake GPU nodes: the Node objects a kubelet registers, with the status it reports.
import { randomBytes, randomUUID } from 'node:crypto';
import { release } from 'node:os';
import {
  type CoreV1Api,
  PatchStrategy,
  V1Node,
  setHeaderOptions,
  type V1Taint,
} from '@kubernetes/client-node';
import { apiErrorCode } from '../../src/runtime/errors.ts';
import { model } from '../../src/runtime/model.ts';
import { HOST_IP, rfc3339 } from './podstatus.ts';
import { GPU } from './scheduling.ts';

export interface FakeNode {
  name: string;
  gpus: number;
  labels?: Record<string, string>;
  taints?: V1Taint[];
  /** Capacity quantities; defaults 32 cores, 256Gi, 110 pods. */
  cpu?: string;
  memory?: string;
  pods?: number;
}

export const FIELD_MANAGER = 'kubelet';

/**
 * Creates the Node (or updates its labels), reports capacity = allocatable and a Ready condition
 * through nodes/status, and sets spec.taints to the given taints.
 */
export async function registerNode(core: CoreV1Api, n: FakeNode, kubeletPort: number): Promise<void> {
  const labels = {
    'kubernetes.io/hostname': n.name,
    'kubernetes.io/os': 'linux',
    'kubernetes.io/arch': 'amd64',
    ...n.labels,
  };
  try {
    await core.createNode({
      body: model(V1Node, {
        apiVersion: 'v1',
        kind: 'Node',
        metadata: { name: n.name, labels },
        spec: n.taints ? { taints: n.taints } : {},
      }),
      fieldManager: FIELD_MANAGER,
    });
  } catch (err) {
    if (apiErrorCode(err) !== 409) throw err;
    await core.patchNode(
      { name: n.name, body: { metadata: { labels } }, fieldManager: FIELD_MANAGER },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
  }
  const now = rfc3339();
  const capacity = {
    cpu: n.cpu ?? '32',
    memory: n.memory ?? '256Gi',
    pods: String(n.pods ?? 110),
    'ephemeral-storage': '1Ti',
    [GPU]: String(n.gpus),
  };
  const cond = (type: string, status: string, reason: string, message: string) => ({
    type,
    status,
    reason,
    message,
    lastHeartbeatTime: now,
    lastTransitionTime: now,
  });
  await core.patchNodeStatus(
    {
      name: n.name,
      body: {
        status: {
          capacity,
          allocatable: capacity,
          conditions: [
            cond(
              'MemoryPressure',
              'False',
              'KubeletHasSufficientMemory',
              'kubelet has sufficient memory available',
            ),
            cond('DiskPressure', 'False', 'KubeletHasNoDiskPressure', 'kubelet has no disk pressure'),
            cond('PIDPressure', 'False', 'KubeletHasSufficientPID', 'kubelet has sufficient PID available'),
            cond('Ready', 'True', 'KubeletReady', 'kubelet is posting ready status'),
          ],
          addresses: [
            { type: 'InternalIP', address: HOST_IP },
            { type: 'Hostname', address: n.name },
          ],
          // Where the API server reaches this kubelet's streaming server (port-forward).
          daemonEndpoints: { kubeletEndpoint: { Port: kubeletPort } },
          nodeInfo: {
            machineID: randomBytes(16).toString('hex'),
            systemUUID: randomUUID(),
            bootID: randomUUID(),
            kernelVersion: release(),
            osImage: 'stacked-operator test kubelet',
            containerRuntimeVersion: 'containerd://2.1.0',
            kubeletVersion: 'v1.37.2',
            kubeProxyVersion: '',
            operatingSystem: 'linux',
            architecture: 'amd64',
          },
        },
      },
      fieldManager: FIELD_MANAGER,
    },
    setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
  );
  // The API server's TaintNodesByCondition admission gives a new node node.kubernetes.io/not-ready;
  // the node lifecycle controller (not running here) would lift it once the node is Ready.
  await core.patchNode(
    { name: n.name, body: { spec: { taints: n.taints ?? null } }, fieldManager: FIELD_MANAGER },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  );
}
