/**
 * Operator configuration from flags, then environment, then defaults. Pure: `parseConfig` takes argv
 * and env so tests need no process state.
 */
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';

export interface Config {
  kubeconfig: string | undefined;
  /** Watch one namespace only; all namespaces when undefined. */
  namespace: string | undefined;
  leaderElect: boolean;
  leaderElectionNamespace: string;
  leaderElectionId: string;
  leaseDurationSeconds: number;
  renewDeadlineSeconds: number;
  retryPeriodSeconds: number;
  identity: string;
  healthHost: string;
  healthPort: number;
  logLevel: string;
  workers: number;
  defaultVllmImage: string;
  agentImage: string;
  /** The router's image: --router-image, else agentImage (both are the operator's own image). */
  routerImage: string;
  adapterVerifyIntervalSeconds: number;
  ociPollIntervalSeconds: number;
  ociProgressIntervalMs: number;
  /** Which namespaces may use principal-based OCI auth, and in which compartments (--principal-auth-allow). */
  principalAuthAllow: PrincipalAuthAllow;
}

/**
 * The compartments a namespace may spend principal-based OCI auth in: '*' for any, else their OCIDs.
 * A namespace absent from the map may not use instancePrincipal, resourcePrincipal or
 * workloadIdentity at all (API keys from its own Secret need no entry).
 */
export type PrincipalAuthAllow = ReadonlyMap<string, '*' | readonly string[]>;

/** A namespace name: an RFC 1123 label. */
const NAMESPACE = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
/** A compartment, or the tenancy (the root compartment). */
const COMPARTMENT = /^ocid1\.(compartment|tenancy)\.[a-z0-9]+\.[a-z0-9-]*(\.[a-z0-9-]*)?\.[a-z0-9]+$/;

/**
 * Parses `<namespace>=<compartment-ocid>|<compartment-ocid>...,<namespace>=*`: comma-separated
 * entries, each a namespace and the compartments it may use principal-based auth in ('*': any).
 * Empty (the default) allows no namespace. A namespace named twice is an error rather than a
 * merge: an admin who lists it twice has likely made a typo in one of the two.
 */
export function parsePrincipalAuthAllow(value: string | undefined): PrincipalAuthAllow {
  const allow = new Map<string, '*' | readonly string[]>();
  const flag = '--principal-auth-allow';
  for (const raw of (value ?? '').split(',')) {
    const entry = raw.trim();
    if (entry === '') continue;
    const eq = entry.indexOf('=');
    if (eq < 0) throw new ConfigError(`${flag}: entry "${entry}" is not <namespace>=<compartment-ocid>|...`);
    const ns = entry.slice(0, eq).trim();
    const list = entry.slice(eq + 1).trim();
    if (!NAMESPACE.test(ns)) throw new ConfigError(`${flag}: "${ns}" is not a namespace name`);
    if (allow.has(ns)) throw new ConfigError(`${flag}: namespace "${ns}" is listed twice`);
    if (list === '*') {
      allow.set(ns, '*');
      continue;
    }
    const compartments = list.split('|').map((c) => c.trim());
    for (const c of compartments) {
      if (c === '*') throw new ConfigError(`${flag}: "*" must stand alone for namespace "${ns}"`);
      if (!COMPARTMENT.test(c))
        throw new ConfigError(`${flag}: "${c}" (namespace "${ns}") is not a compartment or tenancy OCID`);
    }
    allow.set(ns, compartments);
  }
  return allow;
}

interface FlagSpec {
  env: string;
  type: 'string' | 'boolean' | 'integer';
  default: string | boolean | number | undefined;
  help: string;
}

export const FLAGS = {
  kubeconfig: {
    env: 'KUBECONFIG',
    type: 'string',
    default: undefined,
    help: 'kubeconfig file; in-cluster or ~/.kube/config when unset',
  },
  namespace: {
    env: 'WATCH_NAMESPACE',
    type: 'string',
    default: undefined,
    help: 'watch only this namespace (default: all)',
  },
  'leader-elect': {
    env: 'LEADER_ELECT',
    type: 'boolean',
    default: true,
    help: 'elect a leader on a Lease before reconciling',
  },
  'leader-election-namespace': {
    env: 'POD_NAMESPACE',
    type: 'string',
    default: 'stacked-system',
    help: 'namespace of the Lease',
  },
  'leader-election-id': {
    env: 'LEADER_ELECTION_ID',
    type: 'string',
    default: 'stacked-operator-leader',
    help: 'name of the Lease',
  },
  'lease-duration': {
    env: 'LEASE_DURATION_SECONDS',
    type: 'integer',
    default: 15,
    help: 'seconds a lease is valid',
  },
  'renew-deadline': {
    env: 'RENEW_DEADLINE_SECONDS',
    type: 'integer',
    default: 10,
    help: 'seconds the leader keeps trying to renew',
  },
  'retry-period': {
    env: 'RETRY_PERIOD_SECONDS',
    type: 'integer',
    default: 2,
    help: 'seconds between election attempts',
  },
  identity: {
    env: 'POD_NAME',
    type: 'string',
    default: undefined,
    help: 'identity in the Lease (default: hostname_pid)',
  },
  'health-host': {
    env: 'HEALTH_HOST',
    type: 'string',
    default: '0.0.0.0',
    help: 'address of /healthz, /readyz, /metrics',
  },
  'health-port': {
    env: 'HEALTH_PORT',
    type: 'integer',
    default: 8081,
    help: 'port of /healthz, /readyz, /metrics (0: any)',
  },
  'log-level': { env: 'LOG_LEVEL', type: 'string', default: 'info', help: 'error, warn, info or debug' },
  // Reconciles wait on the API server and OCI, not on the CPU: 4 left vllm deployments, which have
  // no slow call, queued behind OCI ones (bench:scale).
  workers: { env: 'WORKERS', type: 'integer', default: 16, help: 'concurrent reconciles per controller' },
  'adapter-verify-interval': {
    env: 'ADAPTER_VERIFY_INTERVAL_SECONDS',
    type: 'integer',
    default: 30,
    help: 'seconds between checks that every pod still holds its adapters',
  },
  'oci-poll-interval': {
    env: 'OCI_POLL_INTERVAL_SECONDS',
    type: 'integer',
    default: 60,
    help: 'seconds between reads of a settled OCI deployment (drift, model states)',
  },
  'oci-progress-interval-ms': {
    env: 'OCI_PROGRESS_INTERVAL_MS',
    type: 'integer',
    default: 2000,
    help: 'milliseconds between polls while OCI creates, updates or deletes',
  },
  'agent-image': {
    env: 'AGENT_IMAGE',
    type: 'string',
    default: 'ghcr.io/stacked-dev/stacked-operator:0.1.0',
    help: 'image of the fetch agent sidecar (the operator image)',
  },
  'router-image': {
    env: 'ROUTER_IMAGE',
    type: 'string',
    default: undefined,
    help: "image of each StackedDeployment's router (default: --agent-image, the operator image)",
  },
  'default-vllm-image': {
    env: 'DEFAULT_VLLM_IMAGE',
    type: 'string',
    default: 'vllm/vllm-openai:v0.11.0',
    help: 'image when spec.vllm.image is unset',
  },
  'principal-auth-allow': {
    env: 'PRINCIPAL_AUTH_ALLOW',
    type: 'string',
    default: undefined,
    help:
      'namespaces that may use instancePrincipal, resourcePrincipal or workloadIdentity, and where: ' +
      '<namespace>=<compartment-ocid>|<compartment-ocid>|...,<namespace>=* (default: none; apiKey needs no entry)',
  },
} as const satisfies Record<string, FlagSpec>;

type FlagName = keyof typeof FLAGS;

export class ConfigError extends Error {}

export function usage(): string {
  return Object.entries(FLAGS)
    .map(
      ([name, f]) =>
        `  --${name.padEnd(27)} ${f.help} [env ${f.env}${f.default === undefined ? '' : `, default ${String(f.default)}`}]`,
    )
    .join('\n');
}

export function parseConfig(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): Config {
  const { values } = parseArgs({
    args: [...argv],
    strict: true,
    options: Object.fromEntries(
      Object.entries(FLAGS).map(([name, f]) => [name, { type: f.type === 'boolean' ? 'boolean' : 'string' }]),
    ) as Record<FlagName, { type: 'string' | 'boolean' }>,
    allowNegative: true,
  });
  const raw = (name: FlagName): string | boolean | undefined => {
    const v = (values as Record<string, string | boolean | undefined>)[name];
    if (v !== undefined) return v;
    const e = env[FLAGS[name].env];
    return e === undefined || e === '' ? undefined : e;
  };
  const str = (name: FlagName): string | undefined => {
    const v = raw(name) ?? FLAGS[name].default;
    return v === undefined ? undefined : String(v);
  };
  const int = (name: FlagName): number => {
    const v = str(name);
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0)
      throw new ConfigError(`--${name} must be a non-negative integer, got "${v ?? ''}"`);
    return n;
  };
  const bool = (name: FlagName): boolean => {
    const v = raw(name) ?? FLAGS[name].default;
    if (typeof v === 'boolean') return v;
    if (v === 'true' || v === '1') return true;
    if (v === 'false' || v === '0') return false;
    throw new ConfigError(`--${name} must be true or false, got "${String(v)}"`);
  };
  const level = str('log-level') ?? 'info';
  if (!['error', 'warn', 'info', 'debug'].includes(level))
    throw new ConfigError(`--log-level must be error, warn, info or debug`);
  const config: Config = {
    kubeconfig: str('kubeconfig'),
    namespace: str('namespace'),
    leaderElect: bool('leader-elect'),
    leaderElectionNamespace: str('leader-election-namespace') ?? 'stacked-system',
    leaderElectionId: str('leader-election-id') ?? 'stacked-operator-leader',
    leaseDurationSeconds: int('lease-duration'),
    renewDeadlineSeconds: int('renew-deadline'),
    retryPeriodSeconds: int('retry-period'),
    identity: str('identity') ?? `${hostname()}_${process.pid}`,
    healthHost: str('health-host') ?? '0.0.0.0',
    healthPort: int('health-port'),
    logLevel: level,
    workers: Math.max(1, int('workers')),
    defaultVllmImage: str('default-vllm-image') ?? '',
    adapterVerifyIntervalSeconds: Math.max(1, int('adapter-verify-interval')),
    agentImage: str('agent-image') ?? '',
    routerImage: str('router-image') ?? str('agent-image') ?? '',
    ociPollIntervalSeconds: Math.max(1, int('oci-poll-interval')),
    ociProgressIntervalMs: Math.max(50, int('oci-progress-interval-ms')),
    principalAuthAllow: parsePrincipalAuthAllow(str('principal-auth-allow')),
  };
  if (!(
    config.retryPeriodSeconds < config.renewDeadlineSeconds &&
    config.renewDeadlineSeconds < config.leaseDurationSeconds
  )) {
    throw new ConfigError('need --retry-period < --renew-deadline < --lease-duration');
  }
  return config;
}
