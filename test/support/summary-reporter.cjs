'use strict';
// Mocha loads reporters with require(), hence CommonJS. The spec output is for people; CI only looks
// for the plain `N passed, N failed[, N skipped]` line printed after it.
// eslint-disable-next-line @typescript-eslint/no-require-imports -- CommonJS on purpose, see above
const Mocha = require('mocha');

const { EVENT_RUN_END } = Mocha.Runner.constants;

class SummaryReporter extends Mocha.reporters.Spec {
  constructor(runner, options) {
    super(runner, options);
    // Registered after Spec's own run-end listener, so the line comes after its epilogue.
    runner.once(EVENT_RUN_END, () => {
      const { passes, failures, pending } = this.stats;
      const skipped = pending > 0 ? `, ${pending} skipped` : '';
      process.stdout.write(`${passes} passed, ${failures} failed${skipped}\n`);
    });
  }
}

SummaryReporter.description = 'spec output followed by a plain "N passed, N failed" line';

module.exports = SummaryReporter;
