/**
 * The bundled image: with `image: build` (the default while no published image of this version is known), the
 * program builds bridge/Dockerfile from this checkout with BuildKit (the user's Docker, through
 * @pulumi/docker-build), for the host's platform, pushes it to the registry the target declares in its own cloud,
 * and hands the host or the pods the pushed image by digest (`<repository>@sha256:…`). docker-build hashes the
 * build context: an unchanged checkout is no change; a changed one is a new digest, which Pulumi shows.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import * as dockerBuild from '@pulumi/docker-build';
import * as pulumi from '@pulumi/pulumi';
import bridgePackage from '../bridge/package.json';
import type { PlanMocks, SecretSink } from './bridge';

/** The `image` setting that builds this checkout. */
export const BUILD_IMAGE = 'build';
/** Where the published release image lives (image.yml pushes `<version>` there). */
export const PUBLISHED_REPOSITORY = 'ghcr.io/scim-bridge/scim-bridge';
/**
 * Releases whose image image.yml published, by version: the digest of the signed index. A release adds its line
 * once the image is public; a checkout of a version listed here deploys that image by default instead of building.
 */
export const PUBLISHED_IMAGES: Readonly<Record<string, string>> = {};

/** The default `image`: this version's published image (by digest) when one is known, else `build`. */
export function defaultImage(version: string = bridgePackage.version, published: Readonly<Record<string, string>> = PUBLISHED_IMAGES): string {
  const digest = published[version];
  return digest ? `${PUBLISHED_REPOSITORY}:${version}@${digest}` : BUILD_IMAGE;
}

export type Platform = 'linux/amd64' | 'linux/arm64';
/**
 * The build context and the Dockerfile, relative to the Pulumi project (the repository root, where Pulumi.yaml
 * is, and where Pulumi runs the program): the Dockerfile needs the root's lockfile, and the root's .dockerignore
 * lets in only what it copies. Relative, so the state is the same from any clone's directory.
 */
export const BUILD_CONTEXT = '.';
export const DOCKERFILE = 'bridge/Dockerfile';

/** Credentials for pushing (a Pulumi secret password), when the user's Docker has none for the registry. */
export interface RegistryLogin {
  /** The registry's host, e.g. europe-west1-docker.pkg.dev. */
  readonly address: pulumi.Input<string>;
  readonly username: pulumi.Input<string>;
  readonly password: pulumi.Input<string>;
}

export interface ImageBuildArgs {
  /** The repository the image is pushed to, without tag: `<registry>/<path>/scim-bridge`. */
  readonly repository: pulumi.Input<string>;
  /** The host's or the nodes' platform. */
  readonly platform: Platform;
  readonly login?: RegistryLogin;
}

/** The registry's host of a repository reference (`registry.example.com:5000/team/x` -> `registry.example.com:5000`). */
export function registryHost(repository: string): string {
  return repository.split('/')[0];
}

/**
 * Builds and pushes the bridge's image (one resource, `<name>-image`), and returns the reference the host or the
 * pods pull: the repository with the pushed digest.
 */
export function buildBridgeImage(name: string, args: ImageBuildArgs, opts: pulumi.CustomResourceOptions): pulumi.Output<string> {
  const image = new dockerBuild.Image(
    `${name}-image`,
    {
      context: { location: BUILD_CONTEXT },
      dockerfile: { location: DOCKERFILE },
      platforms: [args.platform],
      buildArgs: { VERSION: bridgePackage.version },
      // The version's tag is for people browsing the registry; what runs is the digest below.
      tags: [pulumi.interpolate`${args.repository}:${bridgePackage.version}`],
      push: true,
      ...(args.login ? { registries: [{ address: args.login.address, username: args.login.username, password: pulumi.secret(args.login.password) }] } : {}),
    },
    opts,
  );
  return pulumi.interpolate`${args.repository}@${image.digest}`;
}

/**
 * For the plan's leak check: a push credential may be in the build's registries only. `registryPassword` is the
 * Kubernetes stack's setting; `registryPushToken` what a cloud issues for a push (the plan's mocks invent it).
 */
export const IMAGE_SECRET_SINKS: SecretSink[] = [{ input: 'docker-build:index:Image.registries', only: ['registryPassword', 'registryPushToken'] }];

/** Every file of the build context that .dockerignore lets in (its `!path` lines; it excludes everything else). */
function contextFiles(root: string): string[] {
  const ignore = join(root, '.dockerignore');
  if (!existsSync(ignore)) return [];
  const out: string[] = [];
  const walk = (path: string) => {
    if (!existsSync(path)) return;
    if (statSync(path).isDirectory()) for (const entry of readdirSync(path).sort()) walk(join(path, entry));
    else out.push(path);
  };
  for (const line of readFileSync(ignore, 'utf8').split('\n')) {
    const m = /^!(\S+?)\/?$/.exec(line.trim());
    if (m) walk(join(root, m[1]));
  }
  return out.sort();
}

/** A digest for the offline plan: of the build's inputs and of the checkout's context, as a build would change. */
export function planDigest(inputs: Record<string, unknown>, root: string = resolve(__dirname, '..')): string {
  const hash = createHash('sha256');
  const { registries: _credentials, ...build } = inputs;
  hash.update(JSON.stringify(build));
  for (const file of contextFiles(root)) hash.update(file.slice(root.length)).update(readFileSync(file));
  return `sha256:${hash.digest('hex')}`;
}

/** What a build gives back, for the offline plan: its digest and the pushed reference. */
export const imagePlanMocks: PlanMocks = {
  outputs(type, _name, inputs) {
    if (type !== 'docker-build:index:Image') return undefined;
    const digest = planDigest(inputs);
    const tag = (inputs.tags as string[] | undefined)?.[0];
    return { digest, ref: tag ? `${tag}@${digest}` : '', contextHash: digest.slice('sha256:'.length) };
  },
};
