/**
 * Container images without a registry or a Docker engine (TEST-PEERS.md): buildah builds bridge/Dockerfile
 * on two bases assembled from this machine, and podman runs the result. Everything (storage, podman's
 * state, temporary files) lives under one temp directory that `destroy()` removes.
 *
 * - The runtime base mimics gcr.io/distroless/nodejs20-debian12:nonroot: this machine's node at
 *   /nodejs/bin/node with exactly the shared libraries `ldd` lists, CA certificates, /etc/passwd and
 *   /etc/group with root, nobody and nonroot (65532), /tmp 1777; no shell, no package manager; ENTRYPOINT
 *   node, USER 65532.
 * - The build base stands in for node:20-bookworm without copying a toolchain: the usr-merged symlinks
 *   (/bin, /lib, /lib64, /sbin -> usr/…) over an empty /usr, onto which the build bind-mounts this machine's
 *   /usr read-only (node, npm, python3, make, g++ and node's headers are all there on Debian).
 */
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { which } from './pebble';

export const RUNTIME_BASE = 'localhost/scim-bridge-test/runtime-base:node20';
export const BUILD_BASE = 'localhost/scim-bridge-test/build-base:node20';

const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';

/** podman as TEST-PEERS.md says it runs here: runc, cgroupfs, events to a file, explicit ulimits. */
const CONTAINERS_CONF = `[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
log_driver = "k8s-file"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
`;

export interface CommandResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

class CommandError extends Error {
  constructor(readonly command: string, readonly result: CommandResult, readonly timedOut = false) {
    super(
      `${command} ${timedOut ? 'timed out' : `exited with ${result.code}`}` +
        `\n--- stdout ---\n${tail(result.stdout)}\n--- stderr ---\n${tail(result.stderr)}`,
    );
  }
}

export function tail(text: string, maxChars = 6000): string {
  const trimmed = text.trimEnd();
  return trimmed.length > maxChars ? `[... ${trimmed.length - maxChars} characters before]\n${trimmed.slice(-maxChars)}` : trimmed || '(nothing)';
}

/**
 * Whether buildah and podman can run on this machine at all: both on PATH, and buildah can create a
 * working container from scratch in a storage of its own (it cannot inside an unprivileged container).
 * Returns the reason when they cannot; the caller skips with it, loudly.
 */
export function containerToolsUnavailable(): string | undefined {
  const missing = ['buildah', 'podman', 'runc'].filter((name) => which(name) === undefined);
  if (missing.length > 0) {
    return `${missing.join(', ')} not on PATH (as root on Debian, bash test/setup.sh installs them: apt-get install buildah podman runc)`;
  }
  const dir = mkdtempSync(join(tmpdir(), 'scim-bridge-probe-'));
  try {
    const storage = ['--root', join(dir, 'root'), '--runroot', join(dir, 'run'), '--storage-driver', 'vfs'];
    const from = spawnSync('buildah', [...storage, 'from', '--name', 'probe', 'scratch'], { encoding: 'utf8', timeout: 30_000 });
    if (from.status !== 0) return `buildah cannot create a container here: ${(from.stderr || from.error?.message || '').trim()}`;
    spawnSync('buildah', [...storage, 'rm', 'probe'], { encoding: 'utf8', timeout: 30_000 });
    const info = spawnSync('podman', [...storage, '--tmpdir', join(dir, 'libpod'), 'info', '--format', '{{.Host.OCIRuntime.Name}}'], {
      encoding: 'utf8',
      timeout: 30_000,
      env: { ...process.env, CONTAINERS_CONF: writeConf(dir) },
    });
    if (info.status !== 0) return `podman cannot run here: ${(info.stderr || info.error?.message || '').trim()}`;
    return undefined;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function writeConf(dir: string): string {
  const file = join(dir, 'containers.conf');
  writeFileSync(file, CONTAINERS_CONF);
  return file;
}

/** Mount points at or under `dir` in this mount namespace (deepest first). */
function mountsUnder(dir: string): string[] {
  const prefix = dir.endsWith('/') ? dir : `${dir}/`;
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((point): point is string => point !== undefined && (point === dir || point.startsWith(prefix)))
    .map((point) => point.replace(/\\040/g, ' '))
    .sort((a, b) => b.length - a.length);
}

/** node's installation prefix (node at <prefix>/bin/node, npm under <prefix>/lib, headers under <prefix>/include). */
function nodePrefix(): string {
  return dirname(dirname(realpathSync(process.execPath)));
}

/** The files `ldd` says a binary loads (libraries and the dynamic loader), as the paths it names. */
function sharedLibraries(binary: string): string[] {
  const out = spawnSync('ldd', [binary], { encoding: 'utf8' });
  if (out.status !== 0) throw new Error(`ldd ${binary} failed: ${out.stderr || out.error?.message}`);
  const paths = new Set<string>();
  for (const line of out.stdout.split('\n')) {
    // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)" or "/lib64/ld-linux-x86-64.so.2 (0x…)"
    const m = /(?:=>\s*)?(\/\S+)\s+\(0x[0-9a-f]+\)/.exec(line);
    if (m) paths.add(m[1]);
  }
  if (paths.size === 0) throw new Error(`ldd ${binary} listed no libraries:\n${out.stdout}`);
  return [...paths];
}

export interface BuildOptions {
  dockerfile: string;
  context: string;
  tag: string;
  buildArgs: Record<string, string>;
}

export interface ImageInspect {
  Size: number;
  Config: {
    User?: string;
    Env?: string[];
    Entrypoint?: string[];
    Cmd?: string[] | null;
    WorkingDir?: string;
    ExposedPorts?: Record<string, unknown>;
    Labels?: Record<string, string>;
    Volumes?: Record<string, unknown> | null;
  };
  /** podman reports the HEALTHCHECK (Docker format only) at the top level. */
  Healthcheck?: { Test: string[]; Interval?: number; Timeout?: number; StartPeriod?: number; Retries?: number };
  History?: Array<{ created_by?: string; comment?: string }>;
}

/** One storage for buildah and podman under a temp directory, and the commands that use it. */
export class ContainerLab {
  readonly dir: string;
  private readonly storage: string[];
  private readonly podmanState: string[];
  private readonly env: NodeJS.ProcessEnv;

  constructor() {
    this.dir = mkdtempSync(join(tmpdir(), 'scim-bridge-image-'));
    this.storage = ['--root', join(this.dir, 'storage'), '--runroot', join(this.dir, 'run'), '--storage-driver', 'vfs'];
    // podman keeps its locks, exit codes and events under --tmpdir (else /run/libpod) and would write network
    // and volume state to /etc and /var: all of it here instead.
    this.podmanState = [
      '--tmpdir', join(this.dir, 'libpod'),
      '--network-config-dir', join(this.dir, 'networks'),
      '--volumepath', join(this.dir, 'volumes'),
      '--events-backend', 'file',
    ];
    const tmp = join(this.dir, 'tmp');
    mkdirSync(tmp);
    mkdirSync(join(this.dir, 'networks'));
    this.env = { ...process.env, CONTAINERS_CONF: writeConf(this.dir), TMPDIR: tmp };
  }

  /** Runs a command; rejects with its output when it exits non-zero or outlives `timeoutMs`. */
  run(command: string, args: string[], timeoutMs = 120_000): Promise<CommandResult> {
    const line = [command, ...args].join(' ');
    return new Promise((resolve, reject) => {
      const child = spawn(command, args, { env: this.env, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      let timedOut = false;
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
      const timer = setTimeout(() => {
        timedOut = true;
        child.kill('SIGKILL');
      }, timeoutMs);
      child.once('error', (err) => {
        clearTimeout(timer);
        reject(new CommandError(line, { code: null, stdout, stderr: `${stderr}\n${err.message}` }));
      });
      child.once('close', (code) => {
        clearTimeout(timer);
        const result = { code, stdout, stderr };
        if (code === 0 && !timedOut) resolve(result);
        else reject(new CommandError(line, result, timedOut));
      });
    });
  }

  buildah(args: string[], timeoutMs?: number): Promise<CommandResult> {
    return this.run('buildah', [...this.storage, ...args], timeoutMs);
  }

  podman(args: string[], timeoutMs?: number): Promise<CommandResult> {
    return this.run('podman', [...this.storage, ...this.podmanState, ...args], timeoutMs);
  }

  /** A working container from scratch, its root filesystem filled by `fill`, committed as `tag` with `config`. */
  private async assemble(tag: string, fill: (root: string) => void, config: string[]): Promise<string> {
    const container = (await this.buildah(['from', 'scratch'])).stdout.trim();
    try {
      const root = (await this.buildah(['mount', container])).stdout.trim();
      fill(root);
      await this.buildah(['umount', container]);
      await this.buildah(['config', ...config, container]);
      await this.buildah(['commit', '--quiet', '--format', 'docker', container, tag]);
    } finally {
      await this.buildah(['rm', container]).catch(() => undefined);
    }
    return tag;
  }

  /** The runtime base: what gcr.io/distroless/nodejs20-debian12:nonroot holds that node needs (see the top). */
  assembleRuntimeBase(tag = RUNTIME_BASE): Promise<string> {
    const node = realpathSync(process.execPath);
    const libraries = sharedLibraries(node);
    return this.assemble(
      tag,
      (root) => {
        mkdirSync(join(root, 'nodejs/bin'), { recursive: true });
        copyFileSync(node, join(root, 'nodejs/bin/node'));
        chmodSync(join(root, 'nodejs/bin/node'), 0o755);
        for (const library of libraries) {
          mkdirSync(join(root, dirname(library)), { recursive: true });
          copyFileSync(realpathSync(library), join(root, library));
          chmodSync(join(root, library), 0o755);
        }
        mkdirSync(join(root, 'etc/ssl/certs'), { recursive: true });
        if (existsSync(CA_BUNDLE)) copyFileSync(CA_BUNDLE, join(root, CA_BUNDLE));
        writeFileSync(
          join(root, 'etc/passwd'),
          'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n',
        );
        writeFileSync(join(root, 'etc/group'), 'root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n');
        mkdirSync(join(root, 'home/nonroot'), { recursive: true, mode: 0o700 });
        chownSync(join(root, 'home/nonroot'), 65532, 65532);
        mkdirSync(join(root, 'root'), { mode: 0o700 });
        mkdirSync(join(root, 'tmp'));
        chmodSync(join(root, 'tmp'), 0o1777);
      },
      ['--entrypoint', '["/nodejs/bin/node"]', '--user', '65532', '--env', `PATH=${PATH}`, '--env', `SSL_CERT_FILE=${CA_BUNDLE}`],
    );
  }

  /** The build base: usr-merged symlinks over an empty /usr (the build mounts this machine's), and a little /etc. */
  assembleBuildBase(tag = BUILD_BASE): Promise<string> {
    const prefix = nodePrefix();
    const extraCa = process.env.NODE_EXTRA_CA_CERTS;
    const env = [`PATH=${prefix.startsWith('/usr/') ? PATH : `${prefix}/bin:${PATH}`}`, 'HOME=/root', `npm_config_nodedir=${prefix}`, 'npm_config_update_notifier=false'];
    if (extraCa && existsSync(extraCa)) env.push(`NODE_EXTRA_CA_CERTS=${extraCa}`);
    return this.assemble(
      tag,
      (root) => {
        for (const dir of ['usr', 'etc/ssl/certs', 'tmp', 'root', 'var/tmp']) mkdirSync(join(root, dir), { recursive: true });
        chmodSync(join(root, 'tmp'), 0o1777);
        chmodSync(join(root, 'var/tmp'), 0o1777);
        chmodSync(join(root, 'root'), 0o700);
        for (const link of ['bin', 'lib', 'lib64', 'sbin']) symlinkSync(`usr/${link}`, join(root, link));
        // cc and c++ are /etc/alternatives links; the loader's cache finds libraries outside its default path.
        for (const path of ['/etc/alternatives', '/etc/ld.so.cache', '/etc/ld.so.conf', '/etc/ld.so.conf.d', CA_BUNDLE, extraCa]) {
          if (path && existsSync(path)) cpSync(path, join(root, path), { recursive: true, verbatimSymlinks: true, dereference: false });
        }
        writeFileSync(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
        writeFileSync(join(root, 'etc/group'), 'root:x:0:\n');
      },
      env.flatMap((e) => ['--env', e]),
    );
  }

  /**
   * A Caddy image from this machine's Debian caddy (no registry is reachable): the binary with exactly the
   * libraries it loads, CA certificates, and the official image's layout (XDG dirs /config and /data, the
   * Caddyfile at /etc/caddy/Caddyfile, `caddy run` as the command).
   */
  assembleCaddyImage(tag: string): Promise<string> {
    const caddy = realpathSync('/usr/bin/caddy');
    const libraries = sharedLibraries(caddy);
    return this.assemble(
      tag,
      (root) => {
        mkdirSync(join(root, 'usr/bin'), { recursive: true });
        copyFileSync(caddy, join(root, 'usr/bin/caddy'));
        chmodSync(join(root, 'usr/bin/caddy'), 0o755);
        for (const library of libraries) {
          mkdirSync(join(root, dirname(library)), { recursive: true });
          copyFileSync(realpathSync(library), join(root, library));
          chmodSync(join(root, library), 0o755);
        }
        mkdirSync(join(root, 'etc/ssl/certs'), { recursive: true });
        if (existsSync(CA_BUNDLE)) copyFileSync(CA_BUNDLE, join(root, CA_BUNDLE));
        writeFileSync(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/sbin/nologin\n');
        writeFileSync(join(root, 'etc/group'), 'root:x:0:\n');
        for (const dir of ['config', 'data', 'etc/caddy', 'tmp']) mkdirSync(join(root, dir), { recursive: true });
        chmodSync(join(root, 'tmp'), 0o1777);
      },
      [
        '--entrypoint', '["/usr/bin/caddy"]',
        '--cmd', '["run","--config","/etc/caddy/Caddyfile","--adapter","caddyfile"]',
        '--env', 'XDG_CONFIG_HOME=/config',
        '--env', 'XDG_DATA_HOME=/data',
        '--env', `PATH=${PATH}`,
      ],
    );
  }

  /** An image as a `docker load` archive, under the name given (what a registry pull of that name would give). */
  async saveArchive(ref: string, file: string, name: string): Promise<string> {
    rmSync(file, { force: true });
    await this.buildah(['push', '--quiet', ref, `docker-archive:${file}:${name}`], 300_000);
    return file;
  }

  /** Read-only bind mounts that give the build base its toolchain: /usr, and node's prefix when it is elsewhere. */
  toolchainVolumes(): string[] {
    const prefix = nodePrefix();
    const volumes = ['/usr:/usr:ro'];
    if (!prefix.startsWith('/usr/')) volumes.push(`${prefix}:${prefix}:ro`);
    return volumes;
  }

  /**
   * What the build base needs from this machine, checked up front so a missing piece is named rather than
   * found as a compiler error: node's headers (node-gyp offline) and python3, make and g++ under /usr.
   */
  toolchainProblems(): string[] {
    const prefix = nodePrefix();
    const problems: string[] = [];
    if (!existsSync(join(prefix, 'include/node/common.gypi'))) problems.push(`node's headers (${prefix}/include/node) are missing: node-gyp would download them`);
    if (!existsSync(join(prefix, 'lib/node_modules/npm'))) problems.push(`npm is not under ${prefix}/lib/node_modules`);
    for (const tool of ['python3', 'make', 'g++']) {
      if (!existsSync(`/usr/bin/${tool}`)) problems.push(`/usr/bin/${tool} is missing (apt-get install python3 make g++)`);
    }
    return problems;
  }

  /** `buildah bud` as `docker build` would, with the bases above and the npm registry reachable. */
  async build(options: BuildOptions, timeoutMs: number): Promise<CommandResult> {
    const args = [
      'bud',
      '--format', 'docker', // HEALTHCHECK exists only in Docker's image format
      '--isolation', 'chroot',
      '--network', 'host',
      '--jobs', '2', // the deps and build stages run side by side, as BuildKit runs them
      ...this.toolchainVolumes().flatMap((v) => ['--volume', v]),
      ...Object.entries(options.buildArgs).flatMap(([k, v]) => ['--build-arg', `${k}=${v}`]),
      '--file', options.dockerfile,
      '--tag', options.tag,
      options.context,
    ];
    return this.buildah(args, timeoutMs);
  }

  async inspectImage(ref: string): Promise<ImageInspect> {
    const out = await this.podman(['image', 'inspect', ref]);
    return (JSON.parse(out.stdout) as ImageInspect[])[0];
  }

  /** Removes every container and the whole directory; leaves the directory if something is still mounted in it. */
  async destroy(): Promise<void> {
    await this.podman(['rm', '--all', '--force', '--time', '0'], 60_000).catch(() => undefined);
    await this.buildah(['rm', '--all'], 60_000).catch(() => undefined);
    for (const point of mountsUnder(this.dir)) spawnSync('umount', ['--lazy', point]);
    const left = mountsUnder(this.dir);
    if (left.length > 0) {
      // Never recurse into a mount (the build mounts /usr): better a leftover directory than a damaged host.
      console.warn(`image test: left ${this.dir} in place, still mounted: ${left.join(', ')}`);
      return;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
