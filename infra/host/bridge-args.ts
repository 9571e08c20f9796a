/**
 * What a VM target's component takes beyond the common Bridge arguments: the host's own settings (Caddy, the
 * data disk, SSH, reboots, the DNS zone and machine size), and the common ones narrowed to plain values.
 */
import type * as pulumi from '@pulumi/pulumi';
import type { BridgeArgs } from '../bridge';
import type { Acme } from '../target';
import type { HostSpec } from './index';

export interface HostBridgeArgs extends BridgeArgs {
  // A host's cloud-init document, resource names, DNS records and alert texts are written from these, and a
  // change of the user-data must replace the host: the VM targets take them as plain values.
  /** The bridge's container image, pinned. */
  readonly image: string;
  /** The host name the IdP reaches, e.g. scim.example.com. */
  readonly domain: string;
  /** Who is told when the bridge is down. */
  readonly alertEmail: string;
  /** Email domains accepted for users; all when empty. */
  readonly allowedDomains: string[];
  /** The downstream webhook (its URL is in the host's settings) and its signing secret (a Pulumi secret). */
  readonly webhook?: { readonly url: string; readonly secret: pulumi.Input<string> };
  /** The Google Workspace connector: its settings (in the host's settings) and its key (a Pulumi secret). */
  readonly googleWorkspace?: { readonly admin: string; readonly groups: string[]; readonly interval: string; readonly key: pulumi.Input<string> };
  /** The existing DNS zone the A record goes in (its form is the target's: a zone name, a domain, an id). */
  readonly dnsZone: string;
  /** Machine type or size. */
  readonly size: string;
  /** The Caddy image in front of the bridge, pinned. */
  readonly caddyImage: string;
  /** Size of the data disk in GB. */
  readonly dataDiskSizeGb: number;
  /**
   * The cloud's id of a data disk kept by an earlier `pulumi destroy`, to adopt instead of creating a blank
   * one (Pulumi's `import` option). Current Pulumi CLIs import and then update what differs; the disk's `protect`
   * makes a difference that would need a new disk fail instead of replacing it with a blank one.
   */
  readonly dataDiskImport?: string;
  /** Caddy's ACME account and directory (Let's Encrypt by default). */
  readonly acme: Acme;
  /** CIDR ranges allowed to reach SSH; none by default. */
  readonly adminSourceRanges: string[];
  /** When (HH:MM, UTC) the host may reboot for an update that needs it, or `never` (the default here). */
  readonly rebootTime?: string;
}

/**
 * What every VM target's host runs with, from the bridge's inputs and the application token's hash; each target
 * adds its disk device, log driver and secret fetching, the IdP token's hashes among the secrets (so that a
 * rotation reaches the running host: nothing of the IdP token is in the user-data).
 */
export function bridgeHostSpec(
  args: HostBridgeArgs,
  hashes: { appToken: string },
): Pick<HostSpec, 'image' | 'caddyImage' | 'domain' | 'acme' | 'appTokenSha256' | 'allowedDomains' | 'webhookUrl' | 'google' | 'rebootTime'> {
  return {
    image: args.image,
    caddyImage: args.caddyImage,
    domain: args.domain,
    acme: args.acme,
    appTokenSha256: [hashes.appToken],
    allowedDomains: args.allowedDomains,
    ...(args.rebootTime ? { rebootTime: args.rebootTime } : {}),
    ...(args.webhook ? { webhookUrl: args.webhook.url } : {}),
    ...(args.googleWorkspace ? { google: { admin: args.googleWorkspace.admin, groups: args.googleWorkspace.groups, interval: args.googleWorkspace.interval } } : {}),
  };
}
