#!/usr/bin/env node
/**
 * Validates Kubernetes objects against their schemas (test/infra/kubernetes-schema.test.ts gives it every object
 * the kubernetes target's plan declares):
 *
 *   node tools/validate-k8s.mjs < objects.json      a JSON array of objects (apiVersion, kind, metadata, spec…)
 *
 * Each object goes through its model in the `kubernetes-models` packages (the Kubernetes API's OpenAPI schema,
 * and the cert-manager, Gateway API, CloudNativePG and Prometheus Operator CRDs' schemas), compiled validators that check types,
 * required fields, enums and formats. Those schemas, like the API server's, do not refuse a field they do not
 * know (a misspelled `readinesProbe` passes, and the API server would drop it silently), so a second check of
 * our own does: every field of the object must be one the schema constrains. It asks the validator itself: a
 * field replaced by a value of the wrong type makes a known field fail at its own path, and an unknown one
 * not. Maps (labels, annotations, a Secret's data) are constrained by their value schema, so their keys pass.
 *
 * Prints one JSON object: { objects: n, problems: ["Kind name: path message", ...] }. Exits 1 when there is a
 * problem, 2 on bad input. The packages are ES modules, which is why this runs as its own process.
 */
import { readFileSync } from 'node:fs';

/** Where each API group's models are. */
const PACKAGES = {
  'cert-manager.io': '@kubernetes-models/cert-manager',
  'acme.cert-manager.io': '@kubernetes-models/cert-manager',
  'gateway.networking.k8s.io': '@kubernetes-models/gateway-api',
  'postgresql.cnpg.io': '@kubernetes-models/cloudnative-pg',
  'monitoring.coreos.com': '@kubernetes-models/prometheus-operator',
};

async function modelOf(apiVersion, kind) {
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion];
  const pkg = PACKAGES[group] ?? 'kubernetes-models';
  const path = group ? `${pkg}/${group}/${version}/${kind}` : `${pkg}/${version}/${kind}`;
  try {
    return (await import(path))[kind];
  } catch {
    return undefined;
  }
}

/** The validator's errors for `data`, or [] when it is valid. */
function errorsOf(Model, data) {
  try {
    new Model(data).validate();
    return [];
  } catch (err) {
    if (!Array.isArray(err.errors)) throw err;
    return err.errors;
  }
}

const pointer = (path) => '/' + path.map((p) => String(p).replace(/~/g, '~0').replace(/\//g, '~1')).join('/');
const dotted = (path) => path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${p}`)).join('').replace(/^\./, '');

function setAt(root, path, value) {
  const copy = structuredClone(root);
  let node = copy;
  for (const p of path.slice(0, -1)) node = node[p];
  node[path[path.length - 1]] = value;
  return copy;
}

/** Fields (dotted paths) of `obj` that the schema does not constrain. */
function unknownFields(Model, obj) {
  const unknown = [];
  const visit = (value, path) => {
    if (Array.isArray(value)) {
      value.forEach((v, i) => visit(v, [...path, i]));
      return;
    }
    if (value === null || typeof value !== 'object') return;
    for (const [key, child] of Object.entries(value)) {
      const at = [...path, key];
      // Values no schema type allows where this one is (an int-or-string takes a number, a boolean a string):
      // a known field fails at its own path (or below it) with one of them; an unknown field with none.
      const probes = typeof child === 'boolean' ? ['not-a-boolean', [[]]] : [true, [[]]];
      const where = pointer(at);
      const fails = (probe) => errorsOf(Model, setAt(obj, at, probe)).some((e) => e.instancePath === where || e.instancePath.startsWith(`${where}/`));
      if (!probes.some(fails)) unknown.push(dotted(at));
      else visit(child, at);
    }
  };
  visit(obj, []);
  return unknown;
}

async function main() {
  let objects;
  try {
    objects = JSON.parse(readFileSync(process.argv[2] ?? 0, 'utf8'));
    if (!Array.isArray(objects)) throw new Error('expected a JSON array of objects');
  } catch (err) {
    process.stderr.write(`validate-k8s: ${err.message}\n`);
    return 2;
  }
  const problems = [];
  for (const obj of objects) {
    const label = `${obj.kind} ${obj.metadata?.name ?? '(no name)'}`;
    const Model = await modelOf(String(obj.apiVersion), String(obj.kind));
    if (!Model) {
      problems.push(`${label}: no schema for ${obj.apiVersion} ${obj.kind}`);
      continue;
    }
    const errors = errorsOf(Model, obj);
    for (const e of errors) problems.push(`${label}: ${e.instancePath || '/'} ${e.message}${e.params ? ` ${JSON.stringify(e.params)}` : ''}`);
    // Probing field by field needs an object that is otherwise valid.
    if (errors.length === 0) for (const field of unknownFields(Model, obj)) problems.push(`${label}: ${field} is not a field of ${obj.apiVersion} ${obj.kind}`);
  }
  process.stdout.write(JSON.stringify({ objects: objects.length, problems }, null, 2) + '\n');
  return problems.length ? 1 : 0;
}

process.exitCode = await main();
