/**
 * The Kubernetes objects' bodies, as pure functions of plain values (the component in ./index.ts declares them):
 * the pod, its network policies, the cert-manager and CloudNativePG resources. Tests read them directly too.
 */
import type * as k8s from '@pulumi/kubernetes';
import type * as pulumi from '@pulumi/pulumi';
import { BRIDGE_PORT, BRIDGE_UID, bridgeSettings, BridgeEnvironmentSpec, FILE_SETTINGS, SQLITE_URL, WEBHOOK_SECRET_SETTING } from '../environment';

/** Where the Secret's files are mounted in the container (the `_FILE` settings point here). */
export const SECRETS_DIR = '/run/secrets/scim-bridge';
/** The file of each credential (every one of FILE_SETTINGS) in SECRETS_DIR. */
export const SECRET_FILES: Readonly<Record<(typeof FILE_SETTINGS)[number], string>> = {
  SCIM_BRIDGE_TOKEN_SHA256: 'token-sha256',
  SCIM_BRIDGE_APP_TOKEN_SHA256: 'app-token-sha256',
  SCIM_BRIDGE_DATABASE_URL: 'database-url',
  SCIM_BRIDGE_WEBHOOK_SECRET: 'webhook-secret',
  SCIM_BRIDGE_GOOGLE_CREDENTIALS: 'google-credentials',
};
const fileOf = (setting: string): string | undefined => (FILE_SETTINGS as readonly string[]).includes(setting) ? SECRET_FILES[setting as (typeof FILE_SETTINGS)[number]] : undefined;
/** The pod's resources: what the VM hosts give the bridge's container (512 MiB), with a request that fits small nodes. */
export const RESOURCES = { requests: { cpu: '100m', memory: '192Mi' }, limits: { cpu: '1', memory: '512Mi' } };
/**
 * How long Kubernetes waits between SIGTERM and SIGKILL. The bridge finishes what is in flight and closes its
 * store within 10 s of SIGTERM (bridge/src/main.ts); the rest is margin for the endpoints' removal to reach the
 * ingress controller first.
 */
export const TERMINATION_GRACE_SECONDS = 30;
/** The namespace's Pod Security admission: restricted, enforced, audited and warned about. */
export const POD_SECURITY_LABELS = {
  'pod-security.kubernetes.io/enforce': 'restricted',
  'pod-security.kubernetes.io/enforce-version': 'latest',
  'pod-security.kubernetes.io/audit': 'restricted',
  'pod-security.kubernetes.io/warn': 'restricted',
};
/** The addresses a pod never needs to reach: the clouds' metadata service (node credentials) and link-local. */
export const METADATA_RANGE = '169.254.0.0/16';

export type Database = { kind: 'sqlite' } | { kind: 'postgres' } | { kind: 'cloudnative-pg'; cluster: string };

export function labelsOf(name: string, component = 'server'): Record<string, string> {
  return { 'app.kubernetes.io/name': 'scim-bridge', 'app.kubernetes.io/instance': name, 'app.kubernetes.io/component': component, 'app.kubernetes.io/managed-by': 'pulumi' };
}
export function selectorOf(name: string): Record<string, string> {
  return { 'app.kubernetes.io/name': 'scim-bridge', 'app.kubernetes.io/instance': name, 'app.kubernetes.io/component': 'server' };
}

export interface PodEnvSpec extends Omit<BridgeEnvironmentSpec, 'databaseUrl'> {
  database: Database;
  webhookSecret: boolean;
  /** The metrics token's hash is a file of the Secret (METRICS_TOKEN_FILE): /metrics accepts that token too. */
  metricsToken?: boolean;
}

/** The metrics token's SHA-256 in the settings Secret (SCIM_BRIDGE_METRICS_TOKEN_SHA256_FILE). */
export const METRICS_TOKEN_FILE = 'metrics-token-sha256';

export type EnvVar = { name: string; value: string };

/**
 * The container's environment: the one list of infra/environment.ts, with every credential (FILE_SETTINGS)
 * given as a file of the mounted Secret through its `_FILE` form.
 */
export function podEnvironment(spec: PodEnvSpec): EnvVar[] {
  const settings = bridgeSettings({
    domain: spec.domain,
    ...(spec.database.kind === 'sqlite' ? { databaseUrl: SQLITE_URL } : {}),
    tokenSha256: spec.tokenSha256,
    ...(spec.appTokenSha256 ? { appTokenSha256: spec.appTokenSha256 } : {}),
    allowedDomains: spec.allowedDomains,
    ...(spec.webhookUrl ? { webhookUrl: spec.webhookUrl } : {}),
    ...(spec.google ? { google: spec.google } : {}),
  });
  const env: EnvVar[] = [];
  for (const [name, value] of settings) {
    // A SQLite URL holds no password: it stays a plain setting (PostgreSQL's comes as a file, below).
    const file = name === 'SCIM_BRIDGE_DATABASE_URL' ? undefined : fileOf(name);
    env.push(file ? { name: `${name}_FILE`, value: `${SECRETS_DIR}/${file}` } : { name, value });
  }
  if (spec.database.kind !== 'sqlite') {
    // The image sets SCIM_BRIDGE_DATABASE_URL to its SQLite default; beside the _FILE form it must be empty.
    env.push({ name: 'SCIM_BRIDGE_DATABASE_URL', value: '' }, { name: 'SCIM_BRIDGE_DATABASE_URL_FILE', value: `${SECRETS_DIR}/${SECRET_FILES.SCIM_BRIDGE_DATABASE_URL}` });
  }
  if (spec.webhookSecret) env.push({ name: `${WEBHOOK_SECRET_SETTING}_FILE`, value: `${SECRETS_DIR}/${SECRET_FILES[WEBHOOK_SECRET_SETTING]}` });
  if (spec.metricsToken) env.push({ name: 'SCIM_BRIDGE_METRICS_TOKEN_SHA256_FILE', value: `${SECRETS_DIR}/${METRICS_TOKEN_FILE}` });
  // The Google Workspace connector's key is in the Secret exactly when the connector is on.
  if (spec.google) env.push({ name: 'SCIM_BRIDGE_GOOGLE_CREDENTIALS_FILE', value: `${SECRETS_DIR}/${SECRET_FILES.SCIM_BRIDGE_GOOGLE_CREDENTIALS}` });
  return env;
}

const httpGet = (path: string) => ({ httpGet: { path, port: 'http' } });

/** The bridge's container: probes, resources, and the restricted profile's security context. */
export function container(image: pulumi.Input<string>, env: pulumi.Input<EnvVar[]>, database: Database): k8s.types.input.core.v1.Container {
  return {
    name: 'scim-bridge',
    image,
    ports: [{ name: 'http', containerPort: BRIDGE_PORT, protocol: 'TCP' }],
    env,
    // Up to a minute for the first start (migrations); then /healthz says the process answers and /readyz that
    // its store does: a replica without its database leaves the Service instead of being restarted.
    startupProbe: { ...httpGet('/healthz'), periodSeconds: 2, failureThreshold: 30, timeoutSeconds: 2 },
    livenessProbe: { ...httpGet('/healthz'), periodSeconds: 10, failureThreshold: 3, timeoutSeconds: 3 },
    readinessProbe: { ...httpGet('/readyz'), periodSeconds: 5, failureThreshold: 2, timeoutSeconds: 3 },
    resources: RESOURCES,
    securityContext: {
      runAsNonRoot: true,
      runAsUser: BRIDGE_UID,
      runAsGroup: BRIDGE_UID,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    },
    volumeMounts: [
      { name: 'tmp', mountPath: '/tmp' },
      { name: 'secrets', mountPath: SECRETS_DIR, readOnly: true },
      ...(database.kind === 'sqlite' ? [{ name: 'data', mountPath: '/data' }] : []),
    ],
  };
}

/** The pod's volumes: /tmp in memory, the credentials as files (root's and the bridge's group's only), the SQLite volume. */
export function podVolumes(settingsSecret: pulumi.Input<string>, database: Database, pvc: pulumi.Input<string> | undefined): k8s.types.input.core.v1.Volume[] {
  const sources: k8s.types.input.core.v1.VolumeProjection[] = [{ secret: { name: settingsSecret } }];
  // CloudNativePG writes the application user's connection URI into <cluster>-app; it becomes the URL's file.
  if (database.kind === 'cloudnative-pg') sources.push({ secret: { name: `${database.cluster}-app`, items: [{ key: 'uri', path: SECRET_FILES.SCIM_BRIDGE_DATABASE_URL }] } });
  return [
    { name: 'tmp', emptyDir: { medium: 'Memory', sizeLimit: '64Mi' } },
    { name: 'secrets', projected: { defaultMode: 0o440, sources } },
    ...(database.kind === 'sqlite' && pvc !== undefined ? [{ name: 'data', persistentVolumeClaim: { claimName: pvc } }] : []),
  ];
}

export function podSecurityContext() {
  return {
    runAsNonRoot: true,
    runAsUser: BRIDGE_UID,
    runAsGroup: BRIDGE_UID,
    // The volume's files (SQLite) and the Secret's belong to the bridge's group.
    fsGroup: BRIDGE_UID,
    seccompProfile: { type: 'RuntimeDefault' },
  };
}

/** Spread over nodes and zones as far as the cluster allows (never blocking a rollout on a small cluster). */
export function topologySpread(name: string) {
  return ['kubernetes.io/hostname', 'topology.kubernetes.io/zone'].map((topologyKey) => ({
    maxSkew: 1,
    topologyKey,
    whenUnsatisfiable: 'ScheduleAnyway',
    labelSelector: { matchLabels: selectorOf(name) },
  }));
}

/** One replica on SQLite: the old pod stops (and releases the volume) before the new one starts. */
export function strategyOf(database: Database) {
  return database.kind === 'sqlite' ? { type: 'Recreate' } : { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } };
}

/** A PodDisruptionBudget that keeps one replica up, except with one replica, where that would block every drain. */
export function disruptionBudget(replicas: number) {
  return replicas > 1 ? { minAvailable: 1 } : { maxUnavailable: 1 };
}

const port = (p: number, protocol = 'TCP') => ({ port: p, protocol });
const inNamespace = (namespace: pulumi.Input<string>) => ({ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': namespace } } });
/** Any public or cluster address but the metadata service. */
const anywhereButMetadata = [{ ipBlock: { cidr: '0.0.0.0/0', except: [METADATA_RANGE] } }, { ipBlock: { cidr: '::/0' } }];
const DNS = { to: [{ ...inNamespace('kube-system'), podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } } }], ports: [port(53, 'UDP'), port(53)] };

export interface PolicySpec {
  name: string;
  /** The namespace whose pods (the ingress controller, the Gateway's) may reach the bridge. */
  ingressNamespace: pulumi.Input<string>;
  database: Database;
  /** The webhook's port, when a webhook is configured. */
  webhookPort?: number;
  /** The namespace of the Prometheus that scrapes /metrics (a ServiceMonitor), when there is one. */
  scraperNamespace?: pulumi.Input<string>;
  /** The Google Workspace connector is on: out to Google's APIs (443). */
  googleApis?: boolean;
}

/**
 * The namespace's NetworkPolicies: nothing in or out by default; the bridge reachable from the ingress
 * controller's namespace only; out to DNS, its database, the webhook and (the connector on) Google's APIs. cert-manager's HTTP-01 solver and
 * CloudNativePG's instances live in the namespace too and get what they need.
 */
export function networkPolicies(p: PolicySpec): Array<{ name: string; spec: k8s.types.input.networking.v1.NetworkPolicySpec }> {
  const bridge = { matchLabels: selectorOf(p.name) };
  const egress: k8s.types.input.networking.v1.NetworkPolicyEgressRule[] = [DNS];
  if (p.database.kind === 'postgres') egress.push({ to: anywhereButMetadata, ports: [port(5432)] });
  if (p.database.kind === 'cloudnative-pg') egress.push({ to: [{ podSelector: { matchLabels: { 'cnpg.io/cluster': p.database.cluster } } }], ports: [port(5432)] });
  if (p.webhookPort !== undefined) egress.push({ to: anywhereButMetadata, ports: [port(p.webhookPort)] });
  // Google's token endpoint and Directory API: addresses of Google's that no list here could pin.
  if (p.googleApis) egress.push({ to: anywhereButMetadata, ports: [port(443)] });
  const policies: Array<{ name: string; spec: k8s.types.input.networking.v1.NetworkPolicySpec }> = [
    { name: `${p.name}-default-deny`, spec: { podSelector: {}, policyTypes: ['Ingress', 'Egress'] } },
    {
      name: `${p.name}-bridge`,
      spec: {
        podSelector: bridge,
        policyTypes: ['Ingress', 'Egress'],
        ingress: [
          { from: [inNamespace(p.ingressNamespace)], ports: [port(BRIDGE_PORT)] },
          ...(p.scraperNamespace !== undefined ? [{ from: [inNamespace(p.scraperNamespace)], ports: [port(BRIDGE_PORT)] }] : []),
        ],
        egress,
      },
    },
    {
      // cert-manager's HTTP-01 solver pods (created in this namespace for the Certificate) answer Let's Encrypt
      // through the ingress controller.
      name: `${p.name}-acme-solver`,
      spec: {
        podSelector: { matchLabels: { 'acme.cert-manager.io/http01-solver': 'true' } },
        policyTypes: ['Ingress'],
        ingress: [{ from: [inNamespace(p.ingressNamespace)], ports: [port(8089)] }],
      },
    },
  ];
  if (p.database.kind === 'cloudnative-pg') {
    const instances = { matchLabels: { 'cnpg.io/cluster': p.database.cluster } };
    policies.push({
      name: `${p.name}-postgres`,
      spec: {
        podSelector: instances,
        policyTypes: ['Ingress', 'Egress'],
        ingress: [
          { from: [{ podSelector: bridge }], ports: [port(5432)] },
          // Replication between the instances, and the operator's status checks (port 8000) and its connections.
          { from: [{ podSelector: instances }], ports: [port(5432), port(8000)] },
          { from: [inNamespace('cnpg-system')], ports: [port(5432), port(8000)] },
        ],
        egress: [
          DNS,
          { to: [{ podSelector: instances }], ports: [port(5432), port(8000)] },
          // The Kubernetes API (the instance manager) and the object store the backups go to.
          { to: anywhereButMetadata, ports: [port(443), port(6443)] },
        ],
      },
    });
  }
  return policies;
}

/** What the alert rules watch: see prometheusRules. */
export interface MonitoringSpec {
  name: string;
  namespace: string;
  /** The Service the ServiceMonitor selects: Prometheus labels its targets with `service`. */
  service: string;
  /** cert-manager's Certificate for the domain (its metric carries the name). */
  certificate: string;
  database: Database;
  /** The SQLite volume's claim, when there is one. */
  pvc?: string;
}

/** The bridge's memory limit in bytes (RESOURCES), the base of the memory alert. */
export function memoryLimitBytes(limit = RESOURCES.limits.memory): number {
  const m = /^(\d+)(Ki|Mi|Gi)$/.exec(limit);
  if (!m) throw new Error(`kubernetes: memory limit ${limit} is not in Ki, Mi or Gi`);
  return Number(m[1]) * 1024 ** (['Ki', 'Mi', 'Gi'].indexOf(m[2]) + 1);
}

/** The ServiceMonitor's spec: /metrics on the Service's http port, with the metrics token from a Secret. */
export function serviceMonitorSpec(name: string, tokenSecret: string) {
  return {
    selector: { matchLabels: selectorOf(name) },
    endpoints: [
      {
        port: 'http',
        path: '/metrics',
        scheme: 'http',
        interval: '30s',
        // The token opens /metrics only (SCIM_BRIDGE_METRICS_TOKEN_SHA256), never the SCIM API.
        authorization: { type: 'Bearer', credentials: { name: tokenSecret, key: 'token' } },
      },
    ],
  };
}

/**
 * The alert rules (a PrometheusRule): the bridge down, its certificate within 14 days of expiry (cert-manager's
 * metric), webhook dead letters, the data volume almost full (the kubelet's volume stats: the SQLite claim or the
 * CloudNativePG instances' claims) and memory near the container's limit. The thresholds are the VM targets'.
 */
export function prometheusRules(m: MonitoringSpec) {
  const of = `namespace="${m.namespace}", service="${m.service}"`;
  const claims =
    m.database.kind === 'sqlite' && m.pvc ? `persistentvolumeclaim="${m.pvc}"` : m.database.kind === 'cloudnative-pg' ? `persistentvolumeclaim=~"${m.database.cluster}-[0-9]+"` : undefined;
  const annotations = (summary: string, description: string) => ({ summary, description });
  const rules: Array<{ alert: string; expr: string; for: string; labels: Record<string, string>; annotations: Record<string, string> }> = [
    {
      alert: 'ScimBridgeDown',
      expr: `sum(up{${of}}) == 0 or absent(up{${of}})`,
      for: '3m',
      labels: { severity: 'critical' },
      annotations: annotations(
        `scim-bridge in ${m.namespace} is down`,
        `No replica of the bridge answers /metrics for 3 minutes, so the IdP cannot provision. kubectl -n ${m.namespace} get pods; kubectl -n ${m.namespace} logs deploy/${m.name}-server`,
      ),
    },
    {
      alert: 'ScimBridgeCertificateExpiresSoon',
      expr: `certmanager_certificate_expiration_timestamp_seconds{namespace="${m.namespace}", name="${m.certificate}"} - time() < 14 * 86400`,
      for: '1h',
      labels: { severity: 'warning' },
      annotations: annotations(
        `The certificate of scim-bridge in ${m.namespace} expires within 14 days`,
        `cert-manager renews 30 days ahead: kubectl -n ${m.namespace} describe certificate ${m.certificate} says why it has not.`,
      ),
    },
    {
      alert: 'ScimBridgeDeadLetters',
      expr: `max(scim_bridge_dead_letters{${of}}) > 0`,
      for: '1m',
      labels: { severity: 'warning' },
      annotations: annotations(
        `scim-bridge in ${m.namespace} has webhook dead letters`,
        'Events the webhook gave up on (GET /health lists them): fix the receiver, then POST /api/v1/dead-letters/replay.',
      ),
    },
    ...(claims
      ? [
          {
            alert: 'ScimBridgeVolumeAlmostFull',
            expr: `max(kubelet_volume_stats_used_bytes{namespace="${m.namespace}", ${claims}} / kubelet_volume_stats_capacity_bytes{namespace="${m.namespace}", ${claims}}) > 0.85`,
            for: '5m',
            labels: { severity: 'warning' },
            annotations: annotations(`A data volume of scim-bridge in ${m.namespace} is above 85% full`, 'Raise volumeSizeGb and pulumi up (the StorageClass must allow volume expansion).'),
          },
        ]
      : []),
    {
      alert: 'ScimBridgeMemoryHigh',
      expr: `max(container_memory_working_set_bytes{namespace="${m.namespace}", container="scim-bridge"}) / ${memoryLimitBytes()} > 0.9`,
      for: '5m',
      labels: { severity: 'warning' },
      annotations: annotations(`scim-bridge in ${m.namespace} uses over 90% of its memory limit`, `A replica is near its limit of ${RESOURCES.limits.memory}, where it would be killed and restarted.`),
    },
  ];
  return { groups: [{ name: 'scim-bridge', rules }] };
}
