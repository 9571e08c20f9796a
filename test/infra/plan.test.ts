/**
 * `npm run plan`: the offline plan as a command (its text and JSON forms, its errors) and its leak check,
 * which must pass for every stack we ship and must fail for a program that leaks.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { inventedSecret, plan, stackNames } from '../../tools/plan';

const ROOT = join(__dirname, '..', '..');
const run = promisify(execFile);

async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return cliWith({}, ...args);
}

async function cliWith(env: Record<string, string>, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['-r', 'ts-node/register/transpile-only', 'tools/plan.ts', ...args], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      maxBuffer: 64 * 1024 * 1024,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('npm run plan -- --stack <name>', () => {
  test('--json prints { stack, resources: [{ type, name, inputs }], outputs } with secrets as "[secret]"', async () => {
    const { code, stdout, stderr } = await cli('--stack', 'gcp', '--json');
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    const p = JSON.parse(stdout);
    expect(Object.keys(p).sort()).toEqual(['outputs', 'resources', 'stack']);
    expect(p.stack).toBe('gcp');
    for (const r of p.resources) {
      expect(typeof r.type).toBe('string');
      expect(typeof r.name).toBe('string');
      expect(typeof r.inputs).toBe('object');
    }
    expect(p.resources.map((r: { type: string }) => r.type)).toContain('gcp:compute/instance:Instance');
    const version = p.resources.find((r: { type: string; name: string }) => r.type === 'gcp:secretmanager/secretVersion:SecretVersion');
    expect(version.inputs.secretData).toBe('[secret]');
    expect(p.outputs).toMatchObject({ baseUrl: 'https://scim.example.com', target: 'gcp', ipAddress: '203.0.113.10' });
    expect(stdout).not.toContain('PLAN-SECRET-');
  });

  test('the text form lists every resource with its type, name and inputs, then the outputs and the leak check', async () => {
    const { code, stdout } = await cli('--stack=gcp');
    expect(code).toBe(0);
    expect(stdout).toMatch(/^stack gcp: \d+ resources\n/);
    expect(stdout).toMatch(/^gcp:compute\/instance:Instance {2}scim-bridge-host {2}\(deleteBeforeReplace, replaceOnChanges=\["metadata"\]\)$/m);
    expect(stdout).toMatch(/^gcp:compute\/disk:Disk {2}scim-bridge-data {2}\(retainOnDelete, ignoreChanges=\[[^\]]*\], protect\)$/m);
    expect(stdout).toMatch(/^ {8}user-data: "#cloud-config" … \(\d+ lines\)$/m);
    expect(stdout).toMatch(/^ {4}baseUrl: "https:\/\/scim\.example\.com"$/m);
    expect(stdout).toMatch(/leak check: passed/);
  });

  test('errors: no stack named, an unknown stack, an unknown argument', async () => {
    const none = await cli();
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/plan: name the stack: npm run plan -- --stack <.*gcp.*> \[--json\]/);
    const unknown = await cli('--stack', 'azure');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/no stack file .*stacks\/Pulumi\.azure\.yaml; stacks here: .*gcp/);
    const arg = await cli('--stack', 'gcp', '--yes');
    expect(arg.code).toBe(2);
    expect(arg.stderr).toContain('unknown argument --yes');
  });

  test('a bad configuration prints each problem on its own line and no plan', async () => {
    const result = await plan('gcp', { config: { 'scim-bridge:alertEmail': null } }).catch((e: Error) => e);
    expect(result).toBeInstanceOf(Error);
    expect((result as Error).message).toContain('scim-bridge:alertEmail is not set: who is told when the bridge is down: pulumi config set alertEmail ops@example.com');
  });
});

describe('the leak check', () => {
  test.each(stackNames())('passes for the shipped stack %s, with every secret set', async (stack) => {
    const result = await plan(stack, { config: { 'scim-bridge:token': { secure: 'v1:x' } } });
    expect(result.leaks).toEqual([]);
    expect(JSON.stringify(result.plan)).not.toContain('PLAN-SECRET-');
    // The invented token did reach the program (a secret store's input, or DigitalOcean's secret `token`
    // output): the check looked for something that is there.
    expect(JSON.stringify([result.raw, result.rawOutputs])).toContain(inventedSecret('token'));
  });

  const leaky = join(__dirname, 'fixtures', 'leaky-program.ts');
  const withToken = { config: { 'scim-bridge:token': { secure: 'v1:x' } }, program: leaky };
  afterEach(() => delete process.env.LEAK_MODE);

  test('a program that keeps the token in the secret store only passes', async () => {
    process.env.LEAK_MODE = 'none';
    expect((await plan('gcp', withToken)).leaks).toEqual([]);
  });

  test('fails when the token is in an input in clear', async () => {
    process.env.LEAK_MODE = 'clear-metadata';
    const { leaks } = await plan('gcp', withToken);
    expect(leaks).toEqual(['gcp:compute/instance:Instance host input metadata.user-data holds an invented secret in clear']);
  });

  test('fails when the token is in user-data even marked secret (it would print as "[secret]")', async () => {
    process.env.LEAK_MODE = 'secret-metadata';
    const { leaks, plan: printed } = await plan('gcp', withToken);
    expect(leaks).toEqual([
      'gcp:compute/instance:Instance host input metadata.user-data holds a secret; only the secret store (gcp:secretmanager/secretVersion:SecretVersion.secretData) may',
    ]);
    expect(JSON.stringify(printed)).not.toContain('PLAN-SECRET-');
  });

  test('fails when a stack output gives the token in clear', async () => {
    process.env.LEAK_MODE = 'clear-output';
    const { leaks } = await plan('gcp', withToken);
    expect(leaks).toEqual(['stack output tokenReference holds an invented secret in clear']);
  });

  test('the command exits 1 and names the leak (a generated token, in clear in user-data)', async () => {
    const { code, stderr, stdout } = await cliWith({ LEAK_MODE: 'clear-metadata' }, '--stack', 'gcp', '--program', leaky);
    expect(code).toBe(1);
    expect(stderr).toBe('plan: leak check FAILED:\n  gcp:compute/instance:Instance host input metadata.user-data holds an invented secret in clear\n');
    expect(stdout).toContain(inventedSecret('token'));
    expect(stdout).not.toContain('leak check: passed');
  });
});
