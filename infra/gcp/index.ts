/**
 * GCP: `scim-bridge:gcp:Bridge`. A Shielded VM with OS Login and its own least-privilege service account, in a
 * network of its own (no default firewall rules), a static address, a separate persistent disk that outlives
 * the VM (snapshotted daily, protected), Cloud DNS A and CAA records, the token and the webhook secret in Secret
 * Manager, container logs in Cloud Logging (through the journal and Google's Ops Agent), and an uptime check of
 * https://<domain>/healthz with email alerts.
 *
 * Names a project holds once (the service account, the secrets) derive from the stack, so several stacks share
 * a project. The APIs the program enables are waited for before anything uses them.
 */
import * as gcp from '@pulumi/gcp';
import * as pulumi from '@pulumi/pulumi';
import * as time from '@pulumiverse/time';
import { acceptedTokenHashes, baseUrlOf, BridgeOutputs, bridgeToken, SecretSink, tokenSha256 } from '../bridge';
import { GOOGLE_CREDENTIALS_SETTING } from '../google-workspace';
import { bridgeHostSpec, HostBridgeArgs, HostSecret, renderUserData } from '../host';
import { BUILD_IMAGE } from '../image';
import { gcpHostLogging, gcpLogLocation } from './logging';
import { secretId, serviceAccountId } from './names';
import { gcpBuiltImage, GCP_IMAGE_API } from './registry';

export interface GcpBridgeArgs extends HostBridgeArgs {
  project: string;
  region: string;
  zone: string;
  /** The boot image: a distribution with cloud-init (GCP's Debian images have none; Ubuntu's do). */
  osImage?: string;
  /** A token accepted on /metrics only (a Pulumi secret): its hash is a secret the host reads every minute. */
  metricsToken?: pulumi.Input<string>;
}

export const GCP_OS_IMAGE = 'ubuntu-os-cloud/ubuntu-2404-lts-amd64';
/** The data disk's device name, which Linux shows as /dev/disk/by-id/google-<name>. */
const DATA_DEVICE = 'scim-bridge-data';
const NETWORK_TAG = 'scim-bridge';
/**
 * Only what the host does: write its container logs and its memory and disk metrics (for the alerts); read the
 * token hashes and the webhook secret (granted on those secrets).
 */
export const GCP_HOST_ROLES = ['roles/logging.logWriter', 'roles/monitoring.metricWriter'];
/** The alerts beyond the uptime check's: the agent's host metrics, and the bridge's dead-letter log line. */
export const GCP_HOST_ALERTS = [
  { key: 'memory', metric: 'agent.googleapis.com/memory/percent_used', state: 'used', threshold: 90, what: 'memory above 90%' },
  { key: 'disk', metric: 'agent.googleapis.com/disk/percent_used', state: 'used', threshold: 85, what: 'a disk above 85% full' },
] as const;
/** The bridge's log line for each event that became a dead letter (bridge/src/delivery). */
export const DEAD_LETTER_LOG_LINE = 'webhook delivery: dead letter';
/** The only resource inputs that may hold the token or the webhook secret (the plan's leak check). */
export const GCP_SECRET_SINKS: SecretSink[] = [{ input: 'gcp:secretmanager/secretVersion:SecretVersion.secretData' }];
/**
 * The APIs the program enables itself. Two more must be on before it runs (it needs them to enable these and
 * to grant the host's role): serviceusage.googleapis.com and cloudresourcemanager.googleapis.com.
 */
export const GCP_APIS = ['compute.googleapis.com', 'dns.googleapis.com', 'secretmanager.googleapis.com', 'monitoring.googleapis.com', 'logging.googleapis.com', 'iam.googleapis.com'];
/**
 * How long to wait after enabling the APIs before using them. Enabling is eventually consistent: the call
 * returns before every Google front end accepts requests for the API, and the first `pulumi up` on a fresh
 * project would fail with "API has not been used in project … or it is disabled". The wait happens when the
 * wait resource is created (the stack's first `up`) and again only when the list of APIs changes.
 */
export const GCP_API_PROPAGATION = '90s';

/** CIDR ranges by address family: a GCP firewall rule holds ranges of one family only. */
export function byAddressFamily(ranges: string[]): { ipv4: string[]; ipv6: string[] } {
  return { ipv4: ranges.filter((r) => !r.includes(':')), ipv6: ranges.filter((r) => r.includes(':')) };
}

/**
 * Disk inputs that only say how a disk was made (from a snapshot, an image, another disk) or describe it. They
 * matter when a disk is created and never after; GCP cannot change them in place, so a difference would mean a
 * new, blank disk. Ignored, a disk adopted with dataDiskImport that was made from a snapshot imports cleanly.
 */
export const GCP_DISK_IGNORED = ['description', 'snapshot', 'image', 'sourceDisk', 'sourceInstantSnapshot'];

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
    const stack = pulumi.getStack();

    // image: build adds Artifact Registry's API (infra/gcp/registry.ts).
    const services = args.image === BUILD_IMAGE ? [...GCP_APIS, GCP_IMAGE_API] : GCP_APIS;
    const apis = services.map(
      (service) => new gcp.projects.Service(`${name}-${service.split('.')[0]}`, { project, service, disableOnDestroy: false }, parent),
    );
    // Every resource of a Google API waits for this: the APIs enabled, then time for that to propagate.
    const apisReady = new time.Sleep(
      `${name}-apis-ready`,
      { createDuration: GCP_API_PROPAGATION, triggers: { project, services: services.join(' ') } },
      { parent: this, dependsOn: apis },
    );
    const after = { parent: this, dependsOn: [apisReady] };

    const network = new gcp.compute.Network(`${name}-net`, { project, autoCreateSubnetworks: false, description: 'scim-bridge: its own network, so no default rule opens anything' }, after);
    const subnet = new gcp.compute.Subnetwork(
      `${name}-subnet`,
      { project, region, network: network.id, ipCidrRange: '10.80.0.0/28', privateIpGoogleAccess: true },
      after,
    );
    const address = new gcp.compute.Address(`${name}-ip`, { project, region, addressType: 'EXTERNAL', networkTier: 'PREMIUM', labels }, after);

    // IPv4 only: the VM has no IPv6 address (an IPv4-only subnet, no ipv6AccessConfigs, no AAAA record), so a
    // ::/0 twin of this rule would open nothing. Give the VM IPv6 and it needs one (a rule holds one family).
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
      after,
    );
    // GCP refuses a rule whose source ranges mix IPv4 and IPv6: one rule per family that has ranges.
    const admin = byAddressFamily(args.adminSourceRanges);
    for (const [family, ranges, suffix] of [['IPv4', admin.ipv4, ''], ['IPv6', admin.ipv6, '-ipv6']] as const) {
      if (!ranges.length) continue;
      new gcp.compute.Firewall(
        `${name}-ssh${suffix}`,
        {
          project,
          network: network.id,
          direction: 'INGRESS',
          description: `SSH from the configured admin ranges only (${family})`,
          allows: [{ protocol: 'tcp', ports: ['22'] }],
          sourceRanges: ranges,
          targetTags: [NETWORK_TAG],
        },
        after,
      );
    }

    const account = new gcp.serviceaccount.Account(
      `${name}-host`,
      {
        project,
        accountId: serviceAccountId(name, stack),
        displayName: `scim-bridge host (stack ${stack})`.slice(0, 100),
        description: 'Writes container logs, reads the accepted token hashes and the webhook secret',
      },
      after,
    );
    const member = pulumi.interpolate`serviceAccount:${account.email}`;
    for (const role of GCP_HOST_ROLES) {
      new gcp.projects.IAMMember(`${name}-${role.split('/')[1].replace(/\./g, '-').toLowerCase()}`, { project, role, member }, after);
    }

    // The token in clear: only in Secret Manager (for operators) and Pulumi's encrypted state. The host
    // gets its hash and no access to this secret.
    const token = bridgeToken(name, args.token, this);
    const tokenSecret = new gcp.secretmanager.Secret(`${name}-token`, { project, secretId: secretId(name, stack, 'token'), replication: { auto: {} }, labels }, after);
    new gcp.secretmanager.SecretVersion(`${name}-token`, { secret: tokenSecret.id, secretData: token }, after);
    // The application API's token, the same way (generated; the downstream application reads it from here).
    const appToken = bridgeToken(name, undefined, this, 'app-token');
    const appTokenSecret = new gcp.secretmanager.Secret(
      `${name}-app-token`,
      { project, secretId: secretId(name, stack, 'app-token'), replication: { auto: {} }, labels },
      after,
    );
    new gcp.secretmanager.SecretVersion(`${name}-app-token`, { secret: appTokenSecret.id, secretData: appToken }, after);

    // The hashes the bridge accepts (two during a rotation), where the host reads them every minute: a rotation
    // changes this secret's version, never the VM.
    const tokenHashesId = secretId(name, stack, 'token-sha256');
    const tokenHashesSecret = new gcp.secretmanager.Secret(`${name}-token-sha256`, { project, secretId: tokenHashesId, replication: { auto: {} }, labels }, after);
    new gcp.secretmanager.SecretVersion(`${name}-token-sha256`, { secret: tokenHashesSecret.id, secretData: acceptedTokenHashes(token, args.previousToken) }, after);
    new gcp.secretmanager.SecretIamMember(
      `${name}-token-sha256-reader`,
      { project, secretId: tokenHashesSecret.secretId, role: 'roles/secretmanager.secretAccessor', member },
      after,
    );
    const secrets: HostSecret[] = [{ env: 'SCIM_BRIDGE_TOKEN_SHA256', command: `gcp_secret projects/${project}/secrets/${tokenHashesId}` }];
    if (args.webhook) {
      const webhookSecretId = secretId(name, stack, 'webhook-secret');
      const webhookSecret = new gcp.secretmanager.Secret(`${name}-webhook-secret`, { project, secretId: webhookSecretId, replication: { auto: {} }, labels }, after);
      new gcp.secretmanager.SecretVersion(`${name}-webhook-secret`, { secret: webhookSecret.id, secretData: pulumi.secret(args.webhook.secret) }, after);
      new gcp.secretmanager.SecretIamMember(
        `${name}-webhook-secret-reader`,
        { project, secretId: webhookSecret.secretId, role: 'roles/secretmanager.secretAccessor', member },
        after,
      );
      secrets.push({ env: 'SCIM_BRIDGE_WEBHOOK_SECRET', command: `gcp_secret projects/${project}/secrets/${webhookSecretId}` });
    }
    if (args.googleWorkspace) {
      // The Google Workspace connector's key, the same way: a new key is a new version, never a new VM.
      const googleKeyId = secretId(name, stack, 'google-credentials');
      const googleKey = new gcp.secretmanager.Secret(`${name}-google-credentials`, { project, secretId: googleKeyId, replication: { auto: {} }, labels }, after);
      new gcp.secretmanager.SecretVersion(`${name}-google-credentials`, { secret: googleKey.id, secretData: pulumi.secret(args.googleWorkspace.key) }, after);
      new gcp.secretmanager.SecretIamMember(
        `${name}-google-credentials-reader`,
        { project, secretId: googleKey.secretId, role: 'roles/secretmanager.secretAccessor', member },
        after,
      );
      secrets.push({ env: GOOGLE_CREDENTIALS_SETTING, command: `gcp_secret projects/${project}/secrets/${googleKeyId}` });
    }
    if (args.metricsToken !== undefined) {
      // The metrics token's hash, read every minute like the token's: a new token changes its version, not the VM.
      const metricsHashId = secretId(name, stack, 'metrics-token-sha256');
      const metricsHash = new gcp.secretmanager.Secret(`${name}-metrics-token-sha256`, { project, secretId: metricsHashId, replication: { auto: {} }, labels }, after);
      new gcp.secretmanager.SecretVersion(`${name}-metrics-token-sha256`, { secret: metricsHash.id, secretData: tokenSha256(pulumi.output(args.metricsToken)) }, after);
      new gcp.secretmanager.SecretIamMember(
        `${name}-metrics-token-sha256-reader`,
        { project, secretId: metricsHash.secretId, role: 'roles/secretmanager.secretAccessor', member },
        after,
      );
      secrets.push({ env: 'SCIM_BRIDGE_METRICS_TOKEN_SHA256', command: `gcp_secret projects/${project}/secrets/${metricsHashId}` });
    }

    // The data disk is its own resource: replacing the VM (a new image, new settings) re-attaches it, and
    // `pulumi destroy` leaves it (retainOnDelete) so the directory survives a teardown. It is protected too: a
    // change GCP can only make on a new disk (zone, type, a smaller size) fails the update instead of swapping
    // in a blank disk; moving the data on purpose is the README's unprotect, snapshot, new disk, dataDiskImport.
    // (dataDiskImport adopts a kept disk under its own name; protect stops an adopted disk whose settings differ
    // from being replaced, and GCP_DISK_IGNORED keeps how it was made from counting as a difference.)
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
      {
        ...after,
        protect: true,
        retainOnDelete: true,
        ignoreChanges: GCP_DISK_IGNORED,
        ...(args.dataDiskImport ? { import: `projects/${project}/zones/${zone}/disks/${args.dataDiskImport}` } : {}),
      },
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
    new gcp.compute.DiskResourcePolicyAttachment(`${name}-data-snapshots`, { project, zone, disk: disk.name, name: snapshots.name }, after);

    // image: build: the checkout's image in the stack's Artifact Registry repository, pulled by digest.
    const built = args.image === BUILD_IMAGE ? gcpBuiltImage(name, { project, region, machineType: args.size, member, labels }, after) : undefined;
    const image = built ? built.image : pulumi.output(args.image);

    // Nothing of the IdP token is in it: a rotation leaves it (and the VM) as it is.
    const userData = pulumi.all([tokenSha256(appToken), image]).apply(([appHash, imageRef]) => {
      const logging = gcpHostLogging();
      return renderUserData({
        ...bridgeHostSpec(args, { appToken: appHash }),
        image: imageRef,
        dataDevice: `/dev/disk/by-id/google-${DATA_DEVICE}`,
        ...logging,
        ...(built ? { dockerConfig: built.host.dockerConfig, extraFiles: [...(logging.extraFiles ?? []), ...built.host.extraFiles] } : {}),
        secrets,
        secretFunctions: GCP_SECRET_FUNCTION,
      });
    });

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
      // (With image: build, it may pull its image once its service account may read the repository.)
      { ...after, dependsOn: [apisReady, ...(built ? built.readers : [])], deleteBeforeReplace: true, replaceOnChanges: ['metadata'] },
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
          content: `The SCIM bridge at https://${args.domain} fails its health check from more than one region, so the IdP cannot provision. Look at the VM \`${name}-host\` in ${zone} and its container logs (${gcpLogLocation('scim-bridge')}).`,
        },
      },
      after,
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
          content: `Caddy has not renewed the certificate of ${args.domain}. Check that ports 80/443 reach the VM and that the CAA and A records are right, then read Caddy's logs (${gcpLogLocation('scim-bridge-caddy')}).`,
        },
      },
      after,
    );

    // Memory and disk, from the Ops Agent's host metrics (the VM's own).
    const onThisVm = pulumi.interpolate`resource.type="gce_instance" AND resource.label.instance_id="${instance.instanceId}"`;
    for (const alert of GCP_HOST_ALERTS) {
      new gcp.monitoring.AlertPolicy(
        `${name}-${alert.key}`,
        {
          project,
          displayName: `scim-bridge ${args.domain}: ${alert.what}`,
          combiner: 'OR',
          conditions: [
            {
              displayName: `${alert.what} for 5 minutes`,
              conditionThreshold: {
                filter: pulumi.interpolate`metric.type="${alert.metric}" AND metric.label.state="${alert.state}" AND ${onThisVm}`,
                comparison: 'COMPARISON_GT',
                thresholdValue: alert.threshold,
                duration: '300s',
                trigger: { count: 1 },
                aggregations: [{ alignmentPeriod: '60s', perSeriesAligner: 'ALIGN_MEAN' }],
              },
            },
          ],
          notificationChannels: [channel.name],
          documentation: {
            mimeType: 'text/markdown',
            content: `The VM \`${name}-host\` of scim-bridge ${args.domain} has ${alert.what}. The data disk grows with dataDiskSizeGb; memory with a larger machine type (size). Container logs: ${gcpLogLocation('scim-bridge')}.`,
          },
        },
        after,
      );
    }
    // Dead letters: a log-based metric counting the bridge's dead-letter lines, alerting on any.
    const deadLetters = new gcp.logging.Metric(
      `${name}-dead-letters`,
      {
        project,
        name: `scim-bridge/${stack}/dead-letters`,
        description: `Events of scim-bridge ${args.domain} that became webhook dead letters`,
        filter: pulumi.interpolate`logName="projects/${project}/logs/journald" AND jsonPayload.CONTAINER_NAME="scim-bridge" AND jsonPayload.MESSAGE:"${DEAD_LETTER_LOG_LINE}"`,
        metricDescriptor: { metricKind: 'DELTA', valueType: 'INT64', unit: '1' },
      },
      after,
    );
    new gcp.monitoring.AlertPolicy(
      `${name}-dead-letters`,
      {
        project,
        displayName: `scim-bridge ${args.domain}: webhook dead letters`,
        combiner: 'OR',
        conditions: [
          {
            displayName: 'an event became a dead letter',
            conditionThreshold: {
              filter: pulumi.interpolate`metric.type="logging.googleapis.com/user/${deadLetters.name}" AND resource.type="gce_instance"`,
              comparison: 'COMPARISON_GT',
              thresholdValue: 0,
              duration: '0s',
              trigger: { count: 1 },
              aggregations: [{ alignmentPeriod: '300s', perSeriesAligner: 'ALIGN_SUM', crossSeriesReducer: 'REDUCE_SUM' }],
            },
          },
        ],
        notificationChannels: [channel.name],
        documentation: {
          mimeType: 'text/markdown',
          content: `The webhook of scim-bridge ${args.domain} refused events for good or for longer than the retry window: they are dead letters (GET /health lists them; POST /api/v1/dead-letters/replay sends them again once the receiver is fixed). Logs: ${gcpLogLocation('scim-bridge')}.`,
        },
      },
      after,
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
