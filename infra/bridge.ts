/**
 * The one shape every target has: a ComponentResource `scim-bridge:<target>:Bridge` taking the same inputs and
 * giving the same outputs. Differences live inside each target's folder.
 */
import { createHash } from 'node:crypto';
import * as pulumi from '@pulumi/pulumi';
import * as random from '@pulumi/random';

/**
 * What every target's component takes; each target's own arguments extend it (a VM host's in infra/host, the
 * Kubernetes target's in infra/kubernetes).
 */
export interface BridgeArgs {
  /**
   * The bridge's container image, pinned to a version or a digest; or `build` (infra/image.ts): the target builds
   * this checkout, pushes it to a registry in its own cloud and runs it by digest.
   */
  readonly image: pulumi.Input<string>;
  /** The host name the IdP reaches, e.g. scim.example.com; the Base URL is https://<domain>. */
  readonly domain: pulumi.Input<string>;
  /** The IdP's bearer token (a Pulumi secret); generated when absent. */
  readonly token?: pulumi.Input<string>;
  /** The token being rotated out (a Pulumi secret): accepted beside `token` until removed; needs `token`. */
  readonly previousToken?: pulumi.Input<string>;
  /** Email domains accepted for userName and emails; all when empty. */
  readonly allowedDomains: pulumi.Input<pulumi.Input<string>[]>;
  /** The downstream application's webhook and its signing secret (a Pulumi secret); the events feed only when absent. */
  readonly webhook?: { readonly url: pulumi.Input<string>; readonly secret: pulumi.Input<string> };
  /**
   * The Google Workspace connector: its settings, and the service account's JSON key on one line (a Pulumi
   * secret, given to the bridge as a file like the webhook secret); off when absent.
   */
  readonly googleWorkspace?: {
    readonly admin: pulumi.Input<string>;
    readonly groups: pulumi.Input<pulumi.Input<string>[]>;
    readonly interval: pulumi.Input<string>;
    readonly key: pulumi.Input<string>;
  };
  /** Who is told when the bridge is down or its certificate is about to expire. */
  readonly alertEmail: pulumi.Input<string>;
}

/** What every target gives back; never the token in clear. */
export interface BridgeOutputs {
  /** The static public address the DNS record points at. */
  ipAddress: pulumi.Output<string>;
  /** `https://<domain>`: what the IdP is given, with no trailing slash. */
  baseUrl: pulumi.Output<string>;
  /** Where the token lives and the command that prints it. */
  tokenReference: pulumi.Output<string>;
  /**
   * Where the application API's token lives (generated; the host gets its SHA-256): the downstream application
   * uses it for /api/v1 (joins, the events feed, application groups).
   */
  appTokenReference: pulumi.Output<string>;
}

export function baseUrlOf(domain: string): string {
  return `https://${domain}`;
}

/**
 * The bearer token as a secret: the configured one, or a generated one (48 letters and digits, ~285 bits)
 * kept in the stack's encrypted state.
 */
export function bridgeToken(
  name: string,
  configured: pulumi.Input<string> | undefined,
  parent: pulumi.Resource,
  purpose: 'token' | 'app-token' | 'metrics-token' = 'token',
): pulumi.Output<string> {
  if (configured !== undefined) return pulumi.secret(configured);
  const generated = new random.RandomPassword(`${name}-${purpose}`, { length: 48, special: false }, { parent });
  return pulumi.secret(generated.result);
}

/**
 * The token's SHA-256, which is all a host receives. It is not a secret: the token is long and random (the
 * configuration refuses short ones), so its hash reveals nothing, and keeping it in clear lets it appear in
 * user-data that the cloud shows to anyone who can read the instance.
 */
export function tokenSha256(token: pulumi.Output<string>): pulumi.Output<string> {
  return pulumi.unsecret(token.apply((t) => createHash('sha256').update(t, 'utf8').digest('hex')));
}

/**
 * The hashes the bridge accepts, comma-separated as SCIM_BRIDGE_TOKEN_SHA256 takes them: the token's, then the
 * previous token's during a rotation. Not a secret (see tokenSha256).
 */
export function acceptedTokenHashes(token: pulumi.Output<string>, previousToken: pulumi.Input<string> | undefined): pulumi.Output<string> {
  const hashes = [tokenSha256(token), ...(previousToken !== undefined ? [tokenSha256(pulumi.output(previousToken))] : [])];
  return pulumi.all(hashes).apply((h) => h.join(','));
}

/**
 * For the offline plan's leak check: a resource input allowed to hold secrets (`type.input`), and which of the
 * secrets the plan invents (named by config key or resource, e.g. webhookSecret) it may hold; any when absent.
 */
export interface SecretSink {
  input: string;
  only?: string[];
}

/**
 * For the offline plan: what a cloud computes that the program reads back (addresses, ids, emails), so the
 * plan shows real-looking values; and answers to the data-source lookups a target makes.
 */
export interface PlanMocks {
  outputs(type: string, name: string, inputs: Record<string, unknown>): Record<string, unknown> | undefined;
  invoke?(token: string, inputs: Record<string, unknown>): Record<string, unknown> | undefined;
}
