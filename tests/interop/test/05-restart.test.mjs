// A server restart in the middle of a session: the server process is
// killed (a crash) while two clients are connected, edits are made while it
// is down, and it comes back on the same port. The clients reconnect,
// resubscribe from their cursors, send what they queued, and converge.
import { generateUUID } from "@stratasync/core";
import { DEFAULT_RETRY_CONFIG } from "@stratasync/transport-graphql";
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { assertViewEqualsDb, makeClient, stopClient, syncErrors, tokenFor, waitSettled } from "../lib/client.mjs";
import { rows } from "../lib/db.mjs";
import { ServerProcess, seedWorkspace, uniqueUser } from "../lib/server.mjs";
import { sleep, waitFor } from "../lib/wait.mjs";
import { wsDeltaActions, wsRecords } from "../lib/ws-recorder.mjs";
import { wireCheckTest } from "../lib/wire-check.mjs";

describe("server restart in the middle of a session", () => {
  const alice = uniqueUser("restart_a");
  const bob = uniqueUser("restart_b");
  let server;
  let workspaceId;
  let tasks;
  let a;
  let b;

  before(async () => {
    server = await ServerProcess.start({ name: "restart-server" });
    workspaceId = await seedWorkspace({ tasks: 5, labels: 1, members: [alice, bob] });
    tasks = (await rows(`SELECT id::text AS id FROM tasks WHERE workspace_id = '${workspaceId}' ORDER BY id`)).map((r) => r.id);
    // A uses the transport's default retry policy (1 s base, x2, 3 tries).
    a = makeClient({ userId: alice, baseUrl: server.baseUrl, retry: DEFAULT_RETRY_CONFIG });
    b = makeClient({ userId: bob, baseUrl: server.baseUrl });
    await Promise.all([a.client.start(), b.client.start()]);
    await Promise.all([waitSettled(a), waitSettled(b)]);
  });

  after(async () => {
    await Promise.all([stopClient(a), stopClient(b)]);
    await server?.close();
  });

  test("clients survive a crash and restart of the server", async (t) => {
    await a.client.update("Task", tasks[0], { title: "Before the crash" });
    await waitFor(() => b.client.getIdentityMap("Task").get(tasks[0])?.title === "Before the crash", {
      message: "B to see A's edit before the crash",
    });

    await server.kill("SIGKILL");
    await waitFor(() => a.client.connectionState !== "connected" && b.client.connectionState !== "connected", {
      message: "both clients to notice the server is gone",
    });

    // Edits while the server is down.
    const created = generateUUID();
    await a.client.update("Task", tasks[1], { title: "While the server was down", priority: 3 });
    await a.client.create("Task", { completedAt: null, description: null, dueDate: null, id: created, priority: 0, title: "Created during the outage", workspaceId });
    await b.client.update("Task", tasks[2], { title: "B, during the outage" });
    await sleep(1_500);
    assert.equal((await rows(`SELECT id FROM tasks WHERE id = '${created}'`)).length, 0);

    await server.restart();
    t.diagnostic(`server back after the crash; A state=${a.client.state}, B state=${b.client.state}`);

    await waitSettled(a, { timeout: 40_000 });
    await waitSettled(b, { timeout: 40_000 });
    await waitSettled(a, { atLeast: b.client.lastSyncId, timeout: 20_000 });
    await waitSettled(b, { atLeast: a.client.lastSyncId, timeout: 20_000 });

    assert.deepEqual(await rows(`SELECT title, priority FROM tasks WHERE id = '${tasks[1]}'`), [
      { priority: 3, title: "While the server was down" },
    ]);
    assert.equal((await rows(`SELECT id FROM tasks WHERE id = '${created}'`)).length, 1);
    await assertViewEqualsDb(a, workspaceId);
    await assertViewEqualsDb(b, workspaceId);

    // Live deltas flow again on the new socket.
    const sockets = wsRecords(tokenFor(bob)).length;
    assert.ok(sockets >= 2, `B reconnected its WebSocket (sockets: ${sockets})`);
    const txs = [];
    await a.client.update("Task", tasks[3], { title: "After the restart" }, { onTransactionCreated: (tx) => txs.push(tx) });
    await waitFor(() => wsDeltaActions(tokenFor(bob)).some((x) => x.clientTxId === txs[0].clientTxId), {
      message: "B's new WebSocket to deliver A's edit",
    });
    await waitFor(() => b.client.getIdentityMap("Task").get(tasks[3])?.title === "After the restart", {
      message: "B to apply A's edit",
    });
    await waitSettled(a);
    await assertViewEqualsDb(a, workspaceId);
    await assertViewEqualsDb(b, workspaceId);
    for (const h of [a, b]) {
      assert.equal(h.client.state, "syncing");
      t.diagnostic(`${h.userId} reported (and recovered from): ${syncErrors(h).map((e) => e.message).join(" | ") || "nothing"}`);
    }
  });

  test("clients survive a graceful restart (SIGTERM) of the server", async (t) => {
    // Both clients on their WebSocket (after the crash test's reconnects).
    await waitSettled(a);
    await waitSettled(b);
    const started = Date.now();
    await server.kill("SIGTERM");
    const stopMs = Date.now() - started;
    const lastClose = (u) => wsRecords(tokenFor(u)).filter((r) => r.opened).at(-1)?.closed;
    await waitFor(() => lastClose(alice) && lastClose(bob), {
      message: () => {
        const sockets = (u) => JSON.stringify(wsRecords(tokenFor(u)).map(({ closed, opened, openedAt }) => ({ closed, opened, openedAt })));
        return `both WebSockets to close (stop took ${stopMs} ms; A's sockets ${sockets(alice)}, B's ${sockets(bob)})`;
      },
    });
    const closes = [alice, bob].map(lastClose);
    t.diagnostic(`graceful stop with 2 open WebSockets took ${stopMs} ms; the clients saw ${JSON.stringify(closes)}`);
    // At SIGTERM the server closes every open WebSocket with 1001 "going
    // away" (instead of holding it until its shutdown timeout), so the
    // clients move on at once.
    assert.deepEqual(closes, [
      { code: 1001, reason: "Server shutting down" },
      { code: 1001, reason: "Server shutting down" },
    ]);
    await b.client.update("Task", tasks[4], { title: "During the graceful restart" });
    await server.restart();
    await waitSettled(b, { timeout: 40_000 });
    await waitSettled(a, { atLeast: b.client.lastSyncId, timeout: 40_000 });
    await assertViewEqualsDb(a, workspaceId);
    await assertViewEqualsDb(b, workspaceId);
    assert.equal(a.client.getIdentityMap("Task").get(tasks[4]).title, "During the graceful restart");
  });

  wireCheckTest();
});
