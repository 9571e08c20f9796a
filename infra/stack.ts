/**
 * The program: reads and validates the stack configuration, builds the chosen target, and returns the
 * stack's outputs. `infra/index.ts` runs it under `pulumi up`; the offline plan runs it under mocks.
 */
import * as pulumi from '@pulumi/pulumi';
import type { PlanMocks, SecretSink } from './bridge';
import { loadStackConfig, StackConfig } from './config';
import { IMAGE_SECRET_SINKS, imagePlanMocks } from './image';
import type { TargetDefinition } from './target';
import { Target, TARGET_DEFINITIONS } from './targets';

export interface StackOutputs {
  baseUrl: pulumi.Output<string>;
  tokenReference: pulumi.Output<string>;
  ipAddress: pulumi.Output<string>;
  target: Target;
  /** Where the application API's token lives (the downstream application's credential for /api/v1). */
  appTokenReference: pulumi.Output<string>;
  /** Targets without a secret store (DigitalOcean, Kubernetes): the token, as a secret output. */
  token?: pulumi.Output<string>;
  /** The same targets: the application API's token, as a secret output. */
  appToken?: pulumi.Output<string>;
}

export const BRIDGE_NAME = 'scim-bridge';

/** The inputs allowed to hold a secret: the secret stores' (checked by the offline plan). */
export const SECRET_SINKS: SecretSink[] = [...TARGET_DEFINITIONS.flatMap((t) => [...t.secretSinks]), ...IMAGE_SECRET_SINKS];
/** What the clouds compute, for the offline plan. */
export const PLAN_MOCKS: PlanMocks[] = [...TARGET_DEFINITIONS.flatMap((t) => (t.planMocks ? [t.planMocks] : [])), imagePlanMocks];

export function deploy(config: StackConfig = loadStackConfig()): StackOutputs {
  const definition = TARGET_DEFINITIONS.find((t) => t.name === config.target) as TargetDefinition<Target, object>;
  const bridge = definition.build(BRIDGE_NAME, config);
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
