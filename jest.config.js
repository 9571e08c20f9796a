/** Transpile-only: `npm run typecheck` checks types once for the whole tree. */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { diagnostics: false }] },
  testTimeout: 30000,
  // The VM boot test first, the image test last (test/sequencer.js says why).
  testSequencer: '<rootDir>/test/sequencer.js',
  // The bridge built for the tests that start it as a process (test/helpers/bridge-build.ts), and one PostgreSQL
  // server for the run; each test file makes its own database on it (test/helpers/postgres.ts).
  globalSetup: '<rootDir>/test/global-setup.ts',
  globalTeardown: '<rootDir>/test/postgres-global-teardown.ts',
  // At least two workers even on two cores: the VM boot test spends most of its time in QEMU, not in jest, and
  // the other suites run beside it (jest's default there would be one worker, everything in a row).
  maxWorkers: Math.max(2, require('node:os').cpus().length - 1),
};
