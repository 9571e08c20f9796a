/**
 * Which SCIM_BRIDGE_* variables the bridge takes (issue 13): an unknown one stops the start with one line naming it
 * and the nearest known one; one DESIGN.md names but this version does not implement is refused as such; secrets
 * have a `_FILE` form; SCIM_BRIDGE_TRUST_PROXY and SCIM_BRIDGE_PUBLIC_URL are checked at start. And what the
 * infrastructure and the image set is what the bridge reads, so the two cannot drift apart.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import {
  ConfigError,
  INTERNAL_VARIABLES,
  readConfig,
  SECRET_VARIABLES,
  SUPPORTED_VARIABLES,
} from '../../bridge/src/config';
import { bridgeCommand } from '../helpers/bridge-build';
import { serviceAccountKeyJson } from '../helpers/google';

const ROOT = resolve(__dirname, '../..');
const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

function configError(env: Record<string, string>): ConfigError {
  let thrown: unknown;
  try {
    readConfig(env);
  } catch (e) {
    thrown = e;
  }
  expect(thrown).toBeInstanceOf(ConfigError);
  const e = thrown as ConfigError;
  expect(e.message).not.toContain('\n');
  return e;
}

describe('unknown and not yet supported variables', () => {
  it.each([
    ['SCIM_BRIDGE_TRUST_PROXI', 'SCIM_BRIDGE_TRUST_PROXY'],
    ['SCIM_BRIDGE_TOKEN_SHA', 'SCIM_BRIDGE_TOKEN_SHA256'],
    ['SCIM_BRIDGE_DATABASE_URI', 'SCIM_BRIDGE_DATABASE_URL'],
    ['SCIM_BRIDGE_PUBLIC_URI', 'SCIM_BRIDGE_PUBLIC_URL'],
    ['SCIM_BRIDGE_ALLOWED_DOMAIN', 'SCIM_BRIDGE_ALLOWED_DOMAINS'],
    ['SCIM_BRIDGE_WEBHOOK_SECRETS', 'SCIM_BRIDGE_WEBHOOK_SECRET'],
    ['SCIM_BRIDGE_APP_TOKEN_SHA256_FIL', 'SCIM_BRIDGE_APP_TOKEN_SHA256_FILE'],
    ['SCIM_BRIDGE_HOSTNAME', 'SCIM_BRIDGE_HOST'],
    ['SCIM_BRIDGE_GOOGLE_ADMINS', 'SCIM_BRIDGE_GOOGLE_ADMIN'],
  ])('when %s is set, then the start stops with one line naming it and %s', (name, nearest) => {
    const e = configError({ SCIM_BRIDGE_PORT: '0', [name]: 'true' });
    expect(e.variable).toBe(name);
    expect(e.message.startsWith(`${name}: `)).toBe(true);
    expect(e.message).toContain(`did you mean ${nearest}?`);
  });

  it('when an unknown variable is set to the empty string, then it is refused all the same (the name is wrong)', () => {
    expect(configError({ SCIM_BRIDGE_TRUST_PROXI: '' }).variable).toBe('SCIM_BRIDGE_TRUST_PROXI');
  });

  it('when several are unknown, then the first in alphabetical order is named (the same one at every start)', () => {
    expect(configError({ SCIM_BRIDGE_ZZZ: '1', SCIM_BRIDGE_AAA: '1' }).variable).toBe('SCIM_BRIDGE_AAA');
  });

  it('when a setting that is no secret is given a _FILE form, then the error says it has none', () => {
    const e = configError({ SCIM_BRIDGE_PORT_FILE: '/run/secrets/port' });
    expect(e.variable).toBe('SCIM_BRIDGE_PORT_FILE');
    expect(e.message).toContain('SCIM_BRIDGE_PORT has no _FILE form');
  });

  it('when the variables the tests use internally are set, then they are accepted', () => {
    for (const name of INTERNAL_VARIABLES) expect(() => readConfig({ [name]: '100' })).not.toThrow();
  });

  it('when variables of other programs are set, then they are none of the bridge\'s business', () => {
    expect(() => readConfig({ SCIM_BRIDGEPORT: '1', MY_SCIM_BRIDGE_X: '1', NODE_ENV: 'production', scim_bridge_port: 'x' })).not.toThrow();
  });

  it('every variable of the README\'s configuration table is supported, and every supported one is documented there', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const start = readme.indexOf('## Configuration (environment)');
    const section = readme.slice(start, readme.indexOf('\n## ', start + 1));
    const names = (text: string) => new Set(text.match(/SCIM_BRIDGE_[A-Z0-9_]*[A-Z0-9]/g) ?? []);
    const table = names(section.split('\n').filter((l) => l.startsWith('| SCIM_BRIDGE_')).join('\n'));
    expect(table.size).toBeGreaterThan(10);
    for (const name of table) expect(SUPPORTED_VARIABLES).toContain(name);
    const documented = names(section);
    for (const name of SUPPORTED_VARIABLES) expect(documented).toContain(name);
  });
});

describe('what the infrastructure and the image set is what the bridge reads', () => {
  /** Every file under a directory (the infrastructure's programs, scripts and data). */
  const files = (dir: string): string[] =>
    readdirSync(dir).flatMap((entry) => {
      const path = join(dir, entry);
      return statSync(path).isDirectory() ? (entry === 'node_modules' ? [] : files(path)) : [path];
    });

  it('every SCIM_BRIDGE_* name in infra/ and bridge/Dockerfile is a variable this version supports', () => {
    const sources = [...files(join(ROOT, 'infra')), join(ROOT, 'bridge/Dockerfile')];
    const names = new Map<string, string>();
    for (const file of sources) {
      for (const name of readFileSync(file, 'utf8').match(/SCIM_BRIDGE_[A-Z0-9_]*[A-Z0-9]/g) ?? []) names.set(name, file.slice(ROOT.length + 1));
    }
    // The scan finds what the host and the image set (or it found nothing and proves nothing).
    for (const expected of ['SCIM_BRIDGE_TOKEN_SHA256', 'SCIM_BRIDGE_PUBLIC_URL', 'SCIM_BRIDGE_TRUST_PROXY', 'SCIM_BRIDGE_WEBHOOK_SECRET', 'SCIM_BRIDGE_DATABASE_URL']) {
      expect(names.has(expected)).toBe(true);
    }
    const unsupported = [...names].filter(([name]) => !SUPPORTED_VARIABLES.includes(name)).map(([name, file]) => `${name} (${file})`);
    expect(unsupported).toEqual([]);
  });
});

describe('the _FILE form of secret variables', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'scim-bridge-secret-files-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  let seq = 0;
  const file = (content: string) => {
    const path = join(dir, `secret-${++seq}`);
    writeFileSync(path, content, { mode: 0o600 });
    return path;
  };

  const token = 'file-token-0123456789abcdef';
  const appToken = 'file-app-token-0123456789abcdef';
  const samples: Record<(typeof SECRET_VARIABLES)[number], string> = {
    SCIM_BRIDGE_DATABASE_URL: 'postgres://scim:s3cret@db.internal/scim',
    SCIM_BRIDGE_TOKEN_SHA256: `${sha256('a-token-0123456789abcdef')},${sha256('b-token-0123456789abcdef')}`,
    SCIM_BRIDGE_TOKEN: token,
    SCIM_BRIDGE_APP_TOKEN_SHA256: sha256('an-app-token-0123456789'),
    SCIM_BRIDGE_APP_TOKEN: appToken,
    SCIM_BRIDGE_WEBHOOK_SECRET: 'webhook-secret-0123456789abcdef',
    SCIM_BRIDGE_GOOGLE_CREDENTIALS: serviceAccountKeyJson(),
    SCIM_BRIDGE_METRICS_TOKEN_SHA256: sha256('a-metrics-token-0123456789'),
  };
  /** The webhook secret needs its URL beside it; the Google key its administrator and groups. */
  const context = (name: string): Record<string, string> =>
    name === 'SCIM_BRIDGE_WEBHOOK_SECRET'
      ? { SCIM_BRIDGE_WEBHOOK_URL: 'https://app.example.com/hooks' }
      : name === 'SCIM_BRIDGE_GOOGLE_CREDENTIALS'
        ? { SCIM_BRIDGE_GOOGLE_ADMIN: 'admin@example.com', SCIM_BRIDGE_GOOGLE_GROUPS: 'staff@example.com' }
        : {};

  it.each(SECRET_VARIABLES)('when %s_FILE names a file, then the bridge reads the value from it (a trailing line break dropped), as if set directly', (name) => {
    const direct = readConfig({ ...context(name), [name]: samples[name] });
    expect(readConfig({ ...context(name), [`${name}_FILE`]: file(samples[name]) })).toEqual(direct);
    expect(readConfig({ ...context(name), [`${name}_FILE`]: file(`${samples[name]}\n`) })).toEqual(direct);
    expect(readConfig({ ...context(name), [`${name}_FILE`]: file(`${samples[name]}\r\n`) })).toEqual(direct);
  });

  it('when the token comes from a file, then only its hash is kept', () => {
    const c = readConfig({ SCIM_BRIDGE_TOKEN_FILE: file(`${token}\n`) });
    expect(c.tokenHashes).toEqual([sha256(token)]);
    expect(JSON.stringify(c)).not.toContain(token);
  });

  it.each(SECRET_VARIABLES)('when both %s and its _FILE form are set, then the start stops naming both', (name) => {
    const e = configError({ ...context(name), [name]: samples[name], [`${name}_FILE`]: file(samples[name]) });
    expect(e.variable).toBe(`${name}_FILE`);
    expect(e.message).toContain(`either ${name} or ${name}_FILE, not both`);
    expect(e.message).not.toContain(samples[name]);
  });

  it('when the file is missing, then the error names the variable and the path', () => {
    const path = join(dir, 'no-such-file');
    const e = configError({ SCIM_BRIDGE_TOKEN_FILE: path });
    expect(e.variable).toBe('SCIM_BRIDGE_TOKEN_FILE');
    expect(e.message).toContain(path);
    expect(e.message).toContain('ENOENT');
  });

  it('when the path is a directory, an empty file or a huge one, then the error names the variable', () => {
    const sub = join(dir, 'a-directory');
    mkdirSync(sub);
    for (const path of [sub, file(''), file('\n'), file('x'.repeat(100_000))]) {
      const e = configError({ SCIM_BRIDGE_WEBHOOK_SECRET_FILE: path, SCIM_BRIDGE_WEBHOOK_URL: 'https://app.example.com/hooks' });
      expect(e.variable).toBe('SCIM_BRIDGE_WEBHOOK_SECRET_FILE');
      expect(e.message).toContain(path);
      expect(e.message).not.toContain('xxxx');
    }
  });

  it.each([
    ['SCIM_BRIDGE_TOKEN', 'short-secret'],
    ['SCIM_BRIDGE_TOKEN_SHA256', 'a-clear-token-pasted-instead-of-its-hash'],
    ['SCIM_BRIDGE_DATABASE_URL', 'mysql://root:hunter2-secret@db/scim'],
    ['SCIM_BRIDGE_WEBHOOK_SECRET', 'tiny-secret'],
  ])('when %s_FILE holds a bad value, then the error names the _FILE variable and the file, never the content', (name, content) => {
    const path = file(`${content}\n`);
    const e = configError({ ...context(name), [`${name}_FILE`]: path });
    expect(e.variable).toBe(`${name}_FILE`);
    expect(e.message).toContain(path);
    expect(e.message).not.toContain(content);
    expect(String(e.stack)).not.toContain(content);
  });
});

describe('SCIM_BRIDGE_TRUST_PROXY', () => {
  it.each([
    ['true', ['loopback', 'uniquelocal']],
    ['1', ['loopback', 'uniquelocal']],
    ['false', []],
    ['0', []],
    ['10.0.0.5', ['10.0.0.5']],
    [' 10.0.0.5 , 172.16.0.0/12,fd00::/8, ::1 ', ['10.0.0.5', '172.16.0.0/12', 'fd00::/8', '::1']],
    ['loopback,uniquelocal', ['loopback', 'uniquelocal']],
  ])('when it is %p, then the trusted gateways are %p', (value, list) => {
    const c = readConfig({ SCIM_BRIDGE_TRUST_PROXY: value });
    expect(c.trustedProxies).toEqual(list);
    expect(c.trustProxy).toBe(list.length > 0);
  });

  it.each(['yes', '2', 'example.com', '10.0.0.0/33', '::/129', '300.1.1.1', '10.0.0.1/', '10.0.0.1,bogus'])('when it is %p, then the start stops naming it', (value) => {
    const e = configError({ SCIM_BRIDGE_TRUST_PROXY: value });
    expect(e.variable).toBe('SCIM_BRIDGE_TRUST_PROXY');
    expect(e.message).toMatch(/addresses or CIDR ranges/);
  });
});

describe('SCIM_BRIDGE_PUBLIC_URL', () => {
  it('when it is not set, then links come from the Host', () => {
    expect(readConfig({}).publicUrl).toBeUndefined();
    expect(readConfig({ SCIM_BRIDGE_PUBLIC_URL: '' }).publicUrl).toBeUndefined();
  });

  it.each([
    ['https://scim.example.com', 'https://scim.example.com'],
    ['https://scim.example.com/', 'https://scim.example.com'],
    ['HTTPS://Scim.Example.COM:443', 'https://scim.example.com'],
    ['https://scim.example.com:8443/', 'https://scim.example.com:8443'],
    ['https://scim.example.com/scim/v2', 'https://scim.example.com'],
    ['https://scim.example.com/scim/v2/', 'https://scim.example.com'],
    ['http://127.0.0.1:8080', 'http://127.0.0.1:8080'],
    ['http://[::1]:8080/', 'http://[::1]:8080'],
  ])('when it is %p, then links start with %p', (value, base) => {
    expect(readConfig({ SCIM_BRIDGE_PUBLIC_URL: value }).publicUrl).toBe(base);
  });

  it.each([
    'scim.example.com',
    'ftp://scim.example.com',
    'javascript:alert(1)',
    'https://',
    'https://scim.example.com/bridge',
    'https://scim.example.com/scim/v2/Users',
    'https://admin:hunter2@scim.example.com',
    'https://scim.example.com?x=1',
    'https://scim.example.com/#x',
    'https://scim.example.com\\evil',
    'https://scim example.com',
    ' https://scim.example.com',
  ])('when it is %p, then the start stops naming it (without repeating the value)', (value) => {
    const e = configError({ SCIM_BRIDGE_PUBLIC_URL: value });
    expect(e.variable).toBe('SCIM_BRIDGE_PUBLIC_URL');
    expect(e.message).toContain('https://<domain>');
    expect(e.message).not.toContain('hunter2');
  });
});

describe('the command line', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'scim-bridge-config-names-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const runMain = (vars: Record<string, string>) =>
    spawnSync(bridgeCommand()[0], [bridgeCommand()[1]], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? dir, SCIM_BRIDGE_DATABASE_URL: `sqlite:${join(dir, 'cli.db')}`, SCIM_BRIDGE_PORT: '0', ...vars },
      encoding: 'utf8',
      timeout: 30_000,
    });

  it('when a variable is misspelt, then the process exits non-zero with one line naming it and the nearest known one', () => {
    const r = runMain({ SCIM_BRIDGE_TRUST_PROXI: 'true' });
    expect(r.signal).toBeNull();
    expect(r.status).not.toBe(0);
    const lines = r.stderr.split('\n').filter((l) => l.trim() !== '');
    expect(lines).toEqual([expect.stringMatching(/^scim-bridge: SCIM_BRIDGE_TRUST_PROXI: .*did you mean SCIM_BRIDGE_TRUST_PROXY\?/)]);
    expect(r.stdout).not.toContain('listening');
  }, 40_000);

  it('when the token file is missing, then the process exits non-zero with one line naming SCIM_BRIDGE_TOKEN_FILE', () => {
    const r = runMain({ SCIM_BRIDGE_TOKEN_FILE: join(dir, 'missing') });
    expect(r.signal).toBeNull();
    expect(r.status).not.toBe(0);
    const lines = r.stderr.split('\n').filter((l) => l.trim() !== '');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('SCIM_BRIDGE_TOKEN_FILE');
  }, 40_000);
});
