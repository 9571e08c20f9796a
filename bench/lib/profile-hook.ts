/**
 * Preloaded into the bridge by bench/profile.ts (node -r profile-hook.js): V8's sampling CPU profiler (the one
 * behind `node --cpu-prof`), started and stopped by SIGUSR2 so that a profile covers one measured load window and
 * nothing else (not the start, not the warm-up). Each stop writes PROFILE_DIR/<n>.cpuprofile, then <n>.done.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { join } from 'node:path';

const dir = process.env.PROFILE_DIR ?? '.';
const intervalUs = Number(process.env.PROFILE_INTERVAL_US ?? 200);
const session = new Session();
session.connect();
let running = false;
let n = 0;

process.on('SIGUSR2', () => {
  if (!running) {
    running = true;
    session.post('Profiler.enable', () => session.post('Profiler.setSamplingInterval', { interval: intervalUs }, () => session.post('Profiler.start')));
    return;
  }
  running = false;
  session.post('Profiler.stop', (err, result) => {
    const file = join(dir, `${++n}.cpuprofile`);
    writeFileSync(file, err ? '{}' : JSON.stringify(result.profile));
    writeFileSync(join(dir, `${n}.done`), err ? String(err) : 'ok');
  });
});
