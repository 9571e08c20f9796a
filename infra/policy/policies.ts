/**
 * The scim-bridge policy pack's contents, apart from index.ts (which serves them: constructing a PolicyPack starts
 * its gRPC server), so that tests can load and call every policy without a Pulumi CLI.
 */
import type { PolicyPackArgs } from '@pulumi/policy';
import { dataDiskNotInline, dataDiskOutlivesHost } from './data-disk';
import { disksEncrypted } from './encryption';
import { kubernetesNetworkPolicy, kubernetesNoSecretsInEnv, kubernetesResourcesSet, kubernetesRestrictedPods } from './kubernetes';
import { onlyHttpsOpen } from './network';
import { noSecretsInUserData } from './secrets';

/** The pack's name, as `pulumi preview` lists it (letters, digits, - _ . only). */
export const POLICY_PACK_NAME = 'scim-bridge';

export const packArgs: PolicyPackArgs = {
  description:
    'scim-bridge guardrails: only tcp 80/443 open to the world, encrypted disks, no secrets in user-data, a data disk that outlives its host; on Kubernetes, restricted pods with resources set, no credential in env, a deny-by-default NetworkPolicy.',
  enforcementLevel: 'mandatory',
  policies: [
    onlyHttpsOpen,
    disksEncrypted,
    noSecretsInUserData,
    dataDiskNotInline,
    dataDiskOutlivesHost,
    kubernetesRestrictedPods,
    kubernetesResourcesSet,
    kubernetesNoSecretsInEnv,
    kubernetesNetworkPolicy,
  ],
};

export { dataDiskNotInline, dataDiskOutlivesHost, disksEncrypted, kubernetesNetworkPolicy, kubernetesNoSecretsInEnv, kubernetesResourcesSet, kubernetesRestrictedPods, noSecretsInUserData, onlyHttpsOpen };
