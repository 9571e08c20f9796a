/**
 * Real first boots of a VM host on this machine (TEST-PEERS.md): a Debian 12 cloud image built with mmdebstrap,
 * booted by QEMU (TCG: the machine's /dev/kvm cannot run a stock kernel) straight from its kernel and initrd,
 * with a NoCloud seed carrying a target's user-data UNCHANGED, a data disk, and user-mode networking.
 *
 * What the test changes around the user-data (the seams), each named where it is made:
 *  - SEAM image: docker.io is preinstalled in the base image (without its Recommends, so without apparmor),
 *    because installing it under TCG takes ~3 more minutes per boot; everything else the user-data lists
 *    (apparmor, curl, jq, e2fsprogs, unattended-upgrades, …) is installed from Debian's mirror during the boot.
 *    The image also refuses Recommends everywhere (the strictest cloud image), so the recipe cannot lean on them.
 *  - SEAM images: no registry is reachable, so the bridge's and Caddy's images reach the VM as `docker load`
 *    archives on a "test kit" disk, loaded by a unit of the test's before the two container units start.
 *  - SEAM Docker store: that `docker load` costs about 90 s of emulated CPU per boot (Docker pipes every layer
 *    through a re-executed dockerd; the bytes themselves take a few seconds), more than anything the user-data
 *    does, where a registry pull on a real cloud takes seconds. So it runs once per pair of images: a throwaway VM
 *    of the same base image loads them into a blank disk that the test caches (dockerStore), and every VM mounts a
 *    copy-on-write copy of it at /var/lib/docker; the load unit then finds the images there (its marks are in the
 *    store) and loads nothing. Docker itself, its configuration and everything the user-data does are untouched.
 *  - SEAM disk name: the clouds name the data disk (/dev/disk/by-id/google-…, scsi-0DO_Volume_…, nvme-Amazon_…);
 *    QEMU's virtio disk has its own. A udev rule in the image adds the target's name (given on the kernel command
 *    line) to the disk whose serial is `scim-bridge-data`.
 *  - SEAM datasource: cloud-init is told its datasource is NoCloud, so it never probes the fake metadata server.
 *  - SEAM emulation: the CPU model QEMU emulates and the kernel arguments of the guest (GUEST_CPU,
 *    EMULATION_KERNEL_ARGS) are the test's, chosen for what an emulated guest costs, not for what a cloud gives;
 *    bench/vm-emulation.ts measures a choice in QEMU CPU-seconds. See GUEST_CPU for what was measured.
 *  - SEAM clouds: a fake metadata server answers on 169.254.169.254 as GCP and AWS do (guestfwd), and a fake
 *    secret store answers as Secret Manager and Secrets Manager on their real host names (the kit adds them to
 *    /etc/hosts and adds the test CA that signs their certificate to the VM's trust store).
 *
 * The base image is cached between runs under SCIM_BRIDGE_TEST_CACHE (default /var/cache/scim-bridge-test),
 * keyed by its recipe; without the cache it is built (about a minute on a quiet machine). The Docker store is
 * cached beside it, keyed by the base image and the two image archives (about 3 minutes of TCG to make).
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { GiveUp, ManagedProcess, poll, sleep } from './pebble';

export const DATA_SERIAL = 'scim-bridge-data';
export const KIT_LABEL = 'scimtestkit';
/** The label of the Docker store disk (SEAM Docker store), mounted at /var/lib/docker. */
export const DOCKER_STORE_LABEL = 'scimdocker';
/**
 * QEMU's user network, made link-local (169.254.0.0/16) because QEMU forwards guest connections (guestfwd) only to
 * addresses inside it, and the metadata service must be at 169.254.169.254. The guest reaches this machine's
 * loopback at .0.2, and our fake cloud APIs at .0.100.
 */
export const GUEST_NETWORK = '169.254.0.0/16';
export const HOST_FROM_GUEST = '169.254.0.2';
export const FAKE_API_ADDRESS = '169.254.0.100';
export const METADATA_ADDRESS = '169.254.169.254';

export function cacheDir(): string {
  const wanted = process.env.SCIM_BRIDGE_TEST_CACHE ?? '/var/cache/scim-bridge-test';
  try {
    mkdirSync(wanted, { recursive: true });
    return wanted;
  } catch {
    const fallback = join(tmpdir(), 'scim-bridge-test-cache');
    mkdirSync(fallback, { recursive: true });
    return fallback;
  }
}

/** A command that must succeed; its output on failure. */
export function must(command: string, args: string[], options: { cwd?: string; timeoutMs?: number; input?: string } = {}): string {
  const r = spawnSync(command, args, { cwd: options.cwd, encoding: 'utf8', timeout: options.timeoutMs ?? 600_000, input: options.input, maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) {
    throw new Error(`${command} ${args.join(' ')} failed (${r.error?.message ?? `exit ${r.status}`}):\n${(r.stdout ?? '').slice(-3000)}\n${(r.stderr ?? '').slice(-3000)}`);
  }
  return r.stdout;
}

/** Asynchronous `must`, so that jest's timers and other servers keep running during long commands. */
export function run(command: string, args: string[], timeoutMs = 900_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (e) => reject(e));
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`${command} ${args.join(' ')} exited with ${code}:\n${out.slice(-3000)}\n${err.slice(-3000)}`));
    });
  });
}

// ---------------------------------------------------------------------------------------------------------
// The base image

const SUITE = 'bookworm';
const PACKAGES = [
  'systemd-sysv', 'udev', 'dbus', 'linux-image-cloud-amd64', 'initramfs-tools', 'cloud-init', 'ifupdown', 'isc-dhcp-client',
  'ca-certificates', 'iproute2', 'locales', 'e2fsprogs', 'qemu-guest-agent',
  // What the clouds' images (Ubuntu 24.04, Debian 12) already have; the user-data lists them all the same.
  'curl', 'unattended-upgrades',
  // SEAM image: preinstalled to save ~3 minutes of TCG per boot (see the top); its Recommends (apparmor) are not.
  'docker.io',
];

/** Files the test puts in the base image (the seams), path -> [mode, content]. */
function seamFiles(): Record<string, [number, string]> {
  return {
    // The locale a cloud image comes with (cloud-init would otherwise spend 20 s of TCG regenerating it).
    '/etc/default/locale': [0o644, 'LANG=en_US.UTF-8\n'],
    // The root disk by its label: QEMU's order of virtio disks is not the command line's. SEAM Docker store: Docker's
    // data directory on a disk of its own, mounted before anything starts Docker (local-fs.target).
    '/etc/fstab': [0o644, `LABEL=root / ext4 defaults,noatime 0 1\nLABEL=${DOCKER_STORE_LABEL} /var/lib/docker ext4 defaults,noatime 0 0\n`],
    // SEAM datasource.
    '/etc/cloud/cloud.cfg.d/90-scim-test.cfg': [0o644, 'datasource_list: [ NoCloud, None ]\n'],
    // The strictest image: no Recommends, so the host recipe must list everything it needs.
    '/etc/apt/apt.conf.d/90-scim-test-no-recommends': [0o644, 'APT::Install-Recommends "false";\n'],
    // No package descriptions in other languages: 6 MB less to fetch and unpack under TCG at every first boot.
    '/etc/apt/apt.conf.d/90-scim-test-no-translations': [0o644, 'Acquire::Languages "none";\n'],
    // SEAM disk name.
    '/etc/udev/rules.d/61-scim-test-datadisk.rules': [
      0o644,
      `ACTION=="add|change", SUBSYSTEM=="block", ENV{DEVTYPE}=="disk", ATTRS{serial}=="${DATA_SERIAL}", PROGRAM="/usr/local/lib/scim-test/datadisk-name", SYMLINK+="%c"\n`,
    ],
    '/usr/local/lib/scim-test/datadisk-name': [
      0o755,
      '#!/bin/sh\n# The cloud\'s name for the data disk, from the kernel command line (scimtest.datadisk=/dev/disk/by-id/...).\nfor word in $(cat /proc/cmdline); do\n  case $word in scimtest.datadisk=/dev/*) echo "${word#scimtest.datadisk=/dev/}"; exit 0 ;; esac\ndone\nexit 1\n',
    ],
    // SEAM images and SEAM clouds: the kit disk.
    '/etc/systemd/system/scim-test-kit.service': [
      0o644,
      [
        '[Unit]',
        'Description=scim-bridge boot test: the test kit (container images, test CA, fake API names)',
        'DefaultDependencies=no',
        'After=local-fs.target systemd-udev-settle.service',
        'Before=cloud-init.service cloud-config.service docker.service',
        '',
        '[Service]',
        'Type=oneshot',
        'RemainAfterExit=yes',
        'ExecStart=/usr/local/lib/scim-test/kit',
        '',
        '[Install]',
        'WantedBy=sysinit.target',
        '',
      ].join('\n'),
    ],
    '/usr/local/lib/scim-test/kit': [
      0o755,
      [
        '#!/bin/sh',
        'set -eu',
        `dev=/dev/disk/by-label/${KIT_LABEL}`,
        'i=0; while [ ! -e "$dev" ] && [ $i -lt 60 ]; do sleep 1; i=$((i+1)); done',
        'mkdir -p /run/scim-test-kit',
        'mountpoint -q /run/scim-test-kit || mount -o ro "$dev" /run/scim-test-kit',
        '# Appended to the bundle curl reads (update-ca-certificates would take minutes under TCG), and put where',
        '# a later update-ca-certificates (an upgrade of ca-certificates) finds it.',
        'cp /run/scim-test-kit/ca.pem /usr/local/share/ca-certificates/scim-test-ca.crt',
        'bundle=/etc/ssl/certs/ca-certificates.crt',
        'grep -qF "$(sed -n 2p /run/scim-test-kit/ca.pem)" "$bundle" || cat /run/scim-test-kit/ca.pem >> "$bundle"',
        'while read -r line; do grep -qxF "$line" /etc/hosts || echo "$line" >> /etc/hosts; done < /run/scim-test-kit/hosts',
        '',
      ].join('\n'),
    ],
    '/usr/local/lib/scim-test/load-images': [
      0o755,
      [
        '#!/bin/sh',
        '# SEAM images: what a registry pull would give, from the kit (each archive once per Docker store: the marks',
        '# live in the store, so a VM whose store was made from the same archives (SEAM Docker store) loads nothing).',
        'set -eu',
        'marks=/var/lib/docker/scim-test',
        'mkdir -p "$marks"',
        'for archive in /run/scim-test-kit/images/*.tar; do',
        '  flag=$marks/loaded-$(basename "$archive")',
        '  [ -e "$flag" ] && continue',
        '  flock "$marks/lock" sh -c "[ -e \'$flag\' ] || { docker load -q -i \'$archive\' && touch \'$flag\'; }"',
        'done',
        '',
      ].join('\n'),
    ],
    // Loaded by a unit of its own before the containers start: a registry pull happens inside `docker run`
    // (ExecStart, no start timeout), so the load must not count against the units' ExecStartPre timeout either.
    '/etc/systemd/system/scim-test-images.service': [
      0o644,
      [
        '[Unit]',
        'Description=scim-bridge boot test: the container images, as a registry pull would give them',
        'After=docker.service scim-test-kit.service',
        'Requires=docker.service',
        '',
        '[Service]',
        'Type=oneshot',
        'RemainAfterExit=yes',
        'TimeoutStartSec=infinity',
        'ExecStart=/usr/local/lib/scim-test/load-images',
        '',
        // From early in the boot, beside cloud-init (as a registry pull would overlap nothing, this only saves time):
        // Docker starts early here, and the user-data's `systemctl restart docker` applies its configuration.
        '[Install]',
        'WantedBy=multi-user.target',
        '',
      ].join('\n'),
    ],
    ...Object.fromEntries(
      ['scim-bridge.service', 'scim-bridge-caddy.service'].map((unit) => [
        `/etc/systemd/system/${unit}.d/50-scim-test-images.conf`,
        [0o644, '[Unit]\nWants=scim-test-images.service\nAfter=scim-test-images.service\n'],
      ]),
    ),
  };
}

export interface BaseImage {
  kernel: string;
  initrd: string;
  root: string;
  /** Seconds it took to build, or 0 when it came from the cache. */
  builtIn: number;
}

/** The base image (kernel, initrd, root filesystem image), built once per recipe and cached. */
export function baseImageDir(): string {
  const recipe = JSON.stringify({ SUITE, PACKAGES, files: seamFiles(), version: 7 });
  return join(cacheDir(), `vm-base-${createHash('sha256').update(recipe).digest('hex').slice(0, 16)}`);
}

export async function baseImage(log: (line: string) => void): Promise<BaseImage> {
  const files = seamFiles();
  const dir = baseImageDir();
  const image = { kernel: join(dir, 'vmlinuz'), initrd: join(dir, 'initrd.img'), root: join(dir, 'root.raw') };
  if (existsSync(join(dir, 'done'))) return { ...image, builtIn: 0 };
  const started = Date.now();
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const rootfs = join(dir, 'rootfs');
  log(`building the VM base image in ${dir} (mmdebstrap ${SUITE} from Debian's mirror)`);
  // The package lists are kept, as a cloud image's are fresh: the first boot's `apt-get update` then revalidates.
  await run('mmdebstrap', ['--variant=minbase', '--skip=cleanup/apt/lists', `--include=${PACKAGES.join(',')}`, SUITE, rootfs], 1_200_000);
  for (const [path, [mode, content]] of Object.entries(files)) {
    const target = join(rootfs, path);
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, content);
    chmodSync(target, mode);
  }
  writeFileSync(join(rootfs, 'etc/locale.gen'), 'en_US.UTF-8 UTF-8\n');
  must('chroot', [rootfs, 'locale-gen']);
  must('chroot', [rootfs, 'systemctl', 'enable', 'scim-test-kit.service', 'scim-test-images.service']);
  // Docker starts only when the user-data asks for it (cloud images do not ship it running).
  must('chroot', [rootfs, 'systemctl', 'disable', 'docker.service', 'docker.socket', 'containerd.service']);
  const boot = join(rootfs, 'boot');
  const version = readdirSync(boot).find((f) => f.startsWith('vmlinuz-'))!.slice('vmlinuz-'.length);
  copyFileSync(join(boot, `vmlinuz-${version}`), image.kernel);
  copyFileSync(join(boot, `initrd.img-${version}`), image.initrd);
  await run('mkfs.ext4', ['-q', '-F', '-L', 'root', '-d', rootfs, `${image.root}.tmp`, '6G']);
  renameSync(`${image.root}.tmp`, image.root);
  rmSync(rootfs, { recursive: true, force: true });
  writeFileSync(join(dir, 'done'), `${new Date().toISOString()}\n`);
  // Older recipes' images are of no more use: each is gigabytes (sparse).
  for (const other of readdirSync(cacheDir())) {
    if (other.startsWith('vm-base-') && join(cacheDir(), other) !== dir) rmSync(join(cacheDir(), other), { recursive: true, force: true });
  }
  return { ...image, builtIn: Math.round((Date.now() - started) / 1000) };
}

// ---------------------------------------------------------------------------------------------------------
// Disks

/** The kit disk: container image archives, the test CA, /etc/hosts lines. */
export async function kitDisk(dir: string, kit: { images: string[]; caPem: string; hosts: string[] }): Promise<string> {
  const content = join(dir, 'kit');
  mkdirSync(join(content, 'images'), { recursive: true });
  for (const archive of kit.images) copyFileSync(archive, join(content, 'images', archive.split('/').pop()!));
  writeFileSync(join(content, 'ca.pem'), kit.caPem);
  writeFileSync(join(content, 'hosts'), kit.hosts.join('\n') + '\n');
  const disk = join(dir, 'kit.raw');
  await run('mkfs.ext4', ['-q', '-F', '-L', KIT_LABEL, '-d', content, disk, '1G']);
  return disk;
}

/** A blank disk (sparse), as a cloud's new data disk is. */
export function blankDisk(path: string, size = '1G'): string {
  must('qemu-img', ['create', '-q', '-f', 'raw', path, size]);
  return path;
}

/** A copy-on-write disk on a raw image, which stays untouched. */
function overlayDisk(backing: string, path: string): string {
  must('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', backing, '-F', 'raw', path]);
  return path;
}

/** A new root disk on the base image: the copy a cloud makes of its image for each new instance. */
export function rootDisk(base: BaseImage, path: string): string {
  return overlayDisk(base.root, path);
}

/** A VM's own copy of the cached Docker store (SEAM Docker store). */
export function dockerStoreDisk(store: DockerStore, path: string): string {
  return overlayDisk(store.path, path);
}

export interface DockerStore {
  /** The cached raw ext4 image (label DOCKER_STORE_LABEL) holding /var/lib/docker with the images loaded. */
  path: string;
  /** Seconds it took to make, or 0 when it came from the cache. */
  builtIn: number;
}

/**
 * SEAM Docker store: /var/lib/docker with the given image archives loaded, made once per base image and pair of
 * archives by a throwaway VM (cloud-init off, no network) that runs the image's own load unit on a blank store
 * and powers off; cached beside the base image.
 */
export async function dockerStore(base: BaseImage, archives: string[], log: (line: string) => void): Promise<DockerStore> {
  const key = createHash('sha256')
    .update(JSON.stringify({ base: basename(baseImageDir()), archives: archives.map((a) => basename(a)), version: 1 }))
    .digest('hex')
    .slice(0, 16);
  const path = join(cacheDir(), `vm-docker-${key}.raw`);
  if (existsSync(path)) return { path, builtIn: 0 };
  const started = Date.now();
  log(`making the Docker store ${path} (a VM loads ${archives.map((a) => basename(a)).join(', ')})`);
  const dir = mkdtempSync(join(tmpdir(), 'scim-bridge-docker-store-'));
  const disk = `${path}.${process.pid}.tmp`;
  let vm: Vm | undefined;
  try {
    await run('mkfs.ext4', ['-q', '-F', '-L', DOCKER_STORE_LABEL, disk, '4G']);
    const kit = await kitDisk(dir, { images: archives, caPem: '', hosts: [] });
    vm = new Vm({
      name: 'docker-store',
      dir,
      base,
      root: rootDisk(base, join(dir, 'root.qcow2')),
      seed: seedImage(dir, 'docker-store', 'i-docker-store', '#cloud-config\n{}\n'),
      kit,
      dockerStore: disk,
      dataDevice: '/dev/disk/by-id/none',
      // Nothing to configure: the load unit is part of the image and starts Docker itself.
      kernelArgs: ['cloud-init=disabled'],
    }).start();
    await vm.waitForAgent(10 * 60_000);
    // Started at boot (multi-user.target wants it); `systemctl start` returns when it has finished.
    await vm.sh('systemctl start scim-test-images.service && systemctl is-active scim-test-images.service', 20 * 60_000);
    const loaded = (await vm.sh('ls /var/lib/docker/scim-test')).split('\n').filter((f) => f.startsWith('loaded-'));
    if (loaded.length !== archives.length) throw new Error(`the Docker store holds ${loaded.join(', ')}, not ${archives.length} images`);
    // Docker down first, so that its files are complete; the ACPI power-off then unmounts the store cleanly.
    await vm.sh('systemctl stop docker.socket docker.service containerd.service && sync', 5 * 60_000);
    await vm.powerdown();
    renameSync(disk, path);
  } finally {
    await vm?.kill();
    rmSync(disk, { force: true });
    rmSync(dir, { recursive: true, force: true });
  }
  // Stores of other images or base images are of no more use.
  for (const other of readdirSync(cacheDir())) {
    if (/^vm-docker-[0-9a-f]+\.raw$/.test(other) && join(cacheDir(), other) !== path) rmSync(join(cacheDir(), other), { force: true });
  }
  return { path, builtIn: Math.round((Date.now() - started) / 1000) };
}

/** The NoCloud seed: the user-data exactly as given, and a meta-data with this instance's id. */
export function seedImage(dir: string, name: string, instanceId: string, userData: string): string {
  const userDataFile = join(dir, `${name}-user-data`);
  const metaData = join(dir, `${name}-meta-data`);
  writeFileSync(userDataFile, userData);
  writeFileSync(metaData, `instance-id: ${instanceId}\nlocal-hostname: ${name}\n`);
  const seed = join(dir, `${name}-seed.iso`);
  must('cloud-localds', [seed, userDataFile, metaData]);
  return seed;
}

// ---------------------------------------------------------------------------------------------------------
// QEMU

/**
 * SEAM emulation: the CPU model QEMU emulates. qemu64 is an AMD model, so the guest kernel already counts it as not
 * affected by Meltdown (no page-table isolation, the costly part under TCG: every CR3 switch flushes QEMU's TLB) and
 * only turns on retpolines. Measured with bench/vm-emulation.ts (boot, cloud-init, Docker start; machine loaded by
 * five other jobs): qemu64 153 CPU-s to cloud-init done, `max` with mitigations=off 160 CPU-s: no gain, so it
 * stays qemu64.
 */
export const GUEST_CPU = 'qemu64';
/**
 * SEAM emulation: kernel arguments for a cheaper emulated guest. None for now: mitigations=off gave nothing
 * measurable (see GUEST_CPU). Any added here goes on every VM's command line, never into the user-data.
 */
export const EMULATION_KERNEL_ARGS: string[] = [];

/** A counting semaphore: at most `size` holders at once, the others wait in order. */
export class Slots {
  private waiting: Array<() => void> = [];
  constructor(private free: number) {}

  async acquire(): Promise<() => void> {
    if (this.free > 0) this.free--;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiting.shift();
      if (next) next();
      else this.free++;
    };
  }
}

export interface VmOptions {
  name: string;
  dir: string;
  base: BaseImage;
  root: string;
  seed: string;
  kit: string;
  /** This VM's Docker store disk (SEAM Docker store), mounted at /var/lib/docker. */
  dockerStore: string;
  /** The data disk, attached at power-on; absent: attach it later with attachDataDisk(). */
  data?: string;
  /** The cloud's name for the data disk (SEAM disk name). */
  dataDevice: string;
  /** Host ports forwarded to the guest's 80 and 443 (absent: none). */
  httpPort?: number;
  httpsPort?: number;
  /** Host ports of the fake metadata server and the fake secret stores (absent: the guest reaches neither). */
  metadataPort?: number;
  apiPort?: number;
  /** More kernel command line arguments. */
  kernelArgs?: string[];
  memoryMb?: number;
  /** Virtual CPUs (default 1: several TCG guests share this machine's cores; more vCPUs than cores only spin). */
  cpus?: number;
  /** The emulated CPU model (default GUEST_CPU; SEAM emulation). */
  cpuModel?: string;
  /** The kernel arguments that make the emulated guest cheaper (default EMULATION_KERNEL_ARGS; SEAM emulation). */
  emulationKernelArgs?: string[];
}

/** One JSON exchange over a unix socket speaking newline-delimited JSON (QMP or the guest agent). */
class JsonSocket {
  private buffer = '';
  private waiters: Array<(msg: Record<string, unknown>) => void> = [];
  private constructor(private readonly socket: net.Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      this.buffer += chunk;
      let i: number;
      while ((i = this.buffer.indexOf('\n')) >= 0) {
        const line = this.buffer.slice(0, i).replace(/^\xff/, '').trim();
        this.buffer = this.buffer.slice(i + 1);
        if (!line) continue;
        let msg: Record<string, unknown>;
        try {
          msg = JSON.parse(line);
        } catch {
          continue;
        }
        if ('event' in msg) continue;
        this.waiters.shift()?.(msg);
      }
    });
  }

  static connect(path: string, timeoutMs: number): Promise<JsonSocket> {
    return new Promise((resolve, reject) => {
      const socket = net.createConnection(path);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`connect ${path}: timed out`));
      }, timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        resolve(new JsonSocket(socket));
      });
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  }

  /** The next message; `what` names the awaited answer in the error when none comes within `timeoutMs`. */
  next(timeoutMs: number, what = 'a message'): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`no answer in time: ${what} within ${timeoutMs} ms`));
      }, timeoutMs);
      const waiter = (msg: Record<string, unknown>) => {
        clearTimeout(timer);
        resolve(msg);
      };
      this.waiters.push(waiter);
    });
  }

  async call(command: Record<string, unknown>, timeoutMs: number): Promise<Record<string, unknown>> {
    const answer = this.next(timeoutMs, `the answer to ${JSON.stringify(command).slice(0, 200)}`);
    this.socket.write(JSON.stringify(command) + '\n');
    return answer;
  }

  close(): void {
    this.socket.destroy();
  }
}

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export class Vm {
  readonly console: string;
  private readonly qmpPath: string;
  private readonly qgaPath: string;
  private process?: ManagedProcess;
  readonly startedAt = Date.now();

  constructor(readonly options: VmOptions) {
    this.console = join(options.dir, `${options.name}-console.log`);
    this.qmpPath = join(options.dir, `${options.name}.qmp`);
    this.qgaPath = join(options.dir, `${options.name}.qga`);
  }

  start(): this {
    const o = this.options;
    const socat = (port: number) => `cmd:socat - TCP:127.0.0.1:${port}`;
    const args = [
      '-name', o.name,
      '-machine', 'pc',
      '-accel', 'tcg,thread=multi',
      '-cpu', o.cpuModel ?? GUEST_CPU,
      '-smp', String(o.cpus ?? 1),
      '-m', String(o.memoryMb ?? 2048),
      '-display', 'none',
      '-serial', `file:${this.console}`,
      '-monitor', 'none',
      '-kernel', o.base.kernel,
      '-initrd', o.base.initrd,
      // quiet: every character on the emulated serial port costs emulated CPU (the test reads the guest through its agent).
      '-append', ['root=LABEL=root rw console=ttyS0 quiet', `scimtest.datadisk=${o.dataDevice}`, ...(o.emulationKernelArgs ?? EMULATION_KERNEL_ARGS), ...(o.kernelArgs ?? [])].join(' '),
      '-drive', `file=${o.root},if=virtio,format=qcow2,cache=unsafe`,
      '-drive', `file=${o.seed},if=virtio,format=raw,readonly=on`,
      '-drive', `file=${o.kit},if=virtio,format=raw,readonly=on`,
      '-drive', `file=${o.dockerStore},if=virtio,format=${o.dockerStore.endsWith('.qcow2') ? 'qcow2' : 'raw'},cache=unsafe`,
      ...(o.data ? ['-blockdev', `driver=raw,node-name=data0,file.driver=file,file.filename=${o.data}`, '-device', `virtio-blk-pci,drive=data0,id=datadisk,serial=${DATA_SERIAL}`] : []),
      '-netdev',
      [
        `user,id=n0,net=${GUEST_NETWORK},host=${HOST_FROM_GUEST},dns=169.254.0.3,dhcpstart=169.254.0.15`,
        ...(o.httpPort ? [`hostfwd=tcp:127.0.0.1:${o.httpPort}-:80`] : []),
        ...(o.httpsPort ? [`hostfwd=tcp:127.0.0.1:${o.httpsPort}-:443`] : []),
        ...(o.metadataPort ? [`guestfwd=tcp:${METADATA_ADDRESS}:80-${socat(o.metadataPort)}`] : []),
        ...(o.apiPort ? [`guestfwd=tcp:${FAKE_API_ADDRESS}:443-${socat(o.apiPort)}`] : []),
      ].join(','),
      '-device', 'virtio-net-pci,netdev=n0',
      '-chardev', `socket,id=qga0,path=${this.qgaPath},server=on,wait=off`,
      '-device', 'virtio-serial',
      '-device', 'virtserialport,chardev=qga0,name=org.qemu.guest_agent.0',
      '-qmp', `unix:${this.qmpPath},server=on,wait=off`,
    ];
    this.process = new ManagedProcess(`qemu ${o.name}`, 'qemu-system-x86_64', args, { env: process.env });
    return this;
  }

  /**
   * CPU seconds QEMU has used so far (all its threads): the emulated work, which unlike the wall clock hardly
   * depends on what else this machine is running.
   */
  cpuSeconds(): number {
    try {
      const fields = readFileSync(`/proc/${this.process?.pid}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ');
      return (Number(fields[11]) + Number(fields[12])) / 100;
    } catch {
      return NaN;
    }
  }

  consoleTail(chars = 4000): string {
    const text = existsSync(this.console) ? readFileSync(this.console, 'utf8') : '';
    return `\n----- ${this.options.name} serial console (last ${chars} characters) -----\n${text.slice(-chars)}\n${this.process?.describe(2000) ?? ''}`;
  }

  private async qmp(command: Record<string, unknown>, timeoutMs = 30_000): Promise<Record<string, unknown>> {
    const s = await JsonSocket.connect(this.qmpPath, 5_000);
    try {
      await s.next(5_000, 'the QMP greeting');
      await s.call({ execute: 'qmp_capabilities' }, 5_000);
      const answer = await s.call(command, timeoutMs);
      if (answer.error) throw new Error(`QMP ${JSON.stringify(command)}: ${JSON.stringify(answer.error)}`);
      return answer;
    } finally {
      s.close();
    }
  }

  /** One guest-agent command; throws when the agent does not answer (yet). */
  private async qga(command: Record<string, unknown>, timeoutMs = 10_000): Promise<Record<string, unknown>> {
    const s = await JsonSocket.connect(this.qgaPath, 5_000);
    try {
      const id = randomBytes(4).readUInt32BE() & 0x7fffffff;
      const sync = await s.call({ execute: 'guest-sync', arguments: { id } }, 5_000);
      if (sync.return !== id) throw new Error(`guest agent out of sync: ${JSON.stringify(sync)}`);
      const answer = await s.call(command, timeoutMs);
      if (answer.error) throw new Error(`guest agent ${JSON.stringify(command)}: ${JSON.stringify(answer.error)}`);
      return answer;
    } finally {
      s.close();
    }
  }

  /** Runs a shell command in the guest as root (through the guest agent). */
  async exec(command: string, timeoutMs = 120_000): Promise<ExecResult> {
    const started = await this.qga({ execute: 'guest-exec', arguments: { path: '/bin/sh', arg: ['-c', command], 'capture-output': true } });
    const pid = (started.return as { pid: number }).pid;
    const deadline = Date.now() + timeoutMs;
    // Most commands end within a fraction of a second: look again soon, then every 250 ms.
    let wait = 25;
    for (;;) {
      const status = (await this.qga({ execute: 'guest-exec-status', arguments: { pid } })).return as {
        exited: boolean;
        exitcode?: number;
        signal?: number;
        'out-data'?: string;
        'err-data'?: string;
      };
      if (status.exited) {
        return {
          code: status.exitcode ?? 128 + (status.signal ?? 0),
          stdout: Buffer.from(status['out-data'] ?? '', 'base64').toString('utf8'),
          stderr: Buffer.from(status['err-data'] ?? '', 'base64').toString('utf8'),
        };
      }
      if (Date.now() > deadline) throw new Error(`${this.options.name}: \`${command}\` still running after ${timeoutMs} ms`);
      await sleep(wait);
      wait = Math.min(250, wait * 2);
    }
  }

  /** exec that must exit 0; returns its stdout. */
  async sh(command: string, timeoutMs?: number): Promise<string> {
    const r = await this.exec(command, timeoutMs);
    if (r.code !== 0) throw new Error(`${this.options.name}: \`${command}\` exited ${r.code}:\n${r.stdout}\n${r.stderr}`);
    return r.stdout;
  }

  /** Waits until the guest agent answers (the guest has booted far enough to run commands). */
  async waitForAgent(timeoutMs: number): Promise<void> {
    await poll(`${this.options.name}: the guest agent to answer`, timeoutMs, 1_000, async () => {
      if (this.process?.exitStatus) throw new GiveUp(`QEMU exited${this.process.describe(3000)}`);
      try {
        await this.qga({ execute: 'guest-ping' }, 3_000);
        return true;
      } catch {
        return undefined;
      }
    }, () => this.consoleTail());
  }

  /** The data disk, attached to the running VM (hot-plug), as a cloud attaches a volume after boot. */
  /**
   * Forwards the host's ports to the guest's 80 and 443 from now on (QEMU's hostfwd_add): a VM that booted while
   * another held those ports takes them over once it is off, as a cloud moves a static IP to a replacement.
   */
  async forwardPorts(httpPort: number, httpsPort: number): Promise<void> {
    for (const [host, guest] of [[httpPort, 80], [httpsPort, 443]]) {
      const r = await this.qmp({ execute: 'human-monitor-command', arguments: { 'command-line': `hostfwd_add n0 tcp:127.0.0.1:${host}-:${guest}` } });
      // HMP answers errors as text, not as a QMP error.
      if (typeof r.return === 'string' && r.return.trim()) throw new Error(`${this.options.name}: hostfwd_add ${host}->${guest}: ${r.return.trim()}`);
    }
  }

  async attachDataDisk(path: string): Promise<void> {
    await this.qmp({ execute: 'blockdev-add', arguments: { driver: 'raw', 'node-name': 'data0', file: { driver: 'file', filename: path } } });
    await this.qmp({ execute: 'device_add', arguments: { driver: 'virtio-blk-pci', drive: 'data0', id: 'datadisk', serial: DATA_SERIAL } });
  }

  /** The ACPI power button, as a cloud's stop or delete sends it; resolves when QEMU has exited. */
  async powerdown(timeoutMs = 180_000): Promise<void> {
    if (!this.process || this.process.exitStatus) return;
    await this.qmp({ execute: 'system_powerdown' }).catch(() => undefined);
    const exited = await Promise.race([this.process.exited.then(() => true), sleep(timeoutMs).then(() => false)]);
    if (!exited) throw new Error(`${this.options.name} did not power off within ${timeoutMs} ms${this.consoleTail()}`);
  }

  /** Resolves when QEMU has exited (the guest powered off, or it was killed). */
  exited(): Promise<unknown> {
    return this.process?.exited ?? Promise.resolve();
  }

  async kill(): Promise<void> {
    await this.process?.stop(5_000);
  }
}
