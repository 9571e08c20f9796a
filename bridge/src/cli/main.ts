/** The `scim-bridge` command's entry point (bin): the process's own stdin, stdout, stderr and environment. */
import { run } from './index';

run(process.argv.slice(2), { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr, env: process.env }).then((code) => {
  process.exitCode = code;
});
