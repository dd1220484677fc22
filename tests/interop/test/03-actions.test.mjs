// Every action on every docs/example.md model (Task I/U/D/A/V, Label I/U/D,
// TaskLabel I/D, Workspace U), made through SyncClient A and seen by
// SyncClient B over the WebSocket (B makes no HTTP delta request meanwhile).
import { generateUUID } from "@stratasync/core";
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  assertViewEqualsDb,
  makeClient,
  stopClient,
  syncErrors,
  tokenFor,
  waitCaughtUp,
  waitSettled,
} from "../lib/client.mjs";
import { rows } from "../lib/db.mjs";
import { env } from "../lib/env.mjs";
import { httpRequests } from "../lib/http-recorder.mjs";
import { seedWorkspace, uniqueUser } from "../lib/server.mjs";
import { compositeId } from "../lib/uuidv5.mjs";
import { waitFor } from "../lib/wait.mjs";
import { wsDeltaActions } from "../lib/ws-recorder.mjs";
import { wireCheckTest } from "../lib/wire-check.mjs";

const DAY = 86_400_000;

describe("every action on every model reaches a second client over WebSocket", () => {
  const alice = uniqueUser("alice");
  const bob = uniqueUser("bob");
  let workspaceId;
  let a;
  let b;
  let bobDeltaFetchesBefore;
  const seenLetters = new Set();

  before(async () => {
    workspaceId = await seedWorkspace({ tasks: 3, labels: 1, members: [alice, bob] });
    a = makeClient({ userId: alice });
    // B talks to the second node when run.sh runs the suite on two nodes.
    b = makeClient({ userId: bob, baseUrl: env.peerUrl });
    await Promise.all([a.client.start(), b.client.start()]);
    await Promise.all([waitSettled(a), waitCaughtUp(b)]);
    // B's start-up catch-up is over; from here on it must not fetch deltas.
    bobDeltaFetchesBefore = httpRequests({ token: tokenFor(bob), path: "/sync/deltas" }).length;
  });

  after(async () => {
    await Promise.all([stopClient(a), stopClient(b)]);
  });

  /**
   * Runs `mutate` on A (capturing its transaction), waits until A's outbox
   * is empty, then until B's WebSocket delivered that transaction's action
   * and `check(B's identity map)` holds.
   */
  const step = async (letter, modelName, mutate, check) => {
    const txs = [];
    await mutate((tx) => txs.push(tx));
    assert.equal(txs.length, 1, "one transaction per step");
    const [tx] = txs;
    assert.equal(tx.action, letter);
    await waitSettled(a);
    await waitFor(
      () =>
        wsDeltaActions(tokenFor(bob)).some(
          (x) => x.clientTxId === tx.clientTxId && x.action === letter && x.modelName === modelName
        ),
      { message: `B's WebSocket to deliver ${modelName} ${letter} (${tx.clientTxId})` }
    );
    await waitFor(() => check((model) => b.client.getIdentityMap(model)), {
      message: `B's view after ${modelName} ${letter}`,
    });
    seenLetters.add(letter);
    return tx;
  };

  const taskId = generateUUID();
  const labelId = generateUUID();

  test("Task insert (I)", async () => {
    const data = {
      completedAt: null,
      description: "Created by A",
      dueDate: Date.UTC(2025, 5, 15),
      id: taskId,
      priority: 5,
      title: "Interop task",
      workspaceId,
    };
    await step("I", "Task", (on) => a.client.create("Task", data, { onTransactionCreated: on }), (map) => {
      const row = map("Task").get(taskId);
      return row && row.title === "Interop task";
    });
    const row = b.client.getIdentityMap("Task").get(taskId);
    for (const [key, value] of Object.entries(data)) {
      assert.deepEqual(row[key], value, `B's Task.${key}`);
    }
    assert.equal(typeof row.createdAt, "number", "the server's createdAt (dateNow) reaches B as epoch ms");
    const [db] = await rows(`SELECT (extract(epoch FROM created_at) * 1000)::bigint AS ms FROM tasks WHERE id = '${taskId}'`);
    assert.ok(Math.abs(db.ms - row.createdAt) <= 1);
  });

  test("Task update (U) of every updatable field", async () => {
    const completedAt = Date.UTC(2025, 0, 2, 3, 4, 5, 678);
    const changes = { completedAt, description: null, dueDate: 20_100 * DAY, priority: 1, title: "Renamed task" };
    await step("U", "Task", (on) => a.client.update("Task", taskId, changes, { onTransactionCreated: on }), (map) => {
      const row = map("Task").get(taskId);
      return row?.title === "Renamed task" && row.completedAt === completedAt;
    });
    const row = b.client.getIdentityMap("Task").get(taskId);
    assert.deepEqual(
      { completedAt: row.completedAt, description: row.description, dueDate: row.dueDate, priority: row.priority, title: row.title },
      changes
    );
    const [db] = await rows(
      `SELECT title, description, priority, due_date::text AS due, (extract(epoch FROM completed_at) * 1000)::bigint AS done FROM tasks WHERE id = '${taskId}'`
    );
    assert.deepEqual(db, { description: null, done: completedAt, due: "2025-01-12", priority: 1, title: "Renamed task" });
  });

  test("Task archive (A)", async () => {
    const archivedAt = Date.UTC(2025, 2, 3, 4, 5, 6, 789);
    await step("A", "Task", (on) => a.client.archive("Task", taskId, { archivedAt, onTransactionCreated: on }), (map) =>
      map("Task").get(taskId)?.archivedAt === archivedAt
    );
    const [db] = await rows(`SELECT (extract(epoch FROM archived_at) * 1000)::bigint AS ms FROM tasks WHERE id = '${taskId}'`);
    assert.equal(db.ms, archivedAt);
  });

  test("Task unarchive (V)", async () => {
    await step("V", "Task", (on) => a.client.unarchive("Task", taskId, { onTransactionCreated: on }), (map) =>
      map("Task").get(taskId)?.archivedAt === null
    );
    const [db] = await rows(`SELECT archived_at FROM tasks WHERE id = '${taskId}'`);
    assert.equal(db.archived_at, null);
  });

  test("Label insert (I) and update (U)", async () => {
    await step(
      "I",
      "Label",
      (on) => a.client.create("Label", { color: "#ff0000", id: labelId, name: "Urgent", workspaceId }, { onTransactionCreated: on }),
      (map) => map("Label").get(labelId)?.name === "Urgent"
    );
    await step(
      "U",
      "Label",
      (on) => a.client.update("Label", labelId, { color: "#00ff00", name: "Calm" }, { onTransactionCreated: on }),
      (map) => map("Label").get(labelId)?.color === "#00ff00" && map("Label").get(labelId)?.name === "Calm"
    );
  });

  test("TaskLabel insert (I) under its composite id, and delete (D)", async () => {
    const id = compositeId("TaskLabel", [taskId, labelId]);
    await step(
      "I",
      "TaskLabel",
      (on) => a.client.create("TaskLabel", { id, labelId, taskId, workspaceId }, { onTransactionCreated: on }),
      (map) => map("TaskLabel").get(id)?.taskId === taskId
    );
    const row = b.client.getIdentityMap("TaskLabel").get(id);
    assert.equal(row.labelId, labelId);
    assert.equal(typeof row.createdAt, "number");
    await step("D", "TaskLabel", (on) => a.client.delete("TaskLabel", id, { onTransactionCreated: on }), (map) => !map("TaskLabel").has(id));
    assert.deepEqual(await rows(`SELECT 1 FROM task_labels WHERE task_id = '${taskId}'`), []);
  });

  test("Label delete (D) cascades to its TaskLabels on both clients", async () => {
    const id = compositeId("TaskLabel", [taskId, labelId]);
    await step(
      "I",
      "TaskLabel",
      (on) => a.client.create("TaskLabel", { id, labelId, taskId, workspaceId }, { onTransactionCreated: on }),
      (map) => map("TaskLabel").has(id)
    );
    await step("D", "Label", (on) => a.client.delete("Label", labelId, { onTransactionCreated: on }), (map) =>
      !map("Label").has(labelId) && !map("TaskLabel").has(id)
    );
    await waitFor(() => !a.client.getIdentityMap("TaskLabel").has(id), { message: "A to drop the cascaded TaskLabel" });
  });

  test("Task delete (D) cascades to its TaskLabels", async () => {
    const [other] = await rows(`SELECT id::text AS id FROM labels WHERE workspace_id = '${workspaceId}' LIMIT 1`);
    const id = compositeId("TaskLabel", [taskId, other.id]);
    await step(
      "I",
      "TaskLabel",
      (on) => a.client.create("TaskLabel", { id, labelId: other.id, taskId, workspaceId }, { onTransactionCreated: on }),
      (map) => map("TaskLabel").has(id)
    );
    await step("D", "Task", (on) => a.client.delete("Task", taskId, { onTransactionCreated: on }), (map) =>
      !map("Task").has(taskId) && !map("TaskLabel").has(id)
    );
  });

  test("Workspace update (U)", async () => {
    await step(
      "U",
      "Workspace",
      (on) => a.client.update("Workspace", workspaceId, { name: "Renamed workspace" }, { onTransactionCreated: on }),
      (map) => map("Workspace").get(workspaceId)?.name === "Renamed workspace"
    );
  });

  test("mutations the server rejects are rolled back by the client", async () => {
    const [seeded] = await rows(
      `SELECT id::text AS id, priority FROM tasks WHERE workspace_id = '${workspaceId}' ORDER BY id LIMIT 1`
    );
    const txs = [];
    const on = (tx) => txs.push(tx);
    // A number codec given a string; a date-only value that is not UTC midnight.
    await a.client.update("Task", seeded.id, { priority: "high" }, { onTransactionCreated: on });
    const badId = generateUUID();
    await a.client.create(
      "Task",
      { completedAt: null, description: null, dueDate: Date.UTC(2025, 0, 1, 12), id: badId, priority: 0, title: "Bad date", workspaceId },
      { onTransactionCreated: on }
    );
    await waitSettled(a);
    await waitFor(
      () => a.client.getIdentityMap("Task").get(seeded.id)?.priority === seeded.priority && !a.client.getIdentityMap("Task").has(badId),
      { message: "A to roll both back" }
    );
    assert.deepEqual(await rows(`SELECT priority FROM tasks WHERE id = '${seeded.id}'`), [{ priority: seeded.priority }]);
    assert.deepEqual(await rows(`SELECT id FROM tasks WHERE id = '${badId}'`), []);
    const logged = await rows(
      `SELECT id FROM sync_actions WHERE client_tx_id IN ('${txs[0].clientTxId}', '${txs[1].clientTxId}')`
    );
    assert.deepEqual(logged, []);
  });

  test("undo and redo travel as ordinary mutations", async () => {
    const id = generateUUID();
    await step(
      "I",
      "Label",
      (on) => a.client.create("Label", { color: "#0000ff", id, name: "Undo me", workspaceId }, { onTransactionCreated: on }),
      (map) => map("Label").has(id)
    );
    await a.client.undo();
    await waitSettled(a);
    await waitFor(() => !b.client.getIdentityMap("Label").has(id), { message: "B to see the undone insert" });
    await a.client.redo();
    await waitSettled(a);
    await waitFor(() => b.client.getIdentityMap("Label").get(id)?.name === "Undo me", { message: "B to see the redo" });

    // Undoing a delete re-inserts the whole row, server-set fields included.
    const [victim] = await rows(
      `SELECT id::text AS id FROM tasks WHERE workspace_id = '${workspaceId}' ORDER BY id DESC LIMIT 1`
    );
    const before = { ...b.client.getIdentityMap("Task").get(victim.id) };
    await step("D", "Task", (on) => a.client.delete("Task", victim.id, { onTransactionCreated: on }), (map) => !map("Task").has(victim.id));
    await a.client.undo();
    await waitSettled(a);
    await waitFor(() => b.client.getIdentityMap("Task").has(victim.id), { message: "B to see the task come back" });
    const after = b.client.getIdentityMap("Task").get(victim.id);
    for (const key of ["title", "description", "priority", "dueDate", "completedAt", "createdAt", "workspaceId"]) {
      assert.deepEqual(after[key], before[key], `restored Task.${key}`);
    }
  });

  test("both views equal the database, all over WebSocket, no errors", async () => {
    assert.deepEqual([...seenLetters].sort(), ["A", "D", "I", "U", "V"]);
    await waitSettled(b, { atLeast: a.client.lastSyncId });
    await assertViewEqualsDb(a, workspaceId);
    await assertViewEqualsDb(b, workspaceId);
    assert.equal(
      httpRequests({ token: tokenFor(bob), path: "/sync/deltas" }).length,
      bobDeltaFetchesBefore,
      "B fetched deltas over HTTP: the changes did not all arrive over the WebSocket"
    );
    assert.deepEqual(syncErrors(a), []);
    assert.deepEqual(syncErrors(b), []);
    // A's mutations all went through the REST mutate path.
    const posts = httpRequests({ token: tokenFor(alice), path: "/sync/mutate" });
    assert.ok(posts.length >= 13 && posts.every((r) => r.method === "POST" && r.status === 200));
  });

  wireCheckTest();
});
