#!/usr/bin/env node
/**
 * `npm run lint:workflows` (and test/ci/workflows.test.ts, so `npm test`): validates the GitHub Actions workflows.
 *
 *   node tools/validate-workflows.mjs [file-or-directory ...]     default: .github/workflows
 *
 * Each *.yml / *.yaml file goes through @actions/workflow-parser, GitHub's own workflow parser (the one behind the
 * Actions language service): the workflow schema (keys, value types, events, runs-on, concurrency, permissions...)
 * and every ${{ }} expression (syntax, functions, and the contexts allowed where it stands: `secrets` in a job's `if`
 * or `matrix` in `runs-on` of a job without one are errors), then its conversion to a workflow template (needs
 * that name unknown jobs, cycles, ...). On top of that, three checks of our own that the parser does not make:
 *
 *   [pin]        a remote action or reusable workflow is pinned to a full commit SHA, with the version as a
 *                comment on the same line (`uses: owner/repo@<40 hex> # v1.2.3`);
 *   [reference]  `steps.<id>` in an expression names a step of the same job that runs before it, `needs.<job>`
 *                a job listed in that job's `needs`, `matrix.<key>` a key of that job's matrix;
 *   [injection]  a `run:` script (or actions/github-script's `script:`) does not paste text an outsider controls
 *                (a pull request's title or branch name, a comment...) into the script through ${{ }}: pass it
 *                through `env:` instead.
 *
 * Prints every problem as `file:line:col: message` (and as a GitHub annotation when run inside Actions), then a
 * summary line. Exits 1 on any problem, 2 when a path is missing or names no workflow file, 0 otherwise.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { register } from 'node:module';
import { join, relative, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseDocument, LineCounter, isMap, isSeq, isScalar } from 'yaml';

// The parser's build imports its schema (workflow-v1.0.min.json) without `with { type: 'json' }`, which bundlers
// accept and Node refuses (ERR_IMPORT_ATTRIBUTE_MISSING). A loader hook adds the attribute for that package's JSON
// files only; the parser is imported after it is in place.
const JSON_HOOK = `
export async function load(url, context, nextLoad) {
  if (url.endsWith('.json') && url.includes('/@actions/workflow-parser/')) {
    return nextLoad(url, { ...context, importAttributes: { ...context.importAttributes, type: 'json' } });
  }
  return nextLoad(url, context);
}`;
register(`data:text/javascript,${encodeURIComponent(JSON_HOOK)}`, import.meta.url);
const { parseWorkflow, convertWorkflowTemplate, NoOperationTraceWriter } = await import('@actions/workflow-parser');
const { ErrorPolicy } = await import('@actions/workflow-parser/model/convert');

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const WORKFLOW_FILE = /\.ya?ml$/;

/** Workflow files named by the arguments (files as given, directories: their *.yml / *.yaml, not recursive). */
function workflowFiles(args) {
  const files = [];
  for (const arg of args) {
    const path = resolve(arg);
    let stat;
    try {
      stat = statSync(path);
    } catch {
      throw new UsageError(`${arg}: no such file or directory`);
    }
    if (stat.isDirectory()) {
      const found = readdirSync(path).filter((f) => WORKFLOW_FILE.test(f)).sort();
      if (found.length === 0) throw new UsageError(`${arg}: no workflow file (*.yml, *.yaml) in this directory`);
      files.push(...found.map((f) => join(path, f)));
    } else {
      files.push(path);
    }
  }
  return files;
}

class UsageError extends Error {}

/** A path for messages: relative to the repository when inside it, absolute otherwise. */
function display(path) {
  const rel = relative(ROOT, path);
  return rel.startsWith('..') ? path : rel;
}

/** GitHub's parser: schema and expressions, then the conversion to a workflow template (which reports more). */
async function parserProblems(name, content) {
  const result = parseWorkflow({ name, content }, new NoOperationTraceWriter());
  if (result.value) {
    // TryConversion: convert even when parsing found errors, so one run reports everything it can.
    await convertWorkflowTemplate(result.context, result.value, undefined, { errorPolicy: ErrorPolicy.TryConversion });
  }
  const seen = new Set();
  const problems = [];
  for (const err of result.context.errors.getErrors()) {
    const line = err.range?.start.line;
    const col = err.range?.start.column;
    const key = `${line}:${col}:${err.rawMessage}`;
    if (seen.has(key)) continue; // the conversion repeats some of the parser's errors
    seen.add(key);
    problems.push({ line, col, message: err.rawMessage });
  }
  return problems;
}

// ---- our own checks, on the YAML (the `yaml` package, with positions) ----

const SHA_PIN = /^[^@\s]+@[0-9a-f]{40}$/;
const VERSION_COMMENT = /#\s*v?\d+(\.\d+)*\b/;

/** Expressions in a string: the ${{ }} parts, or the whole string for an `if:` without ${{ }}. */
function expressions(text, isCondition) {
  const found = [...text.matchAll(/\$\{\{([\s\S]*?)\}\}/g)].map((m) => m[1]);
  if (isCondition && found.length === 0) found.push(text);
  return found;
}

/** Text an outsider can choose, by context path (after GitHub Security Lab's list of untrusted inputs). */
const UNTRUSTED = [
  /\bgithub\.head_ref\b/,
  /\bgithub\.event\.(issue|pull_request|discussion)\.(title|body)\b/,
  /\bgithub\.event\.(comment|review|review_comment)\.body\b/,
  /\bgithub\.event\.pull_request\.head\.(ref|label|repo\.default_branch)\b/,
  /\bgithub\.event\.workflow_run\.(head_branch|display_title|head_commit\.(message|author\.(email|name)))\b/,
  /\bgithub\.event\.(head_commit|commits\b[^.]*)\.(message|author\.(email|name))\b/,
  /\bgithub\.event\.pages\b.*\.page_name\b/,
];

/** Every scalar string under a YAML node, with its node, and the key it sits under. */
function* strings(node, key = undefined) {
  if (isScalar(node)) {
    if (typeof node.value === 'string') yield { node, key, text: node.value };
  } else if (isMap(node)) {
    for (const pair of node.items) {
      const k = isScalar(pair.key) ? String(pair.key.value) : undefined;
      if (isScalar(pair.key) && typeof pair.key.value === 'string') yield { node: pair.key, key: undefined, text: pair.key.value };
      yield* strings(pair.value, k);
    }
  } else if (isSeq(node)) {
    for (const item of node.items) yield* strings(item, key);
  }
}

function get(map, key) {
  return isMap(map) ? map.get(key, true) : undefined;
}

function ownProblems(content) {
  const lineCounter = new LineCounter();
  const doc = parseDocument(content, { lineCounter, keepSourceTokens: false });
  if (doc.errors.length > 0) return []; // the parser has already reported the YAML itself
  const lines = content.split('\n');
  const problems = [];
  const at = (node, message) => {
    const pos = node?.range ? lineCounter.linePos(node.range[0]) : undefined;
    problems.push({ line: pos?.line, col: pos?.col, message });
  };

  const checkPin = (usesNode) => {
    if (!isScalar(usesNode) || typeof usesNode.value !== 'string') return;
    const uses = usesNode.value.trim();
    if (uses.startsWith('./') || uses.startsWith('docker://')) return;
    const line = lines[lineCounter.linePos(usesNode.range[0]).line - 1] ?? '';
    if (!SHA_PIN.test(uses)) {
      at(usesNode, `[pin] '${uses}' is not pinned to a full commit SHA: use ${uses.split('@')[0]}@<40-hex commit> # <version>`);
    } else if (!VERSION_COMMENT.test(line.slice(line.indexOf(uses) + uses.length))) {
      at(usesNode, `[pin] '${uses}' has no version comment on its line (like '# v1.2.3'), which says what the SHA is`);
    }
  };

  const checkInjection = (node, what) => {
    for (const { node: scalar, text } of strings(node)) {
      for (const expr of expressions(text, false)) {
        const hit = UNTRUSTED.find((re) => re.test(expr));
        if (hit) {
          at(scalar, `[injection] ${what} pastes \${{${expr}}} into code: an outsider chooses that text; pass it through env: and use the variable`);
        }
      }
    }
  };

  const jobs = get(doc.contents, 'jobs');
  if (!isMap(jobs)) return problems;
  for (const jobPair of jobs.items) {
    const jobId = isScalar(jobPair.key) ? String(jobPair.key.value) : '?';
    const job = jobPair.value;
    if (!isMap(job)) continue;
    checkPin(get(job, 'uses'));

    const needsNode = get(job, 'needs');
    const needs = new Set(
      isSeq(needsNode) ? needsNode.items.map((n) => String(isScalar(n) ? n.value : '')) : isScalar(needsNode) ? [String(needsNode.value)] : [],
    );
    // The matrix's keys, when the matrix is written out (not when it comes from an expression such as fromJSON).
    const matrix = get(get(job, 'strategy'), 'matrix');
    let matrixKeys = new Set();
    if (isMap(matrix)) {
      for (const pair of matrix.items) {
        const k = isScalar(pair.key) ? String(pair.key.value) : '';
        if (k === 'include' && isSeq(pair.value)) {
          for (const entry of pair.value.items) if (isMap(entry)) for (const p of entry.items) matrixKeys.add(String(p.key?.value));
        } else if (k !== 'exclude') {
          matrixKeys.add(k);
        }
      }
    } else if (matrix !== undefined) {
      matrixKeys = undefined;
    }
    const refsIn = (node, stepIdsBefore, where) => {
      for (const { node: scalar, key, text } of strings(node)) {
        for (const expr of expressions(text, key === 'if')) {
          for (const m of expr.matchAll(/(?<![\w.-])steps\.([A-Za-z_][\w-]*)/g)) {
            if (stepIdsBefore && !stepIdsBefore.includes(m[1])) {
              at(scalar, `[reference] steps.${m[1]} in ${where}: job '${jobId}' has no step with id '${m[1]}' before this point`);
            }
          }
          for (const m of expr.matchAll(/(?<![\w.-])needs\.([A-Za-z_][\w-]*)/g)) {
            if (!needs.has(m[1])) at(scalar, `[reference] needs.${m[1]} in ${where}: job '${jobId}' does not list '${m[1]}' in its needs`);
          }
          for (const m of expr.matchAll(/(?<![\w.-])matrix\.([A-Za-z_][\w-]*)/g)) {
            if (matrixKeys && !matrixKeys.has(m[1])) at(scalar, `[reference] matrix.${m[1]} in ${where}: job '${jobId}' has no matrix key '${m[1]}'`);
          }
        }
      }
    };

    const steps = get(job, 'steps');
    const stepIds = [];
    if (isSeq(steps)) {
      steps.items.forEach((step, i) => {
        if (!isMap(step)) return;
        const label = `step ${i + 1} of job '${jobId}'`;
        checkPin(get(step, 'uses'));
        refsIn(step, [...stepIds], label);
        const run = get(step, 'run');
        if (run) checkInjection(run, `run: in ${label}`);
        const uses = get(step, 'uses');
        if (isScalar(uses) && String(uses.value).startsWith('actions/github-script@')) {
          const script = get(get(step, 'with'), 'script');
          if (script) checkInjection(script, `script: in ${label}`);
        }
        const id = get(step, 'id');
        if (isScalar(id)) stepIds.push(String(id.value));
      });
    }
    // The job's other keys: outputs may name any of its steps; everything else runs before the steps.
    for (const pair of job.items) {
      const key = isScalar(pair.key) ? String(pair.key.value) : '';
      if (key === 'steps') continue;
      refsIn(pair.value, key === 'outputs' ? stepIds : [], `jobs.${jobId}.${key}`);
    }
  }
  return problems;
}

async function main(args) {
  const files = workflowFiles(args.length > 0 ? args : [join(ROOT, '.github/workflows')]);
  const inActions = process.env.GITHUB_ACTIONS === 'true';
  let total = 0;
  for (const file of files) {
    const name = display(file);
    const content = readFileSync(file, 'utf8');
    const problems = [...(await parserProblems(name, content)), ...ownProblems(content)];
    problems.sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.col ?? 0) - (b.col ?? 0));
    for (const p of problems) {
      const where = p.line !== undefined ? `${name}:${p.line}:${p.col}` : name;
      process.stderr.write(`${where}: ${p.message}\n`);
      if (inActions) {
        const loc = p.line !== undefined ? `,line=${p.line},col=${p.col}` : '';
        const msg = p.message.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
        process.stdout.write(`::error file=${name}${loc}::${msg}\n`);
      }
    }
    process.stdout.write(`${problems.length === 0 ? 'ok  ' : 'FAIL'} ${name}${problems.length ? ` (${problems.length} problem${problems.length > 1 ? 's' : ''})` : ''}\n`);
    total += problems.length;
  }
  process.stdout.write(`validate-workflows: ${files.length} workflow file${files.length === 1 ? '' : 's'}, ${total} problem${total === 1 ? '' : 's'}\n`);
  return total === 0 ? 0 : 1;
}

// exitCode rather than exit(): the output is flushed first, where pipes are asynchronous.
main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`validate-workflows: ${err instanceof UsageError ? err.message : err?.stack ?? err}\n`);
    process.exitCode = 2;
  },
);
