// The operations of the reference's table §1 (plus predict), by method and path.

import {
  activateModelDeployment,
  deactivateModelDeployment,
  deleteModelDeployment,
} from './deployment-lifecycle.ts';
import type { Call, Reply } from './http.ts';
import {
  createModelDeployment,
  getModelDeployment,
  listModelDeployments,
  updateModelDeployment,
} from './model-deployments.ts';
import {
  activateModelGroup,
  createModelGroup,
  deactivateModelGroup,
  deleteModelGroup,
  getModelGroup,
  listModelGroupModels,
  listModelGroups,
  updateModelGroup,
} from './model-groups.ts';
import { listModelDeploymentModelStates } from './model-states.ts';
import { predict } from './predict.ts';
import type { Store } from './store.ts';
import {
  createVersionHistory,
  deleteVersionHistory,
  getVersionHistory,
  listVersionHistories,
  updateVersionHistory,
} from './version-history.ts';
import {
  cancelWorkRequest,
  getWorkRequest,
  listWorkRequestErrors,
  listWorkRequestLogs,
  listWorkRequests,
} from './work-requests.ts';

export interface Route {
  method: string;
  /** Path segments; ':id' matches one segment. */
  segments: string[];
  operation: string;
  /** 'json': a JSON object body is required; 'none': any body is refused. */
  body: 'json' | 'none';
  /** List operations validate their own query; every other operation takes none. */
  list: boolean;
  /** Creates honour opc-retry-token. */
  idempotent: boolean;
  handler: (store: Store, call: Call) => Reply;
}

export const API_PREFIX = '/20190101';

type RouteArgs = [
  string,
  string,
  string,
  Route['handler'],
  { body?: boolean; list?: boolean; idempotent?: boolean }?,
];

function route(...[method, path, operation, handler, o = {}]: RouteArgs): Route {
  return {
    method,
    segments: path.split('/').filter((s) => s !== ''),
    operation,
    body: o.body ? 'json' : 'none',
    list: o.list ?? false,
    idempotent: o.idempotent ?? false,
    handler,
  };
}

const API: RouteArgs[] = [
  ['POST', '/modelGroups', 'CreateModelGroup', createModelGroup, { body: true, idempotent: true }],
  ['GET', '/modelGroups', 'ListModelGroups', listModelGroups, { list: true }],
  ['GET', '/modelGroups/:id', 'GetModelGroup', getModelGroup],
  ['PUT', '/modelGroups/:id', 'UpdateModelGroup', updateModelGroup, { body: true }],
  ['DELETE', '/modelGroups/:id', 'DeleteModelGroup', deleteModelGroup],
  ['GET', '/modelGroups/:id/models', 'ListModelGroupModels', listModelGroupModels, { list: true }],
  ['POST', '/modelGroups/:id/actions/activate', 'ActivateModelGroup', activateModelGroup],
  ['POST', '/modelGroups/:id/actions/deactivate', 'DeactivateModelGroup', deactivateModelGroup],
  [
    'POST',
    '/modelGroupVersionHistory',
    'CreateModelGroupVersionHistory',
    createVersionHistory,
    { body: true, idempotent: true },
  ],
  [
    'GET',
    '/modelGroupVersionHistory',
    'ListModelGroupVersionHistories',
    listVersionHistories,
    { list: true },
  ],
  ['GET', '/modelGroupVersionHistory/:id', 'GetModelGroupVersionHistory', getVersionHistory],
  [
    'PUT',
    '/modelGroupVersionHistory/:id',
    'UpdateModelGroupVersionHistory',
    updateVersionHistory,
    { body: true },
  ],
  ['DELETE', '/modelGroupVersionHistory/:id', 'DeleteModelGroupVersionHistory', deleteVersionHistory],
  [
    'POST',
    '/modelDeployments',
    'CreateModelDeployment',
    createModelDeployment,
    { body: true, idempotent: true },
  ],
  ['GET', '/modelDeployments', 'ListModelDeployments', listModelDeployments, { list: true }],
  ['GET', '/modelDeployments/:id', 'GetModelDeployment', getModelDeployment],
  ['PUT', '/modelDeployments/:id', 'UpdateModelDeployment', updateModelDeployment, { body: true }],
  ['DELETE', '/modelDeployments/:id', 'DeleteModelDeployment', deleteModelDeployment],
  ['POST', '/modelDeployments/:id/actions/activate', 'ActivateModelDeployment', activateModelDeployment],
  [
    'POST',
    '/modelDeployments/:id/actions/deactivate',
    'DeactivateModelDeployment',
    deactivateModelDeployment,
  ],
  [
    'GET',
    '/modelDeployments/:id/models/modelState',
    'ListModelDeploymentModelStates',
    listModelDeploymentModelStates,
    { list: true },
  ],
  ['GET', '/workRequests', 'ListWorkRequests', listWorkRequests, { list: true }],
  ['GET', '/workRequests/:id', 'GetWorkRequest', getWorkRequest],
  ['DELETE', '/workRequests/:id', 'CancelWorkRequest', cancelWorkRequest],
  ['GET', '/workRequests/:id/errors', 'ListWorkRequestErrors', listWorkRequestErrors, { list: true }],
  ['GET', '/workRequests/:id/logs', 'ListWorkRequestLogs', listWorkRequestLogs, { list: true }],
];

export const ROUTES: readonly Route[] = [
  ...API.map(([method, path, ...rest]) => route(method, API_PREFIX + path, ...rest)),
  route('POST', '/md/:id/predict', 'Predict', predict, { body: true }),
];

export const OPERATIONS: ReadonlySet<string> = new Set(ROUTES.map((r) => r.operation));

/** The route and decoded path parameters for a request, if any. */
export function matchRoute(
  method: string,
  pathname: string,
): { route: Route; params: Record<string, string> } | undefined {
  const segs = pathname.split('/').filter((s) => s !== '');
  if (pathname.endsWith('/') && pathname !== '/') return undefined; // no trailing-slash spellings
  for (const r of ROUTES) {
    if (r.method !== method || r.segments.length !== segs.length) continue;
    const params: Record<string, string> = {};
    const ok = r.segments.every((s, i) => {
      const seg = segs[i] ?? '';
      if (s !== ':id') return s === seg;
      try {
        params.id = decodeURIComponent(seg);
      } catch {
        return false;
      }
      return true;
    });
    if (ok) return { route: r, params };
  }
  return undefined;
}
