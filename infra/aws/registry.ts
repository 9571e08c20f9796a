/**
 * `image: build` on AWS: an ECR repository of the stack, the checkout's image built and pushed there with an
 * authorization token the provider's credentials obtain, the instance role allowed to pull from that repository
 * only, and the host's Docker logging in through Debian's ECR credential helper (package
 * amazon-ecr-credential-helper, `docker-credential-ecr-login`), which uses the instance role's temporary
 * credentials from the metadata service: nothing long-lived on the host.
 */
import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import type { HostSpec } from '../host';
import { buildBridgeImage, Platform, registryHost } from '../image';

/** Debian's package of the ECR credential helper, and the name Docker's config gives it. */
export const ECR_HELPER_PACKAGE = 'amazon-ecr-credential-helper';
export const ECR_HELPER = 'ecr-login';
/** What the instance role may do with the repository: pull, nothing else. */
export const ECR_PULL_ACTIONS = ['ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer', 'ecr:BatchCheckLayerAvailability'];
/**
 * Images kept in the repository. The host runs one by digest, untagged once a newer build moves the tag: the policy
 * counts images of any tag status, so the running one and its predecessors stay (a rollback, a recovery).
 */
export const KEPT_IMAGES = 10;

/** The stack's repository name: lower case letters, digits and inner `-`, `_`, `.`. */
export function ecrRepositoryName(name: string, stack: string): string {
  return `${name}-${stack}`.toLowerCase().replace(/[^a-z0-9._-]+/g, '-').replace(/[._-]{2,}/g, '-').replace(/^[._-]+|[._-]+$/g, '') || name;
}

export function awsPlatform(architecture: 'arm64' | 'x86_64'): Platform {
  return architecture === 'arm64' ? 'linux/arm64' : 'linux/amd64';
}

export interface AwsBuiltImage {
  /** `<account>.dkr.ecr.<region>.<suffix>/<repository>@sha256:…` */
  image: pulumi.Output<string>;
  /** The instance role's statements: the registry's token, and pulls from this repository. */
  statements: pulumi.Input<Record<string, unknown>>[];
  /** The host's Docker config and the helper's package, once the repository's URL is known. */
  host(repositoryUrl: string): Required<Pick<HostSpec, 'dockerConfig' | 'extraPackages'>>;
  repositoryUrl: pulumi.Output<string>;
}

export function awsBuiltImage(
  name: string,
  args: { architecture: 'arm64' | 'x86_64'; tags: Record<string, string> },
  opts: pulumi.CustomResourceOptions,
): AwsBuiltImage {
  const repository = new aws.ecr.Repository(
    `${name}-images`,
    {
      name: ecrRepositoryName(name, pulumi.getStack()),
      imageTagMutability: 'MUTABLE',
      imageScanningConfiguration: { scanOnPush: true },
      encryptionConfigurations: [{ encryptionType: 'AES256' }],
      tags: args.tags,
    },
    opts,
  );
  new aws.ecr.LifecyclePolicy(
    `${name}-images`,
    {
      repository: repository.name,
      policy: JSON.stringify({
        rules: [
          {
            rulePriority: 1,
            description: `keep the last ${KEPT_IMAGES} images, tagged or not`,
            selection: { tagStatus: 'any', countType: 'imageCountMoreThan', countNumber: KEPT_IMAGES },
            action: { type: 'expire' },
          },
        ],
      }),
    },
    opts,
  );
  // A push token from the provider's own credentials (those `pulumi up` runs with): no aws CLI, no docker login.
  const auth = aws.ecr.getAuthorizationTokenOutput({ registryId: repository.registryId }, { parent: opts.parent });
  const image = buildBridgeImage(
    name,
    {
      repository: repository.repositoryUrl,
      platform: awsPlatform(args.architecture),
      login: { address: repository.repositoryUrl.apply(registryHost), username: auth.userName, password: pulumi.secret(auth.password) },
    },
    { ...opts, dependsOn: [repository] },
  );
  return {
    image,
    repositoryUrl: repository.repositoryUrl,
    statements: [
      // The registry's token is account-wide (no resource); what it opens is the pull below.
      { Sid: 'ImageRegistryToken', Effect: 'Allow', Action: 'ecr:GetAuthorizationToken', Resource: '*' },
      { Sid: 'ImagePull', Effect: 'Allow', Action: ECR_PULL_ACTIONS, Resource: repository.arn },
    ],
    host: (repositoryUrl) => ({
      dockerConfig: JSON.stringify({ credHelpers: { [registryHost(repositoryUrl)]: ECR_HELPER } }, null, 2),
      extraPackages: [ECR_HELPER_PACKAGE],
    }),
  };
}
