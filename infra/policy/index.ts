/**
 * The scim-bridge policy pack (Pulumi CrossGuard): `pulumi preview --policy-pack infra/policy`. The policies are in
 * ./policies (and the modules it names); constructing the PolicyPack serves them to the Pulumi engine.
 */
import { PolicyPack } from '@pulumi/policy';
import { packArgs, POLICY_PACK_NAME } from './policies';

new PolicyPack(POLICY_PACK_NAME, packArgs);
