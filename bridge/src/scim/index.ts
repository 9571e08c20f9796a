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

import type { GroupContent, UserContent } from '../directory';
import { readDocument, toGroupWrite, toUserWrite } from './resource';
import { resourceTypes } from './schemas';

/**
 * A User document as a client would send it, checked and indexed as SCIM's POST does: connectors build their
 * writes with it, so that a pulled user is stored exactly like a pushed one.
 */
export function userContent(body: Record<string, unknown>): UserContent {
  return toUserWrite(readDocument(resourceTypes.User, body));
}

/** A Group document (without members) as SCIM's POST reads it. */
export function groupContent(body: Record<string, unknown>): GroupContent {
  return toGroupWrite(readDocument(resourceTypes.Group, body)).group;
}
