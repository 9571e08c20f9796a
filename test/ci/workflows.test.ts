/**
 * The GitHub Actions workflows (.github/workflows): GitHub's own parser accepts them (tools/validate-workflows.mjs,
 * run as a child process: the parser is ESM-only and jest runs CommonJS here), the validator rejects broken ones,
 * and each workflow does what the issue asks of it (ci: .ci/run on every push and pull request; preview: a
 * pulumi preview per stack, or the offline plan for forks, posted safely; image: the release image that
 * infra/config.ts's DEFAULT_IMAGE names, multi-platform, with SBOM and provenance, signed).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parse } from 'yaml';
import { DEFAULT_IMAGE } from '../../infra/config';
import bridgePackage from '../../bridge/package.json';

const ROOT = resolve(__dirname, '../..');
const WORKFLOWS = join(ROOT, '.github/workflows');
const VALIDATOR = join(ROOT, 'tools/validate-workflows.mjs');

/** Parsed YAML: workflows are checked by shape at run time, not by type. */
type Yaml = any; // eslint-disable-line @typescript-eslint/no-explicit-any

function validate(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [VALIDATOR, ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, GITHUB_ACTIONS: '' },
    timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const raw = (file: string): string => readFileSync(join(WORKFLOWS, file), 'utf8');
const workflow = (file: string): Yaml => parse(raw(file));
const stepsOf = (job: Yaml): Yaml[] => job.steps as Yaml[];
const stepUsing = (job: Yaml, action: string): Yaml => stepsOf(job).find((s) => String(s.uses ?? '').startsWith(`${action}@`));
/** The stacks: one per stacks/Pulumi.<stack>.yaml. */
const STACKS = readdirSync(join(ROOT, 'stacks'))
  .map((f) => /^Pulumi\.(.+)\.yaml$/.exec(f)?.[1])
  .filter((s): s is string => !!s)
  .sort();

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'workflows-test-'));
});
afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
});

describe('tools/validate-workflows.mjs', () => {
  test('every workflow under .github/workflows is valid', () => {
    const r = validate();
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    for (const file of ['ci.yml', 'preview.yml', 'preview-comment.yml', 'image.yml']) {
      expect(r.stdout).toContain(`ok   .github/workflows/${file}`);
    }
    expect(r.stdout).toMatch(/validate-workflows: \d+ workflow files, 0 problems/);
  });

  /** A valid workflow, and one defect at a time: each alone must fail, at its line, with the parser's message. */
  const BASE = [
    'name: Sample', //                                              1
    'on:', //                                                       2
    '  pull_request:', //                                           3
    'concurrency:', //                                              4
    '  group: sample-${{ github.event.pull_request.number }}', //   5
    '  cancel-in-progress: true', //                                6
    'jobs:', //                                                     7
    '  build:', //                                                  8
    '    runs-on: ubuntu-latest', //                                9
    '    steps:', //                                                10
    "      - run: echo '${{ github.event.pull_request.head.repo.full_name == github.repository }}'", // 11
  ];
  const DEFECTS: Array<[string, (lines: string[]) => void, RegExp]> = [
    ['an unknown key', (l) => l.splice(9, 0, '    runs-onn: ubuntu-latest'), /sample\.yml:10:5: Unexpected value 'runs-onn'/],
    [
      'an expression that does not parse',
      (l) => (l[10] = "      - run: echo '${{ github.event.pull_request.head.repo.full_name == }}'"),
      /sample\.yml:11:20: Unexpected end of expression: '=='/,
    ],
    ['runs-on of an unknown type', (l) => (l[8] = '    runs-on: { image: ubuntu-latest }'), /sample\.yml:9:16: Unexpected value 'image'/],
    [
      'concurrency of the wrong type',
      (l) => l.splice(3, 3, 'concurrency: [sample, true]'),
      /sample\.yml:4:14: A sequence was not expected/,
    ],
    [
      'a context not available where it is used',
      (l) => l.splice(8, 0, "    if: secrets.TOKEN != ''"),
      /sample\.yml:9:9: Unrecognized named-value: 'secrets'/,
    ],
    ['an action not pinned to a commit', (l) => l.push('      - uses: actions/checkout@v7'), /sample\.yml:12:15: \[pin\] 'actions\/checkout@v7' is not pinned/],
    [
      'a pull request title pasted into a script',
      (l) => l.push('      - run: echo "${{ github.event.pull_request.title }}"'),
      /sample\.yml:12:14: \[injection\] .*github\.event\.pull_request\.title/,
    ],
    [
      'a step output of a step that does not exist',
      (l) => l.push('      - run: echo "${{ steps.build.outputs.digest }}"'),
      /sample\.yml:12:14: \[reference\] steps\.build .*no step with id 'build'/,
    ],
  ];

  test('the sample workflow itself is valid (so each defect below is what fails)', () => {
    const dir = join(tmp, 'base');
    mkdirSync(dir);
    writeFileSync(join(dir, 'sample.yml'), BASE.join('\n') + '\n');
    const r = validate(dir);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  test.each(DEFECTS)('rejects %s', (name, mutate, message) => {
    const lines = [...BASE];
    mutate(lines);
    const dir = join(tmp, name.replace(/\W+/g, '-'));
    mkdirSync(dir);
    writeFileSync(join(dir, 'sample.yml'), lines.join('\n') + '\n');
    const r = validate(dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(message);
    expect(r.stdout).toMatch(/FAIL .*sample\.yml/);
  });

  test('reports every problem of a broken workflow, each with its file and line', () => {
    const file = join(tmp, 'broken.yml');
    writeFileSync(
      file,
      [
        'on: pull_request', //                                                              1
        'concurrency: [preview, true]', //                                                  2
        'jobs:', //                                                                         3
        '  preview:', //                                                                    4
        '    runs-on: { image: ubuntu-latest }', //                                         5
        '    timeout: 10', //                                                               6
        '    steps:', //                                                                    7
        '      - run: echo "${{ github.event.pull_request.head.repo.full_name == }}"', //   8
      ].join('\n') + '\n',
    );
    const r = validate(file);
    expect(r.code).toBe(1);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/broken\.yml:2:14: A sequence was not expected/),
        expect.stringMatching(/broken\.yml:5:16: Unexpected value 'image'/),
        expect.stringMatching(/broken\.yml:6:5: Unexpected value 'timeout'/),
        expect.stringMatching(/broken\.yml:8:20: Unexpected end of expression: '=='/),
      ]),
    );
    for (const line of lines) expect(line).toMatch(/^\S*broken\.yml:\d+:\d+: /);
    expect(r.stdout).toMatch(/validate-workflows: 1 workflow file, [1-9]\d* problems/);
  });

  test('a missing path, or a directory without workflows, is an error of its own (exit 2)', () => {
    expect(validate(join(tmp, 'nothing-here')).code).toBe(2);
    const empty = join(tmp, 'empty');
    mkdirSync(empty);
    const r = validate(empty);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('no workflow file');
  });
});

/** What each pinned action accepts (its action.yml `inputs`, at the pinned version). Update with the pin. */
const ACTION_INPUTS: Record<string, { version: RegExp; inputs: string[] }> = {
  'actions/checkout': { version: /^v7\./, inputs: ['repository', 'ref', 'token', 'ssh-key', 'ssh-known-hosts', 'ssh-strict', 'ssh-user', 'persist-credentials', 'path', 'clean', 'filter', 'sparse-checkout', 'sparse-checkout-cone-mode', 'fetch-depth', 'fetch-tags', 'show-progress', 'lfs', 'submodules', 'set-safe-directory', 'github-server-url', 'allow-unsafe-pr-checkout'] },
  'actions/setup-node': { version: /^v7\./, inputs: ['node-version', 'node-version-file', 'architecture', 'check-latest', 'registry-url', 'scope', 'token', 'cache', 'package-manager-cache', 'cache-dependency-path', 'mirror', 'mirror-token'] },
  'actions/upload-artifact': { version: /^v7\./, inputs: ['name', 'path', 'if-no-files-found', 'retention-days', 'compression-level', 'overwrite', 'include-hidden-files', 'archive'] },
  'actions/download-artifact': { version: /^v8\./, inputs: ['name', 'artifact-ids', 'path', 'pattern', 'merge-multiple', 'github-token', 'repository', 'run-id', 'skip-decompress', 'digest-mismatch'] },
  'actions/github-script': { version: /^v8\./, inputs: ['script', 'github-token', 'debug', 'user-agent', 'previews', 'result-encoding', 'retries', 'retry-exempt-status-codes', 'base-url'] },
  'pulumi/actions': { version: /^v7\./, inputs: ['command', 'stack-name', 'pulumi-version', 'pulumi-version-file', 'work-dir', 'comment-on-pr', 'comment-on-pr-number', 'comment-on-summary', 'github-token', 'cloud-url', 'secrets-provider', 'parallel', 'message', 'config-map', 'expect-no-changes', 'diff', 'replace', 'exclude', 'exclude-dependents', 'target', 'target-dependents', 'policyPacks', 'policyPackConfigs', 'refresh', 'upsert', 'remove', 'edit-pr-comment', 'color', 'exclude-protected', 'plan', 'suppress-outputs', 'suppress-progress', 'always-include-summary', 'continue-on-error', 'log-verbosity', 'log-flow', 'debug'] },
  'pulumi/auth-actions': { version: /^v2\./, inputs: ['organization', 'requested-token-type', 'scope', 'token-expiration', 'export-environment-variables', 'cloud-url'] },
  'google-github-actions/auth': { version: /^v3\./, inputs: ['project_id', 'workload_identity_provider', 'service_account', 'audience', 'credentials_json', 'create_credentials_file', 'export_environment_variables', 'token_format', 'delegates', 'universe', 'request_reason', 'cleanup_credentials', 'access_token_lifetime', 'access_token_scopes', 'access_token_subject', 'id_token_audience', 'id_token_include_email'] },
  'aws-actions/configure-aws-credentials': { version: /^v6\./, inputs: ['aws-region', 'aws-profile', 'overwrite-aws-profile', 'role-to-assume', 'aws-access-key-id', 'aws-secret-access-key', 'aws-session-token', 'web-identity-token-file', 'role-chaining', 'audience', 'http-proxy', 'no-proxy', 'mask-aws-account-id', 'role-duration-seconds', 'role-external-id', 'role-session-name', 'role-skip-session-tagging', 'transitive-tag-keys', 'inline-session-policy', 'managed-session-policies', 'output-credentials', 'output-env-credentials', 'unset-current-credentials', 'disable-retry', 'retry-max-attempts', 'special-characters-workaround', 'use-existing-credentials', 'allowed-account-ids', 'force-skip-oidc', 'action-timeout-s', 'custom-tags', 'sts-endpoint'] },
  'docker/setup-qemu-action': { version: /^v4\./, inputs: ['image', 'platforms', 'reset', 'cache-image'] },
  'docker/setup-buildx-action': { version: /^v4\./, inputs: ['version', 'driver', 'driver-opts', 'buildkitd-flags', 'buildkitd-config', 'buildkitd-config-inline', 'use', 'name', 'endpoint', 'platforms', 'append', 'keep-state', 'cache-binary', 'cleanup'] },
  'docker/login-action': { version: /^v4\./, inputs: ['registry', 'username', 'password', 'ecr', 'scope', 'logout', 'registry-auth'] },
  'docker/metadata-action': { version: /^v6\./, inputs: ['context', 'images', 'tags', 'flavor', 'labels', 'annotations', 'sep-tags', 'sep-labels', 'sep-annotations', 'bake-target', 'github-token'] },
  'docker/build-push-action': { version: /^v7\./, inputs: ['add-hosts', 'allow', 'annotations', 'attests', 'build-args', 'build-contexts', 'builder', 'cache-from', 'cache-to', 'call', 'cgroup-parent', 'context', 'file', 'labels', 'load', 'network', 'no-cache', 'no-cache-filters', 'outputs', 'platforms', 'provenance', 'pull', 'push', 'sbom', 'secrets', 'secret-envs', 'secret-files', 'shm-size', 'ssh', 'tags', 'target', 'ulimit', 'github-token'] },
  'sigstore/cosign-installer': { version: /^v4\./, inputs: ['cosign-release', 'install-dir', 'use-sudo'] },
};

describe('all workflows', () => {
  const files = readdirSync(WORKFLOWS).filter((f) => /\.ya?ml$/.test(f));

  test.each(files)('%s: every action is a known one, pinned to a commit with its version, and given only its inputs', (file) => {
    const text = raw(file);
    const doc = workflow(file);
    for (const job of Object.values(doc.jobs) as Yaml[]) {
      for (const step of (job.steps ?? []) as Yaml[]) {
        if (!step.uses) continue;
        const [action, sha] = String(step.uses).split('@');
        expect(Object.keys(ACTION_INPUTS)).toContain(action);
        expect(sha).toMatch(/^[0-9a-f]{40}$/);
        const version = new RegExp(`uses: ${action.replace('/', '\\/')}@${sha} # (v[\\d.]+)`).exec(text)?.[1];
        expect(version).toMatch(ACTION_INPUTS[action].version);
        const unknown = Object.keys(step.with ?? {}).filter((input) => !ACTION_INPUTS[action].inputs.includes(input));
        expect({ action, unknown }).toEqual({ action, unknown: [] });
      }
    }
  });

  test.each(files)('%s: no pull_request_target, and no permissions by default at the top', (file) => {
    const doc = workflow(file);
    expect(Object.keys(doc.on)).not.toContain('pull_request_target');
    expect(doc.permissions).toBeDefined();
    expect(doc.permissions === 'write-all' || doc.permissions === 'read-all').toBe(false);
  });
});

describe('ci.yml', () => {
  const ci = workflow('ci.yml');
  const job = ci.jobs.test;

  test('runs on every push and every pull request', () => {
    expect(Object.keys(ci.on).sort()).toEqual(['pull_request', 'push']);
    expect(ci.on.push).toBeNull(); // no branch or path filter
    expect(ci.on.pull_request).toBeNull();
    expect(ci.permissions).toEqual({ contents: 'read' });
  });

  test('the same steps as .ci/run: it runs .ci/run itself, with Node 20 and the npm cache', () => {
    expect(Object.keys(ci.jobs)).toEqual(['test']);
    expect(stepsOf(job).map((s) => s.run).filter(Boolean)).toEqual(['bash .ci/run']);
    const node = stepUsing(job, 'actions/setup-node');
    expect(node.with).toEqual({ 'node-version': 20, cache: 'npm' });
    expect(stepUsing(job, 'actions/checkout')).toBeDefined();
  });

  test('in a Debian container as root, as .ci/run and test/setup.sh expect (apt-get, loop devices)', () => {
    expect(job.container.image).toMatch(/^node:20-bookworm/);
    expect(job.container.options).toContain('--privileged');
    expect(job.container.options).toContain('/dev:/dev');
    expect(job.container.options ?? '').not.toMatch(/--user/);
  });
});

describe('preview.yml', () => {
  const preview = workflow('preview.yml');
  const { preview: cloud, plan } = preview.jobs;
  const SAME_REPO = 'github.event.pull_request.head.repo.full_name == github.repository';
  const FORK = 'github.event.pull_request.head.repo.full_name != github.repository';

  test('runs on pull requests, one run per pull request at a time, nothing allowed by default', () => {
    expect(Object.keys(preview.on)).toEqual(['pull_request']);
    expect(preview.concurrency).toEqual({ group: 'preview-${{ github.event.pull_request.number }}', 'cancel-in-progress': true });
    expect(preview.permissions).toEqual({});
    expect(Object.keys(preview.jobs).sort()).toEqual(['plan', 'preview']);
  });

  test('both jobs cover exactly the stacks under stacks/', () => {
    expect(STACKS.length).toBeGreaterThan(0);
    expect([...cloud.strategy.matrix.stack].sort()).toEqual(STACKS);
    expect([...plan.strategy.matrix.stack].sort()).toEqual(STACKS);
    expect(cloud.strategy['fail-fast']).toBe(false);
  });

  test('same-repository pull requests: pulumi preview with pulumi/actions v7, comment per stack edited in place, outputs suppressed, the policy pack', () => {
    expect(cloud.permissions).toEqual({ contents: 'read', 'pull-requests': 'write', 'id-token': 'write' });
    const step = stepUsing(cloud, 'pulumi/actions');
    expect(raw('preview.yml')).toMatch(/uses: pulumi\/actions@[0-9a-f]{40} # v7\.\d+\.\d+/);
    expect(step.with).toMatchObject({
      command: 'preview',
      'comment-on-pr': true,
      'edit-pr-comment': true,
      'suppress-outputs': true,
      policyPacks: 'infra/policy',
    });
    // pulumi/actions finds its comment by "`preview` on <project>/<stack>": one per stack.
    expect(step.with['stack-name']).toBe('${{ env.STACK_NAME }}');
    expect(cloud.env.STACK_NAME).toContain('matrix.stack');
    // Installed before the preview runs the program and the policy pack.
    const steps = stepsOf(cloud);
    expect(steps.findIndex((s) => s.run === 'npm ci --no-audit --no-fund')).toBeLessThan(steps.indexOf(step));
  });

  test("a failed preview rewrites the stack's comment in pulumi/actions' own form, so no stale preview stands", async () => {
    const step = stepUsing(cloud, 'actions/github-script');
    expect(step.if).toBe("failure() && steps.preview.outcome == 'failure'");
    expect(stepsOf(cloud).indexOf(step)).toBeGreaterThan(stepsOf(cloud).findIndex((s) => s.id === 'preview'));
    const project = parse(readFileSync(join(ROOT, 'Pulumi.yaml'), 'utf8')).name;
    // pulumi/actions v7 (src/libs/pr.ts): heading `#### :tropical_drink: \`${command}\` on ${projectName}/${stackName}`,
    // and it edits the comment that starts with the heading and includes '<summary>Pulumi report</summary>'.
    const heading = `#### :tropical_drink: \`preview\` on ${project}/gcp`;
    const calls: Array<[string, Yaml]> = [];
    const github = {
      rest: {
        issues: {
          listComments: 'listComments',
          createComment: async (a: Yaml) => calls.push(['create', a]),
          updateComment: async (a: Yaml) => calls.push(['update', a]),
        },
      },
      paginate: async () => [
        { id: 1, user: { login: 'github-actions[bot]' }, body: `#### :tropical_drink: \`preview\` on ${project}/aws\n<summary>Pulumi report</summary>` },
        { id: 2, user: { login: 'github-actions[bot]' }, body: `${heading}\n\n<details>\n<summary>Pulumi report</summary>\nall good` },
      ],
    };
    const context = {
      repo: { owner: 'scim-bridge', repo: 'scim-bridge' },
      serverUrl: 'https://github.com',
      runId: 99,
      payload: { pull_request: { number: 5, head: { sha: 'a'.repeat(40) } } },
    };
    const saved = process.env.STACK_NAME;
    process.env.STACK_NAME = 'gcp';
    try {
      const AsyncFunction = Object.getPrototypeOf(async () => undefined).constructor;
      await new AsyncFunction('require', 'github', 'context', 'core', step.with.script)(require, github, context, {});
    } finally {
      process.env.STACK_NAME = saved;
    }
    expect(calls.map(([op, a]) => [op, a.comment_id])).toEqual([['update', 2]]);
    const body: string = calls[0][1].body;
    expect(body.startsWith(heading)).toBe(true);
    expect(body).toContain('<summary>Pulumi report</summary>');
    expect(body).toContain('The preview failed');
    expect(body).toContain('https://github.com/scim-bridge/scim-bridge/actions/runs/99');
  });

  test('credentials: OIDC for GCP and AWS, a token for DigitalOcean (its leg only), Pulumi Cloud by token or OIDC', () => {
    const gcp = stepUsing(cloud, 'google-github-actions/auth');
    expect(gcp.if).toBe("matrix.stack == 'gcp'");
    expect(gcp.with).toEqual({
      workload_identity_provider: '${{ vars.GCP_WORKLOAD_IDENTITY_PROVIDER }}',
      service_account: '${{ vars.GCP_SERVICE_ACCOUNT }}',
    });
    const aws = stepUsing(cloud, 'aws-actions/configure-aws-credentials');
    expect(aws.if).toBe("matrix.stack == 'aws'");
    expect(aws.with['role-to-assume']).toBe('${{ vars.AWS_ROLE_ARN }}');
    expect(aws.with).not.toHaveProperty('aws-access-key-id');
    const env = stepUsing(cloud, 'pulumi/actions').env;
    expect(env.DIGITALOCEAN_TOKEN).toBe("${{ matrix.stack == 'digitalocean' && secrets.DIGITALOCEAN_TOKEN || '' }}");
    expect(env.PULUMI_ACCESS_TOKEN).toContain('secrets.PULUMI_ACCESS_TOKEN');
    expect(env.PULUMI_ACCESS_TOKEN).toContain('steps.pulumi-oidc.outputs.pulumi-access-token');
    const oidc = stepUsing(cloud, 'pulumi/auth-actions');
    expect(oidc.id).toBe('pulumi-oidc');
    expect(oidc.if).toBe("vars.PULUMI_OIDC == 'true'");
  });

  test('forks: the offline plan, with a read-only token, no secrets and no persisted credentials, uploaded for preview-comment.yml', () => {
    expect(plan.permissions).toEqual({ contents: 'read' });
    expect(JSON.stringify(plan)).not.toMatch(/secrets\.|id-token/);
    expect(stepUsing(plan, 'actions/checkout').with['persist-credentials']).toBe(false);
    const run = stepsOf(plan).find((s) => String(s.run ?? '').includes('npm run'));
    expect(run.run).toContain('npm run --silent plan -- --stack "$STACK"');
    expect(run.env).toEqual({ STACK: '${{ matrix.stack }}' });
    const upload = stepUsing(plan, 'actions/upload-artifact');
    expect(upload.with.name).toBe('plan-${{ matrix.stack }}');
    // The two conditions are each other's negation: every pull request takes exactly one path.
    const DEPENDABOT = "github.event.pull_request.user.login == 'dependabot[bot]'";
    expect(cloud.if).toBe(`${SAME_REPO} && ${DEPENDABOT.replace('==', '!=')}`);
    expect(plan.if).toBe(`${FORK} || ${DEPENDABOT}`);
  });
});

describe('preview-comment.yml', () => {
  const comment = workflow('preview-comment.yml');
  const job = comment.jobs.comment;
  const script: string = stepUsing(job, 'actions/github-script').with.script;

  test("runs after Preview, with write access but none of the pull request's code", () => {
    expect(comment.on).toEqual({ workflow_run: { workflows: [workflow('preview.yml').name], types: ['completed'] } });
    expect(comment.permissions).toEqual({});
    expect(job.permissions).toEqual({ actions: 'read', contents: 'read', 'pull-requests': 'write' });
    expect(job.if).toContain("github.event.workflow_run.event == 'pull_request'");
    expect(job.if).toContain('github.event.workflow_run.head_repository.full_name != github.repository');
    // Nothing checked out, nothing run but the script in this file.
    expect(stepsOf(job).map((s) => String(s.uses ?? 'run').split('@')[0])).toEqual(['actions/download-artifact', 'actions/github-script']);
    expect(stepUsing(job, 'actions/download-artifact').with).toMatchObject({
      pattern: 'plan-*',
      'run-id': '${{ github.event.workflow_run.id }}',
    });
  });

  /** Runs the comment script against a fake GitHub API and a plan directory. */
  async function postComments(opts: {
    files: Record<string, string>;
    pulls?: Yaml[];
    comments?: Yaml[];
  }): Promise<{ created: Yaml[]; updated: Yaml[]; infos: string[] }> {
    const dir = mkdtempSync(join(tmp, 'plan-'));
    for (const [name, content] of Object.entries(opts.files)) {
      if (content.startsWith('->')) symlinkSync(content.slice(2), join(dir, name));
      else writeFileSync(join(dir, name), content);
    }
    const created: Yaml[] = [];
    const updated: Yaml[] = [];
    const infos: string[] = [];
    const run = {
      head_sha: 'c0ffee'.padEnd(40, '0'),
      head_branch: 'feature',
      html_url: 'https://github.com/scim-bridge/scim-bridge/actions/runs/1',
      head_repository: { full_name: 'eve/scim-bridge', owner: { login: 'eve' } },
    };
    const github = {
      rest: {
        repos: { getContent: async () => ({ data: [...STACKS.map((s) => ({ name: `Pulumi.${s}.yaml` })), { name: 'README.md' }] }) },
        pulls: {
          list: async (args: Yaml) => {
            expect(args.head).toBe('eve:feature');
            return { data: opts.pulls ?? [{ number: 42, head: { sha: run.head_sha, repo: { full_name: 'eve/scim-bridge' } } }] };
          },
        },
        issues: {
          listComments: 'listComments',
          createComment: async (args: Yaml) => {
            created.push(args);
            return { data: { html_url: 'new' } };
          },
          updateComment: async (args: Yaml) => {
            updated.push(args);
            return { data: {} };
          },
        },
      },
      paginate: async () => opts.comments ?? [],
    };
    const context = { repo: { owner: 'scim-bridge', repo: 'scim-bridge' }, payload: { workflow_run: run } };
    const core = { info: (m: string) => infos.push(m) };
    const saved = process.env.PLAN_DIR;
    process.env.PLAN_DIR = dir;
    try {
      const AsyncFunction = Object.getPrototypeOf(async () => undefined).constructor;
      await new AsyncFunction('require', 'github', 'context', 'core', script)(require, github, context, core);
    } finally {
      process.env.PLAN_DIR = saved;
    }
    return { created, updated, infos };
  }

  test('one comment per stack, with a hidden marker; the text escaped, outputs suppressed', async () => {
    const { created } = await postComments({
      files: {
        'gcp.txt': 'gcp:compute/instance:Instance  vm\n    name: "</pre><img src=x onerror=alert(1)> ```"\n\noutputs:\n    baseUrl: "https://scim.example.com"\n    token: "[secret]"\nleak check: passed\n',
        'gcp.exit': '0\n',
        'aws.txt': 'Error: \u001b[31mboom\u001b[0m\n',
        'aws.exit': '1\n',
      },
    });
    expect(created.map((c) => c.issue_number)).toEqual([42, 42]);
    const byStack = Object.fromEntries(created.map((c) => [/^<!-- scim-bridge-plan:(\S+) -->\n/.exec(c.body)?.[1], c.body as string]));
    expect(Object.keys(byStack).sort()).toEqual(['aws', 'gcp']);
    expect(byStack.gcp).toContain('Offline plan of `gcp`: passed');
    expect(byStack.gcp).toContain('&lt;/pre&gt;&lt;img src=x onerror=alert(1)&gt;');
    expect(byStack.gcp).not.toContain('<img');
    expect(byStack.gcp).toContain('outputs: (suppressed)\nleak check: passed');
    expect(byStack.gcp).not.toContain('baseUrl');
    expect(byStack.aws).toContain('Offline plan of `aws`: failed (exit 1)');
    expect(byStack.aws).toContain('Error: boom');
    expect(byStack.aws).not.toContain('\u001b');
  });

  test('edits its own comment for the stack, never anyone else’s', async () => {
    const { created, updated } = await postComments({
      files: { 'gcp.txt': 'plan\n', 'gcp.exit': '0' },
      comments: [
        { id: 1, user: { login: 'mallory' }, body: '<!-- scim-bridge-plan:gcp --> fake' },
        { id: 2, user: { login: 'github-actions[bot]' }, body: '<!-- scim-bridge-plan:aws -->\nold' },
        { id: 3, user: { login: 'github-actions[bot]' }, body: '<!-- scim-bridge-plan:gcp -->\nold' },
      ],
    });
    expect(created).toEqual([]);
    expect(updated.map((u) => u.comment_id)).toEqual([3]);
  });

  test('ignores what is not a stack under stacks/, symlinks, and a run that is no longer the head of its pull request', async () => {
    const { created } = await postComments({
      files: { 'evil.txt': 'x', 'gcp.txt': '->/etc/passwd', 'aws.txt': 'plan', 'aws.exit': 'not a number' },
    });
    expect(created.map((c) => c.body.split('\n')[0])).toEqual(['<!-- scim-bridge-plan:aws -->']);
    expect(created[0].body).toContain('Offline plan of `aws`: did not finish');

    const outdated = await postComments({
      files: { 'aws.txt': 'plan', 'aws.exit': '0' },
      pulls: [{ number: 42, head: { sha: 'f'.repeat(40), repo: { full_name: 'eve/scim-bridge' } } }],
    });
    expect(outdated.created).toEqual([]);
    expect(outdated.infos.join('\n')).toContain('nothing to post');
  });

  test('keeps a long plan under GitHub’s comment limit, start and end', async () => {
    const long = `first line\n${'<resource>\n'.repeat(20000)}leak check: passed\n`;
    const { created } = await postComments({ files: { 'gcp.txt': long, 'gcp.exit': '0' } });
    expect(created[0].body.length).toBeLessThan(65536);
    expect(created[0].body).toContain('first line');
    expect(created[0].body).toContain('leak check: passed');
    expect(created[0].body).toContain('[… cut: the plan is');
  });
});

describe('image.yml', () => {
  const image = workflow('image.yml');
  const job = image.jobs.image;
  const release = stepsOf(job).find((s) => s.id === 'release');

  test('runs on version tags, with the permissions to push and sign', () => {
    expect(image.on).toEqual({ push: { tags: ['v*'] } });
    expect(image.permissions).toEqual({});
    expect(job.permissions).toEqual({ contents: 'read', packages: 'write', 'id-token': 'write' });
  });

  /** Runs the release step's script as the runner would, in a copy of the repository's bridge/package.json. */
  function releaseStep(tag: string, owner: string): { code: number | null; output: Record<string, string>; stdout: string } {
    const dir = mkdtempSync(join(tmp, 'release-'));
    mkdirSync(join(dir, 'bridge'));
    writeFileSync(join(dir, 'bridge/package.json'), readFileSync(join(ROOT, 'bridge/package.json')));
    const outFile = join(dir, 'github-output');
    writeFileSync(outFile, '');
    const r = spawnSync('bash', ['-e', '-c', release.run], {
      cwd: dir,
      encoding: 'utf8',
      env: { ...process.env, TAG: tag, OWNER: owner, GITHUB_OUTPUT: outFile },
    });
    const output = Object.fromEntries(
      readFileSync(outFile, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => l.split(/=(.*)/s).slice(0, 2) as [string, string]),
    );
    return { code: r.status, output, stdout: r.stdout };
  }

  test("publishes exactly the stacks' default image: ghcr.io/<owner, lower-cased>/scim-bridge:<bridge/package.json version>", () => {
    expect(release.env).toEqual({ TAG: '${{ github.ref_name }}', OWNER: '${{ github.repository_owner }}' });
    const r = releaseStep(`v${bridgePackage.version}`, 'Scim-Bridge');
    expect(r.code).toBe(0);
    expect(r.output).toEqual({ version: bridgePackage.version, image: 'ghcr.io/scim-bridge/scim-bridge' });
    expect(`${r.output.image}:${r.output.version}`).toBe(DEFAULT_IMAGE);
  });

  test('fails clearly when the tag is not v<bridge/package.json version>', () => {
    const r = releaseStep('v9.9.9-not-this', 'scim-bridge');
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('::error file=bridge/package.json');
    expect(r.stdout).toContain(`Tag v9.9.9-not-this, but bridge/package.json says ${bridgePackage.version}`);
    expect(r.output).toEqual({});
  });

  test('tags <version> and the commit SHA, nothing else', () => {
    const meta = stepUsing(job, 'docker/metadata-action');
    expect(meta.with.images).toBe('${{ steps.release.outputs.image }}');
    expect(meta.with.flavor).toBe('latest=false');
    expect(meta.with.tags.trim().split('\n')).toEqual(['type=raw,value=${{ steps.release.outputs.version }}', 'type=sha,format=long,prefix=']);
  });

  test('builds bridge/Dockerfile for amd64 and arm64, with SBOM, provenance and build args from the ref', () => {
    expect(stepUsing(job, 'docker/setup-qemu-action')).toBeDefined();
    expect(stepUsing(job, 'docker/setup-buildx-action')).toBeDefined();
    expect(stepUsing(job, 'docker/login-action').with).toEqual({
      registry: 'ghcr.io',
      username: '${{ github.actor }}',
      password: '${{ secrets.GITHUB_TOKEN }}',
    });
    const build = stepUsing(job, 'docker/build-push-action');
    expect(build.id).toBe('build');
    expect(build.with).toMatchObject({
      context: '.',
      file: 'bridge/Dockerfile',
      push: true,
      sbom: true,
      provenance: 'mode=max',
      tags: '${{ steps.meta.outputs.tags }}',
      labels: '${{ steps.meta.outputs.labels }}',
    });
    expect(build.with.platforms.split(',').sort()).toEqual(['linux/amd64', 'linux/arm64']);
    expect(build.with['build-args'].trim().split('\n')).toEqual([
      'VERSION=${{ steps.release.outputs.version }}',
      'REVISION=${{ github.sha }}',
      'SOURCE=${{ github.server_url }}/${{ github.repository }}',
    ]);
  });

  test('signs the pushed digest keylessly with cosign, and verifies it', () => {
    expect(stepUsing(job, 'sigstore/cosign-installer')).toBeDefined();
    const steps = stepsOf(job);
    const sign = steps.find((s) => String(s.run ?? '').startsWith('cosign sign'));
    expect(sign.run).toBe('cosign sign --yes "$IMAGE@$DIGEST"');
    expect(sign.run).not.toMatch(/--key/);
    expect(sign.env).toEqual({ IMAGE: '${{ steps.release.outputs.image }}', DIGEST: '${{ steps.build.outputs.digest }}' });
    const verify = steps.find((s) => String(s.run ?? '').includes('cosign verify'));
    expect(verify.run).toContain('--certificate-oidc-issuer https://token.actions.githubusercontent.com');
    expect(verify.env.IDENTITY).toBe('${{ github.server_url }}/${{ github.workflow_ref }}');
    expect(steps.indexOf(sign)).toBeGreaterThan(steps.findIndex((s) => s.id === 'build'));
  });
});
