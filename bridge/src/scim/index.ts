/** The door to the SCIM protocol layer. */
export { ScimService } from './service';
export type { ScimResponse, ReadParams } from './service';
export type { ListParams } from './query';
export { URN } from './schemas';
