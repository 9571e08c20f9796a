/**
 * The SCIM operations, independent of HTTP: each takes what the request said and returns a status and a
 * body. The HTTP layer only maps requests onto these.
 */
import { randomUUID } from 'node:crypto';
import { notFound, ScimError } from '../errors';
import type { Directory, GroupRecord, MemberRef, UserRecord } from '../directory';
import { applyPatch } from './patch';
import { ALL, parseListParams, parseProjection, project, projectElement, Projection, wants, ListParams, MAX_PAGE_SIZE } from './query';
import { etag, locationOf, readDocument, renderGroup, renderMember, renderUser, toGroupWrite, toUserWrite } from './resource';
import { allSchemas, resourceTypes, ResourceKind, URN, AttributeDef } from './schemas';

export interface ScimResponse {
  readonly status: number;
  readonly body?: unknown;
  /**
   * The body's JSON text in pieces, instead of `body`: a group of many members, written out as its pages are read.
   * The pieces joined are what JSON.stringify(body) would be. Rejects (the response is cut off, so the client
   * sees it incomplete) when the resource changed while it was being written.
   */
  readonly chunks?: AsyncIterable<string>;
  readonly etag?: string;
  /** The URL of the one resource a response carries (201, and 200s as in RFC 7644 §3.4.1, §3.5.1 examples). */
  readonly location?: string;
}

export interface ReadParams {
  readonly attributes?: unknown;
  readonly excludedAttributes?: unknown;
}

/**
 * The versions an If-Match / If-None-Match header names (RFC 7232: one ETag or a list); undefined for
 * `*` or no header, which match any version.
 */
export function parseETags(header: string | undefined): number[] | undefined {
  if (header === undefined || header.trim() === '' || header.trim() === '*') return undefined;
  const versions: number[] = [];
  for (const tag of header.split(',')) {
    const m = /^\s*(?:W\/)?"(\d{1,15})"\s*$/.exec(tag);
    // A tag this bridge never gave out matches no version; it is not an error.
    versions.push(m ? Number(m[1]) : -1);
  }
  return versions;
}

function notModified(ifNoneMatch: string | undefined, version: number): boolean {
  if (ifNoneMatch === undefined) return false;
  const versions = parseETags(ifNoneMatch);
  return versions === undefined ? ifNoneMatch.trim() === '*' : versions.includes(version);
}

function projectionOf(kind: ResourceKind, params: ReadParams): Projection {
  const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
  return parseProjection(resourceTypes[kind], str(params.attributes), str(params.excludedAttributes));
}

/**
 * Members read per page: a group that fits in one is answered as one body; a bigger one is written out page
 * by page, so that serving a group of 50,000 members holds one page in memory, not the group (issue 18).
 */
export const MEMBER_PAGE = 1000;

function missing(kind: ResourceKind, id: string): never {
  throw notFound(`No ${kind.toLowerCase()} has the id '${id}'; it may have been deleted.`);
}

export class ScimService {
  constructor(private readonly directory: Directory) {}

  // ---- users ----

  /** `fresh`: the users were just created, so they belong to no group yet. */
  private async renderUsers(records: UserRecord[], projection: Projection, baseUrl: string, fresh = false) {
    const groups = !wants(projection, 'groups') ? undefined : fresh ? new Map() : await this.directory.groupsOf(records.map((r) => r.id));
    return records.map((r) => project(renderUser(r, groups ? groups.get(r.id) ?? [] : undefined, baseUrl), projection));
  }

  private async userResponse(rec: UserRecord, status: number, projection: Projection, baseUrl: string): Promise<ScimResponse> {
    const [body] = await this.renderUsers([rec], projection, baseUrl, status === 201);
    // Location and ETag come from the record: the projected body may hold neither meta nor anything but the id.
    return { status, body, etag: etag(rec.version), location: locationOf('User', rec.id, baseUrl) };
  }

  async listUsers(params: ListParams, baseUrl: string): Promise<ScimResponse> {
    const { query, startIndex, projection } = parseListParams(resourceTypes.User, params);
    const page = await this.directory.listUsers(query);
    return listResponse(page.total, startIndex, await this.renderUsers(page.items, projection, baseUrl));
  }

  async getUser(id: string, params: ReadParams, ifNoneMatch: string | undefined, baseUrl: string): Promise<ScimResponse> {
    const projection = projectionOf('User', params);
    const rec = (await this.directory.getUser(id)) ?? missing('User', id);
    if (notModified(ifNoneMatch, rec.version)) return { status: 304, etag: etag(rec.version) };
    return this.userResponse(rec, 200, projection, baseUrl);
  }

  async createUser(body: unknown, params: ReadParams, baseUrl: string): Promise<ScimResponse> {
    const projection = projectionOf('User', params);
    const rec = await this.directory.createUser(toUserWrite(readDocument(resourceTypes.User, body)));
    return this.userResponse(rec, 201, projection, baseUrl);
  }

  async replaceUser(id: string, body: unknown, params: ReadParams, ifMatch: string | undefined, baseUrl: string): Promise<ScimResponse> {
    const projection = projectionOf('User', params);
    const doc = readDocument(resourceTypes.User, body);
    const rec = (await this.directory.updateUser(id, (current) => toUserWrite(doc, current.doc), parseETags(ifMatch))) ?? missing('User', id);
    return this.userResponse(rec, 200, projection, baseUrl);
  }

  async patchUser(id: string, body: unknown, params: ReadParams, ifMatch: string | undefined, baseUrl: string): Promise<ScimResponse> {
    const projection = projectionOf('User', params);
    const type = resourceTypes.User;
    const rec =
      (await this.directory.updateUser(
        id,
        (current) => toUserWrite(readDocument(type, applyPatch(type, current.doc, body, id).doc), current.doc),
        parseETags(ifMatch),
      )) ?? missing('User', id);
    return this.userResponse(rec, 200, projection, baseUrl);
  }

  async deleteUser(id: string, ifMatch: string | undefined): Promise<ScimResponse> {
    if (!(await this.directory.deleteUser(id, parseETags(ifMatch)))) missing('User', id);
    return { status: 204 };
  }

  // ---- groups ----

  private groupResponse(rec: GroupRecord, status: number, projection: Projection, baseUrl: string): ScimResponse {
    const body = project(renderGroup(rec, baseUrl), projection);
    return { status, body, etag: etag(rec.version), location: locationOf('Group', rec.id, baseUrl) };
  }

  async listGroups(params: ListParams, baseUrl: string): Promise<ScimResponse> {
    const { query, startIndex, projection } = parseListParams(resourceTypes.Group, params);
    const page = await this.directory.listGroups(query, wants(projection, 'members'));
    return listResponse(page.total, startIndex, page.items.map((g) => project(renderGroup(g, baseUrl), projection)));
  }

  /**
   * The group with its members when the projection wants them, read a page at a time: one page or less is one
   * body, as groupResponse makes it; more is streamed (the JSON text around the members first, then each page's
   * members as it is read). The stream checks at its end that the group's version has not moved meanwhile (every
   * change of its members moves it): pages read across a change could show a membership that never was, and
   * the response is cut off instead, which a client sees as a failed request and asks again.
   */
  private async groupWithMembers(rec: GroupRecord, status: number, projection: Projection, baseUrl: string): Promise<ScimResponse> {
    if (!wants(projection, 'members')) return this.groupResponse(rec, status, projection, baseUrl);
    const first = await this.directory.groupMembers(rec.id, null, MEMBER_PAGE);
    if (first.length < MEMBER_PAGE) return this.groupResponse({ ...rec, members: first }, status, projection, baseUrl);
    // A slot no document can hold (a random marker), projected like the members it stands for, found in the text.
    const slot = `members-${randomUUID()}`;
    const text = JSON.stringify(project(renderGroup(rec, baseUrl, slot), projection));
    const at = text.indexOf(JSON.stringify(slot));
    const head = text.slice(0, at);
    const tail = text.slice(at + slot.length + 2);
    const member = projectElement(projection, 'members');
    const page = (members: readonly MemberRef[]) => members.map((m) => JSON.stringify(member(renderMember(m, baseUrl)))).join(',');
    const directory = this.directory;
    async function* chunks(): AsyncGenerator<string> {
      yield `${head}[${page(first)}`;
      for (let last = first; last.length === MEMBER_PAGE; ) {
        last = await directory.groupMembers(rec.id, last[last.length - 1].value, MEMBER_PAGE);
        if (last.length > 0) yield `,${page(last)}`;
      }
      const now = await directory.getGroup(rec.id, false);
      if (now?.version !== rec.version) throw new ScimError(409, `The group '${rec.id}' changed while its members were being sent; ask again.`);
      yield `]${tail}`;
    }
    return { status, chunks: chunks(), etag: etag(rec.version), location: locationOf('Group', rec.id, baseUrl) };
  }

  async getGroup(id: string, params: ReadParams, ifNoneMatch: string | undefined, baseUrl: string): Promise<ScimResponse> {
    const projection = projectionOf('Group', params);
    const rec = (await this.directory.getGroup(id, false)) ?? missing('Group', id);
    if (notModified(ifNoneMatch, rec.version)) return { status: 304, etag: etag(rec.version) };
    return this.groupWithMembers(rec, 200, projection, baseUrl);
  }

  async createGroup(body: unknown, params: ReadParams, baseUrl: string): Promise<ScimResponse> {
    const projection = projectionOf('Group', params);
    const { group, members } = toGroupWrite(readDocument(resourceTypes.Group, body));
    const rec = await this.directory.createGroup(group, members ?? []);
    return this.groupResponse(rec, 201, projection, baseUrl);
  }

  /** A PUT without "members" leaves the membership as it is: renaming must not empty a group. */
  async replaceGroup(id: string, body: unknown, params: ReadParams, ifMatch: string | undefined, baseUrl: string): Promise<ScimResponse> {
    const projection = projectionOf('Group', params);
    const { group, members } = toGroupWrite(readDocument(resourceTypes.Group, body));
    const rec =
      (await this.directory.updateGroup(id, () => ({ group, members: members ? [{ op: 'replace', ids: members }] : [] }), parseETags(ifMatch))) ??
      missing('Group', id);
    return this.groupAfterWrite(rec, projection, baseUrl, 200);
  }

  /**
   * 204 by default, as Okta and Entra ID expect: answering with the group would mean loading all of its
   * members. With `attributes` or `excludedAttributes` the group is returned, projected.
   */
  async patchGroup(id: string, body: unknown, params: ReadParams, ifMatch: string | undefined, baseUrl: string): Promise<ScimResponse> {
    const projection = projectionOf('Group', params);
    const type = resourceTypes.Group;
    const rec =
      (await this.directory.updateGroup(
        id,
        (current) => {
          const outcome = applyPatch(type, current.doc, body, id);
          return { group: toGroupWrite(readDocument(type, outcome.doc)).group, members: outcome.members };
        },
        parseETags(ifMatch),
      )) ?? missing('Group', id);
    if (projection === ALL) return { status: 204, etag: etag(rec.version) };
    return this.groupAfterWrite(rec, projection, baseUrl, 200);
  }

  private async groupAfterWrite(rec: GroupRecord, projection: Projection, baseUrl: string, status: number): Promise<ScimResponse> {
    return this.groupWithMembers(rec, status, projection, baseUrl);
  }

  async deleteGroup(id: string, ifMatch: string | undefined): Promise<ScimResponse> {
    if (!(await this.directory.deleteGroup(id, parseETags(ifMatch)))) missing('Group', id);
    return { status: 204 };
  }

  // ---- discovery (RFC 7644 §4) ----

  serviceProviderConfig(baseUrl: string): ScimResponse {
    return {
      status: 200,
      body: {
        schemas: [URN.serviceProviderConfig],
        documentationUri: 'https://github.com/scim-bridge/scim-bridge#readme',
        patch: { supported: true },
        bulk: { supported: false, maxOperations: 0, maxPayloadSize: 0 },
        filter: { supported: true, maxResults: MAX_PAGE_SIZE },
        changePassword: { supported: false },
        sort: { supported: true },
        etag: { supported: true },
        authenticationSchemes: [
          {
            type: 'oauthbearertoken',
            name: 'Bearer token',
            description: 'Authorization: Bearer <token>, the token generated when the bridge was set up.',
            primary: true,
          },
        ],
        meta: { resourceType: 'ServiceProviderConfig', location: `${baseUrl}/ServiceProviderConfig` },
      },
    };
  }

  resourceTypes(baseUrl: string, name?: string): ScimResponse {
    const all = Object.values(resourceTypes).map((t) => ({
      schemas: [URN.resourceType],
      id: t.kind,
      name: t.kind,
      endpoint: t.endpoint,
      description: t.schema.description,
      schema: t.schema.id,
      schemaExtensions: t.extensions.map((e) => ({ schema: e.id, required: false })),
      meta: { resourceType: 'ResourceType', location: `${baseUrl}/ResourceTypes/${t.kind}` },
    }));
    if (name !== undefined) {
      const one = all.find((t) => t.id === name);
      if (!one) throw notFound(`No resource type is named '${name}'; GET /ResourceTypes lists them.`);
      return { status: 200, body: one };
    }
    return listResponse(all.length, 1, all);
  }

  schemas(baseUrl: string, id?: string): ScimResponse {
    const all = allSchemas().map((s) => ({
      schemas: [URN.schema],
      id: s.id,
      name: s.name,
      description: s.description,
      attributes: s.attributes.map(renderAttribute),
      meta: { resourceType: 'Schema', location: `${baseUrl}/Schemas/${s.id}` },
    }));
    if (id !== undefined) {
      const one = all.find((s) => s.id.toLowerCase() === id.toLowerCase());
      if (!one) throw notFound(`No schema has the id '${id}'; GET /Schemas lists them.`);
      return { status: 200, body: one };
    }
    return listResponse(all.length, 1, all);
  }
}

function renderAttribute(def: AttributeDef): Record<string, unknown> {
  const { subAttributes, ...rest } = def;
  return subAttributes ? { ...rest, subAttributes: subAttributes.map(renderAttribute) } : { ...rest };
}

function listResponse(total: number, startIndex: number, resources: unknown[]): ScimResponse {
  return {
    status: 200,
    body: { schemas: [URN.listResponse], totalResults: total, startIndex, itemsPerPage: resources.length, Resources: resources },
  };
}
