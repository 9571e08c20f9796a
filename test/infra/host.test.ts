/**
 * The VM host recipe (infra/host): the cloud-init user-data a gcp/digitalocean/aws host boots with, checked
 * against the real tools the host runs or that define its formats:
 *  - cloud-init's own schema validator and its shipped JSON schema (unknown keys pass the validator, so they
 *    are checked here), and PyYAML, the YAML 1.1 loader cloud-init reads the document with;
 *  - shellcheck on both scripts;
 *  - prepare-disk run for real on a loop device (format only when blank, mount, keep data, refuse the rest);
 *  - fetch-secrets run for real against fake GCE metadata and Secret Manager servers;
 *  - systemd-analyze verify on the units, Caddy's own adapter on the Caddyfile, and the bridge's own config
 *    reader on the environment the host gives the container.
 * Needs root (loop mounts) and the tools test/setup.sh installs.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { parse } from 'yaml';
import { readConfig } from '../../bridge/src/config';
import { GCP_SECRET_FUNCTION } from '../../infra/gcp';
import { APPLY_DOCKER_CONFIG, BRIDGE_UID, bridgeEnvironment, DOCKER_NETWORK, fetchSecretsScript, hostCaddyfile, HostSpec, METADATA_ADDRESS, MOUNT_POINT, prepareNetworkScript, rebootPolicy, renderUserData, systemdPathUnit, systemdUnits } from '../../infra/host';
import { LETS_ENCRYPT } from '../../infra/host/caddy';

// ---------------------------------------------------------------------------------------------------------
// Inputs known to the test: the clear token and webhook secret never go into a spec, only the token's hash.

const TOKEN = 'scim-token-7f3a9c1e5b2d4f6a8c0e2b4d6f8a0c2eZ';
const TOKEN_SHA256 = createHash('sha256').update(TOKEN, 'utf8').digest('hex');
/** Shell and env-file metacharacters on purpose: the value must arrive byte for byte, never expanded. */
const WEBHOOK_SECRET = `whsec_$HOME=\`id\`"'\\;0123456789abcdef`;
const SECRET_NAME = 'projects/p/secrets/scim-bridge-webhook-secret';
/** Where the GCP target keeps the accepted token hashes (two during a rotation). */
const HASHES_NAME = 'projects/p/secrets/scim-bridge-token-sha256';
const OTHER_SHA256 = createHash('sha256').update('the-previous-token-0123456789abcdef', 'utf8').digest('hex');
const DATA_DEVICE = '/dev/disk/by-id/google-scim-bridge-data';
const LIB = '/usr/local/lib/scim-bridge';
const ETC = '/etc/scim-bridge';
const SECRETS_DIR = '/run/scim-bridge/secrets';

/** As the VM targets render it: the token hashes and the webhook secret fetched (a rotation needs no new host). */
const FULL: HostSpec = {
  image: 'ghcr.io/scim-bridge/scim-bridge:0.1.0',
  caddyImage: 'docker.io/library/caddy:2.10.2',
  domain: 'scim.example.com',
  acme: { email: 'ops@example.com', directory: LETS_ENCRYPT.production },
  allowedDomains: ['example.com', 'example.org'],
  webhookUrl: 'https://app.example.com/scim-events',
  dataDevice: DATA_DEVICE,
  logging: { driver: 'gcplogs' },
  secrets: [
    { env: 'SCIM_BRIDGE_TOKEN_SHA256', command: `gcp_secret ${HASHES_NAME}` },
    { env: 'SCIM_BRIDGE_WEBHOOK_SECRET', command: `gcp_secret ${SECRET_NAME}` },
  ],
  secretFunctions: GCP_SECRET_FUNCTION,
};

const MINIMAL: HostSpec = {
  image: 'ghcr.io/scim-bridge/scim-bridge:0.1.0',
  caddyImage: 'docker.io/library/caddy:2.10.2',
  domain: 'scim.example.com',
  acme: { email: 'ops@example.com', directory: LETS_ENCRYPT.production },
  tokenSha256: [TOKEN_SHA256],
  allowedDomains: [],
  dataDevice: DATA_DEVICE,
  logging: { driver: 'journald' },
  secrets: [],
};

const SPECS: Array<[string, HostSpec]> = [
  ['full', FULL],
  ['minimal', MINIMAL],
];

// ---------------------------------------------------------------------------------------------------------
// Helpers

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

const SETUP_HINT = 'run test/setup.sh (as root on Debian) to install it';

function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string } = {}): Run {
  const started = Date.now();
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: opts.env ?? process.env, input: opts.input, timeout: 20_000 });
  if (r.error) throw new Error(`${cmd} could not run: ${r.error.message}`);
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, ms: Date.now() - started };
}

/** Asynchronous, for scripts that talk to the fake servers running in this very process. */
function runAsync(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<Run> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: Date.now() - started });
    });
  });
}

function need(tool: string): void {
  if (run('sh', ['-c', `command -v ${tool}`]).code !== 0) throw new Error(`${tool} is not installed: ${SETUP_HINT}`);
}

let scratch: string;
let scratchCount = 0;
function scratchFile(name: string, content: string, mode = 0o644): string {
  const file = path.join(scratch, `${++scratchCount}-${name}`);
  fs.writeFileSync(file, content, { mode });
  fs.chmodSync(file, mode);
  return file;
}

interface WriteFileEntry {
  path: string;
  owner?: string;
  permissions?: string;
  content?: string;
  [key: string]: unknown;
}
interface CloudConfig {
  package_update?: boolean;
  packages?: string[];
  write_files: WriteFileEntry[];
  runcmd: string[][];
  [key: string]: unknown;
}

function cloudConfig(spec: HostSpec): CloudConfig {
  return parse(renderUserData(spec)) as CloudConfig;
}

function writtenFile(spec: HostSpec, file: string): WriteFileEntry {
  const entry = cloudConfig(spec).write_files.find((f) => f.path === file);
  if (!entry) throw new Error(`user-data writes no ${file}`);
  return entry;
}

/** Docker's --env-file format: KEY=value lines taken literally; blank lines and # comments skipped. */
function parseEnvFile(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const raw of text.split('\n')) {
    const line = raw.replace(/^\s+/, '');
    if (line === '' || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    expect(eq).toBeGreaterThan(0);
    env[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return env;
}

/** A systemd unit as section -> [key, value] in file order. */
function parseUnit(text: string): Map<string, Array<[string, string]>> {
  const sections = new Map<string, Array<[string, string]>>();
  let current: Array<[string, string]> | undefined;
  for (const line of text.split('\n')) {
    if (line.trim() === '' || line.startsWith('#')) continue;
    const header = /^\[(\w+)\]$/.exec(line);
    if (header) {
      current = [];
      sections.set(header[1], current);
      continue;
    }
    const eq = line.indexOf('=');
    if (!current || eq < 0) throw new Error(`not a unit file line: ${line}`);
    current.push([line.slice(0, eq), line.slice(eq + 1)]);
  }
  return sections;
}

function unitValues(text: string, section: string, key: string): string[] {
  return (parseUnit(text).get(section) ?? []).filter(([k]) => k === key).map(([, v]) => v);
}

function oneValue(text: string, section: string, key: string): string {
  const values = unitValues(text, section, key);
  expect(values).toHaveLength(1);
  return values[0];
}

/** Every value given to a docker run flag, e.g. all the --volume values. */
function flagValues(tokens: string[], flag: string): string[] {
  return tokens.flatMap((t, i) => (t === flag ? [tokens[i + 1]] : []));
}

// ---------------------------------------------------------------------------------------------------------

beforeAll(() => {
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'scim-bridge-host-test-'));
});

afterAll(() => {
  // The disk tests unmount in their own afterAll (which runs first); never delete through a live mount.
  if (run('mountpoint', ['-q', path.join(scratch, 'mnt')]).code !== 0) fs.rmSync(scratch, { recursive: true, force: true });
  else console.error(`host.test: ${scratch}/mnt is still mounted; left ${scratch} in place`);
});

// ---------------------------------------------------------------------------------------------------------

describe('the cloud-config document', () => {
  let schemaFile: string;

  beforeAll(() => {
    need('cloud-init');
    const listed = run('dpkg', ['-L', 'cloud-init']);
    const fromDpkg = listed.code === 0 ? listed.stdout.split('\n').find((l) => /schema-cloud-config-v1\.json$/.test(l)) : undefined;
    const known = '/usr/lib/python3/dist-packages/cloudinit/config/schemas/schema-cloud-config-v1.json';
    schemaFile = fromDpkg ?? known;
    if (!fs.existsSync(schemaFile)) throw new Error(`cloud-init's JSON schema (schema-cloud-config-v1.json) was not found: ${SETUP_HINT}`);
  });

  /** cloud-init's offline validator: exit 0 for a valid document. */
  function schemaCheck(doc: string): Run {
    return run('cloud-init', ['schema', '--config-file', scratchFile('user-data.yaml', doc)]);
  }

  test.each(SPECS)('%s: cloud-init schema accepts it', (_name, spec) => {
    const r = schemaCheck(renderUserData(spec));
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    expect(r.stdout).toMatch(/^Valid cloud-config/);
  });

  test('the schema check is not vacuous: a wrong type or a missing header is rejected', () => {
    const good = renderUserData(MINIMAL);
    const wrongType = schemaCheck('#cloud-config\npackages: 5\n');
    expect(wrongType.code).not.toBe(0);
    expect(wrongType.stderr).toMatch(/packages: 5 is not of type 'array'/);
    const noHeader = schemaCheck(good.split('\n').slice(1).join('\n'));
    expect(noHeader.code).not.toBe(0);
    expect(noHeader.stderr).toMatch(/#cloud-config/);
    const badWriteFile = schemaCheck(good.replace('permissions: "0644"', 'permissions: 420\n    mode: "0644"'));
    expect(badWriteFile.code).not.toBe(0);
  });

  test.each(SPECS)('%s: every key is one cloud-init knows (its validator lets unknown keys through)', (_name, spec) => {
    const schema = JSON.parse(fs.readFileSync(schemaFile, 'utf8'));
    const defs: Record<string, { properties?: Record<string, unknown> }> = schema.$defs ?? schema.definitions;
    // Top-level keys: the properties of each module definition the document's allOf refers to.
    const topLevel = new Set<string>();
    for (const part of schema.allOf as Array<{ $ref?: string }>) {
      const name = part.$ref?.replace(/^#\/(\$defs|definitions)\//, '');
      if (name) for (const key of Object.keys(defs[name]?.properties ?? {})) topLevel.add(key);
    }
    expect(topLevel.size).toBeGreaterThan(50);
    expect(topLevel.has('write_files')).toBe(true);
    expect(topLevel.has('write_file')).toBe(false);
    const writeFiles = defs.cc_write_files.properties!.write_files as { items: { properties: Record<string, unknown> } };
    const itemKeys = new Set(Object.keys(writeFiles.items.properties));
    expect([...itemKeys].sort()).toEqual(expect.arrayContaining(['content', 'owner', 'path', 'permissions']));

    const doc = cloudConfig(spec);
    expect(Object.keys(doc).filter((k) => !topLevel.has(k))).toEqual([]);
    for (const file of doc.write_files) expect({ path: file.path, unknown: Object.keys(file).filter((k) => !itemKeys.has(k)) }).toEqual({ path: file.path, unknown: [] });
  });

  test.each(SPECS)('%s: cloud-init (PyYAML, YAML 1.1) reads the same document the yaml package (YAML 1.2) does', (_name, spec) => {
    need('python3');
    const file = scratchFile('user-data.yaml', renderUserData(spec));
    const r = run('python3', ['-c', 'import json, sys, yaml; json.dump(yaml.safe_load(open(sys.argv[1])), sys.stdout)', file]);
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toEqual(cloudConfig(spec));
  });

  test.each(SPECS)('%s: "#cloud-config" is exactly line 1, and the document fits every cloud (AWS: 16 KiB)', (_name, spec) => {
    const doc = renderUserData(spec);
    expect(doc.split('\n')[0]).toBe('#cloud-config');
    const bytes = Buffer.byteLength(doc, 'utf8');
    expect(bytes).toBeLessThan(16 * 1024); // AWS 16 KB raw; DigitalOcean 64 KiB; GCP metadata value 256 KB
  });

  test('with a private ACME CA root, the document stays valid and well under 16 KiB', () => {
    const pem = ['-----BEGIN CERTIFICATE-----', ...Array.from({ length: 30 }, () => 'A'.repeat(64)), '-----END CERTIFICATE-----'].join('\n');
    const spec: HostSpec = { ...FULL, acme: { ...FULL.acme, directory: 'https://ca.internal.example.com/acme/acme/directory', caRoot: pem } };
    const doc = renderUserData(spec);
    expect(schemaCheck(doc).code).toBe(0);
    expect(Buffer.byteLength(doc)).toBeLessThan(16 * 1024);
    expect(writtenFile(spec, `${ETC}/acme-ca-root.pem`).content).toBe(`${pem}\n`);
    expect(hostCaddyfile(spec)).toContain('\tacme_ca_root /etc/caddy/acme-ca-root.pem\n');
    expect(systemdUnits(spec)['scim-bridge-caddy.service']).toContain(`--volume ${ETC}/acme-ca-root.pem:/etc/caddy/acme-ca-root.pem:ro`);
  });

  test.each(SPECS)('%s: files, owners and modes; scripts as in the repository; Docker restarted only if need be, units enabled', (_name, spec) => {
    const doc = cloudConfig(spec);
    expect(doc.package_update).toBe(true);
    // apparmor explicitly: it is only a Recommends of docker.io, and Docker fails every run without its parser
    // where the kernel has AppArmor on. e2fsprogs: prepare-disk's mkfs.ext4 and resize2fs.
    expect(doc.packages).toEqual(expect.arrayContaining(['docker.io', 'apparmor', 'curl', 'jq', 'e2fsprogs', 'unattended-upgrades']));
    const paths = doc.write_files.map((f) => f.path);
    expect(new Set(paths).size).toBe(paths.length);
    const units = Object.keys(systemdUnits(spec));
    expect(paths.sort()).toEqual(
      [
        '/etc/docker/daemon.json',
        '/etc/apt/apt.conf.d/20auto-upgrades',
        '/etc/apt/apt.conf.d/52scim-bridge-reboot',
        `${ETC}/bridge.env`,
        `${ETC}/Caddyfile`,
        `${LIB}/prepare-disk`,
        `${LIB}/fetch-secrets`,
        `${LIB}/prepare-network`,
        ...units.map((u) => `/etc/systemd/system/${u}`),
      ].sort(),
    );
    for (const f of doc.write_files) {
      expect(f.owner).toBe('root:root');
      expect(f.permissions).toBe(f.path.startsWith(`${LIB}/`) ? '0755' : '0644');
    }
    expect(writtenFile(spec, `${LIB}/prepare-disk`).content).toBe(fs.readFileSync(path.join(__dirname, '../../infra/host/prepare-disk.sh'), 'utf8'));
    expect(writtenFile(spec, `${LIB}/fetch-secrets`).content).toBe(fetchSecretsScript(spec));
    expect(JSON.parse(writtenFile(spec, '/etc/docker/daemon.json').content!)).toEqual({ 'log-driver': spec.logging.driver });
    // Security updates every day, whatever the image's defaults.
    expect(writtenFile(spec, '/etc/apt/apt.conf.d/20auto-upgrades').content).toBe('APT::Periodic::Update-Package-Lists "1";\nAPT::Periodic::Unattended-Upgrade "1";\n');
    expect(writtenFile(spec, `${LIB}/prepare-network`).content).toBe(prepareNetworkScript());
    // Started without waiting: a late disk must not hold cloud-init (nor fail it). No daemon-reload of its own
    // (enable reloads), and no unconditional restart of Docker (see 'applying daemon.json' below).
    // The secrets' service is started by its timer only (it has no [Install] section).
    const enabled = units.filter((u) => u !== 'scim-bridge-secrets.service');
    expect(doc.runcmd).toEqual([
      ['sh', '-c', APPLY_DOCKER_CONFIG],
      ['systemctl', 'enable', ...enabled],
      ['systemctl', 'start', '--no-block', ...enabled],
    ]);
    expect(units.sort()).toEqual([
      'scim-bridge-caddy.service',
      'scim-bridge-disk.service',
      'scim-bridge-network.service',
      'scim-bridge-secrets.service',
      'scim-bridge-secrets.timer',
      'scim-bridge.service',
    ]);
  });

  test('log driver options go to daemon.json as log-opts', () => {
    const spec: HostSpec = { ...FULL, logging: { driver: 'awslogs', options: { 'awslogs-group': '/scim-bridge', 'awslogs-region': 'eu-west-1' } } };
    expect(JSON.parse(writtenFile(spec, '/etc/docker/daemon.json').content!)).toEqual({
      'log-driver': 'awslogs',
      'log-opts': { 'awslogs-group': '/scim-bridge', 'awslogs-region': 'eu-west-1' },
    });
  });
});

// ---------------------------------------------------------------------------------------------------------

describe('no secret in the user-data', () => {
  test.each(SPECS)('%s: at most the token hash; no clear token or webhook secret, in any encoding', (_name, spec) => {
    const doc = renderUserData(spec);
    for (const secret of [TOKEN, WEBHOOK_SECRET]) {
      for (const form of [secret, Buffer.from(secret).toString('base64'), Buffer.from(secret).toString('hex'), encodeURIComponent(secret)]) {
        expect(doc).not.toContain(form);
      }
    }
    if (spec.tokenSha256) expect(doc).toContain(`SCIM_BRIDGE_TOKEN_SHA256=${TOKEN_SHA256}\n`);
    else {
      // Fetched: the user-data names the file only, so a new token changes nothing in it.
      expect(doc).toContain('SCIM_BRIDGE_TOKEN_SHA256_FILE=/run/secrets/token-sha256\n');
      expect(doc).not.toContain(TOKEN_SHA256);
    }
    for (const envText of [bridgeEnvironment(spec), writtenFile(spec, `${ETC}/bridge.env`).content!]) {
      expect(envText).not.toMatch(/^SCIM_BRIDGE_TOKEN=/m);
      expect(envText).not.toMatch(/^SCIM_BRIDGE_WEBHOOK_SECRET=/m);
      expect(envText).not.toMatch(/^SCIM_BRIDGE_APP_TOKEN=/m);
    }
  });

  test('the bridge.env the host writes is exactly what the bridge expects (its own config reader agrees)', () => {
    const env = parseEnvFile(bridgeEnvironment(FULL));
    expect(env).toEqual({
      SCIM_BRIDGE_HOST: '0.0.0.0', // in its container, on a network where only Caddy reaches it (nothing published)
      SCIM_BRIDGE_PORT: '8080',
      SCIM_BRIDGE_DATABASE_URL: 'sqlite:/data/scim-bridge.db', // /data is the data disk's data/ directory
      SCIM_BRIDGE_TRUST_PROXY: 'true',
      SCIM_BRIDGE_PUBLIC_URL: `https://${FULL.domain}`, // Location and meta.location: the Base URL, whatever the Host
      SCIM_BRIDGE_ALLOWED_DOMAINS: 'example.com,example.org',
      SCIM_BRIDGE_WEBHOOK_URL: 'https://app.example.com/scim-events',
      // What fetch-secrets keeps up to date, as the container sees the secrets directory.
      SCIM_BRIDGE_TOKEN_SHA256_FILE: '/run/secrets/token-sha256',
      SCIM_BRIDGE_WEBHOOK_SECRET_FILE: '/run/secrets/webhook-secret',
    });
    // Minimal: no webhook, no domain list, and the bridge starts with it alone (no secrets file content).
    const minimal = readConfig(parseEnvFile(bridgeEnvironment(MINIMAL)));
    expect(minimal).toMatchObject({ host: '0.0.0.0', port: 8080, databaseUrl: 'sqlite:/data/scim-bridge.db', tokenHashes: [TOKEN_SHA256], trustProxy: true, allowedDomains: [], publicUrl: `https://${MINIMAL.domain}` });
    expect(minimal.webhook).toBeUndefined();
  });

  test('a token hash both given and fetched is refused, and one of the two is needed', () => {
    expect(() => bridgeEnvironment({ ...FULL, tokenSha256: [TOKEN_SHA256] })).toThrow('host: tokenSha256 is given and fetched as a secret; give one');
    expect(() => bridgeEnvironment({ ...MINIMAL, tokenSha256: undefined })).toThrow('host: tokenSha256 is needed, or SCIM_BRIDGE_TOKEN_SHA256 among the secrets');
  });

  test('two token hashes during a rotation are both passed, comma-separated', () => {
    const other = createHash('sha256').update('next-token-0123456789abcdef').digest('hex');
    const env = parseEnvFile(bridgeEnvironment({ ...MINIMAL, tokenSha256: [TOKEN_SHA256, other] }));
    expect(readConfig(env).tokenHashes).toEqual([TOKEN_SHA256, other]);
  });
});

// ---------------------------------------------------------------------------------------------------------

describe('applying daemon.json: Docker is restarted only if it runs with an older configuration', () => {
  // Stand-ins for systemctl and date: Docker's state and both times come from the environment.
  let bin: string;
  let calls: string;
  beforeAll(() => {
    bin = fs.mkdtempSync(path.join(os.tmpdir(), 'apply-docker-config-'));
    calls = path.join(bin, 'calls.log');
    const stub = (name: string, body: string) => fs.writeFileSync(path.join(bin, name), `#!/bin/sh\n${body}\n`, { mode: 0o755 });
    stub(
      'systemctl',
      [
        'echo "systemctl $*" >> "$CALLS"',
        'case "$1" in',
        '  is-active) [ "$DOCKER_ACTIVE" = yes ] ;;',
        '  show) [ "$*" = "show -P ActiveEnterTimestamp docker.service" ] && echo "$DOCKER_STARTED" ;;',
        'esac',
      ].join('\n'),
    );
    // date -r FILE +%s: the file's time; date -d TEXT +%s: TEXT as systemd prints it, converted by the real date.
    stub('date', 'case "$1" in\n  -r) [ "$2" = /etc/docker/daemon.json ] && echo "$CONFIG_WRITTEN" ;;\n  -d) TZ=UTC /bin/date -d "$2" +%s ;;\nesac');
  });
  afterAll(() => fs.rmSync(bin, { recursive: true, force: true }));

  function apply(env: { DOCKER_ACTIVE: string; DOCKER_STARTED: string; CONFIG_WRITTEN: string }): string[] {
    fs.writeFileSync(calls, '');
    const r = run('sh', ['-c', APPLY_DOCKER_CONFIG], { env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, CALLS: calls, ...env } });
    expect(r.code).toBe(0);
    return fs.readFileSync(calls, 'utf8').trim().split('\n').filter((c) => c.startsWith('systemctl restart'));
  }
  // 2026-12-05 08:36:47 UTC, as `systemctl show -P ActiveEnterTimestamp` prints it.
  const STARTED = 'Sat 2026-12-05 08:36:47 UTC';
  const STARTED_EPOCH = 1796459807;

  test('Docker started after the file was written (the packages step installed it, or the image started it): no restart', () => {
    expect(apply({ DOCKER_ACTIVE: 'yes', DOCKER_STARTED: STARTED, CONFIG_WRITTEN: String(STARTED_EPOCH - 30) })).toEqual([]);
  });

  test('Docker started before the file was written, or in the same second: restarted', () => {
    expect(apply({ DOCKER_ACTIVE: 'yes', DOCKER_STARTED: STARTED, CONFIG_WRITTEN: String(STARTED_EPOCH + 5) })).toEqual(['systemctl restart docker.service']);
    expect(apply({ DOCKER_ACTIVE: 'yes', DOCKER_STARTED: STARTED, CONFIG_WRITTEN: String(STARTED_EPOCH) })).toEqual(['systemctl restart docker.service']);
  });

  test('Docker not running: (re)started', () => {
    expect(apply({ DOCKER_ACTIVE: 'no', DOCKER_STARTED: '', CONFIG_WRITTEN: String(STARTED_EPOCH) })).toEqual(['systemctl restart docker.service']);
    expect(apply({ DOCKER_ACTIVE: 'no', DOCKER_STARTED: STARTED, CONFIG_WRITTEN: String(STARTED_EPOCH - 30) })).toEqual(['systemctl restart docker.service']);
  });
});

describe('shellcheck', () => {
  beforeAll(() => need('shellcheck'));

  function shellcheck(script: string): Run {
    const shebang = script.split('\n')[0];
    const shell = shebang === '#!/bin/sh' ? 'sh' : shebang === '#!/bin/bash' ? 'bash' : undefined;
    if (!shell) throw new Error(`unexpected shebang ${shebang}`);
    return run('shellcheck', ['-s', shell, '-S', 'style', '-'], { input: script });
  }

  test('prepare-disk.sh (sh)', () => {
    const r = shellcheck(fs.readFileSync(path.join(__dirname, '../../infra/host/prepare-disk.sh'), 'utf8'));
    expect(r.stdout + r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  test.each(SPECS)('%s: the rendered fetch-secrets (bash)', (_name, spec) => {
    const r = shellcheck(fetchSecretsScript(spec));
    expect(r.stdout + r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  test('the rendered prepare-network (sh)', () => {
    const r = shellcheck(prepareNetworkScript());
    expect(r.stdout + r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  test('the runcmd that applies daemon.json (sh)', () => {
    const r = shellcheck(`#!/bin/sh\n${APPLY_DOCKER_CONFIG}\n`);
    expect(r.stdout + r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  test('is not vacuous: an unquoted expansion is reported', () => {
    expect(shellcheck('#!/bin/sh\nrm -rf $1/data\n').code).not.toBe(0);
  });
});

// ---------------------------------------------------------------------------------------------------------

describe('prepare-disk on a real disk image (loop device)', () => {
  const LOOP_HINT =
    'the prepare-disk tests need root and loop devices (losetup/mount of a file image); in a container, run it privileged or with /dev/loop-control and /dev/loop* available';
  let dir: string;
  let script: string;
  let image: string;
  let loop: string | undefined;
  let device: string; // a symlink to the loop device, like /dev/disk/by-id/google-scim-bridge-data
  let mnt: string;

  function prepareDisk(args: string[], extraPath?: string, env: NodeJS.ProcessEnv = {}): Run {
    return run(script, args, { env: { ...process.env, ...env, PATH: extraPath ? `${extraPath}:${process.env.PATH}` : process.env.PATH } });
  }

  function mounted(): boolean {
    return run('mountpoint', ['-q', mnt]).code === 0;
  }

  function unmount(): void {
    if (mounted()) {
      const r = run('umount', [mnt]);
      if (r.code !== 0) throw new Error(`umount ${mnt} failed: ${r.stderr}`);
    }
  }

  function fakeBin(name: string, files: Record<string, string>): string {
    const bin = path.join(dir, name);
    fs.mkdirSync(bin, { recursive: true });
    for (const [file, body] of Object.entries(files)) fs.writeFileSync(path.join(bin, file), `#!/bin/sh\n${body}\n`, { mode: 0o755 });
    return bin;
  }

  function blankImage(name: string, size = '64M'): string {
    const file = path.join(dir, name);
    expect(run('truncate', ['-s', size, file]).code).toBe(0);
    return file;
  }

  beforeAll(() => {
    for (const tool of ['blkid', 'mountpoint', 'mkfs.ext4', 'resize2fs', 'losetup', 'sfdisk', 'truncate']) need(tool);
    if (process.getuid?.() !== 0) throw new Error(`not root (uid ${process.getuid?.()}): ${LOOP_HINT}`);
    dir = path.join(scratch, 'disk');
    mnt = path.join(scratch, 'mnt'); // the outer afterAll refuses to delete through it while mounted
    fs.mkdirSync(path.join(dir, 'by-id'), { recursive: true });
    script = path.join(dir, 'prepare-disk');
    // The script exactly as the host gets it from the user-data.
    fs.writeFileSync(script, writtenFile(FULL, `${LIB}/prepare-disk`).content!, { mode: 0o755 });
    image = blankImage('data.img');
    const attached = run('losetup', ['--find', '--show', image]);
    if (attached.code !== 0) throw new Error(`losetup could not attach ${image}: ${attached.stderr.trim()}. ${LOOP_HINT}`);
    loop = attached.stdout.trim();
    device = path.join(dir, 'by-id', 'google-scim-bridge-data');
    fs.symlinkSync(loop, device);
  });

  afterAll(() => {
    try {
      if (mnt) unmount();
    } finally {
      if (loop) run('losetup', ['-d', loop]);
    }
  });

  test('a blank disk is formatted, mounted, and given data/ (the bridge uid, 0700), caddy/ and caddy-config/', () => {
    const r = prepareDisk([device, mnt, String(BRIDGE_UID)]);
    if (r.code !== 0 && /loop|mount/i.test(r.stderr)) throw new Error(`prepare-disk could not mount: ${r.stderr.trim()}. ${LOOP_HINT}`);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`prepare-disk: ${device} is blank; creating an ext4 filesystem\nprepare-disk: ${device} mounted on ${mnt}\n`);
    expect(mounted()).toBe(true);
    expect(run('blkid', ['-p', '-o', 'value', '-s', 'LABEL', loop!]).stdout.trim()).toBe('scim-bridge');
    const data = fs.statSync(path.join(mnt, 'data'));
    expect({ uid: data.uid, gid: data.gid, mode: data.mode & 0o7777 }).toEqual({ uid: BRIDGE_UID, gid: BRIDGE_UID, mode: 0o700 });
    for (const sub of ['caddy', 'caddy-config']) {
      const st = fs.statSync(path.join(mnt, sub));
      expect({ sub, uid: st.uid, mode: st.mode & 0o7777 }).toEqual({ sub, uid: 0, mode: 0o700 });
    }
    const options = fs.readFileSync('/proc/self/mounts', 'utf8').split('\n').find((l) => l.split(' ')[1] === mnt);
    expect(options).toMatch(/ ext4 .*noatime/);
    fs.writeFileSync(path.join(mnt, 'data', 'scim-bridge.db'), 'the database\n');
  });

  test('running again while mounted changes nothing; a grown disk is grown online (when the kernel lets us)', () => {
    const before = fs.statfsSync(mnt);
    expect(run('truncate', ['-s', '96M', image]).code).toBe(0);
    expect(run('losetup', ['--set-capacity', loop!]).code).toBe(0);
    const r = prepareDisk([device, mnt, String(BRIDGE_UID)]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`${device} has a ext4 filesystem; keeping its data`);
    expect(fs.readFileSync(path.join(mnt, 'data', 'scim-bridge.db'), 'utf8')).toBe('the database\n');
    const after = fs.statfsSync(mnt);
    // Online growth (EXT4_IOC_RESIZE_FS) needs CAP_SYS_RESOURCE, which containers usually drop.
    const capEff = BigInt(`0x${/^CapEff:\s*([0-9a-f]+)$/m.exec(fs.readFileSync('/proc/self/status', 'utf8'))![1]}`);
    if ((capEff >> 24n) & 1n) {
      expect(r.stderr).toBe('');
      expect(after.blocks * after.bsize).toBeGreaterThan(before.blocks * before.bsize * 1.3);
    } else {
      console.info('host.test: no CAP_SYS_RESOURCE here, so online resize2fs cannot run; checked only that prepare-disk carries on');
      expect(r.stderr).toBe(`prepare-disk: resize2fs did not grow ${device} (carrying on)\n`);
    }
  });

  test('after an unmount (a new host), the disk is mounted again with its data: not reformatted', () => {
    unmount();
    expect(mounted()).toBe(false);
    const r = prepareDisk([device, mnt, String(BRIDGE_UID)]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^prepare-disk: ${device} has a ext4 filesystem; keeping its data\n`));
    expect(r.stdout).not.toContain('blank');
    expect(mounted()).toBe(true);
    expect(fs.readFileSync(path.join(mnt, 'data', 'scim-bridge.db'), 'utf8')).toBe('the database\n');
    expect(fs.statSync(path.join(mnt, 'data')).uid).toBe(BRIDGE_UID);
    unmount();
  });

  test.each(['dos', 'gpt'])('a disk with a %s partition table is refused, not formatted', (label) => {
    const img = blankImage(`${label}.img`);
    expect(run('sfdisk', ['-q', img], { input: `label: ${label}\n` }).code).toBe(0);
    const target = path.join(dir, `mnt-${label}`);
    const r = prepareDisk([img, target, String(BRIDGE_UID)]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`prepare-disk: ${img} carries a partition table or an unknown signature; refusing to format it\n`);
    expect(r.stdout).toBe('');
    const probe = run('blkid', ['-p', img]).stdout;
    expect(probe).toContain(`PTTYPE="${label}"`);
    expect(probe).not.toMatch(/ TYPE=/);
    expect(fs.existsSync(target)).toBe(false);
  });

  test('a disk blkid cannot probe (any status but 0 and 2) is refused; mkfs never runs', () => {
    const img = blankImage('unprobed.img');
    const calls = path.join(dir, 'mkfs-calls');
    const bin = fakeBin('bin-blkid-error', { blkid: 'exit 4', 'mkfs.ext4': `echo "$@" >> ${calls}; exit 1` });
    const r = prepareDisk([img, path.join(dir, 'mnt-unprobed'), String(BRIDGE_UID)], bin);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`prepare-disk: cannot probe ${img} (blkid exit status 4); refusing to format it\n`);
    expect(fs.existsSync(calls)).toBe(false);
  });

  test('what blkid cannot read (a zero-length file, not a block device) is refused, never formatted', () => {
    const img = blankImage('empty.img', '0');
    const r = prepareDisk([img, path.join(dir, 'mnt-empty'), String(BRIDGE_UID)]);
    expect(r.code).toBe(1);
    // blkid says "no signature" (status 2) for a device it cannot read anything from, too.
    expect(r.stderr).toBe(`prepare-disk: ${img} is not a readable block device; refusing to format it\n`);
    expect(r.stdout).not.toContain('creating an ext4 filesystem');
    expect(fs.statSync(img).size).toBe(0);
  });

  test('a device that never appears: gives up after 120 s of waiting (sleep faked, so this takes no time)', () => {
    const log = path.join(dir, 'sleeps-never');
    const bin = fakeBin('bin-sleep-never', { sleep: `echo "$1" >> ${log}` });
    const missing = path.join(dir, 'by-id', 'google-not-attached');
    const r = prepareDisk([missing, path.join(dir, 'mnt-missing'), String(BRIDGE_UID)], bin);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`prepare-disk: ${missing} did not appear within 120 s; is the data disk attached?\n`);
    const sleeps = fs.readFileSync(log, 'utf8').trim().split('\n');
    expect(sleeps).toHaveLength(60);
    expect(new Set(sleeps)).toEqual(new Set(['2']));
  });

  test('a device that appears late is waited for, then probed', () => {
    const img = blankImage('late.img');
    expect(run('sfdisk', ['-q', img], { input: 'label: dos\n' }).code).toBe(0); // refused once seen: nothing to mount
    const late = path.join(dir, 'by-id', 'google-late');
    const log = path.join(dir, 'sleeps-late');
    const bin = fakeBin('bin-sleep-late', { sleep: `echo "$1" >> ${log}; [ "$(wc -l < ${log})" -lt 3 ] || ln -sf ${img} ${late}` });
    const r = prepareDisk([late, path.join(dir, 'mnt-late'), String(BRIDGE_UID)], bin);
    expect(fs.readFileSync(log, 'utf8').trim().split('\n')).toHaveLength(3);
    expect(r.stderr).toContain(`${late} carries a partition table`);
    expect(r.code).toBe(1);
  });

  test('the wrong number of arguments is a usage error', () => {
    const r = prepareDisk([device, mnt]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('usage: prepare-disk DEVICE MOUNTPOINT OWNER_UID\n');
  });
});

// ---------------------------------------------------------------------------------------------------------

describe('fetch-secrets against fake GCE metadata and Secret Manager servers', () => {
  const SECRET_PATH = `/v1/${SECRET_NAME}/versions/latest:access`;
  const HASHES_PATH = `/v1/${HASHES_NAME}/versions/latest:access`;
  /** What Secret Manager holds for the token hashes; each test may change it (a rotation). */
  let hashes: string;
  let metadata: http.Server;
  let secretManager: http.Server;
  let env: NodeJS.ProcessEnv;
  let dir: string;
  let fullScript: string;
  let minimalScript: string;
  /** What Secret Manager answers for the secret; each test sets it. */
  let answer: { status: number; body: string };
  let metadataAnswers: number;
  let seen: string[];

  function listen(handler: http.RequestListener): Promise<http.Server> {
    return new Promise((resolve) => {
      const server = http.createServer(handler);
      server.listen(0, '127.0.0.1', () => resolve(server));
    });
  }
  const port = (s: http.Server) => (s.address() as AddressInfo).port;
  const json = (res: http.ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(typeof body === 'string' ? body : JSON.stringify(body));
  };
  const payload = (value: string) => JSON.stringify({ name: `${SECRET_NAME}/versions/3`, payload: { data: Buffer.from(value, 'utf8').toString('base64') } });

  beforeAll(async () => {
    for (const tool of ['bash', 'curl', 'jq', 'base64']) need(tool);
    metadata = await listen((req, res) => {
      seen.push(`metadata ${req.method} ${req.url} flavor=${req.headers['metadata-flavor'] ?? ''}`);
      if (req.headers['metadata-flavor'] !== 'Google') return json(res, 403, 'Missing Metadata-Flavor:Google header.');
      if (req.method !== 'GET' || req.url !== '/computeMetadata/v1/instance/service-accounts/default/token') return json(res, 404, 'not found');
      if (metadataAnswers !== 200) return json(res, metadataAnswers, 'metadata server refused');
      json(res, 200, { access_token: 'ya29.fake', expires_in: 3599, token_type: 'Bearer' });
    });
    secretManager = await listen((req, res) => {
      seen.push(`secretmanager ${req.method} ${req.url} ${req.headers.authorization ?? ''}`);
      if (req.headers.authorization !== 'Bearer ya29.fake') return json(res, 401, { error: { code: 401, status: 'UNAUTHENTICATED' } });
      if (req.method === 'GET' && req.url === HASHES_PATH) return json(res, 200, payload(hashes));
      if (req.method !== 'GET' || req.url !== SECRET_PATH) return json(res, 404, { error: { code: 404, status: 'NOT_FOUND' } });
      json(res, answer.status, answer.body);
    });
    env = { PATH: process.env.PATH, GCE_METADATA_HOST: `127.0.0.1:${port(metadata)}`, SECRET_MANAGER_ENDPOINT: `http://127.0.0.1:${port(secretManager)}` };
    dir = path.join(scratch, 'secrets');
    fs.mkdirSync(dir);
    // The scripts exactly as the host gets them from the user-data.
    fullScript = path.join(dir, 'fetch-secrets-full');
    fs.writeFileSync(fullScript, writtenFile(FULL, `${LIB}/fetch-secrets`).content!, { mode: 0o755 });
    minimalScript = path.join(dir, 'fetch-secrets-minimal');
    fs.writeFileSync(minimalScript, writtenFile(MINIMAL, `${LIB}/fetch-secrets`).content!, { mode: 0o755 });
  });

  afterAll(async () => {
    for (const server of [metadata, secretManager]) {
      if (!server) continue;
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  let outDir: string;
  let out: string;
  beforeEach(() => {
    answer = { status: 200, body: payload(WEBHOOK_SECRET) };
    hashes = TOKEN_SHA256;
    metadataAnswers = 200;
    seen = [];
    // Like /run/scim-bridge/secrets: the script makes the directory, one file per secret in it.
    outDir = path.join(fs.mkdtempSync(path.join(dir, 'run-')), 'secrets');
    out = path.join(outDir, 'webhook-secret');
  });

  function fetchSecrets(script = fullScript): Promise<Run> {
    return runAsync('bash', [script, outDir], env);
  }
  const hashesFile = () => path.join(outDir, 'token-sha256');
  /** The container's view: the bridge's `_FILE` settings pointed at this directory. */
  const containerEnv = () => Object.fromEntries(Object.entries(parseEnvFile(bridgeEnvironment(FULL))).map(([k, v]) => [k, v.replace('/run/secrets', outDir)]));

  const leftovers = () => (fs.existsSync(outDir) ? fs.readdirSync(outDir) : []);

  test('the fakes are strict: no Metadata-Flavor header, no token', async () => {
    const r = await runAsync('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', `http://${env.GCE_METADATA_HOST}/computeMetadata/v1/instance/service-accounts/default/token`], env);
    expect(r.stdout).toBe('403');
  });

  test('writes one file per secret (the value, a line break), 0440 root:<bridge uid>, in a 0750 directory, with nothing left beside them', async () => {
    const r = await fetchSecrets();
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('fetch-secrets: token-sha256 updated\nfetch-secrets: webhook-secret updated\n');
    expect(fs.readFileSync(out, 'utf8')).toBe(`${WEBHOOK_SECRET}\n`);
    expect(fs.readFileSync(hashesFile(), 'utf8')).toBe(`${TOKEN_SHA256}\n`);
    for (const f of [out, hashesFile()]) {
      const st = fs.statSync(f);
      expect([st.mode & 0o7777, st.uid, st.gid]).toEqual([0o440, 0, BRIDGE_UID]);
    }
    const st = fs.statSync(outDir);
    expect([st.mode & 0o7777, st.uid, st.gid]).toEqual([0o750, 0, BRIDGE_UID]);
    expect(leftovers().sort()).toEqual(['token-sha256', 'webhook-secret']);
    expect(seen).toEqual([
      'metadata GET /computeMetadata/v1/instance/service-accounts/default/token flavor=Google',
      `secretmanager GET ${HASHES_PATH} Bearer ya29.fake`,
      'metadata GET /computeMetadata/v1/instance/service-accounts/default/token flavor=Google',
      `secretmanager GET ${SECRET_PATH} Bearer ya29.fake`,
    ]);
    expect(r.ms).toBeLessThan(5000);
  });

  test('the bridge reads its env file and the fetched files as one valid configuration, webhook secret byte for byte', async () => {
    expect((await fetchSecrets()).code).toBe(0);
    const config = readConfig(containerEnv());
    expect(config.webhook).toEqual({ url: FULL.webhookUrl, secret: WEBHOOK_SECRET, retryHours: 24 });
    expect(config.tokenHashes).toEqual([TOKEN_SHA256]);
  });

  test('a rotation: a file is replaced (a new inode, by a rename) only when its value changed; the bridge then reads both hashes', async () => {
    expect((await fetchSecrets()).code).toBe(0);
    const first = { hashes: fs.statSync(hashesFile()).ino, webhook: fs.statSync(out).ino };
    // Nothing changed: no file is touched (the bridge, which watches them, has nothing to read again).
    const again = await fetchSecrets();
    expect({ code: again.code, stdout: again.stdout }).toEqual({ code: 0, stdout: '' });
    expect({ hashes: fs.statSync(hashesFile()).ino, webhook: fs.statSync(out).ino }).toEqual(first);
    // previousToken set: two hashes in Secret Manager.
    hashes = `${OTHER_SHA256},${TOKEN_SHA256}`;
    const rotated = await fetchSecrets();
    expect({ code: rotated.code, stdout: rotated.stdout }).toEqual({ code: 0, stdout: 'fetch-secrets: token-sha256 updated\n' });
    expect(fs.statSync(hashesFile()).ino).not.toBe(first.hashes);
    expect(fs.statSync(out).ino).toBe(first.webhook);
    expect(readConfig(containerEnv()).tokenHashes).toEqual([OTHER_SHA256, TOKEN_SHA256]);
    expect(leftovers().sort()).toEqual(['token-sha256', 'webhook-secret']);
  });

  test('a failure on the timer (the store refusing) leaves the files in use as they were', async () => {
    expect((await fetchSecrets()).code).toBe(0);
    hashes = OTHER_SHA256;
    answer = { status: 403, body: JSON.stringify({ error: { code: 403 } }) };
    expect((await fetchSecrets()).code).not.toBe(0);
    // Every value is fetched before any file is written: not even the hashes (which did arrive) changed.
    expect(fs.readFileSync(hashesFile(), 'utf8')).toBe(`${TOKEN_SHA256}\n`);
    expect(fs.readFileSync(out, 'utf8')).toBe(`${WEBHOOK_SECRET}\n`);
    expect(leftovers().sort()).toEqual(['token-sha256', 'webhook-secret']);
  });

  test('replaces a previous file whole (and its mode)', async () => {
    fs.mkdirSync(outDir, { recursive: true });
    fs.writeFileSync(out, 'the-old-secret-0123456789\nSTALE=1\n', { mode: 0o644 });
    expect((await fetchSecrets()).code).toBe(0);
    expect(fs.readFileSync(out, 'utf8')).toBe(`${WEBHOOK_SECRET}\n`);
    expect(fs.statSync(out).mode & 0o7777).toBe(0o440);
  });

  test('the secret store refusing (403) fails the start quickly, with no secrets file', async () => {
    answer = { status: 403, body: JSON.stringify({ error: { code: 403, status: 'PERMISSION_DENIED' } }) };
    const r = await fetchSecrets();
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/403/);
    expect(fs.existsSync(out)).toBe(false);
    expect(fs.existsSync(hashesFile())).toBe(false);
    expect(seen.filter((s) => s.startsWith('secretmanager') && s.includes(SECRET_PATH))).toHaveLength(1); // curl does not retry a 403
    expect(r.ms).toBeLessThan(5000);
  });

  // (Was a bug: a failing secret command left a temporary file behind; the script removes them on exit.)
  test('the secret store refusing (403) leaves no temporary file either', async () => {
    answer = { status: 403, body: JSON.stringify({ error: { code: 403 } }) };
    expect((await fetchSecrets()).code).not.toBe(0);
    expect(leftovers()).toEqual([]);
  });

  test('the metadata server refusing a token fails the start, with no secrets file', async () => {
    metadataAnswers = 403;
    const r = await fetchSecrets();
    expect(r.code).not.toBe(0);
    expect(fs.existsSync(out)).toBe(false);
    expect(r.ms).toBeLessThan(5000);
  });

  // (Was a bug: a failed token request went on to Secret Manager with an empty token; gcp_secret now returns.)
  test('a refused token request does not go on to Secret Manager with an empty token', async () => {
    metadataAnswers = 403;
    expect((await fetchSecrets()).code).not.toBe(0);
    expect(seen.filter((s) => s.startsWith('secretmanager'))).toEqual([]);
  });

  test.each([
    ['a line break inside', 'first-line-0123456789\nSCIM_BRIDGE_TOKEN=injected'],
    ['an empty value', ''],
  ])('a secret with %s fails the start, with no file left', async (_what, value) => {
    answer = { status: 200, body: payload(value) };
    const r = await fetchSecrets();
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('fetch-secrets: SCIM_BRIDGE_WEBHOOK_SECRET is empty or has a line break\n');
    expect(leftovers()).toEqual([]);
  });

  test('a response without payload.data, or not base64, fails the start', async () => {
    answer = { status: 200, body: JSON.stringify({ name: 'x' }) };
    expect((await fetchSecrets()).code).not.toBe(0);
    answer = { status: 200, body: JSON.stringify({ payload: { data: '@@not base64@@' } }) };
    expect((await fetchSecrets()).code).not.toBe(0);
    expect(fs.existsSync(out)).toBe(false);
  });

  test('trailing line breaks of a stored secret are dropped (echo "..." | gcloud secrets versions add)', async () => {
    answer = { status: 200, body: payload(`${WEBHOOK_SECRET}\n`) };
    expect((await fetchSecrets()).code).toBe(0);
    expect(fs.readFileSync(out, 'utf8')).toBe(`${WEBHOOK_SECRET}\n`);
  });

  test('the minimal spec (no secrets) writes no file and succeeds, without calling anything', async () => {
    const r = await fetchSecrets(minimalScript);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    expect(leftovers()).toEqual([]);
    expect(seen).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------------------

describe('systemd units', () => {
  const units = systemdUnits(FULL);
  const bridge = units['scim-bridge.service'];
  const caddy = units['scim-bridge-caddy.service'];
  const disk = units['scim-bridge-disk.service'];
  const tokens = (unitText: string) => oneValue(unitText, 'Service', 'ExecStart').split(/\s+/);

  test('the bridge container: hardened, non-root, on the containers\' network with no port published, only the data directory and the secrets directory (read-only), its env file', () => {
    const t = tokens(bridge);
    expect(t.slice(0, 5)).toEqual(['/usr/bin/docker', 'run', '--rm', '--name', 'scim-bridge']);
    expect(t[t.length - 1]).toBe(FULL.image);
    expect(t).toContain('--read-only');
    expect(flagValues(t, '--cap-drop')).toEqual(['ALL']);
    expect(flagValues(t, '--cap-add')).toEqual([]);
    expect(flagValues(t, '--security-opt')).toEqual(['no-new-privileges']);
    expect(flagValues(t, '--user')).toEqual([`${BRIDGE_UID}:${BRIDGE_UID}`]);
    expect(flagValues(t, '--network')).toEqual([DOCKER_NETWORK]);
    // The secrets' directory, not its files: a file replaced by a rename shows inside the container too.
    expect(flagValues(t, '--volume')).toEqual([`${MOUNT_POINT}/data:/data`, `${SECRETS_DIR}:/run/secrets:ro`]);
    expect(flagValues(t, '--env-file')).toEqual([`${ETC}/bridge.env`]);
    for (const forbidden of ['--privileged', '-p', '--publish', '-v', '--mount', '-e', '--env']) expect(t).not.toContain(forbidden);
  });

  test('with the journald log driver, a container line reaches the journal once (Docker writes it; the unit drops its copy)', () => {
    const journald = systemdUnits({ ...FULL, logging: { driver: 'journald' } });
    const awslogs = systemdUnits({ ...FULL, logging: { driver: 'awslogs', options: { 'awslogs-group': 'g' } } });
    for (const name of ['scim-bridge.service', 'scim-bridge-caddy.service']) {
      expect(unitValues(journald[name], 'Service', 'StandardOutput')).toEqual(['null']);
      // Other drivers keep the unit's copy: the only local one when the cloud's logging is unreachable.
      expect(unitValues(awslogs[name], 'Service', 'StandardOutput')).toEqual([]);
    }
  });

  test('fetch-secrets runs before every start, and its failure stops the start', () => {
    expect(unitValues(bridge, 'Service', 'ExecStartPre')).toEqual(['-/usr/bin/docker rm -f scim-bridge', `${LIB}/fetch-secrets ${SECRETS_DIR}`]);
    expect(oneValue(bridge, 'Service', 'Restart')).toBe('always');
  });

  test('and every minute after, by a timer: a rotation reaches the running bridge (its service is the timer\'s only)', () => {
    const timer = units['scim-bridge-secrets.timer'];
    const service = units['scim-bridge-secrets.service'];
    expect(unitValues(timer, 'Timer', 'OnUnitActiveSec')).toEqual(['1min']);
    expect(unitValues(timer, 'Timer', 'OnActiveSec')).toEqual(['1min']);
    expect(oneValue(timer, 'Install', 'WantedBy')).toBe('timers.target');
    expect(oneValue(service, 'Service', 'Type')).toBe('oneshot');
    expect(unitValues(service, 'Service', 'ExecStart')).toEqual([`${LIB}/fetch-secrets ${SECRETS_DIR}`]);
    expect(parseUnit(service).has('Install')).toBe(false);
    // Nothing of the bridge depends on it: a failed fetch leaves the bridge running with the files it has.
    expect(bridge).not.toContain('scim-bridge-secrets');
  });

  test('Caddy: hardened, only the low ports capability, its Caddyfile read-only, data on the disk, no secrets', () => {
    const t = tokens(caddy);
    expect(t.slice(0, 5)).toEqual(['/usr/bin/docker', 'run', '--rm', '--name', 'scim-bridge-caddy']);
    expect(t[t.length - 1]).toBe(FULL.caddyImage);
    expect(t).toContain('--read-only');
    expect(flagValues(t, '--cap-drop')).toEqual(['ALL']);
    expect(flagValues(t, '--cap-add')).toEqual(['NET_BIND_SERVICE']);
    expect(flagValues(t, '--security-opt')).toEqual(['no-new-privileges']);
    expect(flagValues(t, '--network')).toEqual([DOCKER_NETWORK]);
    // The host's only listening ports: 80 and 443, both Caddy's.
    expect(flagValues(t, '--publish')).toEqual(['80:80', '443:443']);
    expect(flagValues(t, '--volume').sort()).toEqual([`${ETC}/Caddyfile:/etc/caddy/Caddyfile:ro`, `${MOUNT_POINT}/caddy-config:/config`, `${MOUNT_POINT}/caddy:/data`].sort());
    expect(flagValues(t, '--env-file')).toEqual([]);
    expect(caddy).not.toContain('fetch-secrets');
    expect(caddy).not.toContain(SECRETS_DIR);
  });

  test.each(['scim-bridge.service', 'scim-bridge-caddy.service'])('%s requires and follows docker, the network and the data disk, and starts with the disk', (name) => {
    const text = units[name];
    const words = (key: string) => unitValues(text, 'Unit', key).join(' ').split(/\s+/);
    expect(words('Requires')).toEqual(expect.arrayContaining(['docker.service', 'scim-bridge-network.service', 'scim-bridge-disk.service']));
    expect(words('After')).toEqual(expect.arrayContaining(['docker.service', 'scim-bridge-network.service', 'scim-bridge-disk.service', 'network-online.target']));
    expect(words('Wants')).toContain('network-online.target');
    // At boot, and again whenever the disk's service starts (a disk attached after the host booted).
    expect(oneValue(text, 'Install', 'WantedBy').split(' ').sort()).toEqual(['multi-user.target', 'scim-bridge-disk.service']);
  });

  test('the disk unit runs prepare-disk whenever the data disk appears: at boot, or later without a reboot', () => {
    const device = 'dev-disk-by\\x2did-google\\x2dscim\\x2dbridge\\x2ddata.device';
    expect(DATA_DEVICE).toBe('/dev/disk/by-id/google-scim-bridge-data');
    expect(oneValue(disk, 'Service', 'ExecStart')).toBe(`${LIB}/prepare-disk ${DATA_DEVICE} ${MOUNT_POINT} ${BRIDGE_UID}`);
    expect(oneValue(disk, 'Service', 'Type')).toBe('oneshot');
    expect(oneValue(disk, 'Service', 'RemainAfterExit')).toBe('yes');
    expect(oneValue(disk, 'Service', 'ExecStop')).toBe(`-/bin/umount ${MOUNT_POINT}`);
    expect(oneValue(disk, 'Unit', 'BindsTo')).toBe(device);
    expect(oneValue(disk, 'Unit', 'After')).toBe(device);
    expect(oneValue(disk, 'Install', 'WantedBy').split(' ').sort()).toEqual([device, 'multi-user.target']);
    // Nothing waits on it but the two containers: Docker starts without the disk.
    expect(disk).not.toMatch(/^Before=/m);
  });

  test.each([
    ['/dev/disk/by-id/google-scim-bridge-data', 'dev-disk-by\\x2did-google\\x2dscim\\x2dbridge\\x2ddata'],
    ['/dev/disk/by-id/scsi-0DO_Volume_scim-bridge-data', 'dev-disk-by\\x2did-scsi\\x2d0DO_Volume_scim\\x2dbridge\\x2ddata'],
    ['/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol0123456789abcdef0', 'dev-disk-by\\x2did-nvme\\x2dAmazon_Elastic_Block_Store_vol0123456789abcdef0'],
    ['/dev/disk/by-id/x.y z', 'dev-disk-by\\x2did-x.y\\x20z'],
  ])('systemdPathUnit(%s) is what systemd-escape --path says', (devicePath, escaped) => {
    expect(systemdPathUnit(devicePath, 'device')).toBe(`${escaped}.device`);
    if (run('sh', ['-c', 'command -v systemd-escape']).code === 0) {
      expect(run('systemd-escape', ['--path', devicePath]).stdout.trim()).toBe(escaped);
    }
  });

  test('the containers\' network: created once, and no container reaches the metadata service', () => {
    const network = units['scim-bridge-network.service'];
    expect(oneValue(network, 'Service', 'ExecStart')).toBe(`${LIB}/prepare-network`);
    expect(oneValue(network, 'Unit', 'PartOf')).toBe('docker.service');
    const script = prepareNetworkScript();
    expect(script).toContain('docker network create --driver bridge "$network"');
    expect(script).toContain('iptables -w -I DOCKER-USER -d "$metadata/32" -j REJECT');
    expect(script).toContain(`metadata=${METADATA_ADDRESS}`);
  });

  test.each([
    [undefined, 'Unattended-Upgrade::Automatic-Reboot "false";'],
    ['never', 'Unattended-Upgrade::Automatic-Reboot "false";'],
    ['04:00', 'Unattended-Upgrade::Automatic-Reboot "true";\nUnattended-Upgrade::Automatic-Reboot-WithUsers "true";\nUnattended-Upgrade::Automatic-Reboot-Time "04:00";'],
  ])('rebootTime %s: unattended-upgrades reboots only then, and only for an update that needs it', (rebootTime, expected) => {
    const spec: HostSpec = { ...FULL, ...(rebootTime ? { rebootTime } : {}) };
    expect(writtenFile(spec, '/etc/apt/apt.conf.d/52scim-bridge-reboot').content).toContain(expected);
    expect(() => rebootPolicy('4am')).toThrow('host: rebootTime "4am" is not HH:MM or never');
  });

  test('every script and file a unit uses is one the user-data writes, where the unit expects it', () => {
    const written = new Map(cloudConfig(FULL).write_files.map((f) => [f.path, f]));
    const referenced = new Set(Object.values(units).join('\n').match(/\/(usr\/local\/lib|etc)\/scim-bridge\/[\w.-]+/g));
    expect([...referenced].sort()).toEqual([`${ETC}/Caddyfile`, `${ETC}/bridge.env`, `${LIB}/fetch-secrets`, `${LIB}/prepare-disk`, `${LIB}/prepare-network`]);
    for (const file of referenced) expect(written.has(file)).toBe(true);
  });

  test('systemd-analyze verify finds nothing wrong (skipped where it cannot run)', () => {
    if (run('sh', ['-c', 'command -v systemd-analyze']).code !== 0) {
      console.info('host.test: systemd-analyze is not installed; unit files checked by parsing only');
      return;
    }
    const unitDir = path.join(scratch, 'units');
    fs.mkdirSync(unitDir);
    // docker.service comes with docker.io on the host; a stand-in here. Unknown paths are the host's own.
    fs.writeFileSync(path.join(unitDir, 'docker.service'), '[Unit]\nDescription=stand-in\n[Service]\nExecStart=/bin/true\n');
    const verify = (files: Record<string, string>) => {
      const paths = Object.entries(files).map(([name, text]) => {
        fs.writeFileSync(path.join(unitDir, name), text);
        return path.join(unitDir, name);
      });
      const r = run('systemd-analyze', ['verify', ...paths], { env: { ...process.env, SYSTEMD_UNIT_PATH: `${unitDir}:`, SYSTEMD_LOG_COLOR: '0' } });
      const absent = /: Command (\/usr\/bin\/docker|\/usr\/local\/lib\/scim-bridge\/[\w-]+) is not executable: No such file or directory$/;
      return { code: r.code, problems: (r.stdout + r.stderr).split('\n').filter((l) => l.trim() !== '' && !absent.test(l)) };
    };
    const probe = verify({ 'probe.service': '[Unit]\nDescription=probe\n[Service]\nExecStart=/bin/true\n' });
    if (probe.code !== 0 || probe.problems.length) {
      console.info(`host.test: systemd-analyze verify cannot run here (${probe.problems.join(' / ')}); unit files checked by parsing only`);
      return;
    }
    expect(verify(units).problems).toEqual([]);
    // Not vacuous: a misspelt key and a bad value are reported.
    expect(verify({ 'bad.service': '[Unit]\nDescription=bad\nAfterr=docker.service\n[Service]\nExecStart=/bin/true\nRestart=sometimes\n' }).problems).toHaveLength(2);
  });
});

// ---------------------------------------------------------------------------------------------------------

describe("the host's Caddyfile", () => {
  const caddyfile = hostCaddyfile(FULL);

  test('certificates on the data disk, no admin endpoint, the ACME directory and contact, proxy to the bridge\'s container', () => {
    expect(caddyfile).toContain('\tstorage file_system /data\n');
    expect(caddyfile).toContain('\tadmin off\n');
    expect(caddyfile).toContain(`\tacme_ca ${LETS_ENCRYPT.production}\n`);
    expect(caddyfile).toContain('\temail ops@example.com\n');
    expect(caddyfile).toContain('\treverse_proxy scim-bridge:8080\n');
    expect(caddyfile).toMatch(/^scim\.example\.com \{$/m);
    // /data in the container is the data disk's caddy/ directory.
    expect(systemdUnits(FULL)['scim-bridge-caddy.service']).toContain(`--volume ${MOUNT_POINT}/caddy:/data`);
  });

  test('the real Caddy adapts it to the configuration we mean', () => {
    need('caddy');
    const adapt = (text: string) => run('caddy', ['adapt', '--config', scratchFile('Caddyfile', text), '--adapter', 'caddyfile']);
    const r = adapt(caddyfile);
    expect(r.code).toBe(0);
    const config = JSON.parse(r.stdout);
    expect(config.admin).toEqual({ disabled: true });
    expect(config.storage).toEqual({ module: 'file_system', root: '/data' });
    const server = Object.values(config.apps.http.servers as Record<string, { listen: string[]; routes: unknown[] }>);
    expect(server).toHaveLength(1);
    expect(server[0].listen).toEqual([':443']);
    expect(JSON.stringify(server[0].routes)).toContain('"match":[{"host":["scim.example.com"]}]');
    expect(JSON.stringify(server[0].routes)).toContain('"handler":"reverse_proxy","upstreams":[{"dial":"scim-bridge:8080"}]');
    expect(config.apps.tls.automation.policies).toEqual([
      { subjects: ['scim.example.com'], issuers: [{ module: 'acme', ca: LETS_ENCRYPT.production, email: 'ops@example.com' }] },
    ]);
    // Not vacuous: Caddy refuses a directive it does not know.
    expect(adapt(caddyfile.replace('reverse_proxy', 'reverse_proxyy')).code).not.toBe(0);
  });
});

// ---------------------------------------------------------------------------------------------------------

describe('bad input is refused before anything is rendered', () => {
  test.each([
    ['a line break in the webhook URL', { webhookUrl: 'https://app.example.com/x\nSCIM_BRIDGE_TOKEN=oops' }],
    ['a carriage return in an allowed domain', { allowedDomains: ['example.com\r'] }],
    ['a NUL in an allowed domain', { allowedDomains: ['example.com\0'] }],
  ])('bridgeEnvironment: %s', (_what, change) => {
    const spec = { ...FULL, ...change } as HostSpec;
    expect(() => bridgeEnvironment(spec)).toThrow(/cannot hold a line break/);
    expect(() => renderUserData(spec)).toThrow(/cannot hold a line break/);
  });

  test.each([
    ['63 hex digits', ['a'.repeat(63)]],
    ['65 hex digits', ['a'.repeat(65)]],
    ['not hex', ['g'.repeat(64)]],
    ['upper case', [TOKEN_SHA256.toUpperCase()]],
    ['the clear token', [TOKEN]],
    ['no hash at all', []],
    ['one good, one bad', [TOKEN_SHA256, 'x']],
  ])('bridgeEnvironment: a token hash with %s', (_what, tokenSha256) => {
    expect(() => bridgeEnvironment({ ...FULL, tokenSha256 })).toThrow('host: tokenSha256 must hold hex SHA-256 digests');
  });

  test.each(['scim_bridge_webhook_secret', '1SECRET', 'SECRET-NAME', 'A B', 'A=B', '', 'X;rm -rf /', 'X\nY'])(
    'fetchSecretsScript: the environment variable name %j',
    (name) => {
      const spec = { ...FULL, tokenSha256: [TOKEN_SHA256], secrets: [{ env: name, command: 'gcp_secret projects/p/secrets/x' }] };
      expect(() => fetchSecretsScript(spec)).toThrow(/is not an environment variable name/);
      expect(() => renderUserData(spec)).toThrow(/is not an environment variable name/);
    },
  );

  test('good names and two secrets render one put each', () => {
    const script = fetchSecretsScript({
      ...FULL,
      secrets: [
        { env: 'SCIM_BRIDGE_WEBHOOK_SECRET', command: 'gcp_secret projects/p/secrets/a' },
        { env: 'B2_X', command: 'gcp_secret projects/p/secrets/b' },
      ],
    });
    expect(script.match(/^put /gm)).toHaveLength(2);
    // Every value fetched and checked first, then written.
    expect(script.endsWith('put webhook-secret "$value_0"\nput b2-x "$value_1"\n')).toBe(true);
  });
});
