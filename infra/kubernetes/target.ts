/** The kubernetes target: its settings and defaults, its component, secret sinks and plan mocks. */
import * as pulumi from '@pulumi/pulumi';
import { BUILD_IMAGE, Platform } from '../image';
import { list, readMetricsToken } from '../settings';
import { defineTarget } from '../target';
import { DatabaseArgs, KubernetesBridge, KUBERNETES_SECRET_SINKS } from './index';
import { kubernetesPlanMocks } from './mocks';

export const DATABASES = ['sqlite', 'postgres', 'cloudnative-pg'] as const;
export const DEFAULT_INGRESS_NAMESPACE = 'ingress-nginx';
export const DEFAULT_BACKUP_RETENTION = '30d';

export interface KubernetesSettings {
  namespace: string;
  replicas: number;
  database: (typeof DATABASES)[number];
  /** postgres: the database's URL, a secret. */
  databaseUrl?: pulumi.Output<string>;
  storageClass?: string;
  volumeSizeGb: number;
  /** cloudnative-pg: PostgreSQL instances. */
  postgresInstances: number;
  backup?: { destination: string; endpoint?: string; accessKeyId: string; secretAccessKey: pulumi.Output<string>; retention: string };
  ingressClass?: string;
  /** An existing Gateway (namespace and name): an HTTPRoute instead of an Ingress. */
  gateway?: { namespace: string; name: string };
  ingressNamespace: string;
  clusterIssuer?: string;
  /** A token accepted on /metrics only (a secret). */
  metricsToken?: pulumi.Output<string>;
  /** prometheus-operator: a ServiceMonitor and a PrometheusRule, for the Prometheus in `namespace` that selects `labels`. */
  monitoring?: { namespace: string; labels: Record<string, string> };
  /** image: build: where the image is pushed and pulled from, for which platform, with which login (if any). */
  build?: { repository: string; platform: Platform; login?: { username: string; password: pulumi.Output<string> } };
}

export const MONITORING = ['none', 'prometheus-operator'] as const;
export const DEFAULT_MONITORING_NAMESPACE = 'monitoring';

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

const KEYS = {
  namespace: 'the Namespace the stack creates (default scim-bridge-<stack>)',
  replicas: 'bridge replicas: 1 on sqlite, 2 or more on postgres and cloudnative-pg',
  database: DATABASES.join(', '),
  databaseUrl: 'postgres: the database URL, postgres://… (--secret)',
  storageClass: "the volumes' StorageClass (the cluster's default when unset)",
  volumeSizeGb: 'size of the SQLite volume or of each PostgreSQL instance, in GB',
  postgresInstances: 'cloudnative-pg: PostgreSQL instances (primary and standbys)',
  backupDestination: 'cloudnative-pg: s3://bucket/path for base backups and WAL',
  backupEndpoint: "cloudnative-pg: the object store's https endpoint when not AWS S3",
  backupAccessKeyId: "cloudnative-pg: the object store's access key id",
  backupSecretAccessKey: "cloudnative-pg: the object store's secret key (--secret)",
  backupRetention: 'cloudnative-pg: how long backups are kept, e.g. 30d',
  ingressClass: "the Ingress's class (the cluster's default when unset)",
  gateway: 'namespace/name of an existing Gateway: an HTTPRoute instead of an Ingress',
  ingressNamespace: "the ingress controller's namespace, allowed to reach the bridge",
  clusterIssuer: 'an existing cert-manager ClusterIssuer, instead of the ACME Issuer the stack declares',
  metricsToken: "a token accepted on /metrics only, for a Prometheus scraper (--secret); generated with monitoring",
  monitoring: `${MONITORING.join(' or ')}: a ServiceMonitor and a PrometheusRule (the operator's CRDs must be installed)`,
  monitoringNamespace: "the namespace of the Prometheus that scrapes the bridge (allowed in by the NetworkPolicy)",
  monitoringLabels: 'key=value labels your Prometheus selects ServiceMonitors and PrometheusRules by, e.g. release=kube-prometheus-stack',
  registry: 'image build: the repository the image is pushed to and pulled from, e.g. registry.example.com/team/scim-bridge',
  registryUsername: "image build: the registry's user (with registryPassword); none: your Docker's login pushes, the nodes' identity pulls",
  registryPassword: "image build: the registry user's password or token (--secret)",
  platform: "image build: the nodes' platform, linux/amd64 or linux/arm64",
} as const;

const PLATFORMS: readonly Platform[] = ['linux/amd64', 'linux/arm64'];
/** A repository reference without tag or digest: registry host (with a dot or a port), then a path. */
const REPOSITORY = /^[a-z0-9-]+(\.[a-z0-9-]+)*(:\d+)?(\/[a-z0-9]+([._-][a-z0-9]+)*)+$/;

export const kubernetesTarget = defineTarget({
  name: 'kubernetes',
  keys: KEYS,
  settings(r, common) {
    const stack = pulumi.getStack() || 'dev';
    const namespace = r.get('namespace') ?? `scim-bridge-${stack}`.toLowerCase().replace(/[^a-z0-9-]+/g, '-').slice(0, 63).replace(/-+$/, '');
    if (!DNS_LABEL.test(namespace)) r.fail('namespace', `"${namespace}" is not a namespace name (lower-case letters, digits and inner hyphens, at most 63)`);

    const databaseRaw = r.get('database') ?? 'sqlite';
    let database: KubernetesSettings['database'] = 'sqlite';
    if (!(DATABASES as readonly string[]).includes(databaseRaw)) r.fail('database', `"${databaseRaw}" is not one of ${DATABASES.join(', ')}`);
    else database = databaseRaw as KubernetesSettings['database'];

    const replicasRaw = r.get('replicas') ?? (database === 'sqlite' ? '1' : '2');
    const replicas = Number(replicasRaw);
    if (!/^\d+$/.test(replicasRaw) || replicas < 1 || replicas > 20) r.fail('replicas', `"${replicasRaw}" must be a whole number from 1 to 20`);
    else if (database === 'sqlite' && replicas > 1) {
      r.fail('replicas', `is ${replicas}, but replicas cannot share one SQLite database: use 1, or PostgreSQL: pulumi config set database postgres (or cloudnative-pg)`);
    }

    let databaseUrl: pulumi.Output<string> | undefined;
    const urlRaw = r.raw('databaseUrl');
    if (database === 'postgres') {
      if (urlRaw === undefined || urlRaw.trim() === '') r.fail('databaseUrl', 'is not set but database is postgres: pulumi config set --secret databaseUrl "postgres://user:password@host:5432/scim_bridge?sslmode=require"');
      else if (!r.isSecret('databaseUrl')) r.fail('databaseUrl', 'is stored in clear in the stack file (it holds a password): pulumi config set --secret databaseUrl <url>');
      // Its form (postgres://…) is the bridge's to check at start: the offline plan stands in a made-up value.
      else if (/\s/.test(urlRaw)) r.fail('databaseUrl', 'has spaces or line breaks; give the URL alone (percent-encode them in the password)');
      else databaseUrl = r.secret(urlRaw);
    } else if (urlRaw !== undefined) r.fail('databaseUrl', `applies to database postgres only (this stack's is ${database}); remove it: pulumi config rm databaseUrl`);

    const storageClass = r.get('storageClass');
    if (storageClass && !DNS_SUBDOMAIN.test(storageClass)) r.fail('storageClass', `"${storageClass}" is not a StorageClass name`);
    const sizeRaw = r.get('volumeSizeGb') ?? '10';
    const volumeSizeGb = Number(sizeRaw);
    if (!/^\d+$/.test(sizeRaw) || volumeSizeGb < 1 || volumeSizeGb > 65536) r.fail('volumeSizeGb', `"${sizeRaw}" must be a whole number of GB from 1 to 65536`);

    const instancesRaw = r.get('postgresInstances') ?? '2';
    const postgresInstances = Number(instancesRaw);
    if (!/^\d+$/.test(instancesRaw) || postgresInstances < 1 || postgresInstances > 9) r.fail('postgresInstances', `"${instancesRaw}" must be a whole number from 1 to 9`);

    const backupKeys = ['backupDestination', 'backupEndpoint', 'backupAccessKeyId', 'backupSecretAccessKey', 'backupRetention'] as const;
    let backup: KubernetesSettings['backup'];
    if (database === 'cloudnative-pg') {
      const destination = r.get('backupDestination');
      const endpoint = r.get('backupEndpoint');
      const accessKeyId = r.get('backupAccessKeyId');
      const secretKey = r.raw('backupSecretAccessKey');
      const retention = r.get('backupRetention') ?? DEFAULT_BACKUP_RETENTION;
      if (!destination) r.fail('backupDestination', 'is not set but database is cloudnative-pg, whose backups go to an object store: pulumi config set backupDestination s3://my-bucket/scim-bridge');
      else if (!/^s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](\/\S*)?$/.test(destination)) r.fail('backupDestination', `"${destination}" must be s3://bucket/path`);
      if (endpoint && !/^https:\/\/[^\s/]+\/?$/.test(endpoint)) r.fail('backupEndpoint', `"${endpoint}" must be an https URL with no path, e.g. https://fra1.digitaloceanspaces.com`);
      if (!accessKeyId) r.fail('backupAccessKeyId', "is not set: the object store's access key id: pulumi config set backupAccessKeyId AKIA…");
      if (secretKey === undefined || secretKey.trim() === '') r.fail('backupSecretAccessKey', "is not set: the object store's secret key: pulumi config set --secret backupSecretAccessKey <key>");
      else if (!r.isSecret('backupSecretAccessKey')) r.fail('backupSecretAccessKey', 'is stored in clear in the stack file: pulumi config set --secret backupSecretAccessKey <key>');
      if (!/^[1-9]\d*[dwm]$/.test(retention)) r.fail('backupRetention', `"${retention}" must be a number of days, weeks or months, like 30d`);
      if (destination && accessKeyId && secretKey && r.isSecret('backupSecretAccessKey')) {
        backup = { destination, ...(endpoint ? { endpoint } : {}), accessKeyId, secretAccessKey: r.secret(secretKey), retention };
      }
    } else {
      for (const k of backupKeys) if (r.get(k)) r.fail(k, `applies to database cloudnative-pg only (this stack's is ${database}); remove it: pulumi config rm ${k}`);
      if (r.get('postgresInstances')) r.fail('postgresInstances', `applies to database cloudnative-pg only (this stack's is ${database}); remove it: pulumi config rm postgresInstances`);
    }

    const ingressClass = r.get('ingressClass');
    if (ingressClass && !DNS_SUBDOMAIN.test(ingressClass)) r.fail('ingressClass', `"${ingressClass}" is not an IngressClass name`);
    const gatewayRaw = r.get('gateway');
    let gateway: KubernetesSettings['gateway'];
    if (gatewayRaw) {
      const [gwNamespace, gwName, ...rest] = gatewayRaw.split('/');
      if (rest.length || !gwName || !DNS_LABEL.test(gwNamespace) || !DNS_SUBDOMAIN.test(gwName)) r.fail('gateway', `"${gatewayRaw}" must be namespace/name of an existing Gateway, e.g. gateway-system/public`);
      else gateway = { namespace: gwNamespace, name: gwName };
      if (ingressClass) r.fail('ingressClass', 'is for an Ingress, but gateway is set (an HTTPRoute is used instead): remove one of them');
    }
    const ingressNamespace = r.get('ingressNamespace') ?? gateway?.namespace ?? DEFAULT_INGRESS_NAMESPACE;
    if (!DNS_LABEL.test(ingressNamespace)) r.fail('ingressNamespace', `"${ingressNamespace}" is not a namespace name`);

    const clusterIssuer = r.get('clusterIssuer');
    if (clusterIssuer && !DNS_SUBDOMAIN.test(clusterIssuer)) r.fail('clusterIssuer', `"${clusterIssuer}" is not a ClusterIssuer name`);
    if (clusterIssuer && (r.get('acmeCa') || r.get('acmeCaRoot'))) r.fail('clusterIssuer', 'is set, so the ClusterIssuer decides the CA: remove acmeCa and acmeCaRoot (pulumi config rm acmeCa)');

    // The scraper's token: its hash reaches the pods (a Secret: a rolling update), the token the ServiceMonitor.
    const metricsToken = readMetricsToken(r);
    const monitoringRaw = r.get('monitoring') ?? 'none';
    let monitoring: KubernetesSettings['monitoring'];
    if (!(MONITORING as readonly string[]).includes(monitoringRaw)) r.fail('monitoring', `"${monitoringRaw}" is not one of ${MONITORING.join(', ')}`);
    const monitoringNamespace = r.get('monitoringNamespace') ?? DEFAULT_MONITORING_NAMESPACE;
    if (!DNS_LABEL.test(monitoringNamespace)) r.fail('monitoringNamespace', `"${monitoringNamespace}" is not a namespace name`);
    const labelList = list(r.get('monitoringLabels'));
    const monitoringLabels: Record<string, string> = {};
    if (typeof labelList === 'string') r.fail('monitoringLabels', labelList);
    else {
      for (const item of labelList) {
        const m = /^((?:[a-z0-9.-]{1,253}\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)=([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/.exec(item);
        if (!m) r.fail('monitoringLabels', `entry "${item}" is not key=value with a label's name and value (e.g. release=kube-prometheus-stack)`);
        else monitoringLabels[m[1]] = m[3] ?? '';
      }
    }
    if (monitoringRaw === 'prometheus-operator') monitoring = { namespace: monitoringNamespace, labels: monitoringLabels };
    else for (const k of ['monitoringNamespace', 'monitoringLabels'] as const) if (r.get(k)) r.fail(k, `applies to monitoring prometheus-operator only; set it (pulumi config set monitoring prometheus-operator) or remove this: pulumi config rm ${k}`);
    // image: build pushes to a registry the stack names; its login (both or none) becomes the pods' pull secret.
    const buildKeys = ['registry', 'registryUsername', 'registryPassword', 'platform'] as const;
    let build: KubernetesSettings['build'];
    if (common.image === BUILD_IMAGE) {
      const repository = r.get('registry');
      const username = r.get('registryUsername');
      const password = r.raw('registryPassword');
      const platform = (r.get('platform') ?? 'linux/amd64') as Platform;
      if (!repository) r.fail('registry', 'is not set but image is build: the repository the image is pushed to and the cluster pulls from: pulumi config set registry registry.example.com/team/scim-bridge');
      else if (!REPOSITORY.test(repository)) r.fail('registry', `"${repository}" is not a repository (registry host, then a path; no tag, no digest), like registry.example.com/team/scim-bridge`);
      if (!PLATFORMS.includes(platform)) r.fail('platform', `"${platform}" must be ${PLATFORMS.join(' or ')} (the nodes' platform)`);
      if (username && password === undefined) r.fail('registryPassword', 'is not set but registryUsername is: pulumi config set --secret registryPassword <token>');
      if (!username && password !== undefined) r.fail('registryUsername', 'is not set but registryPassword is: set both, or neither to use your Docker login and the nodes\' identity');
      if (password !== undefined && !r.isSecret('registryPassword')) r.fail('registryPassword', 'is stored in clear in the stack file: pulumi config set --secret registryPassword <token>');
      if (repository && REPOSITORY.test(repository) && PLATFORMS.includes(platform)) {
        build = { repository, platform, ...(username && password !== undefined && r.isSecret('registryPassword') ? { login: { username, password: r.secret(password) } } : {}) };
      }
    } else {
      for (const k of buildKeys) if (r.raw(k) !== undefined) r.fail(k, `is for image build only (this stack's image is ${common.image}); remove it: pulumi config rm ${k}`);
    }

    const kubernetes: KubernetesSettings = {
      namespace,
      replicas,
      database,
      ...(databaseUrl ? { databaseUrl } : {}),
      ...(storageClass ? { storageClass } : {}),
      volumeSizeGb,
      postgresInstances,
      ...(backup ? { backup } : {}),
      ...(ingressClass ? { ingressClass } : {}),
      ...(gateway ? { gateway } : {}),
      ingressNamespace,
      ...(clusterIssuer ? { clusterIssuer } : {}),
      ...(metricsToken ? { metricsToken } : {}),
      ...(monitoring ? { monitoring } : {}),
      ...(build ? { build } : {}),
    };
    return { kubernetes };
  },
  build(name, c) {
    const k = c.kubernetes;
    const database: DatabaseArgs =
      k.database === 'postgres'
        ? { kind: 'postgres', url: k.databaseUrl! }
        : k.database === 'cloudnative-pg'
          ? {
              kind: 'cloudnative-pg',
              instances: k.postgresInstances,
              backupDestination: k.backup!.destination,
              ...(k.backup!.endpoint ? { backupEndpoint: k.backup!.endpoint } : {}),
              backupAccessKeyId: k.backup!.accessKeyId,
              backupSecretAccessKey: k.backup!.secretAccessKey,
              backupRetention: k.backup!.retention,
            }
          : { kind: 'sqlite' };
    return new KubernetesBridge(name, {
      image: c.image,
      ...(k.build ? { build: k.build } : {}),
      domain: c.domain,
      ...(c.token ? { token: c.token } : {}),
      ...(c.previousToken ? { previousToken: c.previousToken } : {}),
      allowedDomains: c.allowedDomains,
      ...(c.webhook ? { webhook: c.webhook } : {}),
      ...(c.googleWorkspace ? { googleWorkspace: c.googleWorkspace } : {}),
      alertEmail: c.alertEmail,
      namespace: k.namespace,
      replicas: k.replicas,
      database,
      ...(k.storageClass ? { storageClass: k.storageClass } : {}),
      volumeSizeGb: k.volumeSizeGb,
      routing: k.gateway ? { kind: 'gateway', ...k.gateway } : { kind: 'ingress', ...(k.ingressClass ? { className: k.ingressClass } : {}) },
      ingressNamespace: k.ingressNamespace,
      tls: k.clusterIssuer ? { clusterIssuer: k.clusterIssuer } : { acme: c.acme },
      ...(k.metricsToken ? { metricsToken: k.metricsToken } : {}),
      ...(k.monitoring ? { monitoring: k.monitoring } : {}),
    });
  },
  secretSinks: KUBERNETES_SECRET_SINKS,
  planMocks: kubernetesPlanMocks,
});
