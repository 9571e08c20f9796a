/**
 * GCP: `scim-bridge:gcp:Bridge`. A Shielded VM with OS Login and its own least-privilege service account, in a
 * network of its own (no default firewall rules), a static address, a separate persistent disk that outlives
 * the VM (snapshotted daily), Cloud DNS A and CAA records, the token and the webhook secret in Secret Manager,
 * container logs in Cloud Logging, and an uptime check of https://<domain>/healthz with email alerts.
 */
import * as gcp from '@pulumi/gcp';
import * as pulumi from '@pulumi/pulumi';
import { baseUrlOf, BridgeArgs, bridgeHostSpec, BridgeOutputs, bridgeToken, SecretSink, tokenSha256 } from '../bridge';
import { HostSecret, renderUserData } from '../host';

export interface GcpBridgeArgs extends BridgeArgs {
  project: string;
  region: string;
  zone: string;
  /** The boot image: a distribution with cloud-init (GCP's Debian images have none; Ubuntu's do). */
  osImage?: string;
}

export const GCP_OS_IMAGE = 'ubuntu-os-cloud/ubuntu-2404-lts-amd64';
/** The data disk's device name, which Linux shows as /dev/disk/by-id/google-<name>. */
const DATA_DEVICE = 'scim-bridge-data';
const NETWORK_TAG = 'scim-bridge';
/** Only what the host does: write its container logs, read the webhook secret (granted on that secret). */
export const GCP_HOST_ROLES = ['roles/logging.logWriter'];
/** The only resource inputs that may hold the token or the webhook secret (the plan's leak check). */
export const GCP_SECRET_SINKS: SecretSink[] = [{ input: 'gcp:secretmanager/secretVersion:SecretVersion.secretData' }];
const APIS = ['compute.googleapis.com', 'dns.googleapis.com', 'secretmanager.googleapis.com', 'monitoring.googleapis.com', 'logging.googleapis.com', 'iam.googleapis.com'];

/**
 * Shell function for the host's fetch-secrets script: reads a Secret Manager secret with the VM's service
 * account, whose access token comes from the metadata server. GCE_METADATA_HOST and SECRET_MANAGER_ENDPOINT
 * are the standard overrides (tests point them at a local fake).
 */
export const GCP_SECRET_FUNCTION = [
  'gcp_secret() {',
  '  local access_token',
  '  access_token=$(curl -fsS --max-time 10 --retry 5 --retry-connrefused -H "Metadata-Flavor: Google" \\',
  '    "http://${GCE_METADATA_HOST:-metadata.google.internal}/computeMetadata/v1/instance/service-accounts/default/token" | jq -er .access_token) || return 1',
  '  curl -fsS --max-time 10 --retry 5 --retry-connrefused -H "Authorization: Bearer $access_token" \\',
  '    "${SECRET_MANAGER_ENDPOINT:-https://secretmanager.googleapis.com}/v1/$1/versions/latest:access" | jq -er .payload.data | base64 -d',
  '}',
].join('\n');

export class GcpBridge extends pulumi.ComponentResource implements BridgeOutputs {
  readonly ipAddress: pulumi.Output<string>;
  readonly baseUrl: pulumi.Output<string>;
  readonly tokenReference: pulumi.Output<string>;
  readonly appTokenReference: pulumi.Output<string>;

  constructor(name: string, args: GcpBridgeArgs, opts?: pulumi.ComponentResourceOptions) {
    super('scim-bridge:gcp:Bridge', name, {}, opts);
    const parent = { parent: this };
    const labels = { app: 'scim-bridge', 'scim-bridge': name };
    const { project, region, zone } = args;

    const apis = APIS.map(
      (service) => new gcp.projects.Service(`${name}-${service.split('.')[0]}`, { project, service, disableOnDestroy: false }, parent),
    );
    const after = { parent: this, dependsOn: apis };

    const network = new gcp.compute.Network(`${name}-net`, { project, autoCreateSubnetworks: false, description: 'scim-bridge: its own network, so no default rule opens anything' }, after);
    const subnet = new gcp.compute.Subnetwork(
      `${name}-subnet`,
      { project, region, network: network.id, ipCidrRange: '10.80.0.0/28', privateIpGoogleAccess: true },
      parent,
    );
    const address = new gcp.compute.Address(`${name}-ip`, { project, region, addressType: 'EXTERNAL', networkTier: 'PREMIUM', labels }, after);

    new gcp.compute.Firewall(
      `${name}-https`,
      {
        project,
        network: network.id,
        direction: 'INGRESS',
        description: 'HTTPS for the IdP, and HTTP for Let\'s Encrypt challenges and the redirect',
        allows: [{ protocol: 'tcp', ports: ['80', '443'] }],
        sourceRanges: ['0.0.0.0/0'],
        targetTags: [NETWORK_TAG],
      },
      parent,
    );
    if (args.adminSourceRanges.length) {
      new gcp.compute.Firewall(
        `${name}-ssh`,
        {
          project,
          network: network.id,
          direction: 'INGRESS',
          description: 'SSH from the configured admin ranges only',
          allows: [{ protocol: 'tcp', ports: ['22'] }],
          sourceRanges: args.adminSourceRanges,
          targetTags: [NETWORK_TAG],
        },
        parent,
      );
    }

    const account = new gcp.serviceaccount.Account(
      `${name}-host`,
      { project, accountId: `${name}-host`.slice(0, 30), displayName: 'scim-bridge host', description: 'Writes container logs and reads the webhook secret' },
      after,
    );
    const member = pulumi.interpolate`serviceAccount:${account.email}`;
    for (const role of GCP_HOST_ROLES) {
      new gcp.projects.IAMMember(`${name}-${role.split('/')[1].replace(/\./g, '-').toLowerCase()}`, { project, role, member }, parent);
    }

    // The token in clear: only in Secret Manager (for operators) and Pulumi's encrypted state. The host
    // gets its hash and no access to this secret.
    const token = bridgeToken(name, args.token, this);
    const tokenSecret = new gcp.secretmanager.Secret(`${name}-token`, { project, secretId: `${name}-token`, replication: { auto: {} }, labels }, after);
    new gcp.secretmanager.SecretVersion(`${name}-token`, { secret: tokenSecret.id, secretData: token }, parent);
    // The application API's token, the same way (generated; the downstream application reads it from here).
    const appToken = bridgeToken(name, undefined, this, 'app-token');
    const appTokenSecret = new gcp.secretmanager.Secret(`${name}-app-token`, { project, secretId: `${name}-app-token`, replication: { auto: {} }, labels }, after);
    new gcp.secretmanager.SecretVersion(`${name}-app-token`, { secret: appTokenSecret.id, secretData: appToken }, parent);

    const secrets: HostSecret[] = [];
    if (args.webhook) {
      const webhookSecret = new gcp.secretmanager.Secret(`${name}-webhook-secret`, { project, secretId: `${name}-webhook-secret`, replication: { auto: {} }, labels }, after);
      new gcp.secretmanager.SecretVersion(`${name}-webhook-secret`, { secret: webhookSecret.id, secretData: pulumi.secret(args.webhook.secret) }, parent);
      new gcp.secretmanager.SecretIamMember(
        `${name}-webhook-secret-reader`,
        { project, secretId: webhookSecret.secretId, role: 'roles/secretmanager.secretAccessor', member },
        parent,
      );
      secrets.push({ env: 'SCIM_BRIDGE_WEBHOOK_SECRET', command: `gcp_secret projects/${project}/secrets/${name}-webhook-secret` });
    }

    // The data disk is its own resource: replacing the VM (a new image, new settings) re-attaches it, and
    // `pulumi destroy` leaves it (retainOnDelete) so the directory survives a teardown.
    // (dataDiskImport adopts a disk kept by an earlier destroy: under its own name.)
    const disk = new gcp.compute.Disk(
      `${name}-data`,
      {
        project,
        zone,
        ...(args.dataDiskImport ? { name: args.dataDiskImport } : {}),
        type: 'pd-balanced',
        size: args.dataDiskSizeGb,
        labels,
        description: 'scim-bridge database and TLS certificates',
      },
      { ...after, retainOnDelete: true, ...(args.dataDiskImport ? { import: `projects/${project}/zones/${zone}/disks/${args.dataDiskImport}` } : {}) },
    );
    const snapshots = new gcp.compute.ResourcePolicy(
      `${name}-snapshots`,
      {
        project,
        region,
        description: 'Daily snapshots of the scim-bridge data disk, kept 14 days',
        snapshotSchedulePolicy: {
          schedule: { dailySchedule: { daysInCycle: 1, startTime: '03:00' } },
          retentionPolicy: { maxRetentionDays: 14, onSourceDiskDelete: 'KEEP_AUTO_SNAPSHOTS' },
          snapshotProperties: { labels, storageLocations: region },
        },
      },
      after,
    );
    new gcp.compute.DiskResourcePolicyAttachment(`${name}-data-snapshots`, { project, zone, disk: disk.name, name: snapshots.name }, parent);

    const userData = pulumi.all([tokenSha256(token), tokenSha256(appToken)]).apply(([hash, appHash]) =>
      renderUserData({
        ...bridgeHostSpec(args, { token: hash, appToken: appHash }),
        dataDevice: `/dev/disk/by-id/google-${DATA_DEVICE}`,
        logging: { driver: 'gcplogs' },
        secrets,
        ...(secrets.length ? { secretFunctions: GCP_SECRET_FUNCTION } : {}),
      }),
    );

    const instance = new gcp.compute.Instance(
      `${name}-host`,
      {
        project,
        zone,
        machineType: args.size,
        description: 'scim-bridge host (replaceable: its state is on the data disk)',
        tags: [NETWORK_TAG],
        labels,
        bootDisk: { autoDelete: true, initializeParams: { image: args.osImage ?? GCP_OS_IMAGE, size: 20, type: 'pd-balanced', labels } },
        attachedDisks: [{ source: disk.id, deviceName: DATA_DEVICE, mode: 'READ_WRITE' }],
        networkInterfaces: [{ subnetwork: subnet.id, accessConfigs: [{ natIp: address.address, networkTier: 'PREMIUM' }] }],
        serviceAccount: { email: account.email, scopes: ['cloud-platform'] },
        shieldedInstanceConfig: { enableSecureBoot: true, enableVtpm: true, enableIntegrityMonitoring: true },
        metadata: { 'user-data': userData, 'enable-oslogin': 'TRUE', 'block-project-ssh-keys': 'TRUE' },
        allowStoppingForUpdate: true,
      },
      // A new image or setting means a new VM: the old one goes first, since the disk and the address can be
      // attached to one VM at a time.
      { ...after, deleteBeforeReplace: true, replaceOnChanges: ['metadata'] },
    );

    new gcp.dns.RecordSet(
      `${name}-a`,
      { project, managedZone: args.dnsZone, name: `${args.domain}.`, type: 'A', ttl: 300, rrdatas: [address.address] },
      after,
    );
    if (args.acme.letsEncrypt) {
      new gcp.dns.RecordSet(
        `${name}-caa`,
        { project, managedZone: args.dnsZone, name: `${args.domain}.`, type: 'CAA', ttl: 3600, rrdatas: ['0 issue "letsencrypt.org"'] },
        after,
      );
    }

    const channel = new gcp.monitoring.NotificationChannel(
      `${name}-email`,
      { project, displayName: `scim-bridge ${args.domain} on call`, type: 'email', labels: { email_address: args.alertEmail } },
      after,
    );
    const uptime = new gcp.monitoring.UptimeCheckConfig(
      `${name}-uptime`,
      {
        project,
        displayName: `scim-bridge ${args.domain}`,
        period: '60s',
        timeout: '10s',
        httpCheck: {
          path: '/healthz',
          port: 443,
          useSsl: true,
          validateSsl: true,
          requestMethod: 'GET',
          acceptedResponseStatusCodes: [{ statusClass: 'STATUS_CLASS_2XX' }],
        },
        monitoredResource: { type: 'uptime_url', labels: { project_id: project, host: args.domain } },
      },
      after,
    );
    const checkFilter = (metric: string) =>
      pulumi.interpolate`metric.type="monitoring.googleapis.com/uptime_check/${metric}" AND metric.label.check_id="${uptime.uptimeCheckId}" AND resource.type="uptime_url"`;
    new gcp.monitoring.AlertPolicy(
      `${name}-down`,
      {
        project,
        displayName: `scim-bridge ${args.domain} is down`,
        combiner: 'OR',
        conditions: [
          {
            displayName: `https://${args.domain}/healthz fails`,
            conditionThreshold: {
              filter: checkFilter('check_passed'),
              comparison: 'COMPARISON_GT',
              thresholdValue: 1,
              duration: '300s',
              trigger: { count: 1 },
              aggregations: [{ alignmentPeriod: '1200s', perSeriesAligner: 'ALIGN_NEXT_OLDER', crossSeriesReducer: 'REDUCE_COUNT_FALSE', groupByFields: ['resource.label.*'] }],
            },
          },
        ],
        notificationChannels: [channel.name],
        documentation: {
          mimeType: 'text/markdown',
          content: `The SCIM bridge at https://${args.domain} fails its health check from more than one region, so the IdP cannot provision. Look at the VM \`${name}-host\` in ${zone} and its container logs (Logging, log name gcplogs-docker-driver).`,
        },
      },
      parent,
    );
    new gcp.monitoring.AlertPolicy(
      `${name}-certificate`,
      {
        project,
        displayName: `scim-bridge ${args.domain} certificate expires soon`,
        combiner: 'OR',
        conditions: [
          {
            displayName: 'TLS certificate expires in less than 14 days (Caddy renews at 30)',
            conditionThreshold: {
              filter: checkFilter('time_until_ssl_cert_expires'),
              comparison: 'COMPARISON_LT',
              thresholdValue: 14,
              duration: '600s',
              trigger: { count: 1 },
              aggregations: [{ alignmentPeriod: '1200s', perSeriesAligner: 'ALIGN_NEXT_OLDER', crossSeriesReducer: 'REDUCE_MIN', groupByFields: ['resource.label.*'] }],
            },
          },
        ],
        notificationChannels: [channel.name],
        documentation: {
          mimeType: 'text/markdown',
          content: `Caddy has not renewed the certificate of ${args.domain}. Check that ports 80/443 reach the VM and that the CAA and A records are right, then read Caddy's logs (container scim-bridge-caddy).`,
        },
      },
      parent,
    );

    this.ipAddress = address.address;
    this.baseUrl = pulumi.output(baseUrlOf(args.domain));
    const reference = (secret: gcp.secretmanager.Secret) =>
      pulumi.interpolate`Secret Manager secret projects/${project}/secrets/${secret.secretId}; print it with: gcloud secrets versions access latest --secret=${secret.secretId} --project=${project}`;
    this.tokenReference = reference(tokenSecret);
    this.appTokenReference = reference(appTokenSecret);
    this.registerOutputs({ ipAddress: this.ipAddress, baseUrl: this.baseUrl, tokenReference: this.tokenReference, appTokenReference: this.appTokenReference, instance: instance.name });
  }
}
