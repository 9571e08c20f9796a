/**
 * The bridge's configuration, read from the environment once at start (see the table in README.md).
 * A bad value stops the start with one line naming the variable and what it expects.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';

export interface BridgeConfig {
  readonly port: number;
  readonly host: string;
  readonly databaseUrl: string;
  /** Hex SHA-256 hashes of the accepted IdP bearer tokens (two during a rotation). */
  readonly tokenHashes: readonly string[];
  readonly trustProxy: boolean;
}

export class ConfigError extends Error {
  constructor(readonly variable: string, expected: string) {
    super(`${variable}: ${expected}`);
    this.name = 'ConfigError';
  }
}

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

const variables = {
  SCIM_BRIDGE_PORT: z
    .string()
    .regex(/^\d{1,5}$/, 'expected a port number from 0 to 65535')
    .transform(Number)
    .refine((n) => n <= 65535, 'expected a port number from 0 to 65535')
    .default(8080),
  SCIM_BRIDGE_HOST: z
    .string()
    .regex(/^[A-Za-z0-9.:[\]-]+$/, 'expected an address to listen on, such as 127.0.0.1 or 0.0.0.0')
    .default('127.0.0.1'),
  SCIM_BRIDGE_DATABASE_URL: z
    .string()
    .refine((v) => /^sqlite:.+/.test(v) || /^postgres(ql)?:\/\/.+/.test(v), 'expected sqlite:<path> or postgres://user:password@host/database')
    .default('sqlite:./data/scim-bridge.db'),
  SCIM_BRIDGE_TOKEN_SHA256: z
    .string()
    .transform((v) => v.split(',').map((h) => h.trim().toLowerCase()).filter((h) => h !== ''))
    .refine((list) => list.length > 0 && list.every((h) => /^[0-9a-f]{64}$/.test(h)), 'expected hex SHA-256 hashes (64 hex digits each), comma-separated')
    .optional(),
  SCIM_BRIDGE_TOKEN: z.string().min(16, 'expected a token of at least 16 characters').optional(),
  SCIM_BRIDGE_TRUST_PROXY: z
    .enum(['true', 'false', '1', '0', ''], { message: 'expected true or false' })
    .transform((v) => v === 'true' || v === '1')
    .default(false),
};

/** Parses the environment; throws ConfigError naming the first bad variable. Secrets never appear in the message. */
export function readConfig(env: NodeJS.ProcessEnv = process.env): BridgeConfig {
  const values: Record<string, unknown> = {};
  for (const [name, schema] of Object.entries(variables)) {
    const raw = env[name];
    const result = (schema as z.ZodType).safeParse(raw === '' && name !== 'SCIM_BRIDGE_TRUST_PROXY' ? undefined : raw);
    if (!result.success) throw new ConfigError(name, result.error.issues[0]?.message ?? 'invalid value');
    values[name] = result.data;
  }
  const hashes = [...((values.SCIM_BRIDGE_TOKEN_SHA256 as string[] | undefined) ?? [])];
  if (values.SCIM_BRIDGE_TOKEN !== undefined) hashes.push(sha256Hex(values.SCIM_BRIDGE_TOKEN as string));
  return {
    port: values.SCIM_BRIDGE_PORT as number,
    host: values.SCIM_BRIDGE_HOST as string,
    databaseUrl: values.SCIM_BRIDGE_DATABASE_URL as string,
    tokenHashes: [...new Set(hashes)],
    trustProxy: values.SCIM_BRIDGE_TRUST_PROXY as boolean,
  };
}
