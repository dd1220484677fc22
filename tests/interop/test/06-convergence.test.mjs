// Two clients converge after interleaved edits to the same rows: the same
// field of the same row, different fields of one row, archive against
// update, delete against update. Afterwards each client's view equals the
// database.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { assertViewEqualsDb, makeClient, stopClient, waitSettled } from "../lib/client.mjs";
import { headSyncId, rows } from "../lib/db.mjs";
import { env } from "../lib/env.mjs";
import { seedWorkspace, uniqueUser } from "../lib/server.mjs";
import { sleep, waitFor } from "../lib/wait.mjs";
import { wireCheckTest } from "../lib/wire-check.mjs";

// A small deterministic PRNG (mulberry32): the interleaving is the same on
// every run (seed 17017 by default); INTEROP_SEED picks another one.
const prng = (seed) => () => {
  seed |= 0;
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};

describe("two clients converge after interleaved edits", () => {
  const alice = uniqueUser("conv_a");
  const bob = uniqueUser("conv_b");
  const seed = Number(process.env.INTEROP_SEED ?? 17_017);
  let workspaceId;
  let tasks;
  let labels;
  let a;
  let b;

  before(async () => {
    workspaceId = await seedWorkspace({ tasks: 6, labels: 2, members: [alice, bob] });
    tasks = (await rows(`SELECT id::text AS id FROM tasks WHERE workspace_id = '${workspaceId}' ORDER BY id`)).map((r) => r.id);
    labels = (await rows(`SELECT id::text AS id FROM labels WHERE workspace_id = '${workspaceId}' ORDER BY id`)).map((r) => r.id);
    a = makeClient({ userId: alice });
    // B talks to the second node when run.sh runs the suite on two nodes.
    b = makeClient({ userId: bob, baseUrl: env.peerUrl });
    await Promise.all([a.client.start(), b.client.start()]);
    await Promise.all([waitSettled(a), waitSettled(b)]);
  });

  after(async () => {
    await Promise.all([stopClient(a), stopClient(b)]);
  });

  test(`interleaved edits to the same rows (seed ${seed})`, async (t) => {
    const random = prng(seed);
    const log = [];
    // Races the client itself refuses (the row vanished locally meanwhile).
    const tolerate = (error) => {
      if (!/not found/.test(error.message)) {
        throw error;
      }
    };
    const run = async (handle, name, ops) => {
      for (const op of ops) {
        log.push(`${name}: ${op.label}`);
        try {
          await op.run(handle.client);
        } catch (error) {
          tolerate(error);
          log.push(`${name}: ${op.label} refused locally (${error.message})`);
        }
        await sleep(Math.floor(random() * 25));
      }
    };
    const opsFor = (who) => {
      const ops = [];
      for (let i = 0; i < 12; i += 1) {
        ops.push({ label: `title t0 = ${who}${i}`, run: (c) => c.update("Task", tasks[0], { title: `${who}${i}` }) });
        ops.push({
          label: `t1 ${who === "A" ? "priority" : "description"} ${i}`,
          run: (c) => c.update("Task", tasks[1], who === "A" ? { priority: i } : { description: `${who}${i}` }),
        });
        if (i % 3 === 0) {
          ops.push({ label: `label0 name ${who}${i}`, run: (c) => c.update("Label", labels[0], { name: `${who}${i}`, color: `#${who === "A" ? "aa" : "bb"}00${String(i).padStart(2, "0")}` }) });
        }
      }
      if (who === "A") {
        ops.splice(5, 0, { label: "archive t2", run: (c) => c.archive("Task", tasks[2]) });
        ops.splice(15, 0, { label: "unarchive t2", run: (c) => c.unarchive("Task", tasks[2]) });
        ops.splice(9, 0, { label: "delete t3", run: (c) => c.delete("Task", tasks[3]) });
        ops.push({ label: "workspace name A", run: (c) => c.update("Workspace", workspaceId, { name: "A's name" }) });
      } else {
        ops.splice(4, 0, { label: "title t2 (archived by A)", run: (c) => c.update("Task", tasks[2], { title: "B on the archived task" }) });
        ops.splice(8, 0, { label: "title t3 (deleted by A)", run: (c) => c.update("Task", tasks[3], { title: "B on the deleted task" }) });
        ops.splice(10, 0, { label: "title t3 again", run: (c) => c.update("Task", tasks[3], { priority: 99 }) });
        ops.push({ label: "workspace name B", run: (c) => c.update("Workspace", workspaceId, { name: "B's name" }) });
      }
      return ops;
    };

    try {
      await Promise.all([run(a, "A", opsFor("A")), run(b, "B", opsFor("B"))]);
      // Both outboxes drain, and both cursors reach the head of the log.
      await Promise.all([waitSettled(a, { timeout: 30_000 }), waitSettled(b, { timeout: 30_000 })]);
      const head = await headSyncId();
      await Promise.all([waitSettled(a, { atLeast: head }), waitSettled(b, { atLeast: head })]);
      // The stored replicas equal the database exactly. In memory, rows on
      // which the client resolved a rebase conflict are checked after the
      // reload below: @stratasync/client 0.5.1 can keep a stale in-memory
      // value there (a client bug, see the next test).
      await assertViewEqualsDb(a, workspaceId, { skipLive: conflictedRows(a) });
      await assertViewEqualsDb(b, workspaceId, { skipLive: conflictedRows(b) });
    } catch (error) {
      t.diagnostic(`operations:\n${log.join("\n")}`);
      t.diagnostic(`rebase conflicts: A=${a.events.filter((e) => e.type === "rebaseConflict").length} B=${b.events.filter((e) => e.type === "rebaseConflict").length}`);
      throw error;
    }
    const conflicts = [...a.events, ...b.events].filter((e) => e.type === "rebaseConflict").length;
    t.diagnostic(`converged; ${log.length} operations, ${conflicts} rebase conflicts resolved by the clients`);
    // The deleted task is gone from both stored replicas (checked above). In
    // memory, a client whose rejected update of it is rolled back may
    // re-create a partial row (client behaviour, reported as a diagnostic).
    for (const h of [a, b]) {
      if (h.client.getIdentityMap("Task").has(tasks[3])) {
        t.diagnostic(`${h.userId} still holds deleted task t3 in memory: ${JSON.stringify(h.client.getIdentityMap("Task").get(tasks[3]))}`);
      }
    }

    // A reload (new sessions over the same local databases) shows exactly
    // the database in memory too.
    a = await reload(a);
    b = await reload(b);
    await assertViewEqualsDb(a, workspaceId);
    await assertViewEqualsDb(b, workspaceId);
  });

  test("an in-flight edit that loses a rebase conflict: the server's order wins", async (t) => {
    // B's update is held in flight until A's update of the same field has
    // committed and reached B. The server applies them in that order (A's,
    // then B's), so the database, both stored replicas and every reloaded
    // view hold B's value.
    let release;
    const gate = new Promise((resolve) => {
      release = resolve;
    });
    const mutate = b.transport.mutate.bind(b.transport);
    const held = [];
    b.transport.mutate = async (batch) => {
      held.push(batch);
      await gate;
      return mutate(batch);
    };
    try {
      await b.client.update("Label", labels[1], { name: "B, sent first, committed last" });
      // B's edit is in flight (sent, held at the gate) before A edits.
      await waitFor(
        () =>
          held.some((batch) =>
            (batch.transactions ?? []).some((tx) => tx.modelName === "Label" && tx.modelId === labels[1])
          ),
        { message: "B's update to be sent" }
      );
      await a.client.update("Label", labels[1], { name: "A, committed first" });
      await waitSettled(a);
      await waitFor(() => b.storage.snapshot("Label")[labels[1]]?.name === "A, committed first", {
        message: "A's edit to reach B",
      });
    } finally {
      release();
    }
    await waitSettled(b);
    const head = await headSyncId();
    await Promise.all([waitSettled(a, { atLeast: head }), waitSettled(b, { atLeast: head })]);
    assert.deepEqual(await rows(`SELECT name FROM labels WHERE id = '${labels[1]}'`), [
      { name: "B, sent first, committed last" },
    ]);
    await assertViewEqualsDb(a, workspaceId, { skipLive: conflictedRows(a) });
    await assertViewEqualsDb(b, workspaceId, { skipLive: new Set([...conflictedRows(b), `Label:${labels[1]}`]) });
    const inMemory = b.client.getIdentityMap("Label").get(labels[1]).name;
    t.diagnostic(
      `B in memory: ${JSON.stringify(inMemory)} (database and B's storage: "B, sent first, committed last"; ` +
        "a different value is the @stratasync/client 0.5.1 echo-suppression bug, not a server fault)"
    );
    a = await reload(a);
    b = await reload(b);
    await assertViewEqualsDb(a, workspaceId);
    await assertViewEqualsDb(b, workspaceId);
  });

  wireCheckTest();
});

/** Rows on which the client reported a rebase conflict. */
const conflictedRows = (handle) =>
  new Set(handle.events.filter((e) => e.type === "rebaseConflict").map((e) => `${e.modelName}:${e.modelId}`));

/** Stops a client and starts a new session over the same local database. */
const reload = async (handle) => {
  await stopClient(handle);
  const next = makeClient({ userId: handle.userId, storage: handle.storage, dbName: handle.dbName });
  await next.client.start();
  await waitSettled(next);
  return next;
};
