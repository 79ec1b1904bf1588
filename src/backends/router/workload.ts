/**
 * The router's I/O: applies its five objects when the informer caches show a difference (so a
 * cluster at rest sees no write), or deletes the ones we made when the router is disabled. Called by
 * the StackedDeployment reconciler after the backend's reconcile, whatever the backend.
 */
import {
  KubernetesObjectApi,
  V1DeleteOptions,
  type KubeConfig,
  type KubernetesObject,
  type V1Deployment,
  type V1Role,
  type V1RoleBinding,
  type V1Service,
  type V1ServiceAccount,
} from '@kubernetes/client-node';
import type { StackedDeployment } from '../../api/v1alpha1/deployment.ts';
import { apiErrorStatus, applyIfChanged, errorMeta, isConflict, isNotFound } from '../../runtime/apply.ts';
import { errorText } from '../../runtime/errors.ts';
import type { Informer } from '../../runtime/informer.ts';
import { keyOf } from '../../runtime/keys.ts';
import type { Logger } from '../../runtime/logger.ts';
import { model } from '../../runtime/model.ts';
import type { Verdict } from '../../runtime/ready.ts';
import { routerEndpoint, routerName, routerObjects, routerSettings } from './desired.ts';
import type { RouterState } from './status.ts';

/** Caches of what the operator made (the managed-by label), by "namespace/name". */
export interface RouterCaches {
  serviceAccounts: Informer<V1ServiceAccount>;
  roles: Informer<V1Role>;
  roleBindings: Informer<V1RoleBinding>;
  workloads: Informer<V1Deployment>;
  services: Informer<V1Service>;
}

export interface RouterWorkloadOptions extends RouterCaches {
  kc: KubeConfig;
  /** The router's image (the operator's own). */
  image: string;
}

export class RouterWorkload {
  private readonly opts: RouterWorkloadOptions;
  private readonly objects: KubernetesObjectApi;

  constructor(opts: RouterWorkloadOptions) {
    this.opts = opts;
    this.objects = KubernetesObjectApi.makeApiClient(opts.kc);
  }

  /** Makes the router objects match spec.<backend>.router, and says what serves. */
  async reconcile(d: StackedDeployment, log: Logger): Promise<RouterState> {
    const settings = routerSettings(d);
    const endpoint = routerEndpoint(d);
    const key = keyOf(d.metadata.namespace, routerName(d.metadata.name ?? ''));
    if (!settings.enabled) {
      const problem = await this.deleteOwned(d, key, log);
      return { enabled: false, endpoint, ...(problem ? { problem } : {}) };
    }
    const problem = await this.apply(d, key, log);
    const workload = this.opts.workloads.get(key);
    return {
      enabled: true,
      endpoint,
      deployment: key,
      replicas: settings.replicas,
      readyReplicas: workload?.status?.readyReplicas ?? 0,
      ...(problem ? { problem } : {}),
    };
  }

  /**
   * Deletes the router whatever the spec says: one in front of an oci deployment signs with the
   * deployment's credentials, so a refused credential boundary must stop it too, not only new work.
   */
  async remove(d: StackedDeployment, log: Logger): Promise<void> {
    const problem = await this.deleteOwned(
      d,
      keyOf(d.metadata.namespace, routerName(d.metadata.name ?? '')),
      log,
    );
    if (problem !== undefined) throw new Error(problem.message);
  }

  private cached(key: string): (KubernetesObject | undefined)[] {
    const c = this.opts;
    return [
      c.serviceAccounts.get(key),
      c.roles.get(key),
      c.roleBindings.get(key),
      c.workloads.get(key),
      c.services.get(key),
    ];
  }

  private async apply(d: StackedDeployment, key: string, log: Logger): Promise<Verdict | undefined> {
    const desired = routerObjects(d, { image: this.opts.image });
    const live = this.cached(key);
    try {
      for (const [i, obj] of desired.entries()) {
        if (await applyIfChanged(this.objects, obj, live[i])) log.info(`applied router ${obj.kind}`, { key });
      }
      return undefined;
    } catch (err) {
      log.warn('router apply failed', errorMeta(err));
      const reason = apiErrorStatus(err)?.message ?? errorText(err);
      return { ready: false, reason: 'RouterApplyFailed', message: `applying the router ${key}: ${reason}` };
    }
  }

  /**
   * Deletes the router objects this StackedDeployment controls (by its uid, so nothing a user or
   * another owner made under the same name), users before their identity. Only what the cache
   * holds: with nothing left, nothing is sent.
   */
  private async deleteOwned(d: StackedDeployment, key: string, log: Logger): Promise<Verdict | undefined> {
    const uid = d.metadata.uid;
    const owned = this.cached(key)
      .filter((o): o is KubernetesObject => o !== undefined)
      .filter((o) => o.metadata?.ownerReferences?.some((r) => r.controller === true && r.uid === uid))
      .reverse();
    try {
      for (const o of owned) {
        await this.delete(o);
        log.info(`deleted router ${o.kind ?? ''}`, { key });
      }
      return undefined;
    } catch (err) {
      log.warn('router delete failed', errorMeta(err));
      const reason = apiErrorStatus(err)?.message ?? errorText(err);
      return { ready: false, reason: 'RouterDeleteFailed', message: `deleting the router ${key}: ${reason}` };
    }
  }

  private async delete(o: KubernetesObject): Promise<void> {
    // The uid precondition: never the object of the same name someone made since the cache saw ours.
    const body = model(V1DeleteOptions, {
      propagationPolicy: 'Background',
      preconditions: { uid: o.metadata?.uid },
    });
    const target = {
      apiVersion: o.apiVersion,
      kind: o.kind,
      metadata: { name: o.metadata?.name, namespace: o.metadata?.namespace },
    };
    try {
      await this.objects.delete(target, undefined, undefined, undefined, undefined, 'Background', body);
    } catch (err) {
      // Gone already, or (a failed uid precondition) no longer ours: either way nothing to delete.
      if (!isNotFound(err) && !isConflict(err)) throw err;
    }
  }
}
