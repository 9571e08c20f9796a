/**
 * The kubernetes target, on its offline plans: the shipped stack (two replicas on PostgreSQL), SQLite with a
 * webhook, a CloudNativePG cluster, and an HTTPRoute on a Gateway with a named ClusterIssuer. Every object it
 * declares is valid against the Kubernetes and CRD schemas (kubernetes-models) with no field they do not know;
 * the pod gets exactly the settings a VM host gives the bridge, its credentials as files.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as pulumi from '@pulumi/pulumi';
import { parse } from 'yaml';
import { readConfig } from '../../bridge/src/config';
import { parseStackConfig, StackConfigError } from '../../infra/config';
import { KubernetesBridge } from '../../infra/kubernetes';
import { prometheusRules, SECRETS_DIR } from '../../infra/kubernetes/manifests';
import { inventedSecret, plan, PlanResult, unwrapSecrets } from '../../tools/plan';
import { all, Inputs, one, sha256 } from '../helpers/plan';

type Any = any; // eslint-disable-line @typescript-eslint/no-explicit-any
const ROOT = join(__dirname, '..', '..');
const run = promisify(execFile);

const T = {
  namespace: 'kubernetes:core/v1:Namespace',
  deployment: 'kubernetes:apps/v1:Deployment',
  service: 'kubernetes:core/v1:Service',
  secret: 'kubernetes:core/v1:Secret',
  pvc: 'kubernetes:core/v1:PersistentVolumeClaim',
  ingress: 'kubernetes:networking.k8s.io/v1:Ingress',
  networkPolicy: 'kubernetes:networking.k8s.io/v1:NetworkPolicy',
  pdb: 'kubernetes:policy/v1:PodDisruptionBudget',
  issuer: 'kubernetes:cert-manager.io/v1:Issuer',
  certificate: 'kubernetes:cert-manager.io/v1:Certificate',
  httpRoute: 'kubernetes:gateway.networking.k8s.io/v1:HTTPRoute',
  referenceGrant: 'kubernetes:gateway.networking.k8s.io/v1beta1:ReferenceGrant',
  cluster: 'kubernetes:postgresql.cnpg.io/v1:Cluster',
  scheduledBackup: 'kubernetes:postgresql.cnpg.io/v1:ScheduledBackup',
  serviceMonitor: 'kubernetes:monitoring.coreos.com/v1:ServiceMonitor',
  prometheusRule: 'kubernetes:monitoring.coreos.com/v1:PrometheusRule',
};

const WEBHOOK = { 'scim-bridge:webhookUrl': 'https://app.example.com:8443/hooks/scim', 'scim-bridge:webhookSecret': { secure: 'v1:x' } };
const SQLITE = { 'scim-bridge:database': 'sqlite', 'scim-bridge:replicas': '1', 'scim-bridge:databaseUrl': null };
const VARIANTS: Record<string, Record<string, Any>> = {
  shipped: { 'scim-bridge:token': { secure: 'v1:t' } },
  sqlite: { ...SQLITE, ...WEBHOOK, 'scim-bridge:allowedDomains': ['example.com', 'example.org'], 'scim-bridge:storageClass': 'fast-ssd' },
  cnpg: {
    'scim-bridge:database': 'cloudnative-pg',
    'scim-bridge:databaseUrl': null,
    'scim-bridge:backupDestination': 's3://scim-backups/production',
    'scim-bridge:backupEndpoint': 'https://fra1.digitaloceanspaces.com',
    'scim-bridge:backupAccessKeyId': 'DO00EXAMPLEKEY',
    'scim-bridge:backupSecretAccessKey': { secure: 'v1:k' },
  },
  monitoring: { ...SQLITE, 'scim-bridge:monitoring': 'prometheus-operator', 'scim-bridge:monitoringNamespace': 'observability', 'scim-bridge:monitoringLabels': ['release=kube-prometheus-stack'] },
  gateway: { 'scim-bridge:gateway': 'gateway-system/public', 'scim-bridge:ingressClass': null, 'scim-bridge:ingressNamespace': null, 'scim-bridge:acmeCa': null, 'scim-bridge:clusterIssuer': 'letsencrypt-prod' },
};
const plans: Record<string, PlanResult> = {};
let gcpWithWebhook: PlanResult;

beforeAll(async () => {
  for (const [k, config] of Object.entries(VARIANTS)) plans[k] = await plan('kubernetes', { config });
  gcpWithWebhook = await plan('gcp', { config: { ...WEBHOOK, 'scim-bridge:allowedDomains': ['example.com', 'example.org'] } });
}, 90_000);

const pod = (r: PlanResult) => one(r, T.deployment).in.spec.template.spec;
const bridge = (r: PlanResult) => pod(r).containers[0];
const envOf = (r: PlanResult): Record<string, string> => Object.fromEntries(bridge(r).env.map((e: Any) => [e.name, e.value]));
const kubernetesObjects = (r: PlanResult) => r.raw.filter((x) => x.type.startsWith('kubernetes:')).map((x) => unwrapSecrets(x.inputs) as Inputs);

describe('the shipped stack: two replicas on PostgreSQL', () => {
  const r = () => plans.shipped;

  test('is one scim-bridge:kubernetes:Bridge component; the leak check passes', () => {
    expect(r().raw[0]).toMatchObject({ type: 'scim-bridge:kubernetes:Bridge', name: 'scim-bridge' });
    expect(r().leaks).toEqual([]);
    expect(JSON.stringify(r().plan)).not.toContain('PLAN-SECRET-');
  });

  test('a Namespace of its own (one per stack) under Pod Security "restricted"', () => {
    const ns = one(r(), T.namespace).in;
    // Deleting it would delete the data in it (the SQLite volume, a CloudNativePG cluster): destroy leaves it.
    expect(one(r(), T.namespace).options.retainOnDelete).toBe(true);
    expect(ns.metadata.name).toBe('scim-bridge-kubernetes');
    expect(ns.metadata.labels).toMatchObject({ 'pod-security.kubernetes.io/enforce': 'restricted', 'pod-security.kubernetes.io/warn': 'restricted', 'pod-security.kubernetes.io/audit': 'restricted' });
    for (const o of kubernetesObjects(r()).filter((o) => o.kind !== 'Namespace')) expect(o.metadata.namespace).toBe('scim-bridge-kubernetes');
  });

  test('the Deployment: two replicas, rolling one at a time with none unavailable, spread over nodes and zones', () => {
    const d = one(r(), T.deployment).in;
    expect(d.spec.replicas).toBe(2);
    expect(d.spec.strategy).toEqual({ type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } });
    expect(pod(r()).topologySpreadConstraints.map((c: Any) => c.topologyKey)).toEqual(['kubernetes.io/hostname', 'topology.kubernetes.io/zone']);
    expect(pod(r()).terminationGracePeriodSeconds).toBe(30);
  });

  test('the pod: uid 10001, non-root, read-only root with an in-memory /tmp, no escalation, no capabilities, RuntimeDefault seccomp, no API token', () => {
    const p = pod(r());
    const c = bridge(r());
    expect(p.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 10001, runAsGroup: 10001, seccompProfile: { type: 'RuntimeDefault' } });
    expect(c.securityContext).toEqual({
      runAsNonRoot: true,
      runAsUser: 10001,
      runAsGroup: 10001,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(c.volumeMounts).toContainEqual({ name: 'tmp', mountPath: '/tmp' });
    expect(p.volumes).toContainEqual({ name: 'tmp', emptyDir: { medium: 'Memory', sizeLimit: '64Mi' } });
    expect(p.automountServiceAccountToken).toBe(false);
  });

  test('probes: startup and liveness on /healthz, readiness on /readyz; requests and limits set', () => {
    const c = bridge(r());
    expect(c.startupProbe.httpGet).toEqual({ path: '/healthz', port: 'http' });
    expect(c.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'http' });
    expect(c.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'http' });
    expect(c.resources).toEqual({ requests: { cpu: '100m', memory: '192Mi' }, limits: { cpu: '1', memory: '512Mi' } });
  });

  test('the credentials are files of the Secret: the tokens\' SHA-256 and the database URL; nothing secret in the environment', () => {
    const env = envOf(r());
    expect(env).toMatchObject({
      SCIM_BRIDGE_TOKEN_SHA256_FILE: `${SECRETS_DIR}/token-sha256`,
      SCIM_BRIDGE_APP_TOKEN_SHA256_FILE: `${SECRETS_DIR}/app-token-sha256`,
      SCIM_BRIDGE_DATABASE_URL_FILE: `${SECRETS_DIR}/database-url`,
      // The image's SQLite default is cleared beside the _FILE form (the bridge refuses both).
      SCIM_BRIDGE_DATABASE_URL: '',
    });
    const secret = one(r(), T.secret, 'scim-bridge-settings');
    expect(secret.in.stringData).toEqual({
      'token-sha256': sha256(inventedSecret('token')),
      'app-token-sha256': sha256(inventedSecret('scim-bridge-app-token')),
      'database-url': inventedSecret('databaseUrl'),
    });
    expect(JSON.stringify(secret.inputs.stringData)).toContain('4dabf18193072939515e22adb298388d'); // marked secret
    expect(JSON.stringify(one(r(), T.deployment).inputs)).not.toContain('PLAN-SECRET-');
    expect(pod(r()).volumes).toContainEqual({ name: 'secrets', projected: { defaultMode: 0o440, sources: [{ secret: { name: 'scim-bridge-settings' } }] } });
    expect(bridge(r()).volumeMounts).toContainEqual({ name: 'secrets', mountPath: SECRETS_DIR, readOnly: true });
  });

  test('a Service, an Ingress of the configured class with TLS from a Let\'s Encrypt Issuer\'s Certificate', () => {
    expect(one(r(), T.service).in.spec).toMatchObject({ type: 'ClusterIP', ports: [{ port: 80, targetPort: 'http' }] });
    // ingress-nginx's own body limit above the bridge's (1 MiB), so an oversized body gets the bridge's SCIM 413.
    expect(one(r(), T.ingress).in.metadata.annotations).toEqual({ 'nginx.ingress.kubernetes.io/proxy-body-size': '2m' });
    const ingress = one(r(), T.ingress).in.spec;
    expect(ingress.ingressClassName).toBe('nginx');
    expect(ingress.tls).toEqual([{ hosts: ['scim.example.com'], secretName: 'scim-bridge-tls' }]);
    expect(ingress.rules[0]).toMatchObject({ host: 'scim.example.com', http: { paths: [{ path: '/', backend: { service: { name: 'scim-bridge-http' } } }] } });
    expect(one(r(), T.issuer).in.spec.acme).toMatchObject({
      server: 'https://acme-v02.api.letsencrypt.org/directory',
      email: 'ops@example.com',
      solvers: [{ http01: { ingress: { ingressClassName: 'nginx' } } }],
    });
    expect(one(r(), T.certificate).in.spec).toMatchObject({ secretName: 'scim-bridge-tls', dnsNames: ['scim.example.com'], issuerRef: { kind: 'Issuer', name: 'scim-bridge-issuer' } });
  });

  test('a PodDisruptionBudget that keeps one replica up', () => {
    expect(one(r(), T.pdb).in.spec).toMatchObject({ minAvailable: 1, selector: { matchLabels: one(r(), T.deployment).in.spec.selector.matchLabels } });
  });

  test('NetworkPolicies: deny by default; the ingress controller in; DNS and PostgreSQL out (never the metadata service)', () => {
    const policies = Object.fromEntries(all(r(), T.networkPolicy).map((p) => [p.name, p.in.spec]));
    expect(policies['scim-bridge-default-deny']).toEqual({ podSelector: {}, policyTypes: ['Ingress', 'Egress'] });
    const own = policies['scim-bridge-bridge'];
    expect(own.ingress).toEqual([{ from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'ingress-nginx' } } }], ports: [{ port: 8080, protocol: 'TCP' }] }]);
    expect(own.egress.map((e: Any) => e.ports.map((p: Any) => `${p.protocol}/${p.port}`).join(','))).toEqual(['UDP/53,TCP/53', 'TCP/5432']);
    expect(own.egress[1].to[0]).toEqual({ ipBlock: { cidr: '0.0.0.0/0', except: ['169.254.0.0/16'] } });
    expect(policies['scim-bridge-acme-solver'].ingress[0].ports).toEqual([{ port: 8089, protocol: 'TCP' }]);
  });

  test('outputs: baseUrl, the ingress\'s address, the target, and where the tokens are (secret outputs, never in clear)', () => {
    const out = r().plan.outputs;
    expect(out).toMatchObject({ baseUrl: 'https://scim.example.com', ipAddress: '203.0.113.40', target: 'kubernetes', token: '[secret]', appToken: '[secret]' });
    expect(out.tokenReference).toMatch(/pulumi stack output token --show-secrets --stack kubernetes/);
    expect(out.appTokenReference).toMatch(/pulumi stack output appToken --show-secrets/);
    expect(r().rawOutputs.token).toEqual({ '4dabf18193072939515e22adb298388d': expect.any(String), value: inventedSecret('token') });
  });

  test('a new image is a rolling update of the Deployment and changes nothing else', async () => {
    // From one published image to another (a new build is a new digest the same way: image-build.test.ts).
    const pinned = (image: string) => plan('kubernetes', { config: { ...VARIANTS.shipped, 'scim-bridge:image': image, 'scim-bridge:registry': null } });
    const before = await pinned('ghcr.io/scim-bridge/scim-bridge:9.9.8');
    const updated = await pinned('ghcr.io/scim-bridge/scim-bridge:9.9.9');
    expect(bridge(updated).image).toBe('ghcr.io/scim-bridge/scim-bridge:9.9.9');
    const others = (p: PlanResult) => p.raw.filter((x) => x.type !== T.deployment).map((x) => [x.type, x.name, JSON.stringify(x.inputs)]);
    expect(others(updated)).toEqual(others(before));
  });

  test('a token rotation is a rolling update: the Secret holds both hashes while previousToken is set, and its digest rolls the pods', async () => {
    const open = await plan('kubernetes', { config: { ...VARIANTS.shipped, 'scim-bridge:previousToken': { secure: 'v1:old' } } });
    const closed = r();
    expect(open.leaks).toEqual([]);
    const hashes = (p: PlanResult) => (one(p, T.secret).in.stringData as Record<string, string>)['token-sha256'];
    expect(hashes(closed)).toBe(sha256(inventedSecret('token')));
    expect(hashes(open)).toBe(`${sha256(inventedSecret('token'))},${sha256(inventedSecret('previousToken'))}`);
    const digest = (p: PlanResult) => one(p, T.deployment).in.spec.template.metadata.annotations['scim-bridge/settings-sha256'];
    expect(digest(open)).not.toBe(digest(closed));
    // The same rollout as any other change of the template (the Deployment's strategy is not touched).
    expect(one(open, T.deployment).in.spec.strategy).toEqual(one(closed, T.deployment).in.spec.strategy);
  });
});

describe('SQLite: one replica on a kept volume', () => {
  const r = () => plans.sqlite;

  test('a PersistentVolumeClaim (protected, kept on delete) at /data, strategy Recreate, one replica', () => {
    const pvc = one(r(), T.pvc);
    expect(pvc.in.spec).toEqual({ accessModes: ['ReadWriteOnce'], storageClassName: 'fast-ssd', resources: { requests: { storage: '10Gi' } } });
    expect(pvc.options).toMatchObject({ protect: true, retainOnDelete: true });
    const d = one(r(), T.deployment).in.spec;
    expect(d.replicas).toBe(1);
    expect(d.strategy).toEqual({ type: 'Recreate' });
    expect(pod(r()).volumes).toContainEqual({ name: 'data', persistentVolumeClaim: { claimName: 'scim-bridge-data' } });
    expect(envOf(r()).SCIM_BRIDGE_DATABASE_URL).toBe('sqlite:/data/scim-bridge.db');
    expect(one(r(), T.pdb).in.spec.maxUnavailable).toBe(1);
  });

  test('more replicas on SQLite are refused, with the fix', async () => {
    const refused = await plan('kubernetes', { config: { ...SQLITE, 'scim-bridge:replicas': '2' } }).catch((e: Error) => e.message);
    expect(refused).toBe(
      'the stack configuration has problems:\nscim-bridge:replicas is 2, but replicas cannot share one SQLite database: use 1, or PostgreSQL: pulumi config set database postgres (or cloudnative-pg)',
    );
  });

  test('the webhook: its secret a file of the Secret, its URL\'s port open out (not to the metadata service)', () => {
    expect(envOf(r()).SCIM_BRIDGE_WEBHOOK_SECRET_FILE).toBe(`${SECRETS_DIR}/webhook-secret`);
    expect(one(r(), T.secret).in.stringData['webhook-secret']).toBe(inventedSecret('webhookSecret'));
    const egress = one(r(), T.networkPolicy, 'scim-bridge-bridge').in.spec.egress;
    expect(egress.map((e: Any) => e.ports.map((p: Any) => p.port).join(','))).toEqual(['53,53', '8443']);
    expect(r().leaks).toEqual([]);
  });

  test('the pod\'s settings are the VM hosts\' (one list): the bridge reads the same configuration from both', () => {
    // What a VM host gives the bridge: its env file, and the files fetch-secrets keeps from the secret store.
    const host = one(gcpWithWebhook, 'gcp:compute/instance:Instance').in;
    const files = (parse(host.metadata['user-data']) as { write_files: Array<{ path: string; content: string }> }).write_files;
    const envFile = files.find((f) => f.path === '/etc/scim-bridge/bridge.env')!.content;
    const stored = (name: string) => all(gcpWithWebhook, 'gcp:secretmanager/secretVersion:SecretVersion').find((v) => v.name === name)!.in.secretData;
    const vmDir = mkdtempSync(join(tmpdir(), 'scim-bridge-vm-'));
    writeFileSync(join(vmDir, 'token-sha256'), `${stored('scim-bridge-token-sha256')}\n`);
    writeFileSync(join(vmDir, 'webhook-secret'), `${stored('scim-bridge-webhook-secret')}\n`);
    const vmEnv: Record<string, string> = Object.fromEntries(
      envFile.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1).replace('/run/secrets', vmDir)]),
    );
    const names = (env: Record<string, string>) => Object.keys(env).map((k) => k.replace(/_FILE$/, '')).sort();

    // What the pod gets: its environment, and the Secret's files where its _FILE settings point.
    const dir = mkdtempSync(join(tmpdir(), 'scim-bridge-k8s-'));
    try {
      const secret = one(r(), T.secret).in.stringData as Record<string, string>;
      for (const [file, value] of Object.entries(secret)) writeFileSync(join(dir, file), value);
      const podEnv = Object.fromEntries(Object.entries(envOf(r())).map(([k, v]) => [k, v.replace(SECRETS_DIR, dir)]));
      // The same settings by name (a credential as its _FILE form on either side)...
      expect(names(podEnv)).toEqual(names(vmEnv));
      expect(vmEnv.SCIM_BRIDGE_TOKEN_SHA256_FILE).toBe(join(vmDir, 'token-sha256'));
      // ... and the same configuration, as the bridge's own reader makes of them.
      expect(readConfig(podEnv)).toEqual(readConfig(vmEnv));
      expect(readConfig(podEnv)).toMatchObject({ tokenHashes: [sha256(inventedSecret('scim-bridge-token'))], allowedDomains: ['example.com', 'example.org'], trustProxy: true });
    } finally {
      rmSync(vmDir, { recursive: true, force: true });
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('CloudNativePG: a PostgreSQL cluster the stack declares', () => {
  const r = () => plans.cnpg;

  test('a Cluster with its own PodDisruptionBudget and backups to the object store, daily base backups, kept on delete', () => {
    const cluster = one(r(), T.cluster);
    expect(cluster.in.spec).toMatchObject({
      instances: 2,
      enablePDB: true,
      bootstrap: { initdb: { database: 'scim_bridge', owner: 'scim_bridge' } },
      backup: {
        retentionPolicy: '30d',
        barmanObjectStore: {
          destinationPath: 's3://scim-backups/production',
          endpointURL: 'https://fra1.digitaloceanspaces.com',
          s3Credentials: { accessKeyId: { name: 'scim-bridge-backup-credentials', key: 'ACCESS_KEY_ID' } },
        },
      },
    });
    expect(cluster.options).toMatchObject({ protect: true, retainOnDelete: true });
    expect(one(r(), T.scheduledBackup).in.spec).toMatchObject({ cluster: { name: 'scim-bridge-postgres' }, schedule: '0 0 3 * * *' });
    expect(one(r(), T.secret, 'scim-bridge-backup-credentials').in.stringData).toEqual({ ACCESS_KEY_ID: 'DO00EXAMPLEKEY', ACCESS_SECRET_KEY: inventedSecret('backupSecretAccessKey') });
    expect(r().leaks).toEqual([]);
  });

  test('the bridge reads the URL the operator writes (<cluster>-app, key uri) as its database file; its traffic is let through', () => {
    expect(pod(r()).volumes.find((v: Any) => v.name === 'secrets').projected.sources).toEqual([
      { secret: { name: 'scim-bridge-settings' } },
      { secret: { name: 'scim-bridge-postgres-app', items: [{ key: 'uri', path: 'database-url' }] } },
    ]);
    expect(envOf(r()).SCIM_BRIDGE_DATABASE_URL_FILE).toBe(`${SECRETS_DIR}/database-url`);
    const policies = Object.fromEntries(all(r(), T.networkPolicy).map((p) => [p.name, p.in.spec]));
    expect(policies['scim-bridge-bridge'].egress[1]).toEqual({ to: [{ podSelector: { matchLabels: { 'cnpg.io/cluster': 'scim-bridge-postgres' } } }], ports: [{ port: 5432, protocol: 'TCP' }] });
    expect(policies['scim-bridge-postgres'].ingress[0].from).toEqual([{ podSelector: { matchLabels: one(r(), T.deployment).in.spec.selector.matchLabels } }]);
  });

  test('without its object store it is refused, each missing setting named', async () => {
    const refused = await plan('kubernetes', { config: { 'scim-bridge:database': 'cloudnative-pg', 'scim-bridge:databaseUrl': null } }).catch((e: Error) => e.message);
    expect((refused as string).split('\n').slice(1).map((l: string) => l.split(' ')[0])).toEqual(['scim-bridge:backupDestination', 'scim-bridge:backupAccessKeyId', 'scim-bridge:backupSecretAccessKey']);
  });
});

describe('Gateway API and a named ClusterIssuer', () => {
  const r = () => plans.gateway;

  test('an HTTPRoute on the Gateway instead of an Ingress; the Gateway may read the certificate; the Gateway\'s namespace is let in', () => {
    expect(all(r(), T.ingress)).toEqual([]);
    expect(one(r(), T.httpRoute).in.spec).toMatchObject({ parentRefs: [{ name: 'public', namespace: 'gateway-system' }], hostnames: ['scim.example.com'], rules: [{ backendRefs: [{ name: 'scim-bridge-http', port: 80 }] }] });
    expect(one(r(), T.referenceGrant).in.spec).toEqual({ from: [{ group: 'gateway.networking.k8s.io', kind: 'Gateway', namespace: 'gateway-system' }], to: [{ group: '', kind: 'Secret', name: 'scim-bridge-tls' }] });
    expect(one(r(), T.networkPolicy, 'scim-bridge-bridge').in.spec.ingress[0].from[0].namespaceSelector.matchLabels['kubernetes.io/metadata.name']).toBe('gateway-system');
    expect(r().plan.outputs.ipAddress).toBe('');
  });

  test('the Certificate comes from the ClusterIssuer named; no Issuer is declared', () => {
    expect(all(r(), T.issuer)).toEqual([]);
    expect(one(r(), T.certificate).in.spec.issuerRef).toEqual({ name: 'letsencrypt-prod', kind: 'ClusterIssuer', group: 'cert-manager.io' });
  });
});

describe('monitoring prometheus-operator: a ServiceMonitor with the metrics token, and alert rules', () => {
  const r = () => plans.monitoring;
  const token = inventedSecret('scim-bridge-metrics-token');

  test('the scraper\'s token (generated) is in a Secret of its own that the ServiceMonitor names; the pods get its hash only', () => {
    expect(r().leaks).toEqual([]);
    const scrape = all(r(), T.secret).find((x) => x.name === 'scim-bridge-metrics-token')!.in;
    expect(scrape.stringData).toEqual({ token });
    const monitor = one(r(), T.serviceMonitor).in;
    expect(monitor.metadata.labels).toMatchObject({ release: 'kube-prometheus-stack', 'app.kubernetes.io/component': 'monitoring' });
    expect(monitor.spec).toEqual({
      selector: { matchLabels: one(r(), T.service).in.spec.selector },
      endpoints: [{ port: 'http', path: '/metrics', scheme: 'http', interval: '30s', authorization: { type: 'Bearer', credentials: { name: scrape.metadata.name, key: 'token' } } }],
    });
    // The selector finds the bridge's Service (its labels), and the Service's port is named http.
    expect(one(r(), T.service).in.metadata.labels).toMatchObject(monitor.spec.selector.matchLabels);
    expect(one(r(), T.service).in.spec.ports.map((p: Any) => p.name)).toContain('http');
    const settings = all(r(), T.secret).find((x) => x.name === 'scim-bridge-settings')!.in.stringData;
    expect(settings['metrics-token-sha256']).toBe(sha256(token));
    expect(JSON.stringify(settings)).not.toContain(token);
    expect(envOf(r()).SCIM_BRIDGE_METRICS_TOKEN_SHA256_FILE).toBe(`${SECRETS_DIR}/metrics-token-sha256`);
  });

  test('the bridge accepts the scraper\'s token on /metrics: its reader makes the same hash of the pod\'s file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'scim-bridge-k8s-'));
    try {
      const secret = all(r(), T.secret).find((x) => x.name === 'scim-bridge-settings')!.in.stringData as Record<string, string>;
      for (const [file, value] of Object.entries(secret)) writeFileSync(join(dir, file), value);
      const podEnv = Object.fromEntries(Object.entries(envOf(r())).map(([k, v]) => [k, v.replace(SECRETS_DIR, dir)]));
      expect(readConfig(podEnv)).toMatchObject({ metricsTokenHashes: [sha256(token)] });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('Prometheus\'s namespace may reach the bridge\'s port; nothing else changes in the policies', () => {
    const policy = all(r(), T.networkPolicy).find((x) => x.name === 'scim-bridge-bridge')!.in.spec;
    expect(policy.ingress).toEqual([
      { from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'ingress-nginx' } } }], ports: [{ port: 8080, protocol: 'TCP' }] },
      { from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'observability' } } }], ports: [{ port: 8080, protocol: 'TCP' }] },
    ]);
    expect(all(plans.sqlite, T.networkPolicy).find((x) => x.name === 'scim-bridge-bridge')!.in.spec.ingress).toHaveLength(1);
  });

  test('the rules: down, certificate within 14 days, dead letters, the SQLite volume above 85%, memory above 90% of the limit', () => {
    const rule = one(r(), T.prometheusRule).in;
    expect(rule.metadata.labels).toMatchObject({ release: 'kube-prometheus-stack' });
    const rules = rule.spec.groups[0].rules as Array<{ alert: string; expr: string }>;
    const ns = one(r(), T.namespace).in.metadata.name;
    expect(Object.fromEntries(rules.map((x) => [x.alert, x.expr]))).toEqual({
      ScimBridgeDown: `sum(up{namespace="${ns}", service="scim-bridge-http"}) == 0 or absent(up{namespace="${ns}", service="scim-bridge-http"})`,
      ScimBridgeCertificateExpiresSoon: `certmanager_certificate_expiration_timestamp_seconds{namespace="${ns}", name="scim-bridge-certificate"} - time() < 14 * 86400`,
      ScimBridgeDeadLetters: `max(scim_bridge_dead_letters{namespace="${ns}", service="scim-bridge-http"}) > 0`,
      ScimBridgeVolumeAlmostFull: `max(kubelet_volume_stats_used_bytes{namespace="${ns}", persistentvolumeclaim="scim-bridge-data"} / kubelet_volume_stats_capacity_bytes{namespace="${ns}", persistentvolumeclaim="scim-bridge-data"}) > 0.85`,
      ScimBridgeMemoryHigh: `max(container_memory_working_set_bytes{namespace="${ns}", container="scim-bridge"}) / 536870912 > 0.9`,
    });
    // The names the rules use are the objects the stack declares.
    expect(one(r(), T.pvc).in.metadata.name).toBe('scim-bridge-data');
    expect(one(r(), T.certificate).in.metadata.name).toBe('scim-bridge-certificate');
    expect(one(r(), T.service).in.metadata.name).toBe('scim-bridge-http');
    expect(bridge(r()).resources.limits.memory).toBe('512Mi');
  });

  test('on CloudNativePG the volume rule watches the instances\' claims; on an external PostgreSQL there is no volume to watch', () => {
    const base = { name: 'scim-bridge', namespace: 'ns', service: 'scim-bridge-http', certificate: 'scim-bridge-certificate' };
    const alerts = (database: Any) => prometheusRules({ ...base, database }).groups[0].rules;
    expect(alerts({ kind: 'cloudnative-pg', cluster: 'scim-bridge-postgres' }).find((x) => x.alert === 'ScimBridgeVolumeAlmostFull')!.expr).toContain('persistentvolumeclaim=~"scim-bridge-postgres-[0-9]+"');
    expect(alerts({ kind: 'postgres' }).map((x) => x.alert)).toEqual(['ScimBridgeDown', 'ScimBridgeCertificateExpiresSoon', 'ScimBridgeDeadLetters', 'ScimBridgeMemoryHigh']);
  });

  test('promtool accepts the rules, and they fire on the series they watch (promtool test rules)', async () => {
    const promtool = await run('sh', ['-c', 'command -v promtool']).then(() => true, () => false);
    expect(promtool).toBe(true); // test/setup.sh installs Debian's prometheus package
    const ns = one(r(), T.namespace).in.metadata.name;
    const dir = mkdtempSync(join(tmpdir(), 'scim-bridge-rules-'));
    try {
      writeFileSync(join(dir, 'rules.yaml'), JSON.stringify(one(r(), T.prometheusRule).in.spec));
      const check = await run('promtool', ['check', 'rules', join(dir, 'rules.yaml')]);
      expect(check.stdout).toMatch(/SUCCESS: 5 rules found/);
      const of = `namespace="${ns}",service="scim-bridge-http"`;
      const claim = `namespace="${ns}",persistentvolumeclaim="scim-bridge-data"`;
      const tests = {
        rule_files: ['rules.yaml'],
        evaluation_interval: '1m',
        tests: [
          {
            interval: '1m',
            input_series: [
              { series: `up{${of},pod="a"}`, values: '1 1 0 0 0 0 0' },
              { series: `scim_bridge_dead_letters{${of},pod="a"}`, values: '0 0 2 2 2 2 2' },
              { series: `kubelet_volume_stats_used_bytes{${claim}}`, values: '90x10' },
              { series: `kubelet_volume_stats_capacity_bytes{${claim}}`, values: '100x10' },
              { series: `container_memory_working_set_bytes{namespace="${ns}",container="scim-bridge",pod="a"}`, values: '104857600x10' },
              { series: `certmanager_certificate_expiration_timestamp_seconds{namespace="${ns}",name="scim-bridge-certificate"}`, values: `${10 * 86400}x100` },
            ],
            alert_rule_test: [
              { eval_time: '1m', alertname: 'ScimBridgeDown', exp_alerts: [] },
              { eval_time: '6m', alertname: 'ScimBridgeDown', exp_alerts: [{ exp_labels: { severity: 'critical' }, exp_annotations: expectAnnotations(one(r(), T.prometheusRule).in, 'ScimBridgeDown') }] },
              { eval_time: '4m', alertname: 'ScimBridgeDeadLetters', exp_alerts: [{ exp_labels: { severity: 'warning' }, exp_annotations: expectAnnotations(one(r(), T.prometheusRule).in, 'ScimBridgeDeadLetters') }] },
              { eval_time: '6m', alertname: 'ScimBridgeVolumeAlmostFull', exp_alerts: [{ exp_labels: { severity: 'warning' }, exp_annotations: expectAnnotations(one(r(), T.prometheusRule).in, 'ScimBridgeVolumeAlmostFull') }] },
              // 100 MiB of a 512 MiB limit: no alert.
              { eval_time: '6m', alertname: 'ScimBridgeMemoryHigh', exp_alerts: [] },
              // Ten days left at the start (time() is 0): within 14 days for over an hour.
              { eval_time: '70m', alertname: 'ScimBridgeCertificateExpiresSoon', exp_alerts: [{ exp_labels: { severity: 'warning', namespace: ns, name: 'scim-bridge-certificate' }, exp_annotations: expectAnnotations(one(r(), T.prometheusRule).in, 'ScimBridgeCertificateExpiresSoon') }] },
            ],
          },
        ],
      };
      writeFileSync(join(dir, 'tests.yaml'), JSON.stringify(tests));
      const unit = await run('promtool', ['test', 'rules', join(dir, 'tests.yaml')]).catch((err: { stdout: string; stderr: string }) => ({ stdout: `${err.stdout}${err.stderr}` }));
      expect(unit.stdout).toMatch(/SUCCESS/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('without monitoring: no ServiceMonitor, no rules, no metrics token anywhere; a metricsToken alone reaches the pods as a hash', async () => {
    for (const variant of ['shipped', 'sqlite', 'cnpg', 'gateway']) {
      expect(all(plans[variant], T.serviceMonitor)).toEqual([]);
      expect(all(plans[variant], T.prometheusRule)).toEqual([]);
      expect(envOf(plans[variant]).SCIM_BRIDGE_METRICS_TOKEN_SHA256_FILE).toBeUndefined();
    }
    const given = await plan('kubernetes', { config: { ...SQLITE, 'scim-bridge:metricsToken': { secure: 'v1:m' } } });
    expect(given.leaks).toEqual([]);
    expect(all(given, T.serviceMonitor)).toEqual([]);
    expect(all(given, T.secret).map((x) => x.name)).not.toContain('scim-bridge-metrics-token');
    expect(all(given, T.secret).find((x) => x.name === 'scim-bridge-settings')!.in.stringData['metrics-token-sha256']).toBe(sha256(inventedSecret('metricsToken')));
  });
});

function expectAnnotations(rule: Any, alert: string): Record<string, string> {
  return rule.spec.groups[0].rules.find((x: Any) => x.alert === alert).annotations;
}

describe('every object is valid against the Kubernetes and CRD schemas, with no unknown field (tools/validate-k8s.mjs)', () => {
  async function validate(objects: unknown[]): Promise<{ code: number; problems: string[]; objects: number }> {
    const dir = mkdtempSync(join(tmpdir(), 'scim-bridge-k8s-'));
    const file = join(dir, 'objects.json');
    writeFileSync(file, JSON.stringify(objects));
    try {
      const { stdout } = await run(process.execPath, [join(ROOT, 'tools', 'validate-k8s.mjs'), file]);
      return { code: 0, ...JSON.parse(stdout) };
    } catch (err) {
      const e = err as { code: number; stdout: string };
      return { code: e.code, ...JSON.parse(e.stdout) };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  test('every variant\'s objects pass, the CRDs\' too (cert-manager, Gateway API, CloudNativePG, Prometheus Operator)', async () => {
    const objects = Object.values(plans).flatMap(kubernetesObjects);
    expect(new Set(objects.map((o) => o.kind))).toEqual(
      new Set(['Namespace', 'ServiceAccount', 'Secret', 'PersistentVolumeClaim', 'Deployment', 'Service', 'PodDisruptionBudget', 'NetworkPolicy', 'Issuer', 'Certificate', 'Ingress', 'HTTPRoute', 'ReferenceGrant', 'Cluster', 'ScheduledBackup', 'ServiceMonitor', 'PrometheusRule']),
    );
    expect(await validate(objects)).toEqual({ code: 0, objects: objects.length, problems: [] });
  }, 60_000);

  test('a misspelled readinesProbe, which the schema alone lets through, is refused; so is a wrong type', async () => {
    const deployment = kubernetesObjects(plans.shipped).find((o) => o.kind === 'Deployment')!;
    const misspelled = structuredClone(deployment);
    const c = misspelled.spec.template.spec.containers[0];
    c.readinesProbe = c.readinessProbe;
    delete c.readinessProbe;
    const wrongType = structuredClone(deployment);
    wrongType.spec.replicas = 'two';
    const result = await validate([misspelled, wrongType]);
    expect(result.code).toBe(1);
    // No schema error for the misspelling (only the unknown-field check sees it); the type error is the schema's.
    expect(result.problems).toEqual([
      'Deployment scim-bridge-server: spec.template.spec.containers[0].readinesProbe is not a field of apps/v1 Deployment',
      expect.stringMatching(/^Deployment scim-bridge-server: \/spec\/replicas must be integer/),
    ]);
  }, 60_000);
});

describe('the kubernetes settings: each problem names the key and the fix', () => {
  const BASE: Record<string, string> = {
    'scim-bridge:target': 'kubernetes',
    'scim-bridge:domain': 'scim.example.com',
    'scim-bridge:alertEmail': 'ops@example.com',
    // The default image is build, which pushes to the registry the stack names.
    'scim-bridge:registry': 'registry.example.com/platform/scim-bridge',
  };
  function problems(values: Record<string, string>, secrets: string[] = []): string[] {
    const all = { ...BASE, ...values };
    try {
      parseStackConfig({ get: (k) => all[k], isSecret: (k) => secrets.includes(k), keys: () => Object.keys(all) }, (v) => pulumi.secret(v));
      return [];
    } catch (err) {
      return (err as StackConfigError).problems;
    }
  }

  test('the defaults: SQLite, one replica, an Ingress of the default class, ingress-nginx let in, an ACME Issuer', () => {
    const all = { ...BASE };
    const c = parseStackConfig({ get: (k) => all[k as keyof typeof all], isSecret: () => false, keys: () => Object.keys(all) }, (v) => pulumi.secret(v));
    expect(c.kubernetes).toEqual({
      namespace: expect.stringMatching(/^scim-bridge-/),
      replicas: 1,
      database: 'sqlite',
      volumeSizeGb: 10,
      postgresInstances: 2,
      ingressNamespace: 'ingress-nginx',
      // image build (the default): pushed to the registry named, for linux/amd64 nodes, with no login of its own.
      build: { repository: 'registry.example.com/platform/scim-bridge', platform: 'linux/amd64' },
    });
  });

  test.each([
    ['a database URL in clear', { 'scim-bridge:database': 'postgres', 'scim-bridge:databaseUrl': 'postgres://u:p@db/x' }, [], /^scim-bridge:databaseUrl is stored in clear in the stack file \(it holds a password\): pulumi config set --secret databaseUrl <url>$/],
    ['postgres without its URL', { 'scim-bridge:database': 'postgres' }, [], /^scim-bridge:databaseUrl is not set but database is postgres: pulumi config set --secret databaseUrl /],
    ['an unknown database', { 'scim-bridge:database': 'mysql' }, [], /^scim-bridge:database "mysql" is not one of sqlite, postgres, cloudnative-pg$/],
    ['a VM host setting', { 'scim-bridge:caddyImage': 'caddy:2.10.2' }, [], /^scim-bridge:caddyImage applies to gcp, digitalocean, aws only; remove it: pulumi config rm caddyImage$/],
    ['a Gateway and an ingress class together', { 'scim-bridge:gateway': 'gw/public', 'scim-bridge:ingressClass': 'nginx' }, [], /^scim-bridge:ingressClass is for an Ingress, but gateway is set/],
    ['a Gateway not given as namespace/name', { 'scim-bridge:gateway': 'public' }, [], /^scim-bridge:gateway "public" must be namespace\/name of an existing Gateway/],
    ['backup settings without CloudNativePG', { 'scim-bridge:backupDestination': 's3://scim-backups/x' }, [], /^scim-bridge:backupDestination applies to database cloudnative-pg only \(this stack's is sqlite\)/],
    ['a ClusterIssuer with an ACME directory', { 'scim-bridge:clusterIssuer': 'le', 'scim-bridge:acmeCa': 'staging' }, [], /^scim-bridge:clusterIssuer is set, so the ClusterIssuer decides the CA: remove acmeCa/],
    ['a metrics token in clear', { 'scim-bridge:metricsToken': 'x'.repeat(40) }, [], /^scim-bridge:metricsToken is stored in clear in the stack file: pulumi config set --secret metricsToken/],
    ['a short metrics token', { 'scim-bridge:metricsToken': 'short' }, ['scim-bridge:metricsToken'], /^scim-bridge:metricsToken must be at least 32 characters/],
    ['an unknown monitoring', { 'scim-bridge:monitoring': 'datadog' }, [], /^scim-bridge:monitoring "datadog" is not one of none, prometheus-operator$/],
    ['monitoring labels without monitoring', { 'scim-bridge:monitoringLabels': 'release=x' }, [], /^scim-bridge:monitoringLabels applies to monitoring prometheus-operator only/],
    ['a monitoring label that is not key=value', { 'scim-bridge:monitoring': 'prometheus-operator', 'scim-bridge:monitoringLabels': 'release' }, [], /^scim-bridge:monitoringLabels entry "release" is not key=value/],
  ] as Array<[string, Record<string, string>, string[], RegExp]>)('%s', (_what, values, secrets, message) => {
    const found = problems(values, secrets);
    expect(found).toEqual([expect.stringMatching(message)]);
  });

  test('a kubernetes setting on a VM target is refused there', () => {
    const all: Record<string, string> = { 'gcp:project': 'p', 'scim-bridge:target': 'gcp', 'scim-bridge:domain': 'scim.example.com', 'scim-bridge:dnsZone': 'example-com', 'scim-bridge:zone': 'europe-west1-b', 'scim-bridge:alertEmail': 'ops@example.com', 'scim-bridge:replicas': '2' };
    expect(() => parseStackConfig({ get: (k) => all[k], isSecret: () => false, keys: () => Object.keys(all) }, (v) => pulumi.secret(v))).toThrow(
      /^scim-bridge:replicas applies to kubernetes only; remove it: pulumi config rm replicas$/,
    );
  });
});

describe('the component takes the common arguments as Pulumi Inputs (outputs of other resources, secrets)', () => {
  test('a domain, domains and a webhook given as Outputs reach the Ingress, the Certificate, the pod and the outputs', async () => {
    const resources: Array<{ type: string; name: string; inputs: Inputs }> = [];
    pulumi.runtime.setAllConfig({}, []);
    await pulumi.runtime.setMocks(
      {
        newResource(a) {
          resources.push({ type: a.type, name: a.name, inputs: a.inputs });
          const computed = a.type === 'random:index/randomPassword:RandomPassword' ? { result: 'r'.repeat(48) } : {};
          return { id: `${a.name}-id`, state: { ...a.inputs, ...computed } };
        },
        call: (a) => a.inputs,
      },
      'scim-bridge',
      'inputs',
      false,
    );
    let baseUrl: Promise<string> | undefined;
    await pulumi.runtime.runInPulumiStack(async () => {
      const bridge = new KubernetesBridge('scim-bridge', {
        image: pulumi.output('ghcr.io/scim-bridge/scim-bridge:1.2.3'),
        domain: pulumi.output('scim.example.net'),
        allowedDomains: pulumi.output(['example.net']),
        webhook: { url: pulumi.output('https://hooks.example.net/scim'), secret: pulumi.secret('s'.repeat(32)) },
        alertEmail: 'ops@example.net',
        namespace: 'scim',
        replicas: 1,
        database: { kind: 'sqlite' },
        volumeSizeGb: 5,
        routing: { kind: 'ingress' },
        ingressNamespace: 'ingress-nginx',
        tls: { clusterIssuer: 'letsencrypt-prod' },
      });
      baseUrl = new Promise((resolve) => bridge.baseUrl.apply(resolve));
      return {};
    });
    await pulumi.runtime.disconnect();
    const find = (type: string) => unwrapSecrets(resources.find((r) => r.type === type)!.inputs) as Inputs;
    expect(await baseUrl).toBe('https://scim.example.net');
    expect(find(T.ingress).spec.rules[0].host).toBe('scim.example.net');
    expect(find(T.ingress).spec.ingressClassName).toBeUndefined();
    expect(find(T.certificate).spec.dnsNames).toEqual(['scim.example.net']);
    const container = find(T.deployment).spec.template.spec.containers[0];
    expect(container.image).toBe('ghcr.io/scim-bridge/scim-bridge:1.2.3');
    expect(container.env).toEqual(
      expect.arrayContaining([
        { name: 'SCIM_BRIDGE_PUBLIC_URL', value: 'https://scim.example.net' },
        { name: 'SCIM_BRIDGE_ALLOWED_DOMAINS', value: 'example.net' },
        { name: 'SCIM_BRIDGE_WEBHOOK_URL', value: 'https://hooks.example.net/scim' },
      ]),
    );
    expect(find(T.pvc).spec.resources.requests.storage).toBe('5Gi');
  });
});
