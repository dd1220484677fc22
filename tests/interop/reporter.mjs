// A `node --test` reporter that counts leaf tests and writes the counts to
// the file named by INTEROP_SUMMARY after every result (synchronously, so
// the counts survive --test-force-exit). run.sh prints them as the final
// `N passed, M failed` line and fails a run that ran no test.
//
// Nothing may pass without running: a skipped test and a `todo` test
// (passing or failing) count as failures. The only tests left out without
// failing are those a `--test-name-pattern` filtered out (counted apart).
import { writeFileSync } from "node:fs";

/** What node's runner says of a test a name pattern left out. */
const FILTERED = "test name does not match pattern";

const summary = { passed: 0, failed: 0, filtered: 0, failures: [] };

const save = () => {
  if (process.env.INTEROP_SUMMARY) {
    writeFileSync(process.env.INTEROP_SUMMARY, JSON.stringify(summary, null, 2));
  }
};

const fail = (name, why) => {
  summary.failed += 1;
  summary.failures.push(`${name}: ${why}`);
};

export default async function* reporter(source) {
  save();
  for await (const event of source) {
    const data = event.data ?? {};
    const isSuite = data.details?.type === "suite";
    if (event.type === "test:pass" && !isSuite) {
      if (data.skip === FILTERED) {
        summary.filtered += 1;
      } else if (data.skip !== undefined) {
        fail(data.name, `skipped (${data.skip || "no reason given"}): a test must run`);
      } else if (data.todo !== undefined) {
        fail(data.name, `marked todo (${data.todo || "no reason given"}): a test must assert`);
      } else {
        summary.passed += 1;
      }
      save();
    } else if (event.type === "test:fail") {
      const error = data.details?.error;
      // A suite fails when one of its tests does (already counted) or when a
      // hook fails (counted once, below; its tests are reported as cancelled).
      if (isSuite && (!error || ["subtestsFailed", "cancelledByParent"].includes(error.failureType))) {
        continue;
      }
      const why = error?.cause?.message ?? error?.message ?? "failed";
      fail(data.name, data.todo !== undefined ? `marked todo (${data.todo}), and failed: ${why}` : why);
      save();
    }
  }
  save();
}
