/**
 * `image: build` on DigitalOcean: the checkout's image pushed to DigitalOcean Container Registry, in a repository
 * of the stack (`registry.digitalocean.com/<registry>/<prefix>`), and pulled by the Droplet with a read-only
 * registry credential. DigitalOcean has no instance identity the registry accepts, so that credential is kept like
 * the webhook secret: in Pulumi's state, and in the Droplet's user-data as a root-only Docker config (the user-data
 * is then a Pulumi secret). It can only read the account's registry.
 *
 * An account has one registry: the stack creates it (basic tier: 5 repositories, 5 GiB) unless
 * `containerRegistry` names the one the account has, which another stack shares with its own repository.
 */
import * as digitalocean from '@pulumi/digitalocean';
import * as pulumi from '@pulumi/pulumi';
import { buildBridgeImage } from '../image';

export const DOCR_HOST = 'registry.digitalocean.com';
/** Where DigitalOcean Container Registry runs; a registry created elsewhere takes DigitalOcean's default region. */
export const DOCR_REGIONS = ['nyc3', 'sfo2', 'sfo3', 'ams3', 'sgp1', 'fra1', 'blr1', 'syd1'];
/** The tier of a registry the stack creates: the starter tier's 500 MiB holds about three builds. */
export const DOCR_TIER = 'basic';

/** `{"auths":{"registry.digitalocean.com":{"auth":"<base64 user:password>"}}}` -> the user and the password. */
export function loginOf(dockerCredentials: string): { username: string; password: string } {
  const auth = (JSON.parse(dockerCredentials) as { auths?: Record<string, { auth?: string }> }).auths?.[DOCR_HOST]?.auth;
  if (!auth) throw new Error(`digitalocean: the registry credentials have no login for ${DOCR_HOST}`);
  const decoded = Buffer.from(auth, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

export interface DigitalOceanBuiltImage {
  /** `registry.digitalocean.com/<registry>/<prefix>@sha256:…` */
  image: pulumi.Output<string>;
  /** The Droplet's Docker config: a read-only login to the registry (a secret). */
  pullConfig: pulumi.Output<string>;
}

export function digitalOceanBuiltImage(
  name: string,
  args: { prefix: string; region: string; containerRegistry?: string },
  opts: pulumi.CustomResourceOptions,
): DigitalOceanBuiltImage {
  const registryName: pulumi.Output<string> = args.containerRegistry
    ? pulumi.output(args.containerRegistry)
    : new digitalocean.ContainerRegistry(
        `${name}-registry`,
        { name: args.prefix.slice(0, 63).replace(/-+$/, ''), subscriptionTierSlug: DOCR_TIER, ...(DOCR_REGIONS.includes(args.region) ? { region: args.region } : {}) },
        opts,
      ).name;
  // Pushing: a write credential, in Pulumi's state only (the machine running `pulumi up` pushes with it).
  const push = new digitalocean.ContainerRegistryDockerCredentials(`${name}-registry-push`, { registryName, write: true }, opts);
  // Pulling: read-only, for the Droplet.
  const pull = new digitalocean.ContainerRegistryDockerCredentials(`${name}-registry-pull`, { registryName, write: false }, opts);
  const login = pulumi.secret(push.dockerCredentials).apply(loginOf);
  const image = buildBridgeImage(
    name,
    {
      repository: pulumi.interpolate`${DOCR_HOST}/${registryName}/${args.prefix}`,
      platform: 'linux/amd64',
      login: { address: DOCR_HOST, username: login.apply((l) => l.username), password: pulumi.secret(login.apply((l) => l.password)) },
    },
    { ...opts, dependsOn: [push] },
  );
  return { image, pullConfig: pulumi.secret(pull.dockerCredentials) };
}
