/** The door to the SCIM protocol layer. */
export { ScimService } from './service';
export type { ScimResponse, ReadParams } from './service';
export type { ListParams } from './query';
export { URN } from './schemas';

import type { Presenter } from '../directory';
import { renderGroup, renderUser } from './resource';

/** Resources in events look as SCIM returns them, with locations relative to the Base URL. */
export const eventPresenter: Presenter = {
  user: (rec) => renderUser(rec, undefined, ''),
  group: (rec) => renderGroup(rec, ''),
};
