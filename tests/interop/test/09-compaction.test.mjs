// Log compaction (`taskboard log compact`, docs/protocol.md §2.6) against
// the published client. A client offline across a compaction whose horizon
// is its cursor + 1 resumes from the folded log without a bootstrap; a
// client whose cursor is below horizon - 1 is told BOOTSTRAP_REQUIRED and
// bootstraps again. Both end with exactly the rows of a client that
// bootstrapped after everything. Compaction is global, so this file has its
// own database and server.
import { generateUUID } from "@stratasync/core";
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { holdRebootstrapUntilBothPathsReported } from "../lib/bootstrap-required.mjs";
import {
  assertSameReplica,
  assertViewEqualsDb,
  makeClient,
  stopClient,
  syncErrors,
  tokenFor,
  waitSettled,
} from "../lib/client.mjs";
import { headSyncId, rows } from "../lib/db.mjs";
import { httpRequests } from "../lib/http-recorder.mjs";
import { NetworkProxy, ServerProcess, compactLog, createDatabase, seedWorkspace, uniqueUser } from "../lib/server.mjs";
import { compositeId } from "../lib/uuidv5.mjs";
import { waitFor } from "../lib/wait.mjs";
import { wsDeltaActions, wsRecords } from "../lib/ws-recorder.mjs";
import { wireCheckTest } from "../lib/wire-check.mjs";

describe("clients resume across a log compaction", () => {
  const alice = uniqueUser("compact_a"); // offline across the first compaction
  const bob = uniqueUser("compact_w"); // the writer, always online
  const carol = uniqueUser("compact_c"); // offline across the second, below its horizon
  const dave = uniqueUser("compact_f"); // bootstraps after everything
  let db;
  let server;
  let proxyA;
  let proxyC;
  let workspaceId;
  let tasks;
  let labels;
  let preTask;
  let a;
  let w;
  let c;
  let f;
  const head = async () => BigInt(await headSyncId({ databaseUrl: db.url }));
  const dbRows = (query) => rows(query, { databaseUrl: db.url });
  const view = (h) => assertViewEqualsDb(h, workspaceId, { databaseUrl: db.url });
  const logOf = (id) => dbRows(`SELECT id::text AS id, action, data FROM sync_actions WHERE model_id = '${id}' ORDER BY id`);
  const newTask = (id, title) => ({ completedAt: null, description: null, dueDate: null, id, priority: 1, title, workspaceId });
  const taskLabel = (taskId, labelId) => ({ id: compositeId("TaskLabel", [taskId, labelId]), labelId, taskId, workspaceId });

  /**
   * The writer makes each round's edits, then waits until all of them are
   * committed, so no two of one row's edits are merged in its outbox and
   * the log holds each as its own action.
   */
  const writerRounds = async (rounds) => {
    for (const round of rounds) {
      for (const edit of round) {
        await edit(w.client);
      }
      await waitSettled(w, { timeout: 30_000 });
    }
    return head();
  };

  /** Cuts a client's network and waits until it noticed. */
  const goOffline = async (handle, proxy) => {
    proxy.setOnline(false);
    await waitFor(() => handle.client.connectionState !== "connected", { message: `${handle.userId} offline` });
  };

  /** What the server told `userId` since `since`: bootstraps, 409s and BOOTSTRAP_REQUIRED frames. */
  const answersSince = (userId, since) => {
    const token = tokenFor(userId);
    return {
      bootstraps: httpRequests({ token, path: "/sync/bootstrap" }).filter((r) => r.at >= since).length,
      stale: httpRequests({ token, path: "/sync/deltas" }).filter((r) => r.at >= since && r.status === 409).length,
      staleFrames: wsRecords(token)
        .flatMap((r) => r.received)
        .filter((x) => x.at >= since && x.json?.code === "BOOTSTRAP_REQUIRED").length,
    };
  };

  before(async () => {
    db = await createDatabase("compact");
    server = await ServerProcess.start({ databaseUrl: db.url, name: "compact-server" });
    workspaceId = await seedWorkspace({ tasks: 8, labels: 2, members: [alice, bob, carol, dave], databaseUrl: db.url });
    tasks = (await dbRows(`SELECT id::text AS id FROM tasks ORDER BY id`)).map((r) => r.id);
    labels = (await dbRows(`SELECT id::text AS id FROM labels ORDER BY id`)).map((r) => r.id);
    proxyA = await NetworkProxy.start(server.port);
    proxyC = await NetworkProxy.start(server.port);
    a = makeClient({ userId: alice, baseUrl: proxyA.baseUrl });
    w = makeClient({ userId: bob, baseUrl: server.baseUrl });
    c = makeClient({ userId: carol, baseUrl: proxyC.baseUrl });
    await Promise.all([a.client.start(), w.client.start(), c.client.start()]);
    await Promise.all([waitSettled(a), waitSettled(w), waitSettled(c)]);
    // History that every client has seen: the runs folded later begin at
    // or below the cursors (seeded rows have no insert in the log; these
    // inserts do).
    preTask = generateUUID();
    const seen = await writerRounds([
      [
        (x) => x.create("Task", newTask(preTask, "pre v0")),
        (x) => x.update("Task", tasks[0], { title: "t0 before" }),
        (x) => x.archive("Task", tasks[1]),
        (x) => x.create("TaskLabel", taskLabel(tasks[0], labels[0])),
        (x) => x.create("TaskLabel", taskLabel(tasks[5], labels[1])),
      ],
      [(x) => x.update("Task", preTask, { priority: 4 })],
    ]);
    await Promise.all([waitSettled(a, { atLeast: seen }), waitSettled(c, { atLeast: seen })]);
  });

  after(async () => {
    await Promise.all([stopClient(a), stopClient(w), stopClient(c), stopClient(f)]);
    await proxyA?.close();
    await proxyC?.close();
    await server?.close();
    await db?.drop();
  });

  test("a client offline across a compaction with horizon = its cursor + 1 resumes without a bootstrap", async (t) => {
    await goOffline(a, proxyA);
    const cursor = BigInt(a.client.lastSyncId);
    assert.equal(cursor, await head(), "A saw everything before going offline");

    const n1 = generateUUID();
    const gone = generateUUID();
    const l1 = generateUUID();
    const t0l0 = taskLabel(tasks[0], labels[0]);
    const t4l1 = () => taskLabel(tasks[4], l1);
    const compacted = await writerRounds([
      [
        (x) => x.create("Task", newTask(n1, "n1 v0")),
        (x) => x.create("Task", newTask(gone, "created and deleted while A is away")),
        (x) => x.create("Label", { color: "#101010", id: l1, name: "l1 v0", workspaceId }),
        (x) => x.update("Task", tasks[0], { title: "t0 v1" }),
        (x) => x.unarchive("Task", tasks[1]),
        (x) => x.archive("Task", tasks[2]),
        (x) => x.update("Task", tasks[3], { title: "t3, about to go" }),
        (x) => x.update("Task", preTask, { title: "pre v1" }),
        (x) => x.update("Workspace", workspaceId, { name: "away 1" }),
      ],
      [
        (x) => x.update("Task", n1, { title: "n1 v1" }),
        (x) => x.update("Task", gone, { title: "gone v1" }),
        (x) => x.create("TaskLabel", taskLabel(gone, labels[0])),
        (x) => x.update("Label", l1, { name: "l1 v1" }),
        (x) => x.update("Label", labels[0], { color: "#abcdef" }),
        (x) => x.update("Task", tasks[0], { priority: 5 }),
        (x) => x.update("Task", tasks[1], { title: "t1 unarchived" }),
        (x) => x.update("Task", tasks[2], { priority: 9 }),
        (x) => x.archive("Task", preTask),
        (x) => x.delete("TaskLabel", t0l0.id),
        (x) => x.create("TaskLabel", t4l1()),
      ],
      [
        (x) => x.update("Task", n1, { description: "n1 described", priority: 2 }),
        (x) => x.archive("Task", n1),
        (x) => x.delete("Task", gone), // and its TaskLabel
        (x) => x.delete("Task", tasks[3]),
        (x) => x.delete("Task", tasks[5]), // and its TaskLabel A holds
        (x) => x.delete("Label", labels[1]),
        (x) => x.update("Label", l1, { name: "l1 v2" }),
        (x) => x.update("Task", tasks[0], { title: "t0 v2", description: "t0 described" }),
        (x) => x.create("TaskLabel", t0l0), // deleted and inserted again
        (x) => x.delete("TaskLabel", t4l1().id), // inserted and deleted while A is away
        (x) => x.create("TaskLabel", taskLabel(n1, l1)),
        (x) => x.update("Workspace", workspaceId, { name: "away 2" }),
      ],
      [
        (x) => x.unarchive("Task", n1),
        (x) => x.update("Task", n1, { title: "n1 v2" }),
      ],
    ]);
    const missed = Number(compacted - cursor);
    assert.deepEqual(
      (await logOf(gone)).map((x) => x.action),
      ["I", "U", "D"],
      "the log holds every action on the task created and deleted meanwhile"
    );

    // Fold everything up to the head; remove everything A has applied.
    const report = await compactLog({ horizon: cursor + 1n, databaseUrl: db.url });
    assert.equal(report.below, String(compacted));
    assert.equal(report.horizon, String(cursor + 1n));
    assert.ok(report.removed > 0 && report.rewritten > 0, JSON.stringify(report));
    t.diagnostic(`A's cursor ${cursor}, ${missed} actions missed; compaction: ${JSON.stringify(report)}`);
    assert.deepEqual(await dbRows(`SELECT id FROM sync_actions WHERE id <= ${cursor}`), []);
    const left = Number((await dbRows(`SELECT count(*)::int AS n FROM sync_actions`))[0].n);
    assert.ok(left < missed, `the actions A missed were folded: ${left} left of ${missed}`);
    // Each row keeps one action: its insert folded with what followed, its
    // updates merged (a seeded row has no insert in the log), its tombstone.
    const n1Log = await logOf(n1);
    assert.deepEqual(
      n1Log.map((x) => [x.action, x.data.title, x.data.priority, x.data.description]),
      [["I", "n1 v2", 2, "n1 described"]]
    );
    assert.deepEqual((await logOf(gone)).map((x) => x.action), ["D"]);
    const t0Log = await logOf(tasks[0]);
    assert.deepEqual(t0Log.map((x) => [x.action, x.data.title, x.data.priority, x.data.description]), [
      ["U", "t0 v2", 5, "t0 described"],
    ]);
    assert.deepEqual((await logOf(t0l0.id)).map((x) => x.action), ["I"]);
    assert.deepEqual((await logOf(t4l1().id)).map((x) => x.action), ["D"]);

    // More edits after the compaction, also missed: A reads a folded log
    // followed by an unfolded tail.
    const l2 = generateUUID();
    const final = await writerRounds([
      [
        (x) => x.update("Task", n1, { priority: 3 }),
        (x) => x.update("Task", tasks[0], { title: "t0 after the compaction" }),
        (x) => x.create("Label", { color: "#202020", id: l2, name: "l2", workspaceId }),
      ],
    ]);
    assert.ok(final > compacted);

    const since = Date.now();
    proxyA.setOnline(true);
    await waitSettled(a, { atLeast: final, timeout: 30_000 });
    assert.deepEqual(answersSince(alice, since), { bootstraps: 0, stale: 0, staleFrames: 0 }, "A resumed without a bootstrap");
    assert.deepEqual(syncErrors(a), []);
    assert.equal(a.client.getIdentityMap("Task").get(n1)?.title, "n1 v2");
    assert.equal(a.client.getIdentityMap("Task").has(gone), false);
    assert.equal(a.client.getIdentityMap("Task").has(tasks[3]), false);
    assert.equal(a.client.getIdentityMap("TaskLabel").has(taskLabel(tasks[5], labels[1]).id), false);
    assert.equal(a.client.getIdentityMap("TaskLabel").has(t0l0.id), true);

    // A client that bootstraps after everything holds exactly A's rows.
    const bootstrapsBefore = answersSince(dave, 0).bootstraps;
    f = makeClient({ userId: dave, baseUrl: server.baseUrl });
    await f.client.start();
    await waitSettled(f, { atLeast: final });
    assert.ok(answersSince(dave, 0).bootstraps > bootstrapsBefore, "F bootstrapped");
    await waitSettled(c, { atLeast: final }); // online throughout: the compaction changed nothing for it
    await view(a);
    await view(f);
    await view(c);
    assertSameReplica(a, f, workspaceId);
    assertSameReplica(c, f, workspaceId);
  });

  test("a client offline across a compaction with horizon = its cursor + 2 is told to bootstrap and converges", async (t) => {
    await waitSettled(c, { atLeast: await head() });
    await goOffline(c, proxyC);
    const cursor = BigInt(c.client.lastSyncId);
    assert.equal(cursor, await head(), "C saw everything before going offline");

    const n4 = generateUUID();
    const n1 = (await dbRows(`SELECT id::text AS id FROM tasks WHERE title = 'n1 v2'`))[0].id;
    const missed = await writerRounds([
      [
        (x) => x.create("Task", newTask(n4, "n4 v0")),
        (x) => x.update("Task", tasks[0], { title: "t0 while C is away" }),
        (x) => x.archive("Task", tasks[6]),
      ],
      [
        (x) => x.update("Task", n4, { title: "n4 v1" }),
        (x) => x.delete("Task", n1),
        (x) => x.create("TaskLabel", taskLabel(n4, labels[0])),
      ],
    ]);
    // The action right after C's cursor is removed: C's cursor is
    // horizon - 2, one below the lowest cursor that can resume.
    const report = await compactLog({ horizon: cursor + 2n, databaseUrl: db.url });
    assert.equal(report.horizon, String(cursor + 2n));
    assert.deepEqual(await dbRows(`SELECT id FROM sync_actions WHERE id <= ${cursor + 1n}`), []);
    t.diagnostic(`C's cursor ${cursor}; compaction: ${JSON.stringify(report)}`);

    const since = Date.now();
    holdRebootstrapUntilBothPathsReported(c, since);
    proxyC.setOnline(true);
    await waitSettled(c, { atLeast: missed, timeout: 40_000 });
    const told = answersSince(carol, since);
    assert.ok(told.stale + told.staleFrames > 0, `C was told BOOTSTRAP_REQUIRED: ${JSON.stringify(told)}`);
    assert.ok(told.bootstraps > 0, `C bootstrapped again: ${JSON.stringify(told)}`);
    assert.equal(c.client.getIdentityMap("Task").get(n4)?.title, "n4 v1");
    assert.equal(c.client.getIdentityMap("Task").has(n1), false);

    await Promise.all([waitSettled(a, { atLeast: missed }), waitSettled(f, { atLeast: missed })]);
    await view(c);
    await view(a);
    await view(f);
    assertSameReplica(c, f, workspaceId);
    assertSameReplica(a, f, workspaceId);

    // Live deltas flow to all three afterwards.
    const txs = [];
    await w.client.update("Task", n4, { title: "after both compactions" }, { onTransactionCreated: (tx) => txs.push(tx) });
    for (const h of [a, c, f]) {
      await waitFor(() => wsDeltaActions(tokenFor(h.userId)).some((x) => x.clientTxId === txs[0].clientTxId), {
        message: `${h.userId}'s WebSocket to deliver the edit`,
      });
      await waitFor(() => h.client.getIdentityMap("Task").get(n4)?.title === "after both compactions", {
        message: `${h.userId} to apply the edit`,
      });
    }
    await waitSettled(w);
    for (const h of [a, c, f]) {
      await waitSettled(h, { atLeast: await head() });
    }
    assertSameReplica(a, f, workspaceId);
    assertSameReplica(c, f, workspaceId);
  });

  wireCheckTest();
});
