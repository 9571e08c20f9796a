/** The user document every bench POSTs (bench/run.ts, scale.ts, profile.ts, ab.ts), so that all hold the same users. */
export const USER_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:User';

export function userBody(n: string): Record<string, unknown> {
  return {
    schemas: [USER_SCHEMA],
    userName: `${n}@example.com`,
    externalId: `ext-${n}`,
    name: { givenName: 'Bench', familyName: `User ${n}`, formatted: `Bench User ${n}` },
    displayName: `Bench User ${n}`,
    emails: [{ value: `${n}@example.com`, type: 'work', primary: true }],
    title: 'Engineer',
    active: true,
  };
}
