/**
 * Which database a command works on: the bridge's own setting (SCIM_BRIDGE_DATABASE_URL or its _FILE form,
 * read by the bridge's config reader), or `--database <url>`. Inside the container `docker exec` and
 * `kubectl exec` inherit the bridge's environment, so the commands find its database without being told.
 */
import { resolve } from 'node:path';
import { BridgeConfig, ConfigError, readConfig } from '../config';
import { Args, CliError, CliIo, option } from './io';

export type DatabaseLocation = { readonly kind: 'sqlite'; readonly path: string } | { readonly kind: 'postgres'; readonly url: string };

/** The bridge's configuration, with `--database` in place of the configured URL. */
export function configFor(io: CliIo, args: Args): BridgeConfig {
  const database = option(args, 'database');
  const env = database === undefined ? io.env : { ...io.env, SCIM_BRIDGE_DATABASE_URL: database, SCIM_BRIDGE_DATABASE_URL_FILE: '' };
  try {
    return readConfig(env);
  } catch (e) {
    if (e instanceof ConfigError) throw new CliError(`${e.message}`, 2);
    throw e;
  }
}

export function locate(databaseUrl: string): DatabaseLocation {
  if (databaseUrl.startsWith('sqlite:')) {
    const path = databaseUrl.slice('sqlite:'.length);
    if (path === ':memory:') throw new CliError('the database is in memory (sqlite::memory:): there is nothing on disk to work on', 2);
    return { kind: 'sqlite', path: resolve(path) };
  }
  return { kind: 'postgres', url: databaseUrl };
}

/** A PostgreSQL URL without its password, to print. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'postgres://…';
  }
}
