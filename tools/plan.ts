/**
 * `npm run plan -- --stack <name> [--json]`: evaluates the Pulumi program offline, with Pulumi's mocks and the
 * stack's file under stacks/, and prints every resource with its type, name and key inputs (or, with --json,
 * `{ stack, resources: [{ type, name, inputs, options }], outputs }`). Secrets print as "[secret]".
 *
 * Secrets the plan cannot know (a generated token, a `secure:` config value it cannot decrypt) get the value
 * PLAN-SECRET-<name>. The leak check fails the plan when that text appears anywhere in clear, and also when a
 * secret reaches any resource input other than the secret store's (SECRET_SINKS): a secret marked as such in
 * user-data would print as "[secret]" and still be a leak.
 */
import { readFileSync, existsSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import * as pulumi from '@pulumi/pulumi';
import { parse } from 'yaml';
import type { PlanMocks, SecretSink } from '../infra/bridge';
import { plannedServiceAccountKey } from '../infra/google-workspace';

const ROOT = resolve(__dirname, '..');
/** How Pulumi marks a secret in serialized inputs: `{ [SECRET_SIG_KEY]: SECRET_SIG, value }`. */
export const SECRET_SIG_KEY = '4dabf18193072939515e22adb298388d';
const SECRET_SIG = '1b47061264138c4ac30d75fd1eb44270';
export const PLAN_SECRET = 'PLAN-SECRET-';
export const MASK = '[secret]';

export interface PlanResource {
  type: string;
  name: string;
  inputs: Record<string, unknown>;
  /** Resource options that matter to a reader and to the policies: kept data, replacement. */
  options: { retainOnDelete?: boolean; deleteBeforeReplace?: boolean; replaceOnChanges?: string[]; ignoreChanges?: string[]; protect?: boolean; provider?: string; import?: string };
}

export interface Plan {
  stack: string;
  resources: PlanResource[];
  outputs: Record<string, unknown>;
}

export interface PlanResult {
  /** What is printed: secrets masked. */
  plan: Plan;
  /** The same resources with secret values visible, as `{ secret: value }` wrappers (for tests). */
  raw: PlanResource[];
  /** The stack's outputs with secret values visible, as `{ secret: value }` wrappers (for tests). */
  rawOutputs: Record<string, unknown>;
  /** Every place an invented secret would leak; empty when the check passes. */
  leaks: string[];
}

export type ConfigValue = string | number | boolean | { secure: string } | unknown[] | Record<string, unknown>;

export interface PlanOptions {
  /** Values to set or (with null) remove on top of the stack file, keys with their namespace. */
  config?: Record<string, ConfigValue | null>;
  /** Read the stack file from here instead of stacks/Pulumi.<stack>.yaml. */
  stackFile?: string;
  /** The module with `deploy()` and `SECRET_SINKS` (and `PLAN_MOCKS`): infra/stack unless a test brings its own. */
  program?: string;
}

export class PlanError extends Error {}

/** A value the plan invents for a secret it cannot know, long enough to pass the config's length rules. */
export function inventedSecret(name: string): string {
  return `${PLAN_SECRET}${name}`.padEnd(40, '_');
}

/** A copy of `v` with every secret wrapper replaced by its value. */
export function unwrapSecrets(v: unknown): unknown {
  return transform(v, (inner) => inner);
}

function isSecretWrapper(v: unknown): v is { value: unknown } {
  return typeof v === 'object' && v !== null && (v as Record<string, unknown>)[SECRET_SIG_KEY] === SECRET_SIG;
}

/** Replaces secret wrappers by "[secret]" (mask) or by their value (unwrap). */
function transform(v: unknown, onSecret: (inner: unknown) => unknown): unknown {
  if (isSecretWrapper(v)) return onSecret(v.value);
  if (Array.isArray(v)) return v.map((x) => transform(x, onSecret));
  if (typeof v === 'object' && v !== null) {
    return Object.fromEntries(Object.entries(v as Record<string, unknown>).map(([k, x]) => [k, transform(x, onSecret)]));
  }
  return v;
}

/** Paths (a.b[0].c) under `v` whose strings contain `needle`, and whether each sits inside a secret. */
function find(v: unknown, needle: string, path: string, secret = false, out: Array<{ path: string; secret: boolean; text: string }> = []) {
  if (isSecretWrapper(v)) find(v.value, needle, path, true, out);
  else if (typeof v === 'string') {
    if (v.includes(needle)) out.push({ path, secret, text: v });
  } else if (Array.isArray(v)) v.forEach((x, i) => find(x, needle, `${path}[${i}]`, secret, out));
  else if (typeof v === 'object' && v !== null) {
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) find(x, needle, path ? `${path}.${k}` : k, secret, out);
  }
  return out;
}

export function stackNames(): string[] {
  const dir = join(ROOT, 'stacks');
  return existsSync(dir)
    ? readdirSync(dir)
        .map((f) => /^Pulumi\.(.+)\.yaml$/.exec(f)?.[1])
        .filter((s): s is string => !!s)
        .sort()
    : [];
}

/** The stack file's config as Pulumi's runtime holds it: namespaced keys, strings (structured values as JSON). */
export function readStackConfig(stack: string, options: PlanOptions = {}): { config: Record<string, string>; secretKeys: string[] } {
  const project = (parse(readFileSync(join(ROOT, 'Pulumi.yaml'), 'utf8')) as { name: string }).name;
  const file = options.stackFile ?? join(ROOT, 'stacks', `Pulumi.${stack}.yaml`);
  if (!existsSync(file)) {
    throw new PlanError(`no stack file ${file}; stacks here: ${stackNames().join(', ') || 'none'}`);
  }
  const doc = (parse(readFileSync(file, 'utf8')) ?? {}) as { config?: Record<string, ConfigValue> };
  const entries: Record<string, ConfigValue | null> = { ...(doc.config ?? {}), ...(options.config ?? {}) };
  const config: Record<string, string> = {};
  const secretKeys: string[] = [];
  for (const [rawKey, value] of Object.entries(entries)) {
    const key = rawKey.includes(':') ? rawKey : `${project}:${rawKey}`;
    if (value === null || value === undefined) continue;
    const hasSecure = JSON.stringify(value).includes('"secure"');
    if (hasSecure) {
      // Encrypted with the stack's secrets provider: the plan cannot decrypt it, so it invents a value.
      const name = key.split(':').slice(1).join(':');
      // A JSON key is invented in its form, the invented text as its private key.
      config[key] = key === `${project}:googleWorkspaceKey` ? plannedServiceAccountKey(inventedSecret(name), JSON.stringify(value)) : inventedSecret(name);
      secretKeys.push(key);
    } else config[key] = typeof value === 'string' ? value : JSON.stringify(value);
  }
  return { config, secretKeys };
}

/** The invented secret's name in a string that holds one (PLAN-SECRET-<name>, padded with _). */
function secretNames(text: string): string[] {
  return [...text.matchAll(/PLAN-SECRET-([A-Za-z0-9:.-]+)/g)].map((m) => m[1]);
}

/** Runs the program under mocks with the stack's configuration. */
export async function plan(stack: string, options: PlanOptions = {}): Promise<PlanResult> {
  const { config, secretKeys } = readStackConfig(stack, options);
  const project = (parse(readFileSync(join(ROOT, 'Pulumi.yaml'), 'utf8')) as { name: string }).name;
  const registered: PlanResource[] = [];
  const resourceOptions = new Map<string, PlanResource['options']>();

  // Load the program fresh, so each plan in one process evaluates it again.
  for (const id of Object.keys(require.cache)) if (id.startsWith(join(ROOT, 'infra') + '/')) delete require.cache[id];
  const programPath = options.program ?? join(ROOT, 'infra', 'stack');
  delete require.cache[require.resolve(programPath)];
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const program = require(programPath) as Pick<typeof import('../infra/stack'), 'deploy' | 'SECRET_SINKS'> & { PLAN_MOCKS?: PlanMocks[] };
  const mocks = program.PLAN_MOCKS ?? [];

  pulumi.runtime.setAllConfig(config, secretKeys);
  await pulumi.runtime.setMocks(
    {
      newResource(args) {
        const opts = { ...(resourceOptions.get(`${args.type}::${args.name}`) ?? {}) };
        // An explicit provider (e.g. one for another region) comes as "<provider's URN>::<id>"; its name is the
        // URN's last part. Resources on the default provider have none.
        if (args.provider) opts.provider = args.provider.split('::').slice(-2, -1)[0];
        if (args.type !== 'pulumi:pulumi:Stack') registered.push({ type: args.type, name: args.name, inputs: args.inputs, options: opts });
        const plain = transform(args.inputs, (v) => v) as Record<string, unknown>;
        // A generated secret (random's password) gets its invented value; the clouds' computed outputs come
        // from each target's mocks.
        const computed: Record<string, unknown> =
          args.type === 'random:index/randomPassword:RandomPassword' ? { result: inventedSecret(args.name) } : {};
        for (const m of mocks) Object.assign(computed, m.outputs(args.type, args.name, plain) ?? {});
        return { id: (computed.id as string) ?? `${args.name}-id`, state: { name: args.name, ...args.inputs, ...computed } };
      },
      call(args) {
        for (const m of mocks) {
          const answer = m.invoke?.(args.token, args.inputs as Record<string, unknown>);
          if (answer) return answer;
        }
        return args.inputs;
      },
    },
    project,
    stack,
    false,
  );

  // The configuration is read and validated first, outside the stack's initialisation, so that its error is
  // the plan's error (an exception inside Pulumi's stack init would surface as an unhandled rejection).
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { loadStackConfig } = require(join(ROOT, 'infra', 'config')) as typeof import('../infra/config');
  const stackConfig = loadStackConfig();

  let outputs: Record<string, pulumi.Output<unknown> | unknown> = {};
  let failure: unknown;
  await pulumi.runtime.runInPulumiStack(async () => {
    pulumi.runtime.registerStackTransformation((args) => {
      const o = args.opts as pulumi.CustomResourceOptions;
      const picked: PlanResource['options'] = {};
      if (o.retainOnDelete !== undefined) picked.retainOnDelete = o.retainOnDelete;
      if (o.deleteBeforeReplace !== undefined) picked.deleteBeforeReplace = o.deleteBeforeReplace;
      if (o.replaceOnChanges !== undefined) picked.replaceOnChanges = o.replaceOnChanges;
      if (o.ignoreChanges !== undefined) picked.ignoreChanges = o.ignoreChanges;
      if (o.protect !== undefined) picked.protect = o.protect;
      if (o.import !== undefined) picked.import = o.import;
      resourceOptions.set(`${args.type}::${args.name}`, picked);
      return undefined;
    });
    try {
      outputs = { ...program.deploy(stackConfig) };
    } catch (err) {
      failure = err;
    }
    return outputs;
  });
  // Every registration (also those no output depends on) finishes before the plan is read.
  await pulumi.runtime.disconnect();
  if (failure) throw failure;

  const resolvedOutputs: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(outputs)) {
    if (pulumi.Output.isInstance(v)) {
      const secret = await pulumi.isSecret(v);
      const value = await new Promise((res) => v.apply((x) => res(x)));
      resolvedOutputs[k] = secret ? { [SECRET_SIG_KEY]: SECRET_SIG, value } : value;
    } else resolvedOutputs[k] = v;
  }

  const sinks: SecretSink[] = program.SECRET_SINKS;
  const describeSinks = sinks.map((k) => (k.only ? `${k.input} (${k.only.join(', ')} only)` : k.input)).join(', ');
  const leaks: string[] = [];
  for (const r of registered) {
    for (const hit of find(r.inputs, PLAN_SECRET, '')) {
      const where = `${r.type} ${r.name} input ${hit.path}`;
      const input = `${r.type}.${hit.path.split(/[.[]/)[0]}`;
      const names = secretNames(hit.text);
      const sink = sinks.find((k) => k.input === input);
      if (!hit.secret) leaks.push(`${where} holds an invented secret in clear`);
      else if (!sink) leaks.push(`${where} holds a secret; only the secret store (${describeSinks}) may`);
      else if (sink.only && names.some((n) => !sink.only!.includes(n))) {
        leaks.push(`${where} holds ${names.filter((n) => !sink.only!.includes(n)).join(', ')}; it may hold only ${sink.only.join(', ')}`);
      }
    }
  }
  for (const hit of find(resolvedOutputs, PLAN_SECRET, '')) {
    if (!hit.secret) leaks.push(`stack output ${hit.path} holds an invented secret in clear`);
  }

  const masked: Plan = {
    stack,
    resources: registered.map((r) => ({ ...r, inputs: transform(r.inputs, () => MASK) as Record<string, unknown> })),
    outputs: transform(resolvedOutputs, () => MASK) as Record<string, unknown>,
  };
  // The contract's own check, over exactly what is printed.
  if (JSON.stringify(masked).includes(PLAN_SECRET) && leaks.length === 0) leaks.push('the printed plan contains an invented secret');
  return { plan: masked, raw: registered, rawOutputs: resolvedOutputs, leaks };
}

/** One line per leaf, so nested inputs (user-data inside metadata) read as well as flat ones. */
function describe(key: string, value: unknown, indent: string, out: string[]): void {
  if (typeof value === 'string') {
    const lines = value.split('\n');
    out.push(`${indent}${key}: ${lines.length > 1 ? `${JSON.stringify(lines[0])} … (${lines.length} lines)` : JSON.stringify(value)}`);
  } else if (value && typeof value === 'object' && JSON.stringify(value).length > 100) {
    const entries = Array.isArray(value) ? value.map((v, i) => [`[${i}]`, v] as const) : Object.entries(value);
    out.push(`${indent}${key}:`);
    for (const [k, v] of entries) describe(k, v, `${indent}    `, out);
  } else out.push(`${indent}${key}: ${JSON.stringify(value)}`);
}

export function formatPlan(p: Plan): string {
  const out = [`stack ${p.stack}: ${p.resources.length} resources`, ''];
  for (const r of p.resources) {
    const flags = Object.entries(r.options)
      .filter(([, v]) => v !== undefined && v !== false)
      .map(([k, v]) => (v === true ? k : `${k}=${JSON.stringify(v)}`));
    out.push(`${r.type}  ${r.name}${flags.length ? `  (${flags.join(', ')})` : ''}`);
    for (const [k, v] of Object.entries(r.inputs)) describe(k, v, '    ', out);
  }
  out.push('', 'outputs:');
  for (const [k, v] of Object.entries(p.outputs)) describe(k, v, '    ', out);
  return out.join('\n') + '\n';
}

async function main(argv: string[]): Promise<number> {
  let stack: string | undefined;
  let json = false;
  let program: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--stack') stack = argv[++i];
    else if (argv[i].startsWith('--stack=')) stack = argv[i].slice('--stack='.length);
    else if (argv[i] === '--json') json = true;
    // Another program module (deploy() and SECRET_SINKS), e.g. to see the leak check catch a leak.
    else if (argv[i] === '--program') program = resolve(argv[++i]);
    else {
      process.stderr.write(`plan: unknown argument ${argv[i]}; usage: npm run plan -- --stack <name> [--json]\n`);
      return 2;
    }
  }
  if (!stack) {
    process.stderr.write(`plan: name the stack: npm run plan -- --stack <${stackNames().join('|')}> [--json]\n`);
    return 2;
  }
  let result: PlanResult;
  try {
    result = await plan(stack, program ? { program } : {});
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`plan: ${stack}: ${message.replace(/^Running program .*?failed with an unhandled exception:\s*/s, '')}\n`);
    return 1;
  }
  process.stdout.write(json ? JSON.stringify(result.plan, null, 2) + '\n' : formatPlan(result.plan));
  if (result.leaks.length) {
    process.stderr.write(`plan: leak check FAILED:\n${result.leaks.map((l) => `  ${l}`).join('\n')}\n`);
    return 1;
  }
  if (!json) process.stdout.write(`leak check: passed (no invented secret in clear, none outside the inputs allowed to hold it)\n`);
  return 0;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err) => {
      process.stderr.write(`plan: ${err instanceof Error ? err.stack : String(err)}\n`);
      process.exit(1);
    },
  );
}
