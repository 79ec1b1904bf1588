/**
 * The scale benchmark's floors: bare clients that watch the objects and mark each Ready, with none
 * of an operator's reads, checks, progress reports or retries of their own.
 *
 *   - The floor (the issue's): one status patch per object, Ready True for its generation.
 *   - The product floor: before that patch, the writes and OCI creates that the product as designed
 *     has to make for the object, whoever makes them, built by the operator's own desired-state
 *     builders: a vllm StackedDeployment's Deployment and Service (server-side apply; DESIGN.md);
 *     an oci one's finalizer (its OCI resources outlive it otherwise) and its OCI version history
 *     (one per StackedDeployment, oci/desired.ts), model group and model deployment, with retry
 *     tokens. Whatever the API server and the controller manager do in answer (ReplicaSets,
 *     ClusterIPs) follows as it does for the operator. It still makes less than a correct operator
 *     must: no wait for OCI's work requests, no second status patch once something is ready, no
 *     servedBy on the groups, no Events.
 *
 * Each kind has `workers` of its own in flight, as the operator's controllers have.
 */
import {
  CustomObjectsApi,
  KubernetesObjectApi,
  PatchStrategy,
  setHeaderOptions,
  type KubeConfig,
} from '@kubernetes/client-node';
import type * as common from 'oci-common';
import type * as ds from 'oci-datascience';
import type { StackedDeployment } from '../src/api/v1alpha1/deployment.ts';
import type { StackedModelGroup } from '../src/api/v1alpha1/modelgroup.ts';
import { OCI_FINALIZER } from '../src/controllers/deployment/finalizer.ts';
import { FLAGS } from '../src/config.ts';
import {
  createDeploymentDetails,
  createGroupDetails,
  desiredGroup,
  retryToken,
  versionHistoryDetails,
  versionLabel,
} from '../src/backends/oci/desired.ts';
import { buildDeployment, buildService } from '../src/backends/vllm/desired.ts';
import { dataScienceClient } from '../src/oci/client.ts';
import {
  GROUP,
  PLURALS,
  ResourceWatch,
  VERSION,
  keyOf,
  progress,
  type Observed,
  type Plural,
} from './scale-watch.ts';

interface Item {
  name: string;
  generation: number;
}

export class FloorClient {
  patches = 0;
  failures = 0;
  protected readonly custom: CustomObjectsApi;
  protected readonly namespace: string;
  readonly #workersPerKind: number;
  readonly #watches: ResourceWatch[];
  readonly #queues = new Map<Plural, Item[]>();
  readonly #wake = new Map<Plural, (() => void)[]>();
  readonly #queued = new Set<string>();
  /** The newest copy of every object, for the prelude. */
  protected readonly latest = new Map<string, Observed>();
  #stopped = false;
  #workers: Promise<void>[] = [];

  constructor(kc: KubeConfig, namespace: string, workers: number) {
    this.custom = kc.makeApiClient(CustomObjectsApi);
    this.namespace = namespace;
    this.#workersPerKind = workers;
    this.#watches = PLURALS.map((plural) => {
      this.#queues.set(plural, []);
      this.#wake.set(plural, []);
      return new ResourceWatch(kc, namespace, plural, (phase, o) => {
        const name = o.metadata?.name ?? '';
        if (phase === 'DELETED') {
          this.latest.delete(keyOf(plural, name));
          return;
        }
        this.latest.set(keyOf(plural, name), o);
        const generation = o.metadata?.generation ?? 0;
        const key = `${keyOf(plural, name)}@${String(generation)}`;
        if (o.status?.observedGeneration === generation || this.#queued.has(key)) return;
        this.#queued.add(key);
        this.#queues.get(plural)?.push({ name, generation });
        this.#wake.get(plural)?.shift()?.();
      });
    });
  }

  async start(): Promise<void> {
    await Promise.all(this.#watches.map((w) => w.start()));
    this.#workers = PLURALS.flatMap((plural) =>
      Array.from({ length: this.#workersPerKind }, () => this.#work(plural)),
    );
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    for (const w of this.#watches) w.stop();
    for (const wakers of this.#wake.values()) for (const wake of wakers.splice(0)) wake();
    await Promise.all(this.#workers);
  }

  async #work(plural: Plural): Promise<void> {
    const queue = this.#queues.get(plural) ?? [];
    while (!this.#stopped) {
      const item = queue.shift();
      if (item === undefined) {
        await new Promise<void>((wake) => this.#wake.get(plural)?.push(wake));
        continue;
      }
      try {
        await this.prelude(plural, item.name);
        await this.#markReady(plural, item);
        this.patches++;
      } catch (err) {
        this.failures++;
        progress(`floor ${plural}/${item.name}: ${String(err)}`);
      }
    }
  }

  /** What is made for an object before its status patch: nothing, for the bare floor. */
  protected async prelude(_plural: Plural, _name: string): Promise<void> {}

  async #markReady(plural: Plural, item: Item): Promise<void> {
    const condition = {
      type: 'Ready',
      status: 'True',
      reason: 'Floor',
      message: 'one status patch',
      observedGeneration: item.generation,
      lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    };
    await this.custom.patchNamespacedCustomObjectStatus(
      {
        group: GROUP,
        version: VERSION,
        namespace: this.namespace,
        plural,
        name: item.name,
        body: { status: { observedGeneration: item.generation, conditions: [condition] } },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
  }
}

const FIELD_MANAGER = 'bench-product-floor';

export interface ProductFloorOptions {
  workers: number;
  /** Signs the OCI calls (the key of the Secret the operator reads). */
  oci: common.AuthenticationDetailsProvider;
}

export class ProductFloorClient extends FloorClient {
  /** Writes and OCI creates made before the status patches, by what. */
  readonly made = new Map<string, number>();
  readonly #objects: KubernetesObjectApi;
  readonly #oci: common.AuthenticationDetailsProvider;
  readonly #clients = new Map<string, ds.DataScienceClient>();

  constructor(kc: KubeConfig, namespace: string, opts: ProductFloorOptions) {
    super(kc, namespace, opts.workers);
    this.#objects = KubernetesObjectApi.makeApiClient(kc);
    this.#oci = opts.oci;
  }

  protected override async prelude(plural: Plural, name: string): Promise<void> {
    if (plural !== 'stackeddeployments') return;
    // The watch hands over whole objects; Observed names only the fields the floors read.
    const d = this.latest.get(keyOf(plural, name)) as StackedDeployment | undefined;
    if (d === undefined) throw new Error(`${name} is gone`);
    const group = await this.#groupOf(d);
    if (d.spec.backend === 'vllm') {
      await this.#apply(
        buildDeployment(d, group, {
          defaultImage: FLAGS['default-vllm-image'].default,
          agentImage: FLAGS['agent-image'].default,
        }),
      );
      await this.#apply(buildService(d));
      return;
    }
    await this.custom.patchNamespacedCustomObject(
      {
        group: GROUP,
        version: VERSION,
        namespace: this.namespace,
        plural,
        name,
        body: [{ op: 'add', path: '/metadata/finalizers', value: [OCI_FINALIZER] }],
      },
      setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
    );
    this.#count('finalizer patch');
    await this.#createOnOci(d, group);
  }

  #count(what: string): void {
    this.made.set(what, (this.made.get(what) ?? 0) + 1);
  }

  async #apply(obj: { kind: string }): Promise<void> {
    await this.#objects.patch(obj, undefined, undefined, FIELD_MANAGER, true, PatchStrategy.ServerSideApply);
    this.#count(`apply ${obj.kind}`);
  }

  /** The deployment's group from the watch, waiting for it as a controller's cache would. */
  async #groupOf(d: StackedDeployment): Promise<StackedModelGroup> {
    const key = keyOf('stackedmodelgroups', d.spec.modelGroupRef.name);
    for (let waited = 0; waited < 30_000; waited += 20) {
      const group = this.latest.get(key);
      if (group !== undefined) return group as StackedModelGroup;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`${key} never arrived`);
  }

  async #createOnOci(d: StackedDeployment, group: StackedModelGroup): Promise<void> {
    const endpoint = d.spec.oci?.endpoint ?? '';
    let client = this.#clients.get(endpoint);
    if (client === undefined) {
      client = dataScienceClient(this.#oci, { region: d.spec.oci?.region ?? 'us-ashburn-1', endpoint });
      this.#clients.set(endpoint, client);
    }
    const uid = d.metadata.uid ?? '';
    const history = versionHistoryDetails(d);
    const h = await client.createModelGroupVersionHistory({
      createModelGroupVersionHistoryDetails: history,
      opcRetryToken: retryToken(uid, 'model-group-version-history', history),
    });
    this.#count('OCI CreateModelGroupVersionHistory');
    const want = desiredGroup(group);
    if (want === undefined) throw new Error(`${d.spec.modelGroupRef.name} has a member without a modelId`);
    const groupBody = createGroupDetails(d, group, want, {
      historyId: h.modelGroupVersionHistory.id,
      versionLabel: versionLabel(group),
    });
    const g = await client.createModelGroup({
      createBaseModelGroupDetails: groupBody,
      opcRetryToken: retryToken(uid, 'model-group', groupBody),
    });
    this.#count('OCI CreateModelGroup');
    const deploymentBody = createDeploymentDetails(d, group, g.modelGroup.id);
    await client.createModelDeployment({
      createModelDeploymentDetails: deploymentBody,
      opcRetryToken: retryToken(uid, 'model-deployment', deploymentBody),
    });
    this.#count('OCI CreateModelDeployment');
  }
}
