// A `node --test` reporter that counts leaf tests and writes the counts to
// the file named by INTEROP_SUMMARY after every result (synchronously, so
// the counts survive --test-force-exit). run.sh prints them as the final
// `N passed, M failed` line. A failing test marked `todo` is an expected
// failure (a known server bug) and is counted separately.
import { writeFileSync } from "node:fs";

const summary = { passed: 0, failed: 0, expectedFailures: [], unexpectedPasses: [], skipped: 0, failures: [] };

const save = () => {
  if (process.env.INTEROP_SUMMARY) {
    writeFileSync(process.env.INTEROP_SUMMARY, JSON.stringify(summary, null, 2));
  }
};

export default async function* reporter(source) {
  save();
  for await (const event of source) {
    const data = event.data ?? {};
    const isSuite = data.details?.type === "suite";
    if (event.type === "test:pass" && !isSuite) {
      if (data.skip) {
        summary.skipped += 1;
      } else if (data.todo) {
        summary.unexpectedPasses.push(`${data.name} (todo: ${data.todo})`);
        summary.passed += 1;
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
      if (data.todo) {
        summary.expectedFailures.push(`${data.name} (todo: ${data.todo})`);
      } else if (isSuite) {
        // A suite whose hook failed: its tests are reported (cancelled) too,
        // so count the hook failure once.
        summary.failed += 1;
        summary.failures.push(`${data.name}: ${error?.cause?.message ?? error?.message ?? "failed"}`);
      } else {
        summary.failed += 1;
        summary.failures.push(`${data.name}: ${error?.cause?.message ?? error?.message ?? "failed"}`);
      }
      save();
    }
  }
  save();
}
