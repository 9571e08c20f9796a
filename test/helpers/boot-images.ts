/**
 * The two container images a VM host runs, as `docker load` archives for the boot test: the bridge built from
 * bridge/Dockerfile exactly as the image test builds it (buildah, local bases), and Caddy from Debian's caddy.
 * Each is cached under the test cache, keyed by everything that goes into it, so an unchanged checkout builds
 * it once per machine; without the cache it is built.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { BUILD_BASE, ContainerLab, RUNTIME_BASE } from './image';
import { cacheDir } from './vm';

const ROOT = join(__dirname, '../..');

const BUILD_RECIPE = 'bases BUILD_IMAGE/BASE_IMAGE from image.ts; VERSION from bridge/package.json; REVISION the commit';

/** What goes into the bridge image: the build's inputs (tracked files the Dockerfile can see) and node. */
function bridgeInputsHash(): string {
  const files = spawnSync('git', ['ls-files', '-co', '--exclude-standard', 'bridge', 'package.json', 'package-lock.json', '.dockerignore'], { cwd: ROOT, encoding: 'utf8' })
    .stdout.split('\n')
    .filter((f) => f && existsSync(join(ROOT, f)) && statSync(join(ROOT, f)).isFile())
    .sort();
  // image.ts decides the build's bases; BUILD_RECIPE names the build's arguments (bump it when they change).
  const hash = createHash('sha256').update(process.version).update(BUILD_RECIPE).update(readFileSync(join(__dirname, 'image.ts')));
  for (const f of files) hash.update(f).update('\0').update(readFileSync(join(ROOT, f))).update('\0');
  return hash.digest('hex').slice(0, 16);
}

/**
 * Where the bridge image of this checkout is cached, and the name it carries: the image test and the boot test
 * share it, so a test run builds bridge/Dockerfile once (whichever test comes first builds it).
 */
export function bridgeImageCache(): { name: string; archive: string } {
  const hash = bridgeInputsHash();
  return { name: `localhost/scim-bridge-test/bridge:${hash}`, archive: join(cacheDir(), `bridge-image-${hash}.tar`) };
}

/** The checkout's commit, for the image's revision label. */
export function gitRevision(): string {
  return spawnSync('git', ['rev-parse', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).stdout?.trim() || 'unknown';
}

export interface BootImages {
  /** The image references the stack is configured with; the archives carry exactly these names. */
  bridge: string;
  caddy: string;
  archives: string[];
  /** What was built this time (empty when both came from the cache), with seconds. */
  built: string[];
}

export async function bootImages(log: (line: string) => void): Promise<BootImages> {
  const { name: bridge, archive: bridgeArchive } = bridgeImageCache();
  const caddyVersion = spawnSync('caddy', ['version'], { encoding: 'utf8' }).stdout.trim().split(/\s+/)[0].replace(/^v/, '');
  const caddyHash = createHash('sha256').update(readFileSync('/usr/bin/caddy')).digest('hex').slice(0, 16);
  const caddy = `localhost/scim-bridge-test/caddy:${caddyVersion}-${caddyHash}`;
  const dir = cacheDir();
  const caddyArchive = join(dir, `caddy-image-${caddyHash}.tar`);
  const built: string[] = [];
  if (!existsSync(bridgeArchive) || !existsSync(caddyArchive)) {
    const lab = new ContainerLab();
    try {
      if (!existsSync(caddyArchive)) {
        const t = Date.now();
        await lab.assembleCaddyImage(caddy);
        await lab.saveArchive(caddy, `${caddyArchive}.tmp`, caddy);
        renameSync(`${caddyArchive}.tmp`, caddyArchive);
        built.push(`caddy image ${((Date.now() - t) / 1000).toFixed(0)} s`);
      }
      if (!existsSync(bridgeArchive)) {
        const t = Date.now();
        log('building the bridge image (bridge/Dockerfile) for the boot test');
        const problems = lab.toolchainProblems();
        if (problems.length > 0) throw new Error(`the build base borrows this machine's toolchain: ${problems.join('; ')}`);
        await lab.assembleRuntimeBase();
        await lab.assembleBuildBase();
        const version = (JSON.parse(readFileSync(join(ROOT, 'bridge/package.json'), 'utf8')) as { version: string }).version;
        await lab.build(
          { dockerfile: join(ROOT, 'bridge/Dockerfile'), context: ROOT, tag: bridge, buildArgs: { BUILD_IMAGE: BUILD_BASE, BASE_IMAGE: RUNTIME_BASE, VERSION: version, REVISION: gitRevision() } },
          600_000,
        );
        await lab.saveArchive(bridge, `${bridgeArchive}.tmp`, bridge);
        renameSync(`${bridgeArchive}.tmp`, bridgeArchive);
        // Archives of earlier checkouts: one is enough to keep.
        for (const f of readdirSync(dir)) if (/^bridge-image-.*\.tar$/.test(f) && join(dir, f) !== bridgeArchive) rmSync(join(dir, f), { force: true });
        built.push(`bridge image ${((Date.now() - t) / 1000).toFixed(0)} s`);
      }
    } finally {
      await lab.destroy();
    }
  }
  return { bridge, caddy, archives: [bridgeArchive, caddyArchive], built };
}
