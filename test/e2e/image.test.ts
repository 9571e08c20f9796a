/**
 * The container image (bridge/Dockerfile), built here and run the way a VM host runs it.
 *
 * No registry is reachable, so buildah builds the real Dockerfile with its two bases passed as build
 * arguments: a runtime base that mimics distroless Node 20 and a build base that borrows this machine's
 * toolchain (test/helpers/image.ts). The npm registry is reachable, so `npm ci` and the better-sqlite3
 * compile happen inside the build as they would anywhere. podman then runs the image with the flags of the
 * host's systemd unit (infra/host: read-only root, no capabilities, uid 10001, /tmp in memory, /data
 * mounted), translated flag by flag, and the test provisions a user through it.
 *
 * Skipped, with a message saying why, only where buildah or podman cannot run at all (not installed, or
 * inside an unprivileged container); test/setup.sh installs them on Debian as root.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chownSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BRIDGE_UID, bridgeEnvironment, CONTAINER_SECRETS_DIR, DOCKER_NETWORK, HostSpec, MOUNT_POINT, SECRETS_DIR, systemdUnits } from '../../infra/host';
import { probe, probeAddress } from '../../bridge/src/healthcheck';
import { startBridge, TestBridge, USER_SCHEMA } from '../helpers/bridge';
import { bridgeImageCache, gitRevision } from '../helpers/boot-images';
import { bridgeCommand } from '../helpers/bridge-build';
import { BUILD_BASE, ContainerLab, containerToolsUnavailable, ImageInspect, RUNTIME_BASE, tail } from '../helpers/image';
import { freePort, GiveUp, httpRequest, poll, Response } from '../helpers/pebble';

const ROOT = join(__dirname, '../..');
const IMAGE = 'localhost/scim-bridge-test/bridge:test';
const TOKEN = 'image-test-token-0123456789abcdef';
const TOKEN_SHA256 = createHash('sha256').update(TOKEN).digest('hex');

/** The target is on the image as shipped; sizes in MB as `docker images` shows them (10^6 bytes). */
const MB = 1_000_000;
const TARGET_MB = 150;
/**
 * gcr.io/distroless/nodejs20-debian12, estimated from above: Node 20's binary (about 99 MB) plus
 * cc-debian12 (glibc, libstdc++, libssl3, CA certificates, tzdata: about 25 MB). The local base holds the
 * same node and only the libraries it loads, so it is smaller; the bridge's own layers must fit beside the
 * real base.
 */
const DISTROLESS_NODEJS20_MB = 130;

const bridgePackage = JSON.parse(readFileSync(join(ROOT, 'bridge/package.json'), 'utf8')) as { version: string; dependencies: Record<string, string> };
const rootPackage = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  license: string;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};

// ---------------------------------------------------------------------------------------------------------
// The health check script, in-process: runs everywhere, containers or not.

describe('the image\'s health check (bridge/src/healthcheck.ts)', () => {
  let bridge: TestBridge | undefined;
  beforeAll(async () => {
    bridge = await startBridge();
  });
  afterAll(async () => {
    await bridge?.stop();
  });

  test('connects to loopback when the bridge listens on every address, else to the address it listens on', () => {
    expect(probeAddress('0.0.0.0')).toBe('127.0.0.1');
    expect(probeAddress('::')).toBe('::1');
    expect(probeAddress('[::]')).toBe('::1');
    expect(probeAddress('127.0.0.1')).toBe('127.0.0.1');
    expect(probeAddress('10.1.2.3')).toBe('10.1.2.3');
  });

  test('exits 0 while the bridge answers /healthz and 1 when nothing listens, saying where it looked', async () => {
    const port = Number(new URL(bridge!.url).port);
    expect(await probe('127.0.0.1', port)).toBe(200);
    // Asynchronously: the bridge answers from this process's event loop.
    const [node, healthcheck] = bridgeCommand('healthcheck');
    const run = (env: Record<string, string>) =>
      new Promise<{ status: number | null; stderr: string }>((resolve) => {
        const child = execFile(
          node,
          [healthcheck],
          { cwd: ROOT, env: { ...process.env, SCIM_BRIDGE_HOST: '', SCIM_BRIDGE_PORT: '', ...env } },
          (_err, _stdout, stderr) => resolve({ status: child.exitCode, stderr }),
        );
      });
    const healthy = await run({ SCIM_BRIDGE_HOST: '0.0.0.0', SCIM_BRIDGE_PORT: String(port) });
    expect(healthy).toEqual({ status: 0, stderr: '' });
    const closed = await freePort();
    const down = await run({ SCIM_BRIDGE_HOST: '127.0.0.1', SCIM_BRIDGE_PORT: String(closed) });
    expect(down.status).toBe(1);
    expect(down.stderr).toContain(`healthcheck: http://127.0.0.1:${closed}/healthz: connect ECONNREFUSED`);
  });
});

// ---------------------------------------------------------------------------------------------------------
// The image itself.

const unavailable = containerToolsUnavailable();
if (unavailable) {
  console.warn(
    `SKIPPING the container image tests (test/e2e/image.test.ts): buildah/podman cannot run here: ${unavailable}. ` +
      'bridge/Dockerfile is NOT built or run by this test run.',
  );
}
const describeImage = unavailable ? describe.skip : describe;

/** The host's `docker run` for the bridge (infra/host's systemd unit) for a spec with this test's token. */
function hostDockerRun(): { flags: string[]; spec: HostSpec } {
  const spec: HostSpec = {
    image: IMAGE,
    caddyImage: 'caddy-image-unused',
    domain: 'scim.test',
    acme: { email: 'image-test@example.com', directory: 'https://acme.invalid/directory' },
    allowedDomains: [],
    dataDevice: '/dev/disk/by-id/unused',
    logging: { driver: 'journald' },
    // As on GCP and AWS: the accepted token hashes come as a file that fetch-secrets keeps current (SCIM_BRIDGE_TOKEN_SHA256_FILE).
    secrets: [{ env: 'SCIM_BRIDGE_TOKEN_SHA256', command: 'unused-here' }],
  };
  const exec = /^ExecStart=(.+)$/m.exec(systemdUnits(spec)['scim-bridge.service'])?.[1];
  if (!exec) throw new Error('infra/host: the scim-bridge unit has no ExecStart');
  const words = exec.trim().split(/\s+/);
  expect(words.slice(0, 2)).toEqual(['/usr/bin/docker', 'run']);
  expect(words[words.length - 1]).toBe(IMAGE);
  return { flags: words.slice(2, -1), spec };
}

interface Run {
  name: string;
  port: number;
}

/**
 * The host's docker flags as podman flags, one by one; a flag this does not know fails the test (the host
 * recipe changed: teach it here). The only additions are podman's own: no tmpfs on /tmp, /var/tmp and /run
 * behind --read-only unless asked (Docker adds none), and no --rm so the exit code can be read after a stop.
 */
function podmanFlags(hostFlags: string[], files: { envFile: string; secretsFile: string; secretsDir: string; dataDir: string; name: string }): string[] {
  const out: string[] = [];
  for (let i = 0; i < hostFlags.length; i++) {
    const flag = hostFlags[i];
    const value = () => {
      const v = hostFlags[++i];
      if (v === undefined) throw new Error(`host flag ${flag} has no value`);
      return v;
    };
    switch (flag) {
      case '--rm':
        break;
      case '--name':
        value();
        out.push('--name', files.name);
        break;
      case '--read-only':
        out.push('--read-only', '--read-only-tmpfs=false');
        break;
      case '--network': {
        // The host's containers share a user-defined Docker network (cut off from the metadata service: the boot
        // test proves it in a VM); here the test reaches the container on this machine's loopback.
        const network = value();
        if (network !== DOCKER_NETWORK) throw new Error(`host --network ${network}: unknown to this test`);
        out.push('--network', 'host');
        break;
      }
      case '--cap-drop':
      case '--cap-add':
      case '--security-opt':
      case '--user':
      case '--tmpfs':
      case '--memory':
        out.push(flag, value());
        break;
      case '--env-file': {
        const file = value();
        if (file.endsWith('/bridge.env')) out.push('--env-file', files.envFile);
        else if (file.endsWith('/secrets.env')) out.push('--env-file', files.secretsFile);
        else throw new Error(`host --env-file ${file}: unknown to this test`);
        break;
      }
      case '--volume': {
        const v = value();
        if (v === `${MOUNT_POINT}/data:/data`) out.push('--volume', `${files.dataDir}:/data`);
        else if (v === `${SECRETS_DIR}:${CONTAINER_SECRETS_DIR}:ro`) out.push('--volume', `${files.secretsDir}:${CONTAINER_SECRETS_DIR}:ro`);
        else throw new Error(`host --volume ${v}: unknown to this test`);
        break;
      }
      default:
        throw new Error(`the host runs the bridge with ${flag}, which this test does not translate to podman yet`);
    }
  }
  return out;
}

describeImage('the container image (bridge/Dockerfile), built without a registry and run as a host runs it', () => {
  let lab: ContainerLab;
  let image: ImageInspect;
  let base: ImageInspect;
  let dataDir = '';
  let host: ReturnType<typeof hostDockerRun>;
  const runs: Run[] = [];

  async function logsOf(name: string): Promise<string> {
    const out = await lab.podman(['logs', name]).catch((err: Error) => ({ stdout: '', stderr: err.message }));
    return `\n----- podman logs ${name} -----\n${tail(`${out.stdout}${out.stderr}`)}\n`;
  }

  async function state(name: string): Promise<{ Running: boolean; ExitCode: number; Pid: number; Status: string }> {
    return JSON.parse((await lab.podman(['inspect', '--format', '{{json .State}}', name])).stdout);
  }

  /** Starts a container of the image as the host would and waits until /healthz answers. */
  async function start(): Promise<Run> {
    const run: Run = { name: `scim-bridge-test-${runs.length + 1}`, port: await freePort() };
    runs.push(run);
    const env = bridgeEnvironment(host.spec);
    // The host's port is 8080; this machine may use it, so one line differs: the port.
    expect(env).toMatch(/^SCIM_BRIDGE_PORT=8080$/m);
    const envFile = join(lab.dir, `${run.name}.env`);
    const secretsFile = join(lab.dir, `${run.name}-secrets.env`);
    writeFileSync(envFile, env.replace(/^SCIM_BRIDGE_PORT=.*$/m, `SCIM_BRIDGE_PORT=${run.port}`), { mode: 0o600 });
    writeFileSync(secretsFile, '', { mode: 0o600 });
    // What fetch-secrets writes on a host: root's directory and files, readable by the bridge's group only.
    const secretsDir = join(lab.dir, `${run.name}-secrets`);
    mkdirSync(secretsDir, { mode: 0o750 });
    writeFileSync(join(secretsDir, 'token-sha256'), `${TOKEN_SHA256}\n`, { mode: 0o440 });
    for (const p of [secretsDir, join(secretsDir, 'token-sha256')]) chownSync(p, 0, BRIDGE_UID);
    const flags = podmanFlags(host.flags, { envFile, secretsFile, secretsDir, dataDir, name: run.name });
    await lab.podman(['run', '--detach', ...flags, IMAGE]);
    await poll(
      `${run.name} to answer /healthz on 127.0.0.1:${run.port}`,
      30_000,
      100,
      async () => {
        const s = await state(run.name);
        if (!s.Running) throw new GiveUp(`${run.name} is ${s.Status} (exit code ${s.ExitCode})${await logsOf(run.name)}`);
        const res = await request(run, 'GET', '/healthz');
        return res.status === 200 && res;
      },
    );
    return run;
  }

  function request(run: Run, method: string, path: string, body?: unknown): Promise<Response> {
    return httpRequest({
      port: run.port,
      hostname: '127.0.0.1',
      method,
      path,
      headers: { Authorization: `Bearer ${TOKEN}`, Accept: 'application/scim+json', ...(body ? { 'Content-Type': 'application/scim+json' } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  }

  beforeAll(async () => {
    lab = new ContainerLab();
    const problems = lab.toolchainProblems();
    if (problems.length > 0) throw new Error(`the build base borrows this machine's toolchain: ${problems.join('; ')}`);
    host = hostDockerRun();
    const started = Date.now();
    await lab.assembleRuntimeBase();
    await lab.assembleBuildBase();
    const basesDone = Date.now();
    // The boot test runs the same image: whichever of the two comes first builds it, the other loads the archive
    // (cached by a hash of everything the build reads: a changed checkout builds again).
    const cache = bridgeImageCache();
    let how = 'built';
    if (existsSync(cache.archive)) {
      await lab.podman(['load', '--quiet', '--input', cache.archive], 300_000);
      await lab.podman(['tag', cache.name, IMAGE]);
      how = 'loaded from the build cache';
    } else {
      await lab.build(
        {
          dockerfile: join(ROOT, 'bridge/Dockerfile'),
          context: ROOT,
          tag: IMAGE,
          buildArgs: { BUILD_IMAGE: BUILD_BASE, BASE_IMAGE: RUNTIME_BASE, VERSION: bridgePackage.version, REVISION: gitRevision() },
        },
        480_000,
      );
      await lab.saveArchive(IMAGE, `${cache.archive}.tmp`, cache.name);
      renameSync(`${cache.archive}.tmp`, cache.archive);
    }
    const built = Date.now();
    image = await lab.inspectImage(IMAGE);
    base = await lab.inspectImage(RUNTIME_BASE);
    dataDir = join(lab.dir, 'data');
    // As the host's prepare-disk leaves it: owned by the bridge's uid.
    mkdirSync(dataDir, { mode: 0o750 });
    chownSync(dataDir, BRIDGE_UID, BRIDGE_UID);
    console.log(
      `image test: bases assembled in ${((basesDone - started) / 1000).toFixed(1)} s, image ${how} in ` +
        `${((built - basesDone) / 1000).toFixed(1)} s; image ${(image.Size / MB).toFixed(1)} MB = local base ` +
        `${(base.Size / MB).toFixed(1)} MB + the bridge's layers ${((image.Size - base.Size) / MB).toFixed(1)} MB`,
    );
  }, 600_000);

  afterAll(async () => {
    await lab?.destroy();
  }, 120_000);

  test(`is under ${TARGET_MB} MB, with the bridge's own layers small enough for the real distroless base too`, () => {
    const own = image.Size - base.Size;
    expect(image.Size).toBeLessThan(TARGET_MB * MB);
    expect(own).toBeGreaterThan(0);
    expect(own).toBeLessThan((TARGET_MB - DISTROLESS_NODEJS20_MB) * MB);
  });

  test('is configured to run as uid 10001 with its database on /data, a HEALTHCHECK, OCI labels and no secrets', () => {
    const config = image.Config;
    expect(config.User).toBe(`${BRIDGE_UID}:${BRIDGE_UID}`);
    expect(config.Entrypoint).toEqual(['/nodejs/bin/node', '--max-semi-space-size=2', '/app/bridge/dist/main.js']);
    expect(config.Cmd ?? []).toEqual([]);
    expect(config.WorkingDir).toBe('/app/bridge');
    expect(Object.keys(config.ExposedPorts ?? {})).toEqual(['8080/tcp']);
    // No VOLUME: an anonymous volume would silently hold (and `docker run --rm` delete) the database.
    expect(Object.keys(config.Volumes ?? {})).toEqual([]);
    expect(config.Env).toEqual(
      expect.arrayContaining(['NODE_ENV=production', 'SCIM_BRIDGE_HOST=0.0.0.0', 'SCIM_BRIDGE_PORT=8080', 'SCIM_BRIDGE_DATABASE_URL=sqlite:/data/scim-bridge.db']),
    );
    expect((config.Env ?? []).filter((e) => /TOKEN|SECRET|PASSWORD/i.test(e.split('=')[0]))).toEqual([]);
    expect(image.Healthcheck?.Test).toEqual(['CMD', '/nodejs/bin/node', '/app/bridge/dist/healthcheck.js']);
    expect(config.Labels).toMatchObject({
      'org.opencontainers.image.title': 'scim-bridge',
      'org.opencontainers.image.source': 'https://github.com/scim-bridge/scim-bridge',
      'org.opencontainers.image.version': bridgePackage.version,
      'org.opencontainers.image.licenses': rootPackage.license,
      'org.opencontainers.image.base.name': RUNTIME_BASE,
    });
    expect(config.Labels?.['org.opencontainers.image.revision']).toMatch(/^([0-9a-f]{40}|unknown)$/);
    // Nothing of a token in the configuration or the build history (this build never saw one; a future
    // ARG or ENV carrying one would show here).
    const everything = JSON.stringify(image);
    expect(everything).not.toContain(TOKEN);
    expect(everything).not.toContain(TOKEN_SHA256);
    expect((image.History ?? []).filter((h) => /TOKEN|SECRET|PASSWORD/i.test(h.created_by ?? ''))).toEqual([]);
  });

  test('holds compiled code and production dependencies only: no sources, no dev or Pulumi packages, no build leftovers', async () => {
    const script = `
      const fs = require('fs');
      const ls = (p) => { try { return fs.readdirSync(p).sort(); } catch { return null; } };
      const modules = [];
      for (const n of fs.readdirSync('/app/node_modules')) {
        if (n.startsWith('.')) continue;
        if (n.startsWith('@')) for (const m of fs.readdirSync('/app/node_modules/' + n)) modules.push(n + '/' + m);
        else modules.push(n);
      }
      const walk = (d) => fs.readdirSync(d, { withFileTypes: true }).flatMap((e) => e.isDirectory() ? walk(d + '/' + e.name) : [d + '/' + e.name]);
      const data = fs.statSync('/data');
      console.log(JSON.stringify({
        app: ls('/app'), bridge: ls('/app/bridge'), dist: walk('/app/bridge/dist'), modules,
        release: ls('/app/node_modules/better-sqlite3/build/Release'), sqliteSources: ls('/app/node_modules/better-sqlite3/deps'),
        data: { uid: data.uid, gid: data.gid },
      }));`;
    const out = await lab.podman(['run', '--rm', '--network', 'none', '--read-only', '--entrypoint', '/nodejs/bin/node', IMAGE, '-e', script]);
    const seen = JSON.parse(out.stdout);
    expect(seen.app).toEqual(['bridge', 'node_modules']);
    expect(seen.bridge).toEqual(['dist', 'node_modules', 'package.json']);
    expect(seen.dist).toEqual(expect.arrayContaining(['/app/bridge/dist/main.js', '/app/bridge/dist/healthcheck.js', '/app/bridge/dist/server.js']));
    expect(seen.dist.filter((f: string) => f.endsWith('.ts'))).toEqual([]);
    expect(seen.modules).toEqual(expect.arrayContaining(Object.keys(bridgePackage.dependencies)));
    const rootOnly = [...Object.keys(rootPackage.dependencies), ...Object.keys(rootPackage.devDependencies)].filter((n) => !(n in bridgePackage.dependencies));
    expect(seen.modules.filter((m: string) => rootOnly.includes(m) || m.startsWith('@pulumi/') || m.startsWith('@types/'))).toEqual([]);
    expect(seen.release).toEqual(['better_sqlite3.node']);
    expect(seen.sqliteSources).toBeNull();
    expect(seen.data).toEqual({ uid: BRIDGE_UID, gid: BRIDGE_UID });
  });

  describe('run as the host runs it: read-only root, no capabilities, uid 10001, /tmp in memory, /data mounted', () => {
    let first: Run;
    let userId = '';

    test('starts, answers /healthz and provisions a user into /data, as uid 10001 without capabilities', async () => {
      expect(host.flags).toEqual(expect.arrayContaining(['--read-only', '--user', `${BRIDGE_UID}:${BRIDGE_UID}`, '--cap-drop', 'ALL']));
      first = await start();
      const created = await request(first, 'POST', '/Users', {
        schemas: [USER_SCHEMA],
        userName: 'ada@example.com',
        name: { givenName: 'Ada', familyName: 'Lovelace' },
      });
      expect({ status: created.status, body: created.body }).toMatchObject({ status: 201 });
      const user = JSON.parse(created.body);
      userId = user.id;
      expect(user.displayName).toBe('Ada Lovelace');
      const read = await request(first, 'GET', `/Users/${userId}`);
      expect(read.status).toBe(200);
      expect(JSON.parse(read.body).userName).toBe('ada@example.com');
      expect((await httpRequest({ port: first.port, hostname: '127.0.0.1', path: '/Users' })).status).toBe(401);

      // The database is on the mounted directory, owned by the bridge's uid; nothing else was written there.
      const db = statSync(join(dataDir, 'scim-bridge.db'));
      expect({ uid: db.uid, gid: db.gid }).toEqual({ uid: BRIDGE_UID, gid: BRIDGE_UID });
      expect(readdirSync(dataDir).filter((f) => !/^scim-bridge\.db(-wal|-shm)?$/.test(f))).toEqual([]);

      // The process, as the kernel sees it: uid and gid 10001, no effective capabilities, no new privileges.
      const pid = (await state(first.name)).Pid;
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      const field = (name: string) => new RegExp(`^${name}:\\s*(.+)$`, 'm').exec(status)?.[1].trim().split(/\s+/);
      expect(field('Uid')).toEqual(Array(4).fill(String(BRIDGE_UID)));
      expect(field('Gid')).toEqual(Array(4).fill(String(BRIDGE_UID)));
      expect(field('CapEff')).toEqual(['0000000000000000']);
      expect(field('NoNewPrivs')).toEqual(['1']);
    }, 60_000);

    test('its HEALTHCHECK command passes while it serves', async () => {
      // podman runs the image's HEALTHCHECK itself (its periodic timer needs systemd, absent here)...
      await lab.podman(['healthcheck', 'run', first.name]);
      expect((await lab.podman(['inspect', '--format', '{{.State.Health.Status}}', first.name])).stdout.trim()).toBe('healthy');
      // ...and the same command run by hand in the container exits 0.
      const [, ...command] = image.Healthcheck!.Test;
      await lab.podman(['exec', first.name, ...command]);
    }, 60_000);

    test('cannot write outside /data and /tmp', async () => {
      const script = `
        const fs = require('fs');
        const tryWrite = (p) => { try { fs.writeFileSync(p, 'x'); fs.unlinkSync(p); return 'ok'; } catch (e) { return e.code; } };
        console.log(JSON.stringify(['/app/bridge/x', '/x', '/etc/x', '/tmp/x', '/data/probe'].map(tryWrite)));`;
      const out = await lab.podman(['exec', first.name, '/nodejs/bin/node', '-e', script]);
      expect(JSON.parse(out.stdout)).toEqual(['EROFS', 'EROFS', 'EROFS', 'ok', 'ok']);
    }, 60_000);

    test('carries the operator\'s command on its PATH: `scim-bridge backup` copies the running bridge\'s database, `token new` makes a token', async () => {
      // As `docker exec scim-bridge scim-bridge ...` on a host: the container's environment names the database.
      const backup = await lab.podman(['exec', first.name, 'scim-bridge', 'backup', '/tmp/backup.db']);
      expect(backup.stdout).toMatch(/^backup: \/tmp\/backup\.db \(\d+ bytes\): 1 users, 0 groups/);
      expect(backup.stderr).toMatch(/pages copied \(100%\)/);
      const token = await lab.podman(['exec', first.name, 'scim-bridge', 'token', 'new']);
      expect(token.stdout).toMatch(/^token: [A-Za-z0-9_-]{43}\nsha256: [0-9a-f]{64}\n$/);
    }, 60_000);

    test('stops on SIGTERM (podman stop) with exit code 0 within 10 s; a new container on the same /data still has the user', async () => {
      const stopping = Date.now();
      await lab.podman(['stop', '--time', '10', first.name], 30_000);
      const elapsed = Date.now() - stopping;
      const stopped = await state(first.name);
      expect({ status: stopped.Status, exitCode: stopped.ExitCode, logs: stopped.ExitCode === 0 ? '' : await logsOf(first.name) }).toEqual({
        status: 'exited',
        exitCode: 0,
        logs: '',
      });
      expect(elapsed).toBeLessThan(10_000);

      const second = await start();
      const read = await request(second, 'GET', `/Users/${userId}`);
      expect({ status: read.status, body: read.body }).toMatchObject({ status: 200 });
      expect(JSON.parse(read.body).userName).toBe('ada@example.com');
      await lab.podman(['stop', '--time', '10', second.name], 30_000);
      expect((await state(second.name)).ExitCode).toBe(0);
    }, 90_000);

    test('without /data mounted, on its read-only root, it refuses to start rather than keep data nowhere', async () => {
      const flags = podmanFlags(host.flags, { envFile: join(lab.dir, 'none.env'), secretsFile: join(lab.dir, 'none.env'), secretsDir: lab.dir, dataDir, name: 'scim-bridge-test-no-data' });
      writeFileSync(join(lab.dir, 'none.env'), `SCIM_BRIDGE_HOST=127.0.0.1\nSCIM_BRIDGE_PORT=${await freePort()}\nSCIM_BRIDGE_TOKEN_SHA256=${TOKEN_SHA256}\n`);
      const withoutVolume = flags.filter((f, i) => f !== '--volume' && flags[i - 1] !== '--volume');
      await lab.podman(['run', '--detach', ...withoutVolume, IMAGE]);
      const exited = await poll('the container without /data to exit', 30_000, 100, async () => {
        const s = await state('scim-bridge-test-no-data');
        return !s.Running && s.Status === 'exited' && s;
      });
      expect(exited.ExitCode).not.toBe(0);
      expect(await logsOf('scim-bridge-test-no-data')).toMatch(/scim-bridge: failed to start: .*(readonly|read-only|unable to open)/i);
    }, 60_000);
  });
});
