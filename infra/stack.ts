/**
 * The program: reads and validates the stack configuration, builds the chosen target, and returns the
 * stack's outputs. `infra/index.ts` runs it under `pulumi up`; the offline plan runs it under mocks.
 */
import * as pulumi from '@pulumi/pulumi';
import { BridgeArgs, BridgeOutputs } from './bridge';
import { loadStackConfig, StackConfig, Target } from './config';
import { GcpBridge, GCP_SECRET_SINKS } from './gcp';

export interface StackOutputs {
  baseUrl: pulumi.Output<string>;
  tokenReference: pulumi.Output<string>;
  ipAddress: pulumi.Output<string>;
  target: Target;
}

export const BRIDGE_NAME = 'scim-bridge';

/** `type.input` pairs allowed to hold a secret: the secret stores' (checked by the offline plan). */
export const SECRET_SINKS: string[] = [...GCP_SECRET_SINKS];

function commonArgs(c: StackConfig): BridgeArgs {
  return {
    image: c.image,
    domain: c.domain,
    dnsZone: c.dnsZone,
    size: c.size,
    ...(c.token ? { token: c.token } : {}),
    caddyImage: c.caddyImage,
    dataDiskSizeGb: c.dataDiskSizeGb,
    alertEmail: c.alertEmail,
    acme: c.acme,
    allowedDomains: c.allowedDomains,
    ...(c.webhook ? { webhook: c.webhook } : {}),
    adminSourceRanges: c.adminSourceRanges,
  };
}

const builders: Record<Target, (c: StackConfig) => BridgeOutputs> = {
  gcp: (c) => new GcpBridge(BRIDGE_NAME, { ...commonArgs(c), ...c.gcp! }),
};

export function deploy(config: StackConfig = loadStackConfig()): StackOutputs {
  const bridge = builders[config.target](config);
  return { baseUrl: bridge.baseUrl, tokenReference: bridge.tokenReference, ipAddress: bridge.ipAddress, target: config.target };
}
