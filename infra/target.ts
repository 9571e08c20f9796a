/**
 * What a target is: a folder (infra/<name>/) that brings its settings and their defaults, its component, the
 * resource inputs allowed to hold secrets, and the plan's mocks of what its cloud computes. It is registered by
 * one line in infra/targets.ts; nothing else outside its folder names it.
 */
import type * as pulumi from '@pulumi/pulumi';
import type { BridgeOutputs, PlanMocks, SecretSink } from './bridge';
import type { GoogleWorkspace } from './google-workspace';
import type { SettingsReader } from './settings';

export interface Acme {
  email: string;
  /** The ACME directory URL. */
  directory: string;
  /** Let's Encrypt (production or staging): a CAA record then limits issuance to it. */
  letsEncrypt: boolean;
  /** PEM of the root that signs a private ACME directory's HTTPS certificate. */
  caRoot?: string;
}

/** The settings every target reads (validated by infra/config.ts before the target's own). */
export interface CommonConfig {
  domain: string;
  /** `build` (this checkout, built and pushed to the target's registry), or an image pinned to a version or a digest. */
  image: string;
  alertEmail: string;
  acme: Acme;
  allowedDomains: string[];
  webhook?: { url: string; secret: pulumi.Output<string> };
  /** Set with `--secret`; generated when absent. */
  token?: pulumi.Output<string>;
  /** The token being rotated out (`previousToken`, a secret): accepted beside `token` until removed. */
  previousToken?: pulumi.Output<string>;
  /** The Google Workspace connector (`googleWorkspace`, its key `googleWorkspaceKey` a secret); off when absent. */
  googleWorkspace?: GoogleWorkspace;
}

/** What a target's component gives back; a target without a secret store also gives the tokens as secrets. */
export type TargetBridge = BridgeOutputs & { token?: pulumi.Output<string>; appToken?: pulumi.Output<string> };

export interface TargetDefinition<N extends string = string, S extends object = object> {
  /** `scim-bridge:target`, and the folder's name. */
  readonly name: N;
  /** Its own settings (key: what it is, for the unknown-key message); several targets may list the same key. */
  readonly keys: Readonly<Record<string, string>>;
  /**
   * Reads and validates its own settings, reporting every problem through the reader (never throwing). What it
   * returns is part of the stack's configuration (spread into it), so it should keep its settings under keys
   * no other target uses.
   */
  settings(reader: SettingsReader, common: CommonConfig & { domainValid: boolean }): S;
  /** Declares the component, from the validated configuration. */
  build(name: string, config: CommonConfig & S): TargetBridge;
  /** The resource inputs allowed to hold a secret (the offline plan's leak check). */
  readonly secretSinks: readonly SecretSink[];
  /** What its cloud computes, for the offline plan. */
  readonly planMocks?: PlanMocks;
}

/** Keeps the name's literal type, so the registry knows every target's name and settings. */
export function defineTarget<N extends string, S extends object>(t: TargetDefinition<N, S>): TargetDefinition<N, S> {
  return t;
}
