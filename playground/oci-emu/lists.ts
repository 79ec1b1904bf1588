// List operations: query validation (unknown parameters are 400), compartment scoping, exact-match
// filters, sorting and opaque page tokens. Answers are bare JSON arrays with opc-next-page.

import { invalid, missing } from './errors.ts';
import type { Call, Reply } from './http.ts';
import { isOcidOf } from './ids.ts';

/** Stricter than needed on purpose: callers that ignore opc-next-page see truncated lists early. */
export const DEFAULT_LIMIT = 10;
export const MAX_LIMIT = 100;

export interface ListSpec<T> {
  /** Query parameter -> match. compartmentId, when present here, is required. */
  filters: Record<string, (item: T, value: string) => boolean>;
  /** Allowed values of some parameters, e.g. lifecycleState. */
  enums?: Record<string, readonly string[]>;
  sortBy: Record<string, (item: T) => string | number>;
  defaultSortBy: string;
  /** Parameters the SDK sends that do not filter (e.g. opc-retry-token never is one). */
  ignored?: readonly string[];
  /** Default: has sortBy/sortOrder parameters. */
  sortable?: boolean;
}

export interface Listed<T> {
  item: T;
  seq: number;
}

function pageToken(offset: number): string {
  return Buffer.from(`offset:${offset}`).toString('base64url');
}

function pageOffset(token: string): number {
  const m = /^offset:(\d+)$/.exec(Buffer.from(token, 'base64url').toString('utf8'));
  if (!m) throw invalid(`Invalid page token '${token}'`);
  return Number(m[1]);
}

export function listReply<T>(
  call: Call,
  items: Listed<T>[],
  spec: ListSpec<T>,
  toJson: (t: T) => unknown,
): Reply {
  const sortable = spec.sortable ?? true;
  const allowed = new Set([
    ...Object.keys(spec.filters),
    'limit',
    'page',
    ...(sortable ? ['sortBy', 'sortOrder'] : []),
    ...(spec.ignored ?? []),
  ]);
  for (const k of call.query.keys()) {
    if (!allowed.has(k)) throw invalid(`Unknown query parameter '${k}' for ${call.operation}`);
  }
  if ('compartmentId' in spec.filters) {
    const c = call.query.get('compartmentId');
    if (c === undefined || c === '') throw missing(`Missing required query parameter compartmentId`);
    if (!isOcidOf(c, 'compartment', 'tenancy'))
      throw invalid(`compartmentId '${c}' is not a compartment OCID`);
  }
  for (const [k, values] of Object.entries(spec.enums ?? {})) {
    const v = call.query.get(k);
    if (v !== undefined && !values.includes(v))
      throw invalid(`${k} must be one of ${values.join(', ')}, got '${v}'`);
  }
  let limit = DEFAULT_LIMIT;
  const rawLimit = call.query.get('limit');
  if (rawLimit !== undefined) {
    if (!/^\d+$/.test(rawLimit) || Number(rawLimit) < 1 || Number(rawLimit) > MAX_LIMIT) {
      throw invalid(`limit must be an integer from 1 to ${MAX_LIMIT}, got '${rawLimit}'`);
    }
    limit = Number(rawLimit);
  }
  const rawPage = call.query.get('page');
  const offset = rawPage === undefined ? 0 : pageOffset(rawPage);
  const sortBy = call.query.get('sortBy') ?? spec.defaultSortBy;
  const key = spec.sortBy[sortBy];
  if (!key) throw invalid(`sortBy must be one of ${Object.keys(spec.sortBy).join(', ')}, got '${sortBy}'`);
  const rawOrder = call.query.get('sortOrder');
  if (rawOrder !== undefined && rawOrder !== 'ASC' && rawOrder !== 'DESC') {
    throw invalid(`sortOrder must be ASC or DESC, got '${rawOrder}'`);
  }
  // As in OCI: time fields sort newest first unless asked otherwise, names alphabetically.
  const desc = (rawOrder ?? (sortBy.startsWith('time') ? 'DESC' : 'ASC')) === 'DESC';

  const matching = items.filter(({ item }) =>
    Object.entries(spec.filters).every(([k, match]) => {
      const v = call.query.get(k);
      return v === undefined || match(item, v);
    }),
  );
  matching.sort((a, b) => {
    const x = key(a.item);
    const y = key(b.item);
    // Ties keep creation order whatever the direction (members of a group share one timeCreated).
    if (x === y) return a.seq - b.seq;
    return (x < y ? -1 : 1) * (desc ? -1 : 1);
  });
  const page = matching.slice(offset, offset + limit);
  const headers: Record<string, string> = {};
  if (offset + limit < matching.length) headers['opc-next-page'] = pageToken(offset + limit);
  return { status: 200, body: page.map(({ item }) => toJson(item)), headers };
}
