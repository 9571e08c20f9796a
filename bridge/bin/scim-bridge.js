#!/usr/bin/env node
// `npx scim-bridge <command>`: the compiled command (npm run build) or, in a checkout that was not built, its
// TypeScript through ts-node (a dev dependency of the repository's root).
const { existsSync } = require('node:fs');
const { join } = require('node:path');

const compiled = join(__dirname, '..', 'dist', 'cli', 'main.js');
if (existsSync(compiled)) {
  require(compiled);
} else {
  require('ts-node').register({ transpileOnly: true, project: join(__dirname, '..', '..', 'tsconfig.json') });
  require(join(__dirname, '..', 'src', 'cli', 'main.ts'));
}
