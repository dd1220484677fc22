// A last test per file: every WebSocket frame the clients received in it
// obeyed PROTOCOL.md §7.4/§9.4 (see ws-recorder.mjs).
import assert from "node:assert/strict";
import { test } from "node:test";
import { wireProblems, wsRecords } from "./ws-recorder.mjs";

export const wireCheckTest = () =>
  test("every WebSocket frame received followed the protocol", (t) => {
    const deltas = wsRecords()
      .flatMap((r) => r.received)
      .filter((f) => f.json?.type === "delta").length;
    assert.deepEqual(wireProblems(), []);
    if (deltas === 0) {
      t.skip("no delta frame in this run (tests filtered out?)");
    } else {
      t.diagnostic(`${deltas} delta frames checked`);
    }
  });
