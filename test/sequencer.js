/**
 * The order jest hands test files to its workers: jest's own (failed first, then slowest first by its timing cache,
 * else biggest file first), except that the VM boot test always goes first and the image test last. The boot test
 * is by far the longest (its VMs run for most of the run, beside everything else); on a fresh clone jest has no
 * timings (the cache is keyed by the checkout's path) and would start it only after bigger files. The image test
 * builds the same bridge image as the boot test (whichever comes first builds it, the other loads it): started
 * last, it finds the archive the boot test built instead of building it a second time at the same moment.
 */
const Sequencer = require('@jest/test-sequencer').default;

const FIRST = /[\\/]test[\\/]e2e[\\/]boot\.test\.ts$/;
const LAST = /[\\/]test[\\/]e2e[\\/]image\.test\.ts$/;

class BootTestFirst extends Sequencer {
  async sort(tests) {
    const sorted = await super.sort(tests);
    const rank = (t) => (FIRST.test(t.path) ? 0 : LAST.test(t.path) ? 2 : 1);
    // Array.prototype.sort is stable: jest's order holds within each rank.
    return [...sorted].sort((a, b) => rank(a) - rank(b));
  }
}

module.exports = BootTestFirst;
