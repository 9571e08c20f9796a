/**
 * The schemas this bridge serves (RFC 7643 §4, §8.7), as data. Validation, filters, PATCH paths,
 * attribute projection and the /Schemas endpoint all read these definitions, so they cannot disagree.
 */

export type AttributeType = 'string' | 'boolean' | 'decimal' | 'integer' | 'dateTime' | 'reference' | 'complex' | 'binary';
export type Mutability = 'readOnly' | 'readWrite' | 'immutable' | 'writeOnly';
export type Returned = 'always' | 'never' | 'default' | 'request';

export interface AttributeDef {
  readonly name: string;
  readonly type: AttributeType;
  readonly multiValued: boolean;
  readonly description: string;
  readonly required: boolean;
  readonly caseExact: boolean;
  readonly mutability: Mutability;
  readonly returned: Returned;
  readonly uniqueness: 'none' | 'server' | 'global';
  readonly canonicalValues?: readonly string[];
  readonly referenceTypes?: readonly string[];
  readonly subAttributes?: readonly AttributeDef[];
}

export interface SchemaDef {
  readonly id: string;
  readonly name: string;
  readonly description: string;
  readonly attributes: readonly AttributeDef[];
}

export const URN = {
  user: 'urn:ietf:params:scim:schemas:core:2.0:User',
  group: 'urn:ietf:params:scim:schemas:core:2.0:Group',
  enterpriseUser: 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User',
  listResponse: 'urn:ietf:params:scim:api:messages:2.0:ListResponse',
  patchOp: 'urn:ietf:params:scim:api:messages:2.0:PatchOp',
  error: 'urn:ietf:params:scim:api:messages:2.0:Error',
  serviceProviderConfig: 'urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig',
  resourceType: 'urn:ietf:params:scim:schemas:core:2.0:ResourceType',
  schema: 'urn:ietf:params:scim:schemas:core:2.0:Schema',
} as const;

type AttrOptions = Partial<Omit<AttributeDef, 'name' | 'type' | 'description'>>;

function attr(name: string, type: AttributeType, description: string, options: AttrOptions = {}): AttributeDef {
  return {
    name,
    type,
    description,
    multiValued: false,
    required: false,
    caseExact: false,
    mutability: 'readWrite',
    returned: 'default',
    uniqueness: 'none',
    ...options,
  };
}

const str = (name: string, description: string, options: AttrOptions = {}) => attr(name, 'string', description, options);

/** The sub-attributes every multi-valued "type/primary/display/value" attribute shares (RFC 7643 §2.4). */
function multiValuedItem(valueDescription: string, types: readonly string[], valueType: AttributeType = 'string'): AttributeDef[] {
  return [
    attr('value', valueType, valueDescription, valueType === 'reference' ? { referenceTypes: ['external'] } : {}),
    str('display', 'A human-readable name, primarily used for display purposes.'),
    str('type', 'A label indicating the attribute\'s function.', { canonicalValues: types }),
    attr('primary', 'boolean', 'Whether this is the primary value of the attribute; at most one may be true.'),
  ];
}

const commonAttributes: AttributeDef[] = [
  str('id', 'Unique identifier for the resource, assigned by the service provider.', {
    caseExact: true,
    mutability: 'readOnly',
    returned: 'always',
    uniqueness: 'server',
  }),
  str('externalId', 'Identifier of the resource in the provisioning client.', { caseExact: true }),
  attr('meta', 'complex', 'Resource metadata.', {
    mutability: 'readOnly',
    subAttributes: [
      str('resourceType', 'The name of the resource type.', { caseExact: true, mutability: 'readOnly' }),
      attr('created', 'dateTime', 'When the resource was added.', { mutability: 'readOnly' }),
      attr('lastModified', 'dateTime', 'When the resource was last changed.', { mutability: 'readOnly' }),
      attr('location', 'reference', 'The URI of the resource.', { caseExact: true, mutability: 'readOnly', referenceTypes: ['uri'] }),
      str('version', 'The version (ETag) of the resource.', { caseExact: true, mutability: 'readOnly' }),
    ],
  }),
];

export const userSchema: SchemaDef = {
  id: URN.user,
  name: 'User',
  description: 'User Account',
  attributes: [
    str('userName', 'Unique identifier for the User, typically an email address. Unique case-insensitively.', {
      required: true,
      uniqueness: 'server',
    }),
    attr('name', 'complex', 'The components of the user\'s real name.', {
      subAttributes: [
        str('formatted', 'The full name, formatted for display.'),
        str('familyName', 'The family name (last name).'),
        str('givenName', 'The given name (first name).'),
        str('middleName', 'The middle name(s).'),
        str('honorificPrefix', 'Honorific prefix, e.g. "Ms.".'),
        str('honorificSuffix', 'Honorific suffix, e.g. "III".'),
      ],
    }),
    str('displayName', 'The name of the User, suitable for display to end-users.'),
    str('nickName', 'The casual way to address the user.'),
    attr('profileUrl', 'reference', 'A URI to the user\'s online profile.', { referenceTypes: ['external'] }),
    str('title', 'The user\'s title, such as "Vice President".'),
    str('userType', 'The relationship between the organization and the user.'),
    str('preferredLanguage', 'Preferred written or spoken language, e.g. "en-US".'),
    str('locale', 'Default location for localization, e.g. "en-US".'),
    str('timezone', 'The user\'s time zone, e.g. "America/Los_Angeles".'),
    attr('active', 'boolean', 'The user\'s administrative status.'),
    str('password', 'Accepted from the client and discarded: never stored, never returned.', {
      mutability: 'writeOnly',
      returned: 'never',
    }),
    attr('emails', 'complex', 'Email addresses for the user.', {
      multiValued: true,
      subAttributes: multiValuedItem('Email address for the user.', ['work', 'home', 'other']),
    }),
    attr('phoneNumbers', 'complex', 'Phone numbers for the user.', {
      multiValued: true,
      subAttributes: multiValuedItem('Phone number for the user.', ['work', 'home', 'mobile', 'fax', 'pager', 'other']),
    }),
    attr('ims', 'complex', 'Instant messaging addresses for the user.', {
      multiValued: true,
      subAttributes: multiValuedItem('Instant messaging address.', ['aim', 'gtalk', 'icq', 'xmpp', 'msn', 'skype', 'qq', 'yahoo']),
    }),
    attr('photos', 'complex', 'URLs of images of the user.', {
      multiValued: true,
      subAttributes: multiValuedItem('URL of an image of the user.', ['photo', 'thumbnail'], 'reference'),
    }),
    attr('addresses', 'complex', 'Physical mailing addresses for the user.', {
      multiValued: true,
      subAttributes: [
        str('formatted', 'The full mailing address.'),
        str('streetAddress', 'The full street address component.'),
        str('locality', 'The city or locality.'),
        str('region', 'The state or region.'),
        str('postalCode', 'The zip code or postal code.'),
        str('country', 'The country name (ISO 3166-1 alpha-2).'),
        str('type', 'A label indicating the attribute\'s function.', { canonicalValues: ['work', 'home', 'other'] }),
        attr('primary', 'boolean', 'Whether this is the primary address.'),
      ],
    }),
    attr('groups', 'complex', 'Groups the user belongs to; managed through /Groups.', {
      multiValued: true,
      mutability: 'readOnly',
      subAttributes: [
        str('value', 'The identifier of the group.', { caseExact: true, mutability: 'readOnly' }),
        attr('$ref', 'reference', 'The URI of the group.', { caseExact: true, mutability: 'readOnly', referenceTypes: ['Group'] }),
        str('display', 'The displayName of the group.', { mutability: 'readOnly' }),
        str('type', 'How the membership is derived: "direct".', { mutability: 'readOnly', canonicalValues: ['direct', 'indirect'] }),
      ],
    }),
    attr('entitlements', 'complex', 'Entitlements of the user.', {
      multiValued: true,
      subAttributes: multiValuedItem('The value of an entitlement.', []),
    }),
    attr('roles', 'complex', 'Roles of the user.', {
      multiValued: true,
      subAttributes: multiValuedItem('The value of a role.', []),
    }),
    attr('x509Certificates', 'complex', 'X.509 certificates of the user.', {
      multiValued: true,
      subAttributes: multiValuedItem('The value of an X.509 certificate.', [], 'binary'),
    }),
  ],
};

export const enterpriseUserSchema: SchemaDef = {
  id: URN.enterpriseUser,
  name: 'EnterpriseUser',
  description: 'Enterprise User',
  attributes: [
    str('employeeNumber', 'Numeric or alphanumeric identifier assigned to a person.'),
    str('costCenter', 'Identifies the name of a cost center.'),
    str('organization', 'Identifies the name of an organization.'),
    str('division', 'Identifies the name of a division.'),
    str('department', 'Identifies the name of a department.'),
    attr('manager', 'complex', 'The user\'s manager.', {
      subAttributes: [
        str('value', 'The id of the manager\'s User resource.', { caseExact: true }),
        attr('$ref', 'reference', 'The URI of the manager\'s User resource.', { caseExact: true, referenceTypes: ['User'] }),
        str('displayName', 'The displayName of the manager.', { mutability: 'readOnly' }),
      ],
    }),
  ],
};

export const groupSchema: SchemaDef = {
  id: URN.group,
  name: 'Group',
  description: 'Group',
  attributes: [
    str('displayName', 'A human-readable name for the group. Unique case-insensitively.', {
      required: true,
      uniqueness: 'server',
    }),
    attr('members', 'complex', 'The members of the group.', {
      multiValued: true,
      subAttributes: [
        str('value', 'The id of the member (a User or a Group).', { caseExact: true, mutability: 'immutable', required: true }),
        attr('$ref', 'reference', 'The URI of the member.', { caseExact: true, mutability: 'immutable', referenceTypes: ['User', 'Group'] }),
        str('display', 'The member\'s display name.', { mutability: 'readOnly' }),
        str('type', 'The type of member: "User" or "Group".', { mutability: 'immutable', canonicalValues: ['User', 'Group'] }),
      ],
    }),
  ],
};

export type ResourceKind = 'User' | 'Group';

export interface ResourceTypeDef {
  readonly kind: ResourceKind;
  readonly endpoint: string;
  readonly schema: SchemaDef;
  readonly extensions: readonly SchemaDef[];
}

export const resourceTypes: Record<ResourceKind, ResourceTypeDef> = {
  User: { kind: 'User', endpoint: '/Users', schema: userSchema, extensions: [enterpriseUserSchema] },
  Group: { kind: 'Group', endpoint: '/Groups', schema: groupSchema, extensions: [] },
};

/** Older clients (OneLogin among them) send pre-RFC URNs; they mean the same schemas. */
export const schemaAliases: Record<string, string> = {
  'urn:scim:schemas:core:2.0': URN.user,
  'urn:scim:schemas:core:2.0:user': URN.user,
  'urn:scim:schemas:core:2.0:group': URN.group,
  'urn:scim:schemas:extension:enterprise:2.0': URN.enterpriseUser,
  'urn:scim:schemas:extension:enterprise:2.0:user': URN.enterpriseUser,
};

export function allSchemas(): SchemaDef[] {
  return [userSchema, enterpriseUserSchema, groupSchema];
}

export function topLevelAttributes(type: ResourceTypeDef): { schema: string; def: AttributeDef }[] {
  return [
    ...commonAttributes.map((def) => ({ schema: type.schema.id, def })),
    ...type.schema.attributes.map((def) => ({ schema: type.schema.id, def })),
    ...type.extensions.flatMap((ext) => ext.attributes.map((def) => ({ schema: ext.id, def }))),
  ];
}
