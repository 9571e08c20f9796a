/**
 * The application API (/api/v1): how the application behind the bridge reads users, says that a person
 * joined, brings its own users and groups, and reads the events feed. JSON in and out; its own token.
 */
import { badRequest, notFound } from '../errors';
import type { Directory, EventRecord, GroupRecord, UserRecord } from '../directory';
import { readDocument, renderGroup, renderUser, toUserWrite } from '../scim/resource';
import { resourceTypes } from '../scim/schemas';

export const MAX_EVENTS_PAGE = 1000;

function userJson(rec: UserRecord): Record<string, unknown> {
  const { schemas: _schemas, meta: _meta, ...rest } = renderUser(rec, undefined, '');
  return { ...rest, status: rec.status, created: rec.created, lastModified: rec.lastModified };
}

function groupJson(rec: GroupRecord): Record<string, unknown> {
  const { schemas: _schemas, meta: _meta, ...rest } = renderGroup(rec, '');
  return { ...rest, managed: rec.managed, created: rec.created, lastModified: rec.lastModified };
}

export function eventJson(e: EventRecord): Record<string, unknown> {
  return { id: e.id, type: e.type, occurredAt: e.occurredAt, data: e.data };
}

export class ApplicationApi {
  constructor(private readonly directory: Directory) {}

  async getUser(id: string) {
    const rec = await this.directory.getUser(id);
    if (!rec) throw notFound(`No user has the id '${id}'.`);
    return userJson(rec);
  }

  async join(id: string) {
    return userJson(await this.directory.joinUser(id));
  }

  /** A user the application has already: active, and visible to the IdP's import (matched by userName). */
  async createUser(body: unknown) {
    return userJson(await this.directory.createApplicationUser(toUserWrite(readDocument(resourceTypes.User, body))));
  }

  async createGroup(body: unknown) {
    const name = (body as { displayName?: unknown } | null)?.displayName;
    if (typeof name !== 'string' || name.trim() === '') throw badRequest('invalidValue', 'A group needs "displayName": a non-empty string.');
    return groupJson(await this.directory.createApplicationGroup(name));
  }

  async setManaged(id: string, body: unknown) {
    const managed = (body as { managed?: unknown } | null)?.managed;
    if (typeof managed !== 'boolean') throw badRequest('invalidValue', 'Send {"managed": true} or {"managed": false}.');
    return groupJson(await this.directory.setManaged(id, managed));
  }

  /** Events the downstream never accepted, with why. */
  async deadLetters() {
    const letters = await this.directory.deadLetters();
    return { deadLetters: letters.map((l) => ({ ...eventJson(l), failedAt: l.failedAt, error: l.error })) };
  }

  /** Events after the cursor, oldest first; `next` is the cursor to pass as `after` next time. */
  async events(afterText: unknown, limitText: unknown) {
    const after = afterText === undefined || afterText === '' ? 0 : Number(afterText);
    const limit = limitText === undefined || limitText === '' ? 100 : Number(limitText);
    if (!Number.isSafeInteger(after) || after < 0) throw badRequest('invalidValue', '"after" is a cursor returned as "next" by this feed (or 0 for the start).');
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_EVENTS_PAGE) throw badRequest('invalidValue', `"limit" is an integer from 1 to ${MAX_EVENTS_PAGE}.`);
    const events = await this.directory.listEvents(after, limit);
    // Dead letters stay in the feed as events; the count says how many the webhook could not deliver.
    const deadLetters = await this.directory.countDeadLetters();
    return { events: events.map(eventJson), next: String(events.length > 0 ? events[events.length - 1].seq : after), deadLetters };
  }
}
