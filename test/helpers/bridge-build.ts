/**
 * The bridge as the tests run it in a process of its own: bridge/src compiled to JavaScript in bridge/.test-dist,
 * run with plain node as `npm start` runs bridge/dist. Starting through ts-node instead cost each start about
 * 3.5 s of CPU (loading TypeScript and compiling every module again), and the suites start the bridge dozens of
 * times.
 *
 * jest's globalSetup builds it at the start of every run (test/global-setup.ts), so the tests always run the
 * checkout's sources: it is rebuilt whenever a source differs from the last build (keyed by a hash of
 * bridge/src, the compiler options and TypeScript's version), else kept. Each file is compiled on its own
 * (TypeScript's transpileModule), which gives the same JavaScript as `npm run build`'s tsc because the tsconfig
 * sets isolatedModules; the types are checked by `npm run typecheck`, as for the in-process tests.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import * as ts from 'typescript';

const ROOT = join(__dirname, '../..');
const SOURCES = join(ROOT, 'bridge/src');
const TSCONFIG = join(ROOT, 'bridge/tsconfig.build.json');
/** Where the tests' build of the bridge goes (git-ignored). */
export const TEST_BUILD_DIR = join(ROOT, 'bridge/.test-dist');
const STAMP = '.sources-sha256';

/**
 * The command line that runs a bridge entry point (bridge/src/<entry>.ts) from the tests' build: node and the
 * script. Relative to nothing: absolute paths, so any cwd works.
 */
export function bridgeCommand(entry: 'main' | 'healthcheck' = 'main'): [string, string] {
  const script = join(TEST_BUILD_DIR, `${entry}.js`);
  if (!existsSync(script)) throw new Error(`${script} is missing: jest's globalSetup (test/global-setup.ts) builds it; run the tests through jest`);
  return [process.execPath, script];
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? sourceFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []))
    .sort();
}

/** Builds bridge/.test-dist from bridge/src unless it was built from the same sources; says whether it built. */
export function buildBridgeForTests(): { built: boolean; files: number } {
  const parsed = ts.getParsedCommandLineOfConfigFile(TSCONFIG, {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: (d) => { throw new Error(ts.flattenDiagnosticMessageText(d.messageText, '\n')); } });
  if (!parsed) throw new Error(`cannot read ${TSCONFIG}`);
  const options: ts.CompilerOptions = { ...parsed.options, declaration: false, declarationMap: false, noEmit: false };
  const files = sourceFiles(SOURCES);
  const hash = createHash('sha256').update(ts.version).update(JSON.stringify(options));
  const sources = files.map((f) => readFileSync(f, 'utf8'));
  files.forEach((f, i) => hash.update(relative(SOURCES, f)).update('\0').update(sources[i]).update('\0'));
  const key = hash.digest('hex');
  if (existsSync(join(TEST_BUILD_DIR, STAMP)) && readFileSync(join(TEST_BUILD_DIR, STAMP), 'utf8') === key) return { built: false, files: files.length };

  const out = `${TEST_BUILD_DIR}.${process.pid}.tmp`;
  rmSync(out, { recursive: true, force: true });
  files.forEach((file, i) => {
    const name = relative(SOURCES, file).replace(/\.ts$/, '.js');
    const result = ts.transpileModule(sources[i], { compilerOptions: options, fileName: file, reportDiagnostics: true });
    const errors = (result.diagnostics ?? []).filter((d) => d.category === ts.DiagnosticCategory.Error);
    if (errors.length) throw new Error(`${file}: ${errors.map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n')).join('; ')}`);
    mkdirSync(dirname(join(out, name)), { recursive: true });
    writeFileSync(join(out, name), result.outputText);
    if (result.sourceMapText) writeFileSync(join(out, `${name}.map`), result.sourceMapText);
  });
  writeFileSync(join(out, STAMP), key);
  rmSync(TEST_BUILD_DIR, { recursive: true, force: true });
  renameSync(out, TEST_BUILD_DIR);
  return { built: true, files: files.length };
}
