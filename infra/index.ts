/** The Pulumi program (Pulumi.yaml `main`): the stack's outputs are this module's exports. */
import { deploy } from './stack';

const outputs = deploy();
export const baseUrl = outputs.baseUrl;
export const tokenReference = outputs.tokenReference;
export const ipAddress = outputs.ipAddress;
export const target = outputs.target;
export const appTokenReference = outputs.appTokenReference;
/** Targets without a secret store (DigitalOcean, Kubernetes): the tokens as secret outputs. */
export const token = outputs.token;
export const appToken = outputs.appToken;
