// A last test per file: every WebSocket frame the clients received in it
// obeyed docs/protocol.md §7.4/§9.4 (see ws-recorder.mjs). Each file's scenarios
// deliver deltas over WebSocket, so a file whose clients received none
// checked nothing: that fails too.
import assert from "node:assert/strict";
import { test } from "node:test";
import { wireProblems, wsRecords } from "./ws-recorder.mjs";

export const wireCheckTest = () =>
  test("every WebSocket frame received followed the protocol", (t) => {
    const deltas = wsRecords()
      .flatMap((r) => r.received)
      .filter((f) => f.json?.type === "delta").length;
    assert.deepEqual(wireProblems(), []);
    assert.ok(deltas > 0, "no delta frame arrived over WebSocket in this file: the protocol check checked nothing");
    t.diagnostic(`${deltas} delta frames checked`);
  });
