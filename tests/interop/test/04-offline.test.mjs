// Offline edits: client A's network is cut (a TCP proxy drops every
// connection), A keeps editing (optimistic, queued in its outbox), another
// client edits meanwhile; when the network returns A sends its queue, catches
// up, and both clients converge on the database.
import { generateUUID } from "@stratasync/core";
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { assertViewEqualsDb, makeClient, stopClient, tokenFor, waitSettled } from "../lib/client.mjs";
import { httpRequests } from "../lib/http-recorder.mjs";
import { rows } from "../lib/db.mjs";
import { env } from "../lib/env.mjs";
import { NetworkProxy, seedWorkspace, uniqueUser } from "../lib/server.mjs";
import { waitFor } from "../lib/wait.mjs";
import { wireCheckTest } from "../lib/wire-check.mjs";

describe("offline edits are queued and sent on reconnect", () => {
  const alice = uniqueUser("offline_a");
  const bob = uniqueUser("offline_b");
  let workspaceId;
  let proxy;
  let a;
  let b;
  let tasks;

  before(async () => {
    workspaceId = await seedWorkspace({ tasks: 6, labels: 1, members: [alice, bob] });
    tasks = (await rows(`SELECT id::text AS id FROM tasks WHERE workspace_id = '${workspaceId}' ORDER BY id`)).map((r) => r.id);
    proxy = await NetworkProxy.start(Number(new URL(env.baseUrl).port));
    a = makeClient({ userId: alice, baseUrl: proxy.baseUrl });
    b = makeClient({ userId: bob });
    await Promise.all([a.client.start(), b.client.start()]);
    await Promise.all([waitSettled(a), waitSettled(b)]);
  });

  after(async () => {
    await Promise.all([stopClient(a), stopClient(b)]);
    await proxy?.close();
  });

  test("edits made while the network is down reach the server and the other client", async () => {
    proxy.setOnline(false);
    await waitFor(() => a.client.connectionState !== "connected", { message: "A to notice it is offline" });

    const newTask = generateUUID();
    const newLabel = generateUUID();
    await a.client.create("Task", { completedAt: null, description: null, dueDate: null, id: newTask, priority: 7, title: "Written offline", workspaceId });
    await a.client.update("Task", tasks[0], { title: "Edited offline", priority: 9 });
    await a.client.archive("Task", tasks[1]);
    await a.client.create("Label", { color: "#123456", id: newLabel, name: "Offline label", workspaceId });
    await a.client.delete("Task", tasks[2]);
    await a.client.update("Task", newTask, { description: "then edited, still offline" });

    // Optimistic locally, nothing on the server.
    assert.equal(a.client.getIdentityMap("Task").get(tasks[0]).title, "Edited offline");
    assert.equal(a.client.getIdentityMap("Task").has(tasks[2]), false);
    assert.equal(await a.client.getPendingCount(), 6);

    // Meanwhile B edits other rows (and one A also edits, another field).
    await b.client.update("Task", tasks[3], { title: "B edited while A was offline" });
    await b.client.update("Task", tasks[0], { description: "B's description" });
    await waitSettled(b);

    // A's sends fail (after the transport's retries) and stay queued until
    // the network returns.
    await waitFor(
      async () => {
        const outbox = await a.storage.getOutbox();
        return outbox.length === 6 && outbox.every((tx) => tx.state === "queued" && tx.retryCount > 0);
      },
      {
        timeout: 30_000,
        message: "A's sends to fail and be re-queued",
      }
    );
    assert.deepEqual(await rows(`SELECT id FROM tasks WHERE id = '${newTask}'`), []);
    const [first] = await rows(`SELECT title FROM tasks WHERE id = '${tasks[0]}'`);
    assert.notEqual(first.title, "Edited offline");

    proxy.setOnline(true);
    await waitSettled(a, { timeout: 30_000 });
    await waitSettled(b, { atLeast: a.client.lastSyncId });

    const [task] = await rows(`SELECT title, priority, description FROM tasks WHERE id = '${tasks[0]}'`);
    assert.deepEqual(task, { description: "B's description", priority: 9, title: "Edited offline" });
    assert.deepEqual(await rows(`SELECT title, description FROM tasks WHERE id = '${newTask}'`), [
      { description: "then edited, still offline", title: "Written offline" },
    ]);
    assert.deepEqual(await rows(`SELECT id FROM tasks WHERE id = '${tasks[2]}'`), []);
    await assertViewEqualsDb(a, workspaceId);
    await assertViewEqualsDb(b, workspaceId);
    assert.equal(a.client.getIdentityMap("Task").get(tasks[3]).title, "B edited while A was offline");
    assert.equal(b.client.getIdentityMap("Label").get(newLabel).name, "Offline label");
  });

  test("a queue left by a client that stopped offline is sent by the next session", async () => {
    proxy.setOnline(false);
    await waitFor(() => a.client.connectionState !== "connected", { message: "A to notice it is offline" });
    await a.client.update("Task", tasks[4], { title: "Queued, then the app closed" });
    await a.client.update("Workspace", workspaceId, { name: "Renamed offline" });
    const storage = a.storage;
    await stopClient(a);
    assert.equal((await storage.getOutbox()).length, 2);
    assert.deepEqual(await rows(`SELECT title FROM tasks WHERE id = '${tasks[4]}' AND title = 'Queued, then the app closed'`), []);

    proxy.setOnline(true);
    a = makeClient({ userId: alice, baseUrl: proxy.baseUrl, storage, dbName: a.dbName });
    await a.client.start();
    await waitSettled(a, { timeout: 30_000 });
    assert.equal((await storage.getOutbox()).length, 0);
    assert.deepEqual(await rows(`SELECT name FROM workspaces WHERE id = '${workspaceId}'`), [{ name: "Renamed offline" }]);
    await waitSettled(b, { atLeast: a.client.lastSyncId });
    await waitFor(() => b.client.getIdentityMap("Task").get(tasks[4])?.title === "Queued, then the app closed", {
      message: "B to see the queued edit",
    });
    await assertViewEqualsDb(a, workspaceId);
    await assertViewEqualsDb(b, workspaceId);
  });

  test("a long offline queue is sent in batches of at most 100 transactions", async () => {
    proxy.setOnline(false);
    await waitFor(() => a.client.connectionState !== "connected", { message: "A to notice it is offline" });
    const token = tokenFor(alice);
    const since = Date.now();
    for (let i = 0; i < 150; i += 1) {
      await a.client.update("Task", tasks[i % 2 === 0 ? 0 : 5], { priority: 1000 + i });
    }
    assert.equal(await a.client.getPendingCount(), 150);
    proxy.setOnline(true);
    await waitSettled(a, { timeout: 40_000 });
    // The client may count a batch as sent before its response arrived:
    // wait for every answer.
    const mutations = () => httpRequests({ token, path: "/sync/mutate" }).filter((r) => r.at >= since);
    await waitFor(() => mutations().every((r) => r.status !== null), {
      message: () => `every mutate request to be answered (${JSON.stringify(mutations())})`,
    });
    const sent = mutations().filter((r) => r.status === 200);
    assert.ok(sent.every((r) => r.transactions <= 100), `batch sizes: ${sent.map((r) => r.transactions)}`);
    assert.equal(
      sent.reduce((n, r) => n + r.transactions, 0),
      150,
      `batch sizes: ${JSON.stringify(mutations())}`
    );
    assert.deepEqual(await rows(`SELECT priority FROM tasks WHERE id IN ('${tasks[0]}', '${tasks[5]}') ORDER BY priority`), [
      { priority: 1148 },
      { priority: 1149 },
    ]);
    await waitSettled(b, { atLeast: a.client.lastSyncId });
    await assertViewEqualsDb(a, workspaceId);
    await assertViewEqualsDb(b, workspaceId);
  });

  wireCheckTest();
});
