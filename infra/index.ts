/** The Pulumi program (Pulumi.yaml `main`): the stack's outputs are this module's exports. */
import { deploy } from './stack';

const outputs = deploy();
export const baseUrl = outputs.baseUrl;
export const tokenReference = outputs.tokenReference;
export const ipAddress = outputs.ipAddress;
export const target = outputs.target;
/** DigitalOcean only: the token as a secret output (that cloud has no secret store). */
export const token = outputs.token;
