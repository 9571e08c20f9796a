/**
 * A real PostgreSQL for the tests, as they already run the real Caddy and pebble: one server per jest run
 * (test/global-setup.ts starts it before the workers, test/postgres-global-teardown.ts stops it), and one
 * database per test file, so that files run in parallel without seeing each other's rows; a database that needs the
 * schema is a file copy of the template the global setup migrated once (MIGRATED_TEMPLATE).
 *
 * The server runs with fsync=off (the tests kill bridges, never the database; durability of PostgreSQL itself is
 * PostgreSQL's), TLS on with a throwaway CA (for the sslmode tests), trust on loopback for the superuser, and one
 * password role (PASSWORD_ROLE, scram-sha-256) for the tests that check a password never reaches a log line.
 * A missing PostgreSQL fails the tests that need it, saying what to install: never a silent skip.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { freePort, makeListenerCertificate } from './pebble';

/** The environment variable through which the global setup hands the server to the workers. */
const ENV = 'TEST_POSTGRES_SERVER';
/** Set instead when the server could not be started: every test that needs it fails with this text. */
const ENV_ERROR = 'TEST_POSTGRES_ERROR';
/**
 * A database the global setup migrates once per run with the bridge's own migrations; test databases that need a
 * migrated schema (most) are copies of it, which costs a file copy instead of running every migration again.
 */
export const MIGRATED_TEMPLATE = 'scim_bridge_migrated';

/** A role that logs in with a password over TCP (the others are trusted on loopback); its password is the server's `password`. */
export const PASSWORD_ROLE = 'scim_secret_role';

export interface PostgresServer {
  readonly port: number;
  readonly dir: string;
  /**
   * PEM of the CA that signed the server's certificate, which names `localhost` only: verify-full to localhost
   * passes, to 127.0.0.1 fails on the name (verify-ca passes there).
   */
  readonly caFile: string;
  readonly password: string;
}

const INSTALL = 'install PostgreSQL 15+ with its contrib modules: bash test/setup.sh as root (apt-get install postgresql postgresql-contrib)';

/** The directory of PostgreSQL's server binaries (initdb, pg_ctl, postgres), or a message saying what is missing. */
export function postgresBinDir(): string {
  const candidates: string[] = [];
  const base = '/usr/lib/postgresql';
  if (existsSync(base)) {
    for (const v of readdirSync(base).sort((a, b) => Number(b) - Number(a))) candidates.push(join(base, v, 'bin'));
  }
  try {
    candidates.unshift(execFileSync('pg_config', ['--bindir'], { encoding: 'utf8' }).trim());
  } catch {
    // no pg_config on PATH
  }
  const dir = candidates.find((d) => existsSync(join(d, 'initdb')) && existsSync(join(d, 'pg_ctl')));
  if (!dir) throw new Error(`PostgreSQL's server binaries (initdb, pg_ctl) are missing: ${INSTALL}`);
  return dir;
}

function sharedDir(bin: string): string {
  const v = /postgresql\/(\d+)\//.exec(bin)?.[1];
  return v ? `/usr/share/postgresql/${v}` : execFileSync(join(bin, 'pg_config'), ['--sharedir'], { encoding: 'utf8' }).trim();
}

/** Runs a command as the postgres user when we are root (PostgreSQL refuses to run as root). */
function asServerUser(command: string, args: string[]): void {
  const root = process.getuid?.() === 0;
  const [cmd, argv] = root ? ['runuser', ['-u', 'postgres', '--', command, ...args]] : [command, args];
  const r = spawnSync(cmd, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.status !== 0) throw new Error(`${command} ${args.join(' ')} failed (${r.status ?? r.signal}): ${r.stderr || r.stdout}`);
}

function serverUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('postgres:'));
  if (!line) throw new Error(`the tests run as root and there is no postgres user to run PostgreSQL: ${INSTALL}`);
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

/**
 * Starts a fresh PostgreSQL cluster on a free loopback port. `durable`: fsync on, as a production server runs
 * (the bench's durable POST/s); the tests run with fsync off.
 */
export async function startPostgresServer(options: { durable?: boolean } = {}): Promise<PostgresServer & { stop(): Promise<void> }> {
  const bin = postgresBinDir();
  if (!existsSync(join(sharedDir(bin), 'extension', 'pg_trgm.control'))) {
    throw new Error(`PostgreSQL's contrib modules (pg_trgm) are missing: ${INSTALL}`);
  }
  const owner = serverUser();
  // The tests' server (fsync off: PostgreSQL's own durability is not under test) keeps its files in memory-backed
  // /dev/shm when there is one: a run copies a few hundred MB of test databases, which on a disk shared with the VM
  // boot test cost tens of seconds of I/O. The bench's durable server stays on disk.
  const base = !options.durable && existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
  const dir = mkdtempSync(join(base, 'scim-bridge-pg-'));
  const data = join(dir, 'data');
  const certs = join(dir, 'certs');
  const server = makeListenerCertificate(certs, ['DNS:localhost']);
  const chown = (path: string) => owner && chownSync(path, owner.uid, owner.gid);
  chown(dir);
  const port = await freePort();
  const password = `pw-${randomBytes(12).toString('hex')}-never-logged`;
  asServerUser(join(bin, 'initdb'), ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8', '--locale', 'C.UTF-8']);
  for (const [from, to] of [
    [server.certFile, 'server.crt'],
    [server.keyFile, 'server.key'],
  ]) {
    copyFileSync(from, join(data, to));
    chmodSync(join(data, to), 0o600);
    chown(join(data, to));
  }
  // Password login for one role over TCP, checked before the trust lines initdb wrote.
  const hba = join(data, 'pg_hba.conf');
  writeFileSync(hba, `host all ${PASSWORD_ROLE} 127.0.0.1/32 scram-sha-256\n` + readFileSync(hba, 'utf8'));
  writeFileSync(
    join(data, 'postgresql.auto.conf'),
    [
      `port = ${port}`,
      `listen_addresses = '127.0.0.1'`,
      `unix_socket_directories = '${dir}'`,
      `fsync = ${options.durable ? 'on' : 'off'}`,
      'synchronous_commit = on',
      `full_page_writes = ${options.durable ? 'on' : 'off'}`,
      'max_connections = 300',
      'shared_buffers = 64MB',
      'ssl = on',
      `ssl_cert_file = 'server.crt'`,
      `ssl_key_file = 'server.key'`,
      `log_min_messages = warning`,
      '',
    ].join('\n'),
  );
  asServerUser(join(bin, 'pg_ctl'), ['-D', data, '-w', '-t', '30', '-l', join(dir, 'server.log'), 'start']);
  const stop = async () => {
    try {
      asServerUser(join(bin, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', 'stop']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
  try {
    const admin = new Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres' });
    await admin.connect();
    await admin.query(`create role ${PASSWORD_ROLE} login createdb password '${password}'`);
    await admin.end();
  } catch (err) {
    await stop();
    throw err;
  }
  return { port, dir, caFile: server.caFile, password, stop };
}

/** For the global setup: hands the server to the workers through the environment, or the reason it is missing. */
export function publishServer(server: PostgresServer | undefined, error?: unknown): void {
  if (server) process.env[ENV] = JSON.stringify(server);
  else process.env[ENV_ERROR] = error instanceof Error ? error.message : String(error);
}

/** The run's PostgreSQL server; throws (the test fails) when there is none, saying what is missing. */
export function postgresServer(): PostgresServer {
  const published = process.env[ENV];
  if (published) return JSON.parse(published) as PostgresServer;
  throw new Error(`no PostgreSQL server for the tests: ${process.env[ENV_ERROR] ?? `the jest global setup did not start one (${INSTALL})`}`);
}

let counter = 0;

/**
 * A new database on the run's server, for one test file (or one test): its URL, as the bridge takes it. Empty, or
 * with `migrated` a copy of the migrated template (the bridge then finds its schema up to date).
 * `role`: the password role instead of the superuser (the URL then carries the password).
 */
export async function createTestDatabase(prefix = 'test', options: { role?: 'password'; server?: PostgresServer; migrated?: boolean } = {}): Promise<string> {
  const server = options.server ?? postgresServer();
  const name = `${prefix.replace(/[^a-z0-9_]/gi, '_').toLowerCase()}_${process.pid}_${++counter}_${randomBytes(3).toString('hex')}`;
  if (options.migrated && options.role) throw new Error('a migrated copy belongs to the superuser; the password role gets an empty database');
  const admin = new Client({ host: '127.0.0.1', port: server.port, user: 'postgres', database: 'postgres' });
  await admin.connect();
  try {
    // file_copy: a copy of the template's files, instead of writing all of it to the WAL (PostgreSQL 15's default).
    const from = options.migrated ? ` template ${MIGRATED_TEMPLATE}` : '';
    await admin.query(`create database ${name}${options.role ? ` owner ${PASSWORD_ROLE}` : ''}${from} strategy file_copy`);
  } finally {
    await admin.end();
  }
  return options.role
    ? `postgres://${PASSWORD_ROLE}:${encodeURIComponent(server.password)}@127.0.0.1:${server.port}/${name}`
    : `postgres://postgres@127.0.0.1:${server.port}/${name}`;
}

/** A superuser connection to a test database (for tests that hold transactions or look at plans). */
export async function adminClient(databaseUrl: string): Promise<Client> {
  const client = new Client({ connectionString: databaseUrl.replace(/^postgres:\/\/[^@]*@/, 'postgres://postgres@') });
  await client.connect();
  return client;
}
