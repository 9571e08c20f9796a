/**
 * `image: build` on GCP: an Artifact Registry repository of the stack (in the VM's region), the checkout's image
 * built and pushed there with the Pulumi provider's own access token, the VM's service account allowed to read
 * that repository only, and the host's Docker logging in with the service account's token from the metadata
 * server (a credential helper of a few lines: Google's docker-credential-gcr is not in Debian or Ubuntu, and the
 * host has no gcloud). Nothing long-lived is on the host: each pull asks the metadata server for a fresh token.
 */
import * as gcp from '@pulumi/gcp';
import * as pulumi from '@pulumi/pulumi';
import type { HostSpec } from '../host';
import { buildBridgeImage, Platform } from '../image';
import { repositoryId } from './names';

/** The API of Artifact Registry, enabled with the others when the stack builds its image. */
export const GCP_IMAGE_API = 'artifactregistry.googleapis.com';
/** Docker runs `docker-credential-<name>`; it must be on the PATH of the bridge's unit. */
export const GCP_CREDENTIAL_HELPER = 'scim-bridge-gcp';
export const GCP_CREDENTIAL_HELPER_PATH = `/usr/local/bin/docker-credential-${GCP_CREDENTIAL_HELPER}`;

/** The platform of a machine type: Arm for the Ampere and Axion families (t2a, c4a, n4a), x86-64 otherwise. */
export function gcpPlatform(machineType: string): Platform {
  return /^(t2a|c4a|n4a)-/.test(machineType) ? 'linux/arm64' : 'linux/amd64';
}

/** Artifact Registry's Docker host for a region. */
export function registryHostOf(region: string): string {
  return `${region}-docker.pkg.dev`;
}

/**
 * Docker's credential-helper protocol (`get` reads the registry's URL on stdin, prints Username and Secret): the VM's
 * service-account token, as Artifact Registry takes it (user oauth2accesstoken). The token goes from the metadata
 * server to jq's stdin, never onto a command line. GCE_METADATA_HOST is the standard override (tests).
 */
export function gcpCredentialHelper(): string {
  return [
    '#!/bin/sh',
    '# docker-credential-scim-bridge-gcp: Docker logs in to Artifact Registry with the VM\'s service account, whose',
    '# short-lived token the metadata server gives. Nothing is stored: store and erase do nothing.',
    'set -eu',
    'case "${1:-}" in',
    '  get)',
    '    cat >/dev/null',
    '    curl -fsS --max-time 10 --retry 5 --retry-connrefused -H "Metadata-Flavor: Google" \\',
    '      "http://${GCE_METADATA_HOST:-metadata.google.internal}/computeMetadata/v1/instance/service-accounts/default/token" \\',
    '      | jq -ce \'{Username: "oauth2accesstoken", Secret: .access_token}\'',
    '    ;;',
    '  store | erase) cat >/dev/null ;;',
    '  list) echo \'{}\' ;;',
    '  *) echo "usage: $0 get|store|erase|list" >&2; exit 1 ;;',
    'esac',
    '',
  ].join('\n');
}

export interface GcpImageArgs {
  project: string;
  region: string;
  machineType: string;
  /** The VM's service account (`serviceAccount:<email>`), the only reader of the repository. */
  member: pulumi.Input<string>;
  labels: Record<string, string>;
}

/** The repository, the build, the read grant; and what the host needs to pull (its Docker config and helper). */
export function gcpBuiltImage(
  name: string,
  args: GcpImageArgs,
  opts: pulumi.CustomResourceOptions,
): { image: pulumi.Output<string>; host: Pick<HostSpec, 'dockerConfig'> & { extraFiles: NonNullable<HostSpec['extraFiles']> }; readers: pulumi.Resource[] } {
  const { project, region } = args;
  const repository = new gcp.artifactregistry.Repository(
    `${name}-images`,
    {
      project,
      location: region,
      repositoryId: repositoryId(name, pulumi.getStack()),
      format: 'DOCKER',
      description: 'scim-bridge: the bridge image built from the checkout (image: build)',
      labels: args.labels,
    },
    opts,
  );
  const reader = new gcp.artifactregistry.RepositoryIamMember(
    `${name}-images-reader`,
    { project, location: region, repository: repository.repositoryId, role: 'roles/artifactregistry.reader', member: args.member },
    opts,
  );
  const host = registryHostOf(region);
  // The provider's own credentials push (those `pulumi up` runs with): no gcloud, no docker login beforehand.
  const accessToken = gcp.organizations.getClientConfigOutput({ parent: opts.parent }).accessToken;
  const image = buildBridgeImage(
    name,
    {
      repository: pulumi.interpolate`${host}/${project}/${repository.repositoryId}/scim-bridge`,
      platform: gcpPlatform(args.machineType),
      login: { address: host, username: 'oauth2accesstoken', password: pulumi.secret(accessToken) },
    },
    { ...opts, dependsOn: [repository] },
  );
  return {
    image,
    readers: [reader],
    host: {
      dockerConfig: JSON.stringify({ credHelpers: { [host]: GCP_CREDENTIAL_HELPER } }, null, 2),
      extraFiles: [{ path: GCP_CREDENTIAL_HELPER_PATH, permissions: '0755', content: gcpCredentialHelper() }],
    },
  };
}
