/**
 * Configuration (DESIGN.md, "Bridge configuration"): defaults, and a bad value stops the start with one
 * line naming the variable; a token never appears in an error or in the configuration kept in memory.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import fc from 'fast-check';
import { ConfigError, readConfig } from '../../bridge/src/config';
import { bridgeCommand } from '../helpers/bridge-build';

const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');
const ROOT = resolve(__dirname, '../..');

/** The ConfigError readConfig throws for this environment (fails the test when it does not throw one). */
function configError(env: Record<string, string>): ConfigError {
  let thrown: unknown;
  try {
    readConfig(env);
  } catch (e) {
    thrown = e;
  }
  expect(thrown).toBeInstanceOf(ConfigError);
  return thrown as ConfigError;
}

describe('readConfig', () => {
  it('when nothing is set, then the defaults of DESIGN.md apply', () => {
    const c = readConfig({});
    expect(c.port).toBe(8080);
    expect(c.host).toBe('127.0.0.1');
    expect(c.databaseUrl).toBe('sqlite:./data/scim-bridge.db');
    expect(c.tokenHashes).toEqual([]);
    expect(c.trustProxy).toBe(false);
  });

  it('when the variables are set to empty strings, then the defaults apply', () => {
    const c = readConfig({ SCIM_BRIDGE_PORT: '', SCIM_BRIDGE_HOST: '', SCIM_BRIDGE_DATABASE_URL: '', SCIM_BRIDGE_TOKEN: '', SCIM_BRIDGE_TOKEN_SHA256: '' });
    expect(c.port).toBe(8080);
    expect(c.host).toBe('127.0.0.1');
    expect(c.databaseUrl).toBe('sqlite:./data/scim-bridge.db');
    expect(c.tokenHashes).toEqual([]);
  });

  it('when readConfig is called without arguments, then it reads process.env', () => {
    const saved = process.env.SCIM_BRIDGE_PORT;
    process.env.SCIM_BRIDGE_PORT = '9191';
    try {
      expect(readConfig().port).toBe(9191);
    } finally {
      if (saved === undefined) delete process.env.SCIM_BRIDGE_PORT;
      else process.env.SCIM_BRIDGE_PORT = saved;
    }
  });

  it('when good values are set, then they are used', () => {
    const c = readConfig({
      SCIM_BRIDGE_PORT: '0',
      SCIM_BRIDGE_HOST: '0.0.0.0',
      SCIM_BRIDGE_DATABASE_URL: 'postgres://scim:pw@db.internal/scim',
      SCIM_BRIDGE_TRUST_PROXY: 'true',
    });
    expect(c.port).toBe(0);
    expect(c.host).toBe('0.0.0.0');
    expect(c.databaseUrl).toBe('postgres://scim:pw@db.internal/scim');
    expect(c.trustProxy).toBe(true);
    expect(readConfig({ SCIM_BRIDGE_PORT: '65535' }).port).toBe(65535);
    expect(readConfig({ SCIM_BRIDGE_HOST: '::1' }).host).toBe('::1');
    expect(readConfig({ SCIM_BRIDGE_DATABASE_URL: 'sqlite:/var/lib/scim/bridge.db' }).databaseUrl).toBe('sqlite:/var/lib/scim/bridge.db');
    expect(readConfig({ SCIM_BRIDGE_DATABASE_URL: 'postgresql://u@h/d' }).databaseUrl).toBe('postgresql://u@h/d');
    expect(readConfig({ SCIM_BRIDGE_TRUST_PROXY: 'false' }).trustProxy).toBe(false);
    expect(readConfig({ SCIM_BRIDGE_TRUST_PROXY: '1' }).trustProxy).toBe(true);
    expect(readConfig({ SCIM_BRIDGE_TRUST_PROXY: '0' }).trustProxy).toBe(false);
  });

  it.each([
    ['SCIM_BRIDGE_PORT', 'abc'],
    ['SCIM_BRIDGE_PORT', '70000'],
    ['SCIM_BRIDGE_PORT', '65536'],
    ['SCIM_BRIDGE_PORT', '-1'],
    ['SCIM_BRIDGE_PORT', '80.5'],
    ['SCIM_BRIDGE_PORT', '8080 '],
    ['SCIM_BRIDGE_HOST', 'not a host!'],
    ['SCIM_BRIDGE_DATABASE_URL', 'mysql://x'],
    ['SCIM_BRIDGE_DATABASE_URL', 'sqlite:'],
    ['SCIM_BRIDGE_DATABASE_URL', './data/scim.db'],
    ['SCIM_BRIDGE_TOKEN_SHA256', 'xyz'],
    ['SCIM_BRIDGE_TOKEN_SHA256', `${sha256('a')},xyz`],
    ['SCIM_BRIDGE_TOKEN_SHA256', sha256('a').slice(0, 63)],
    ['SCIM_BRIDGE_TOKEN_SHA256', `${sha256('a')}0`],
    ['SCIM_BRIDGE_TOKEN_SHA256', ','],
    ['SCIM_BRIDGE_TOKEN', 'short'],
    ['SCIM_BRIDGE_TOKEN', '123456789012345'],
    ['SCIM_BRIDGE_TRUST_PROXY', 'maybe'],
    ['SCIM_BRIDGE_TRUST_PROXY', 'yes'],
  ])('when %s is %p, then a ConfigError names the variable', (name, value) => {
    const e = configError({ [name]: value });
    expect(e.message).toContain(name);
    expect(e.message.startsWith(name)).toBe(true);
    expect(e.message).not.toContain('\n');
    // It also says what is expected, not just that something is wrong.
    expect(e.message.length).toBeGreaterThan(name.length + 10);
    expect(e.name).toBe('ConfigError');
  });

  it('when one variable is bad among good ones, then the error names the bad one only', () => {
    const e = configError({ SCIM_BRIDGE_PORT: '8080', SCIM_BRIDGE_HOST: '127.0.0.1', SCIM_BRIDGE_TRUST_PROXY: 'maybe' });
    expect(e.message).toContain('SCIM_BRIDGE_TRUST_PROXY');
    expect(e.message).not.toContain('SCIM_BRIDGE_PORT');
    expect(e.message).not.toContain('SCIM_BRIDGE_HOST');
  });

  it('when a clear token is set, then only its SHA-256 is kept', () => {
    const token = 'clear-token-for-hashing-0123456789';
    const c = readConfig({ SCIM_BRIDGE_TOKEN: token });
    expect(c.tokenHashes).toEqual([sha256(token)]);
    expect(JSON.stringify(c)).not.toContain(token);
  });

  it('when hashes and a clear token are both set, then all are accepted, lower-cased and without duplicates', () => {
    const token = 'clear-token-for-hashing-0123456789';
    const other = sha256('other-token-0123456789');
    const c = readConfig({ SCIM_BRIDGE_TOKEN_SHA256: ` ${other.toUpperCase()} , ${sha256(token)} `, SCIM_BRIDGE_TOKEN: token });
    expect(c.tokenHashes).toHaveLength(2);
    expect(new Set(c.tokenHashes)).toEqual(new Set([other, sha256(token)]));
  });

  it('when a short token is refused, then the error does not contain the token', () => {
    const token = 'Zq9!kX-secret';
    const e = configError({ SCIM_BRIDGE_TOKEN: token });
    expect(e.message).toContain('SCIM_BRIDGE_TOKEN');
    expect(e.message).not.toContain(token);
    expect(JSON.stringify(e)).not.toContain(token);
    expect(String(e.stack)).not.toContain(token);
  });

  it('when a token is pasted into SCIM_BRIDGE_TOKEN_SHA256 instead of its hash, then the error does not contain it', () => {
    const token = 'pasted-clear-token-0123456789abcdef';
    const e = configError({ SCIM_BRIDGE_TOKEN_SHA256: token });
    expect(e.message).toContain('SCIM_BRIDGE_TOKEN_SHA256');
    expect(e.message).not.toContain(token);
    expect(String(e.stack)).not.toContain(token);
  });

  it('when any short token is refused, then the error never contains it (property)', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 6, maxLength: 15 }).filter((t) => t.trim() !== '' && !'SCIM_BRIDGE_TOKEN: expected a token of at least 16 characters'.includes(t)), (token) => {
        let thrown: unknown;
        try {
          readConfig({ SCIM_BRIDGE_TOKEN: token });
        } catch (e) {
          thrown = e;
        }
        expect(thrown).toBeInstanceOf(ConfigError);
        expect((thrown as Error).message).toContain('SCIM_BRIDGE_TOKEN');
        expect((thrown as Error).message).not.toContain(token);
      }),
      { numRuns: 300 },
    );
  });

  it('when a token is refused alongside another bad variable, then no message contains the token', () => {
    const token = 'tiny-secret';
    const envs: Record<string, string>[] = [
      { SCIM_BRIDGE_TOKEN: token, SCIM_BRIDGE_PORT: 'abc' },
      { SCIM_BRIDGE_TOKEN: token, SCIM_BRIDGE_TRUST_PROXY: 'maybe' },
      { SCIM_BRIDGE_TOKEN_SHA256: token },
    ];
    for (const env of envs) {
      expect(configError(env).message).not.toContain(token);
    }
  });
});

describe('the command line', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'scim-bridge-config-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** Runs the bridge (bridge/src/main.ts, from the tests' build) with only the given variables (and PATH); killed if it does not stop by itself. */
  function runMain(vars: Record<string, string>) {
    const [node, main] = bridgeCommand();
    return spawnSync(node, [main], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? dir, SCIM_BRIDGE_DATABASE_URL: `sqlite:${join(dir, 'cli.db')}`, SCIM_BRIDGE_HOST: '127.0.0.1', ...vars },
      encoding: 'utf8',
      timeout: 30_000,
    });
  }

  it('when SCIM_BRIDGE_PORT is bad, then the process exits non-zero with one line on stderr naming SCIM_BRIDGE_PORT', () => {
    const r = runMain({ SCIM_BRIDGE_PORT: 'abc' });
    expect(r.error).toBeUndefined();
    expect(r.signal).toBeNull();
    expect(r.status).not.toBe(0);
    expect(r.status).not.toBeNull();
    const lines = r.stderr.split('\n').filter((l) => l.trim() !== '');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('SCIM_BRIDGE_PORT');
    expect(lines[0]).not.toMatch(/\bat \S+ \(|Error:|ZodError/);
    expect(r.stdout).not.toContain('listening');
  }, 40_000);

  it('when SCIM_BRIDGE_TOKEN is too short, then the process exits non-zero, names the variable in one line and does not print the token', () => {
    const token = 'cli-tiny-secret';
    const r = runMain({ SCIM_BRIDGE_PORT: '0', SCIM_BRIDGE_TOKEN: token });
    expect(r.signal).toBeNull();
    expect(r.status).not.toBe(0);
    expect(r.status).not.toBeNull();
    const lines = r.stderr.split('\n').filter((l) => l.trim() !== '');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('SCIM_BRIDGE_TOKEN');
    expect(r.stderr).not.toContain(token);
    expect(r.stdout).not.toContain(token);
  }, 40_000);

  it('when SCIM_BRIDGE_DATABASE_URL is mysql, then the process exits non-zero with one line naming SCIM_BRIDGE_DATABASE_URL', () => {
    const r = runMain({ SCIM_BRIDGE_PORT: '0', SCIM_BRIDGE_DATABASE_URL: 'mysql://x' });
    expect(r.signal).toBeNull();
    expect(r.status).not.toBe(0);
    expect(r.status).not.toBeNull();
    const lines = r.stderr.split('\n').filter((l) => l.trim() !== '');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('SCIM_BRIDGE_DATABASE_URL');
  }, 40_000);
});
