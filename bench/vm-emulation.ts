/**
 * What an emulated (TCG) guest of the boot test costs, in QEMU CPU-seconds, for a given CPU model and kernel
 * arguments (SEAM emulation in test/helpers/vm.ts): a quick experiment instead of the whole boot test.
 *
 *   node -r ts-node/register/transpile-only bench/vm-emulation.ts qemu64 qemu64:mitigations=off max max:mitigations=off
 *
 * Each argument is `CPU[:ARG,ARG...]`. Each VM boots the test's cached base image (built if missing) with the
 * cached Docker store, and a user-data that does a small, offline version of a host's first boot (Debian's mirror is
 * left out: its speed is not the emulation's): Docker starts and runs node in the bridge's image. The figures in
 * vm.ts (GUEST_CPU) came from a run whose container did not start (node is not on the image's PATH; fixed since):
 * boot, cloud-init and Docker's start. A run that added 500 fork-and-execs timed out (30 min) at load 19. Printed per VM: CPU-seconds to the guest agent (kernel, systemd), to cloud-init
 * done, and wall seconds. CPU-seconds hardly depend on the machine's load; wall seconds do.
 * BENCH_VM_PARALLEL (default 1) VMs at a time; BENCH_VM_ROUNDS (default 1) runs of each.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { baseImage, cacheDir, dockerStore, dockerStoreDisk, kitDisk, rootDisk, seedImage, Vm } from '../test/helpers/vm';
import { poll, stopAllProcesses } from '../test/helpers/pebble';

const USER_DATA = `#cloud-config
runcmd:
  - [sh, -c, "systemctl start docker && docker run --rm --entrypoint /nodejs/bin/node $(docker images --format '{{.Repository}}:{{.Tag}}' | grep bridge | head -1) -e 'process.exit(0)'"]
`;

interface Result {
  config: string;
  agentCpu: number;
  doneCpu: number;
  wall: number;
  errors: string;
  vulnerabilities: string;
}

async function one(config: string, index: number, dir: string, base: Awaited<ReturnType<typeof baseImage>>, storePath: string, kit: string): Promise<Result> {
  const [cpuModel, args = ''] = config.split(':');
  const name = `emu-${index}`;
  const vm = new Vm({
    name,
    dir,
    base,
    root: rootDisk(base, join(dir, `${name}.qcow2`)),
    seed: seedImage(dir, name, `i-${name}`, USER_DATA),
    kit,
    dockerStore: dockerStoreDisk({ path: storePath, builtIn: 0 }, join(dir, `${name}-docker.qcow2`)),
    dataDevice: '/dev/disk/by-id/none',
    cpuModel,
    emulationKernelArgs: args ? args.split(',') : [],
  }).start();
  try {
    await vm.waitForAgent(15 * 60_000);
    const agentCpu = vm.cpuSeconds();
    await poll(`${name}: cloud-init to finish`, 30 * 60_000, 2_000, async () => ((await vm.exec('test -e /run/cloud-init/result.json')).code === 0 ? true : undefined));
    const doneCpu = vm.cpuSeconds();
    const wall = (Date.now() - vm.startedAt) / 1000;
    const errors = (await vm.sh('cat /run/cloud-init/result.json')).replace(/\s+/g, ' ');
    const vulnerabilities = (await vm.sh('cd /sys/devices/system/cpu/vulnerabilities && grep -H . meltdown spectre_v2')).trim().replace(/\n/g, '; ');
    await vm.powerdown();
    return { config, agentCpu, doneCpu, wall, errors, vulnerabilities };
  } finally {
    await vm.kill();
  }
}

async function main(): Promise<void> {
  const configs = process.argv.slice(2);
  if (!configs.length) throw new Error('usage: bench/vm-emulation.ts CPU[:ARG,ARG...]...');
  const parallel = Number(process.env.BENCH_VM_PARALLEL ?? 1);
  const rounds = Number(process.env.BENCH_VM_ROUNDS ?? 1);
  const log = (line: string) => console.log(`vm-emulation: ${line}`);
  const base = await baseImage(log);
  // The container images as the boot test last cached them (the experiment does not build them).
  const archives = ['bridge-image-', 'caddy-image-'].map((prefix) => {
    const found = readdirSync(cacheDir()).filter((f) => f.startsWith(prefix) && f.endsWith('.tar'));
    if (found.length !== 1) throw new Error(`expected one ${prefix}*.tar in ${cacheDir()} (run the boot test once), found ${found.length}`);
    return join(cacheDir(), found[0]);
  });
  const store = await dockerStore(base, archives, log);
  const dir = mkdtempSync(join(tmpdir(), 'scim-bridge-vm-emulation-'));
  try {
    const kit = await kitDisk(dir, { images: archives, caPem: '', hosts: [] });
    const queue = Array.from({ length: rounds }, () => configs).flat().map((config, i) => ({ config, i }));
    const workers = Array.from({ length: parallel }, async () => {
      for (let job = queue.shift(); job; job = queue.shift()) {
        const r = await one(job.config, job.i, dir, base, store.path, kit);
        log(`${r.config}: agent at ${r.agentCpu.toFixed(1)} CPU-s, cloud-init done at ${r.doneCpu.toFixed(1)} CPU-s, ${r.wall.toFixed(0)} s wall; ${r.vulnerabilities}; result ${r.errors}`);
      }
    });
    await Promise.all(workers);
  } finally {
    await stopAllProcesses();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
