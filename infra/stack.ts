/**
 * The program: reads and validates the stack configuration, builds the chosen target, and returns the
 * stack's outputs. `infra/index.ts` runs it under `pulumi up`; the offline plan runs it under mocks.
 */
import * as pulumi from '@pulumi/pulumi';
import { AwsBridge, AWS_SECRET_SINKS } from './aws';
import { awsPlanMocks } from './aws/mocks';
import { BridgeArgs, BridgeOutputs, PlanMocks, SecretSink } from './bridge';
import { loadStackConfig, StackConfig, Target } from './config';
import { DigitalOceanBridge, DIGITALOCEAN_SECRET_SINKS } from './digitalocean';
import { digitalOceanPlanMocks } from './digitalocean/mocks';
import { GcpBridge, GCP_SECRET_SINKS } from './gcp';
import { gcpPlanMocks } from './gcp/mocks';

export interface StackOutputs {
  baseUrl: pulumi.Output<string>;
  tokenReference: pulumi.Output<string>;
  ipAddress: pulumi.Output<string>;
  target: Target;
  /** Where the application API's token lives (the downstream application's credential for /api/v1). */
  appTokenReference: pulumi.Output<string>;
  /** DigitalOcean only (no secret store there): the token, as a secret output. */
  token?: pulumi.Output<string>;
  /** DigitalOcean only: the application API's token, as a secret output. */
  appToken?: pulumi.Output<string>;
}

export const BRIDGE_NAME = 'scim-bridge';

/** The inputs allowed to hold a secret: the secret stores' (checked by the offline plan). */
export const SECRET_SINKS: SecretSink[] = [...GCP_SECRET_SINKS, ...DIGITALOCEAN_SECRET_SINKS, ...AWS_SECRET_SINKS];
/** What the clouds compute, for the offline plan. */
export const PLAN_MOCKS: PlanMocks[] = [gcpPlanMocks, digitalOceanPlanMocks, awsPlanMocks];

function commonArgs(c: StackConfig): BridgeArgs {
  return {
    image: c.image,
    domain: c.domain,
    dnsZone: c.dnsZone,
    size: c.size,
    ...(c.token ? { token: c.token } : {}),
    caddyImage: c.caddyImage,
    dataDiskSizeGb: c.dataDiskSizeGb,
    ...(c.dataDiskImport ? { dataDiskImport: c.dataDiskImport } : {}),
    alertEmail: c.alertEmail,
    acme: c.acme,
    allowedDomains: c.allowedDomains,
    ...(c.webhook ? { webhook: c.webhook } : {}),
    adminSourceRanges: c.adminSourceRanges,
    rebootTime: c.rebootTime,
  };
}

const builders: Record<Target, (c: StackConfig) => BridgeOutputs & { token?: pulumi.Output<string>; appToken?: pulumi.Output<string> }> = {
  gcp: (c) => new GcpBridge(BRIDGE_NAME, { ...commonArgs(c), ...c.gcp! }),
  digitalocean: (c) => new DigitalOceanBridge(BRIDGE_NAME, { ...commonArgs(c), ...c.digitalocean! }),
  aws: (c) => new AwsBridge(BRIDGE_NAME, { ...commonArgs(c), ...c.aws! }),
};

export function deploy(config: StackConfig = loadStackConfig()): StackOutputs {
  const bridge = builders[config.target](config);
  return {
    baseUrl: bridge.baseUrl,
    tokenReference: bridge.tokenReference,
    ipAddress: bridge.ipAddress,
    target: config.target,
    appTokenReference: bridge.appTokenReference,
    ...(bridge.token ? { token: bridge.token } : {}),
    ...(bridge.appToken ? { appToken: bridge.appToken } : {}),
  };
}
