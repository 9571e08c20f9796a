/** The Pulumi program (Pulumi.yaml `main`): the stack's outputs are this module's exports. */
import { deploy } from './stack';

const outputs = deploy();
export const baseUrl = outputs.baseUrl;
export const tokenReference = outputs.tokenReference;
export const ipAddress = outputs.ipAddress;
export const target = outputs.target;
export const appTokenReference = outputs.appTokenReference;
/** DigitalOcean only: the tokens as secret outputs (that cloud has no secret store). */
export const token = outputs.token;
export const appToken = outputs.appToken;
