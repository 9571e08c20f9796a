/**
 * Kubernetes: `scim-bridge:kubernetes:Bridge`, on the cluster of the stack's kubernetes provider configuration
 * (kubeconfig and context, `kubernetes:` keys). A Namespace of its own under Pod Security `restricted`; a
 * Deployment (probes, resources, uid 10001, read-only root with an in-memory /tmp, no privilege escalation, no
 * capabilities, RuntimeDefault seccomp, spread over nodes and zones, a graceful stop); a Service; an Ingress of
 * the chosen class, or a Gateway API HTTPRoute on an existing Gateway; TLS from cert-manager (an ACME Issuer for
 * Let's Encrypt, or a named ClusterIssuer); a PodDisruptionBudget; NetworkPolicies that deny by default.
 *
 * The credentials reach the pod as files of a Secret through the bridge's `_FILE` settings: the tokens'
 * SHA-256, the database URL, the webhook secret. The tokens themselves are only in Pulumi's encrypted state and
 * the stack's secret outputs `token` and `appToken` (the cluster has no secret store of its own to keep them).
 *
 * Database: `sqlite` (one replica, a PersistentVolumeClaim kept on delete, strategy Recreate), `postgres` (an
 * existing database's URL, a secret), or `cloudnative-pg` (a CloudNativePG Cluster declared here, with its own
 * PodDisruptionBudget and backups to an object store, for clusters that run the operator).
 */
import { createHash } from 'node:crypto';
import * as k8s from '@pulumi/kubernetes';
import * as pulumi from '@pulumi/pulumi';
import { acceptedTokenHashes, baseUrlOf, BridgeArgs, BridgeOutputs, bridgeToken, SecretSink, tokenSha256 } from '../bridge';
import { BUILD_IMAGE, buildBridgeImage, Platform, registryHost } from '../image';
import type { Acme } from '../target';
import {
  container,
  Database,
  disruptionBudget,
  labelsOf,
  networkPolicies,
  podEnvironment,
  podSecurityContext,
  podVolumes,
  METRICS_TOKEN_FILE,
  POD_SECURITY_LABELS,
  prometheusRules,
  SECRET_FILES,
  serviceMonitorSpec,
  selectorOf,
  strategyOf,
  TERMINATION_GRACE_SECONDS,
  topologySpread,
} from './manifests';

/** Where the database is: see the top of this file. */
export type DatabaseArgs =
  | { readonly kind: 'sqlite' }
  | { readonly kind: 'postgres'; /** postgres://… (a Pulumi secret: it holds a password). */ readonly url: pulumi.Input<string> }
  | {
      readonly kind: 'cloudnative-pg';
      /** PostgreSQL instances (a primary and standbys). */
      readonly instances: number;
      /** Where the base backups and WAL go: s3://bucket/path (any S3-compatible store). */
      readonly backupDestination: pulumi.Input<string>;
      /** The object store's endpoint when it is not AWS S3, e.g. https://fra1.digitaloceanspaces.com. */
      readonly backupEndpoint?: pulumi.Input<string>;
      readonly backupAccessKeyId: pulumi.Input<string>;
      /** A Pulumi secret. */
      readonly backupSecretAccessKey: pulumi.Input<string>;
      /** How long backups are kept, e.g. 30d. */
      readonly backupRetention: pulumi.Input<string>;
    };

export interface KubernetesBridgeArgs extends BridgeArgs {
  /**
   * With image `build`: the repository the checkout's image is pushed to and the pods pull from, the nodes'
   * platform, and a login (its password a Pulumi secret) that pushes and becomes the pods' imagePullSecret. Without
   * a login, the user's Docker login pushes and the nodes' own identity pulls (GKE from Artifact Registry, EKS from ECR).
   */
  readonly build?: { readonly repository: string; readonly platform: Platform; readonly login?: { readonly username: string; readonly password: pulumi.Input<string> } };
  /** The Namespace the stack creates for the bridge (cluster-wide: one per stack). */
  readonly namespace: string;
  /** Bridge replicas: 1 on SQLite; 2 or more on PostgreSQL. */
  readonly replicas: number;
  readonly database: DatabaseArgs;
  /** The StorageClass of the SQLite volume and the PostgreSQL instances' volumes; the cluster's default when absent. */
  readonly storageClass?: pulumi.Input<string>;
  /** Size of the SQLite volume or of each PostgreSQL instance's, in GB. */
  readonly volumeSizeGb: pulumi.Input<number>;
  /** How the IdP's requests come in: an Ingress (of a class, or the cluster's default), or an HTTPRoute on a Gateway. */
  readonly routing: { readonly kind: 'ingress'; readonly className?: pulumi.Input<string> } | { readonly kind: 'gateway'; readonly namespace: string; readonly name: string };
  /** The namespace whose pods (the ingress controller's, the Gateway's) may reach the bridge. */
  readonly ingressNamespace: pulumi.Input<string>;
  /** The certificate's issuer: an existing ClusterIssuer by name, or an ACME Issuer the stack declares. */
  readonly tls: { readonly clusterIssuer: pulumi.Input<string> } | { readonly acme: Acme };
  /** A token accepted on /metrics only (a Pulumi secret); generated when the Prometheus Operator scrapes and none is given. */
  readonly metricsToken?: pulumi.Input<string>;
  /**
   * The Prometheus Operator's objects (its CRDs must be installed): a ServiceMonitor with the metrics token and a
   * PrometheusRule, labelled so the cluster's Prometheus selects them, which may reach the pods from its namespace.
   */
  readonly monitoring?: { readonly namespace: string; readonly labels: Readonly<Record<string, string>> };
}

/**
 * The only resource inputs that may hold a secret: the Secrets' data, and only what the pod needs in clear
 * (never the tokens, of which the pod gets the hashes).
 */
export const KUBERNETES_SECRET_SINKS: SecretSink[] = [
  // The metrics token in clear is the scraper's (a Secret the ServiceMonitor names); the pod gets its hash.
  { input: 'kubernetes:core/v1:Secret.stringData', only: ['webhookSecret', 'databaseUrl', 'backupSecretAccessKey', 'metricsToken', 'scim-bridge-metrics-token', 'googleWorkspaceKey', 'registryPassword'] },
];

/** The webhook URL's port, for the egress rule. */
export function webhookPort(url: string): number {
  const u = new URL(url);
  return u.port ? Number(u.port) : u.protocol === 'http:' ? 80 : 443;
}

export class KubernetesBridge extends pulumi.ComponentResource implements BridgeOutputs {
  readonly ipAddress: pulumi.Output<string>;
  readonly baseUrl: pulumi.Output<string>;
  readonly tokenReference: pulumi.Output<string>;
  readonly appTokenReference: pulumi.Output<string>;
  /** The token, as a secret: the stack output `token`. */
  readonly token: pulumi.Output<string>;
  /** The application API's token, as a secret: the stack output `appToken`. */
  readonly appToken: pulumi.Output<string>;

  constructor(name: string, args: KubernetesBridgeArgs, opts?: pulumi.ComponentResourceOptions) {
    super('scim-bridge:kubernetes:Bridge', name, {}, opts);
    const database: Database = args.database.kind === 'cloudnative-pg' ? { kind: 'cloudnative-pg', cluster: `${name}-postgres` } : { kind: args.database.kind };
    if (database.kind === 'sqlite' && args.replicas !== 1) {
      throw new pulumi.RunError(`kubernetes: ${args.replicas} replicas cannot share one SQLite database; use one replica, or PostgreSQL (database: postgres or cloudnative-pg)`);
    }
    const stack = pulumi.getStack();
    const labels = labelsOf(name);
    const ns = new k8s.core.v1.Namespace(
      `${name}-namespace`,
      { metadata: { name: args.namespace, labels: { ...POD_SECURITY_LABELS, 'app.kubernetes.io/managed-by': 'pulumi' } } },
      // Deleting a Namespace deletes everything in it, the kept volume and database too: `pulumi destroy` leaves it.
      { parent: this, retainOnDelete: true },
    );
    const namespace = ns.metadata.name;
    const parent = { parent: this, dependsOn: [ns] };
    const meta = (suffix: string, component = 'server') => ({ name: `${name}-${suffix}`, namespace, labels: labelsOf(name, component) });

    // The tokens in clear: only in Pulumi's encrypted state and the secret stack outputs.
    const token = bridgeToken(name, args.token, this);
    const appToken = bridgeToken(name, undefined, this, 'app-token');
    // The scraper's token: given, or generated for the ServiceMonitor.
    const metricsToken = args.metricsToken !== undefined || args.monitoring ? bridgeToken(name, args.metricsToken, this, 'metrics-token') : undefined;

    // The Secret the pod reads its credentials from, one file each.
    const files: Record<string, pulumi.Input<string>> = {
      // Two hashes during a rotation (previousToken): a new Secret rolls the pods one by one, each accepting both.
      [SECRET_FILES.SCIM_BRIDGE_TOKEN_SHA256]: acceptedTokenHashes(token, args.previousToken),
      [SECRET_FILES.SCIM_BRIDGE_APP_TOKEN_SHA256]: tokenSha256(appToken),
    };
    if (args.database.kind === 'postgres') files[SECRET_FILES.SCIM_BRIDGE_DATABASE_URL] = pulumi.secret(args.database.url);
    if (args.webhook) files[SECRET_FILES.SCIM_BRIDGE_WEBHOOK_SECRET] = pulumi.secret(args.webhook.secret);
    if (metricsToken) files[METRICS_TOKEN_FILE] = tokenSha256(metricsToken);
    if (args.googleWorkspace) files[SECRET_FILES.SCIM_BRIDGE_GOOGLE_CREDENTIALS] = pulumi.secret(args.googleWorkspace.key);
    const settingsData = pulumi.output(files);
    const settings = new k8s.core.v1.Secret(`${name}-settings`, { metadata: meta('settings'), type: 'Opaque', stringData: settingsData }, parent);
    // A change of a credential (a new token, a rotated password) rolls the pods: its digest is on the template.
    // Its input holds the tokens' 256-bit hashes, so the digest tells nothing about the other values.
    const settingsDigest = pulumi.unsecret(settingsData.apply((d) => createHash('sha256').update(JSON.stringify(Object.entries(d).sort())).digest('hex')));

    let pvc: k8s.core.v1.PersistentVolumeClaim | undefined;
    if (database.kind === 'sqlite') {
      pvc = new k8s.core.v1.PersistentVolumeClaim(
        `${name}-data`,
        {
          metadata: meta('data'),
          spec: {
            accessModes: ['ReadWriteOnce'],
            ...(args.storageClass ? { storageClassName: args.storageClass } : {}),
            resources: { requests: { storage: pulumi.interpolate`${args.volumeSizeGb}Gi` } },
          },
        },
        // The directory outlives the stack: kept on delete, and protected against a replacement.
        { ...parent, protect: true, retainOnDelete: true },
      );
    }
    if (args.database.kind === 'cloudnative-pg') this.postgres(name, args.database, args, namespace, parent);

    const gw = args.googleWorkspace;
    const google = gw ? pulumi.all([gw.admin, gw.groups, gw.interval]).apply(([admin, groups, interval]) => ({ admin, groups, interval })) : pulumi.output(undefined);
    const env = pulumi
      .all([args.domain, args.allowedDomains, tokenSha256(token), tokenSha256(appToken), args.webhook?.url, google])
      .apply(([domain, allowedDomains, hash, appHash, webhookUrl, googleSettings]) =>
        podEnvironment({
          domain,
          tokenSha256: [hash],
          appTokenSha256: [appHash],
          allowedDomains,
          ...(webhookUrl ? { webhookUrl } : {}),
          ...(googleSettings ? { google: googleSettings } : {}),
          database,
          webhookSecret: !!args.webhook,
          metricsToken: !!metricsToken,
        }),
      );

    // image: build: the checkout's image in the stack's registry, run by digest; its login as the pods' pull secret.
    let image: pulumi.Input<string> = args.image;
    let pullSecret: k8s.core.v1.Secret | undefined;
    if (args.image === BUILD_IMAGE) {
      if (!args.build) throw new pulumi.RunError('kubernetes: image build needs a registry to push to: pulumi config set registry registry.example.com/team/scim-bridge');
      const { repository, platform, login } = args.build;
      const address = registryHost(repository);
      image = buildBridgeImage(name, { repository, platform, ...(login ? { login: { address, ...login } } : {}) }, { parent: this });
      if (login) {
        const dockerConfig = pulumi.secret(
          pulumi.output(login.password).apply((password) =>
            JSON.stringify({ auths: { [address]: { username: login.username, password, auth: Buffer.from(`${login.username}:${password}`).toString('base64') } } }),
          ),
        );
        pullSecret = new k8s.core.v1.Secret(`${name}-registry`, { metadata: meta('registry'), type: 'kubernetes.io/dockerconfigjson', stringData: { '.dockerconfigjson': dockerConfig } }, parent);
      }
    }

    const serviceAccount = new k8s.core.v1.ServiceAccount(`${name}-sa`, { metadata: meta('sa'), automountServiceAccountToken: false }, parent);
    const deployment = new k8s.apps.v1.Deployment(
      `${name}-server`,
      {
        metadata: meta('server'),
        spec: {
          replicas: args.replicas,
          selector: { matchLabels: selectorOf(name) },
          strategy: strategyOf(database),
          template: {
            metadata: { labels, annotations: { 'scim-bridge/settings-sha256': settingsDigest } },
            spec: {
              serviceAccountName: serviceAccount.metadata.name,
              automountServiceAccountToken: false,
              enableServiceLinks: false,
              securityContext: podSecurityContext(),
              terminationGracePeriodSeconds: TERMINATION_GRACE_SECONDS,
              topologySpreadConstraints: topologySpread(name),
              ...(pullSecret ? { imagePullSecrets: [{ name: pullSecret.metadata.name }] } : {}),
              containers: [container(image, env, database)],
              volumes: podVolumes(settings.metadata.name, database, pvc?.metadata.name),
            },
          },
        },
      },
      parent,
    );
    const service = new k8s.core.v1.Service(
      `${name}-http`,
      { metadata: meta('http'), spec: { type: 'ClusterIP', selector: selectorOf(name), ports: [{ name: 'http', port: 80, targetPort: 'http', protocol: 'TCP' }] } },
      parent,
    );
    new k8s.policy.v1.PodDisruptionBudget(`${name}-pdb`, { metadata: meta('pdb'), spec: { ...disruptionBudget(args.replicas), selector: { matchLabels: selectorOf(name) } } }, parent);

    // The webhook's port is in its URL (an Input), so the bridge's own policy is written once the URL is known.
    const ingressNamespace = args.routing.kind === 'gateway' ? args.routing.namespace : args.ingressNamespace;
    const port: pulumi.Output<number | undefined> = args.webhook ? pulumi.output(args.webhook.url).apply(webhookPort) : pulumi.output(undefined);
    const scraper = args.monitoring ? { scraperNamespace: args.monitoring.namespace } : {};
    const googleApis = !!args.googleWorkspace;
    for (const policy of networkPolicies({ name, ingressNamespace, database, googleApis, ...scraper })) {
      const spec = port.apply(
        (webhook) => networkPolicies({ name, ingressNamespace, database, googleApis, ...scraper, ...(webhook !== undefined ? { webhookPort: webhook } : {}) }).find((p) => p.name === policy.name)!.spec,
      );
      new k8s.networking.v1.NetworkPolicy(policy.name, { metadata: { name: policy.name, namespace, labels: labelsOf(name, 'network') }, spec }, parent);
    }

    // TLS: cert-manager's Certificate for the domain, from the ClusterIssuer named, or from an ACME Issuer here.
    const tlsSecret = `${name}-tls`;
    let issuerRef: { name: pulumi.Input<string>; kind: string; group: string };
    if ('clusterIssuer' in args.tls) issuerRef = { name: args.tls.clusterIssuer, kind: 'ClusterIssuer', group: 'cert-manager.io' };
    else {
      const acme = args.tls.acme;
      const solver =
        args.routing.kind === 'gateway'
          ? { http01: { gatewayHTTPRoute: { parentRefs: [{ name: args.routing.name, namespace: args.routing.namespace, kind: 'Gateway' }] } } }
          : { http01: { ingress: args.routing.className ? { ingressClassName: args.routing.className } : {} } };
      const issuer = new k8s.apiextensions.CustomResource(
        `${name}-issuer`,
        {
          apiVersion: 'cert-manager.io/v1',
          kind: 'Issuer',
          metadata: meta('issuer', 'tls'),
          spec: {
            acme: {
              server: acme.directory,
              email: acme.email,
              privateKeySecretRef: { name: `${name}-acme-account` },
              ...(acme.caRoot ? { caBundle: Buffer.from(acme.caRoot.trimEnd() + '\n').toString('base64') } : {}),
              solvers: [solver],
            },
          },
        },
        parent,
      );
      issuerRef = { name: issuer.metadata.name, kind: 'Issuer', group: 'cert-manager.io' };
    }
    const certificate = new k8s.apiextensions.CustomResource(
      `${name}-certificate`,
      {
        apiVersion: 'cert-manager.io/v1',
        kind: 'Certificate',
        metadata: meta('certificate', 'tls'),
        spec: { secretName: tlsSecret, dnsNames: [args.domain], issuerRef, privateKey: { rotationPolicy: 'Always' } },
      },
      parent,
    );

    if (args.routing.kind === 'ingress') {
      const ingress = new k8s.networking.v1.Ingress(
        `${name}-ingress`,
        {
          metadata: {
            ...meta('ingress'),
            // ingress-nginx refuses bodies over 1 MiB with its own HTML 413, exactly the bridge's limit: a little
            // more lets the bridge answer an oversized body with its SCIM error. Other controllers ignore it.
            annotations: { 'nginx.ingress.kubernetes.io/proxy-body-size': '2m' },
          },
          spec: {
            ...(args.routing.className ? { ingressClassName: args.routing.className } : {}),
            tls: [{ hosts: [args.domain], secretName: tlsSecret }],
            rules: [{ host: args.domain, http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: service.metadata.name, port: { name: 'http' } } } }] } }],
          },
        },
        parent,
      );
      this.ipAddress = ingress.status.apply((s) => s?.loadBalancer?.ingress?.[0]?.ip ?? s?.loadBalancer?.ingress?.[0]?.hostname ?? '');
    } else {
      const gateway = args.routing;
      new k8s.apiextensions.CustomResource(
        `${name}-route`,
        {
          apiVersion: 'gateway.networking.k8s.io/v1',
          kind: 'HTTPRoute',
          metadata: meta('route'),
          spec: {
            parentRefs: [{ name: gateway.name, namespace: gateway.namespace }],
            hostnames: [args.domain],
            rules: [{ matches: [{ path: { type: 'PathPrefix', value: '/' } }], backendRefs: [{ name: service.metadata.name, port: 80 }] }],
          },
        },
        parent,
      );
      // The Gateway's HTTPS listener for the domain serves the certificate's Secret from this namespace: it may.
      new k8s.apiextensions.CustomResource(
        `${name}-tls-grant`,
        {
          apiVersion: 'gateway.networking.k8s.io/v1beta1',
          kind: 'ReferenceGrant',
          metadata: meta('tls-grant', 'tls'),
          spec: { from: [{ group: 'gateway.networking.k8s.io', kind: 'Gateway', namespace: gateway.namespace }], to: [{ group: '', kind: 'Secret', name: tlsSecret }] },
        },
        parent,
      );
      // The address is the Gateway's, which this stack does not own.
      this.ipAddress = pulumi.output('');
    }

    if (args.monitoring && metricsToken) {
      const monitoring = args.monitoring;
      const metaOf = (suffix: string) => ({ ...meta(suffix, 'monitoring'), labels: { ...labelsOf(name, 'monitoring'), ...monitoring.labels } });
      // The scraper's token in clear, for Prometheus (the ServiceMonitor names it): the pods have its hash only.
      const scrapeToken = new k8s.core.v1.Secret(`${name}-metrics-token`, { metadata: meta('metrics-token', 'monitoring'), type: 'Opaque', stringData: { token: metricsToken } }, parent);
      new k8s.apiextensions.CustomResource(
        `${name}-metrics`,
        { apiVersion: 'monitoring.coreos.com/v1', kind: 'ServiceMonitor', metadata: metaOf('metrics'), spec: scrapeToken.metadata.name.apply((secret) => serviceMonitorSpec(name, secret)) },
        parent,
      );
      new k8s.apiextensions.CustomResource(
        `${name}-alerts`,
        {
          apiVersion: 'monitoring.coreos.com/v1',
          kind: 'PrometheusRule',
          metadata: metaOf('alerts'),
          spec: pulumi
            .all([namespace, service.metadata.name, certificate.metadata.name, pvc ? pvc.metadata.name : pulumi.output(undefined)])
            .apply(([ns, svc, cert, claim]) => prometheusRules({ name, namespace: ns, service: svc, certificate: cert, database, ...(claim ? { pvc: claim } : {}) })),
        },
        parent,
      );
    }

    this.token = token;
    this.appToken = appToken;
    this.baseUrl = pulumi.output(args.domain).apply(baseUrlOf);
    this.tokenReference = pulumi.output(
      `Pulumi secret stack output "token" (the cluster keeps only its SHA-256); print it with: pulumi stack output token --show-secrets --stack ${stack}`,
    );
    this.appTokenReference = pulumi.output(
      `Pulumi secret stack output "appToken" (the cluster keeps only its SHA-256); print it with: pulumi stack output appToken --show-secrets --stack ${stack}`,
    );
    this.registerOutputs({ ipAddress: this.ipAddress, baseUrl: this.baseUrl, tokenReference: this.tokenReference, appTokenReference: this.appTokenReference, deployment: deployment.metadata.name });
  }

  /** A CloudNativePG Cluster with its PodDisruptionBudget (the operator's), daily base backups and WAL archiving. */
  private postgres(
    name: string,
    db: Extract<DatabaseArgs, { kind: 'cloudnative-pg' }>,
    args: KubernetesBridgeArgs,
    namespace: pulumi.Output<string>,
    parent: pulumi.CustomResourceOptions,
  ): void {
    const cluster = `${name}-postgres`;
    const credentials = new k8s.core.v1.Secret(
      `${name}-backup-credentials`,
      {
        metadata: { name: `${name}-backup-credentials`, namespace, labels: labelsOf(name, 'database') },
        type: 'Opaque',
        stringData: pulumi.secret(pulumi.all([db.backupAccessKeyId, db.backupSecretAccessKey]).apply(([id, key]) => ({ ACCESS_KEY_ID: id, ACCESS_SECRET_KEY: key }))),
      },
      parent,
    );
    new k8s.apiextensions.CustomResource(
      `${name}-postgres`,
      {
        apiVersion: 'postgresql.cnpg.io/v1',
        kind: 'Cluster',
        metadata: { name: cluster, namespace, labels: labelsOf(name, 'database') },
        spec: {
          instances: db.instances,
          // Its own PodDisruptionBudget: a drain never takes the primary and the last standby together.
          enablePDB: true,
          primaryUpdateStrategy: 'unsupervised',
          storage: { size: pulumi.interpolate`${args.volumeSizeGb}Gi`, ...(args.storageClass ? { storageClass: args.storageClass } : {}) },
          bootstrap: { initdb: { database: 'scim_bridge', owner: 'scim_bridge' } },
          resources: { requests: { cpu: '100m', memory: '256Mi' }, limits: { memory: '1Gi' } },
          topologySpreadConstraints: [{ maxSkew: 1, topologyKey: 'kubernetes.io/hostname', whenUnsatisfiable: 'ScheduleAnyway', labelSelector: { matchLabels: { 'cnpg.io/cluster': cluster } } }],
          backup: {
            retentionPolicy: db.backupRetention,
            barmanObjectStore: {
              destinationPath: db.backupDestination,
              ...(db.backupEndpoint ? { endpointURL: db.backupEndpoint } : {}),
              s3Credentials: {
                accessKeyId: { name: credentials.metadata.name, key: 'ACCESS_KEY_ID' },
                secretAccessKey: { name: credentials.metadata.name, key: 'ACCESS_SECRET_KEY' },
              },
              wal: { compression: 'gzip' },
              data: { compression: 'gzip' },
            },
          },
        },
      },
      // The database outlives the stack like a VM's data disk: protected, and kept on delete.
      { ...parent, protect: true, retainOnDelete: true },
    );
    new k8s.apiextensions.CustomResource(
      `${name}-postgres-backup`,
      {
        apiVersion: 'postgresql.cnpg.io/v1',
        kind: 'ScheduledBackup',
        metadata: { name: `${name}-postgres-daily`, namespace, labels: labelsOf(name, 'database') },
        // Six fields (seconds first): every day at 03:00 UTC, like the VM targets' snapshots.
        spec: { schedule: '0 0 3 * * *', backupOwnerReference: 'self', cluster: { name: cluster }, immediate: true },
      },
      parent,
    );
  }
}
