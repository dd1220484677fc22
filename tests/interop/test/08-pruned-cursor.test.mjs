// A client whose cursor was pruned from the sync log (DELETE FROM
// sync_actions WHERE id <= X) is told BOOTSTRAP_REQUIRED by /sync/deltas
// (409) and by the WebSocket subscribe, re-bootstraps, keeps its queued
// edits, and carries on. Pruning is global, so this file has its own
// database and server.
import { generateUUID } from "@stratasync/core";
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { holdRebootstrapUntilBothPathsReported } from "../lib/bootstrap-required.mjs";
import { assertViewEqualsDb, makeClient, makeTransport, stopClient, tokenFor, waitSettled } from "../lib/client.mjs";
import { headSyncId, rows, sql } from "../lib/db.mjs";
import { httpRequests } from "../lib/http-recorder.mjs";
import { NetworkProxy, ServerProcess, createDatabase, seedWorkspace, uniqueUser } from "../lib/server.mjs";
import { sleep, waitFor } from "../lib/wait.mjs";
import { wsDeltaActions, wsFrames } from "../lib/ws-recorder.mjs";
import { wireCheckTest } from "../lib/wire-check.mjs";

describe("a client whose cursor was pruned recovers through BOOTSTRAP_REQUIRED", () => {
  const alice = uniqueUser("prune_a");
  const bob = uniqueUser("prune_b");
  let db;
  let server;
  let proxy;
  let workspaceId;
  let tasks;
  let a;
  let b;
  const q = (query) => sql(query, { databaseUrl: db.url });
  const head = () => headSyncId({ databaseUrl: db.url });
  const dbRows = (query) => rows(query, { databaseUrl: db.url });
  const view = (h) => assertViewEqualsDb(h, workspaceId, { databaseUrl: db.url });

  /** B makes `n` edits; returns the head afterwards. */
  const bobEdits = async (n, tag) => {
    for (let i = 0; i < n; i += 1) {
      await b.client.update("Task", tasks[i % tasks.length], { priority: 100 + i, title: `${tag} ${i}` });
    }
    await waitSettled(b);
    return head();
  };

  /** Deletes every log row up to `last`. */
  const prune = async (last) => {
    await q(`DELETE FROM sync_actions WHERE id <= ${last}`);
    return Number(await q("SELECT min(id) FROM sync_actions"));
  };

  before(async () => {
    db = await createDatabase("prune");
    server = await ServerProcess.start({ databaseUrl: db.url, name: "prune-server" });
    workspaceId = await seedWorkspace({ tasks: 8, labels: 1, members: [alice, bob], databaseUrl: db.url });
    tasks = (await dbRows(`SELECT id::text AS id FROM tasks ORDER BY id`)).map((r) => r.id);
    proxy = await NetworkProxy.start(server.port);
    a = makeClient({ userId: alice, baseUrl: proxy.baseUrl });
    b = makeClient({ userId: bob, baseUrl: server.baseUrl });
    await Promise.all([a.client.start(), b.client.start()]);
    await Promise.all([waitSettled(a), waitSettled(b)]);
    await a.client.update("Workspace", workspaceId, { name: "Before pruning" });
    await waitSettled(a);
  });

  after(async () => {
    await Promise.all([stopClient(a), stopClient(b)]);
    await proxy?.close();
    await server?.close();
    await db?.drop();
  });

  test("the transport reports BOOTSTRAP_REQUIRED for a pruned cursor (HTTP 409 and WebSocket)", async () => {
    const stale = await head();
    await bobEdits(4, "transport");
    const earliest = await prune(Number(stale) + 1);
    assert.ok(Number(stale) < earliest - 1, "the cursor is now below the log");

    const transport = makeTransport({ userId: alice, baseUrl: server.baseUrl });
    try {
      const before = httpRequests({ token: tokenFor(alice), path: "/sync/deltas" }).length;
      const error = await transport.fetchDeltas(stale).then(
        () => null,
        (e) => e
      );
      assert.ok(error, "fetchDeltas must fail");
      assert.equal(error.code, "BOOTSTRAP_REQUIRED");
      assert.equal(typeof error.message, "string");
      const requests = httpRequests({ token: tokenFor(alice), path: "/sync/deltas" }).slice(before);
      assert.deepEqual(
        requests.map((r) => r.status),
        [409],
        "one request, not retried"
      );

      const subscription = transport.subscribe({ afterSyncId: stale, groups: [workspaceId, alice] });
      const iterator = subscription[Symbol.asyncIterator]();
      const failure = await Promise.race([
        iterator.next().then(
          () => null,
          (e) => e
        ),
        sleep(10_000).then(() => new Error("no answer to a stale subscribe within 10 s")),
      ]);
      assert.equal(failure?.code, "BOOTSTRAP_REQUIRED", String(failure));
      const frame = wsFrames(tokenFor(alice)).find((f) => f?.code === "BOOTSTRAP_REQUIRED");
      assert.equal(frame.type, "error");
      assert.equal(typeof frame.message, "string");
      // The current cursor is still fine.
      const ok = await transport.fetchDeltas(await head());
      assert.deepEqual(ok.actions, []);
    } finally {
      await transport.close();
    }
  });

  test("a running client whose cursor is pruned while it is offline re-bootstraps on reconnect", async () => {
    await waitSettled(a, { atLeast: await head() });
    proxy.setOnline(false);
    await waitFor(() => a.client.connectionState !== "connected", { message: "A offline" });
    const cursor = a.client.lastSyncId;
    const newHead = await bobEdits(5, "while A is offline");
    await prune(Number(newHead) - 1); // only the last action survives
    const bootstrapsBefore = httpRequests({ token: tokenFor(alice), path: "/sync/bootstrap" }).length;

    holdRebootstrapUntilBothPathsReported(a, Date.now());
    proxy.setOnline(true);
    await waitSettled(a, { atLeast: newHead, timeout: 40_000 });
    assert.ok(
      httpRequests({ token: tokenFor(alice), path: "/sync/bootstrap" }).length > bootstrapsBefore,
      "A bootstrapped again"
    );
    assert.ok(BigInt(a.client.lastSyncId) > BigInt(cursor));
    await view(a);

    // Live deltas flow again.
    const txs = [];
    await b.client.update("Task", tasks[0], { title: "After A's recovery" }, { onTransactionCreated: (tx) => txs.push(tx) });
    await waitFor(() => wsDeltaActions(tokenFor(alice)).some((x) => x.clientTxId === txs[0].clientTxId), {
      message: "A's WebSocket to deliver B's edit",
    });
    await waitFor(() => a.client.getIdentityMap("Task").get(tasks[0])?.title === "After A's recovery", {
      message: "A to apply B's edit",
    });
    await view(a);
    await view(b);
  });

  test("a restarted client with a pruned cursor re-bootstraps and still sends its queued edits", async () => {
    await waitSettled(a, { atLeast: await head() });
    proxy.setOnline(false);
    await waitFor(() => a.client.connectionState !== "connected", { message: "A offline" });
    const queued = generateUUID();
    await a.client.create("Label", { color: "#0f0f0f", id: queued, name: "Queued before pruning", workspaceId });
    await a.client.update("Task", tasks[5], { description: "queued edit" });
    const storage = a.storage;
    await stopClient(a);
    assert.equal((await storage.getOutbox()).length, 2);

    const newHead = await bobEdits(3, "while A is closed");
    await prune(Number(newHead) - 1);

    proxy.setOnline(true);
    a = makeClient({ userId: alice, baseUrl: proxy.baseUrl, storage, dbName: a.dbName });
    holdRebootstrapUntilBothPathsReported(a, Date.now());
    await a.client.start();
    await waitSettled(a, { atLeast: newHead, timeout: 40_000 });
    assert.equal((await storage.getOutbox()).length, 0);
    assert.deepEqual(await dbRows(`SELECT name FROM labels WHERE id = '${queued}'`), [{ name: "Queued before pruning" }]);
    assert.deepEqual(await dbRows(`SELECT description FROM tasks WHERE id = '${tasks[5]}'`), [{ description: "queued edit" }]);
    await waitSettled(b, { atLeast: a.client.lastSyncId });
    await waitFor(() => b.client.getIdentityMap("Label").has(queued), { message: "B to receive A's queued label" });
    await view(a);
    await view(b);
  });

  wireCheckTest();
});
