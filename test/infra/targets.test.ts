/**
 * A target is a folder (infra/<name>/: its settings and defaults, its component, its secret sinks and plan
 * mocks), registered by one line in infra/targets.ts. The program's shared modules name no target.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TARGET_DEFINITIONS } from '../../infra/targets';
import { stackNames } from '../../tools/plan';

const INFRA = join(__dirname, '..', '..', 'infra');
const NAMES = TARGET_DEFINITIONS.map((t) => t.name);

test('the registry holds gcp, digitalocean, aws and kubernetes, each with a stack file to copy', () => {
  expect(NAMES).toEqual(['gcp', 'digitalocean', 'aws', 'kubernetes']);
  expect(stackNames()).toEqual(expect.arrayContaining(NAMES));
});

test.each(NAMES)('%s is a folder with its definition, component and plan mocks, and brings its secret sinks', (name) => {
  for (const file of ['target.ts', 'index.ts', 'mocks.ts']) expect(existsSync(join(INFRA, name, file))).toBe(true);
  const t = TARGET_DEFINITIONS.find((d) => d.name === name)!;
  expect(t.secretSinks.length).toBeGreaterThan(0);
  expect(t.planMocks).toBeDefined();
  expect(Object.keys(t.keys).length).toBeGreaterThan(0);
});

test('the registry is one import and one line per target; the shared modules import no target folder', () => {
  const registry = readFileSync(join(INFRA, 'targets.ts'), 'utf8');
  for (const name of NAMES) expect(registry.match(new RegExp(`from './${name}/`, 'g'))).toHaveLength(1);
  const targetImport = new RegExp(`from '\\./(${NAMES.join('|')})[/']`);
  for (const shared of ['config.ts', 'stack.ts', 'bridge.ts', 'target.ts', 'environment.ts', 'settings.ts', 'index.ts']) {
    expect({ shared, imports: targetImport.test(readFileSync(join(INFRA, shared), 'utf8')) }).toEqual({ shared, imports: false });
  }
});
