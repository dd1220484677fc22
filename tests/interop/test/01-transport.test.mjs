// The transport adapter alone (@stratasync/transport-graphql): NDJSON
// bootstrap and batch load, the REST mutate path, delta fetch and paging,
// and the WebSocket subscription.
import {
  computeSchemaHash,
  createInsertTransaction,
  createTransactionBatch,
  createUpdateTransaction,
  generateUUID,
} from "@stratasync/core";
import { createGraphQLTransport, fetchAllDeltas } from "@stratasync/transport-graphql";
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { FAST_RETRY, MODELS, SERVER_SCHEMA_HASH, makeTransport, schema, tokenFor } from "../lib/client.mjs";
import { httpRequests } from "../lib/http-recorder.mjs";
import { headSyncId, rows, workspaceState } from "../lib/db.mjs";
import { env } from "../lib/env.mjs";
import { seedWorkspace, uniqueUser } from "../lib/server.mjs";
import { waitFor } from "../lib/wait.mjs";
import { wireCheckTest } from "../lib/wire-check.mjs";

const DAY = 86_400_000;

const readBootstrap = async (transport, options) => {
  const iterator = transport.bootstrap(options);
  const byModel = {};
  while (true) {
    const { value, done } = await iterator.next();
    if (done) {
      return { metadata: value, byModel };
    }
    byModel[value.modelName] ??= {};
    byModel[value.modelName][value.data.id] = value.data;
  }
};

const collect = async (iterable) => {
  const out = [];
  for await (const row of iterable) {
    out.push(row);
  }
  return out;
};

describe("transport adapter", () => {
  const user = uniqueUser("tx");
  let transport;
  let workspaceId;

  before(async () => {
    workspaceId = await seedWorkspace({ tasks: 30, labels: 3, members: [user] });
    transport = makeTransport({ userId: user });
  });

  after(async () => {
    await transport?.close();
  });

  test("full bootstrap: metadata and every row equal the database", async () => {
    const { metadata, byModel } = await readBootstrap(transport, {
      onlyModels: MODELS,
      schemaHash: "interop-hash",
      type: "full",
    });
    assert.match(metadata.lastSyncId, /^\d+$/);
    assert.ok(BigInt(metadata.lastSyncId) <= BigInt(await headSyncId()));
    assert.deepEqual([...metadata.subscribedSyncGroups].sort(), [workspaceId, user].sort());
    // The server's hash, not the one the client sent: the hash the client
    // computes itself for the server's exported schema.
    assert.equal(metadata.schemaHash, SERVER_SCHEMA_HASH);
    assert.equal(metadata.schemaHash, computeSchemaHash(schema));
    const db = await workspaceState(workspaceId);
    for (const model of MODELS) {
      assert.deepEqual(byModel[model] ?? {}, db[model], `${model} rows`);
      assert.equal(metadata.returnedModelsCount?.[model], Object.keys(db[model]).length, `${model} count`);
    }
    const task = Object.values(byModel.Task)[0];
    assert.equal(typeof task.dueDate, "number");
    assert.equal(task.dueDate % DAY, 0, "dueDate is UTC midnight epoch ms");
    assert.equal(typeof task.createdAt, "number");
  });

  test("bootstrap narrowed by onlyModels and syncGroups", async () => {
    const { metadata, byModel } = await readBootstrap(transport, {
      onlyModels: ["Label"],
      syncGroups: [workspaceId],
      type: "full",
    });
    assert.deepEqual(Object.keys(byModel), ["Label"]);
    assert.equal(Object.keys(byModel.Label).length, 3);
    assert.deepEqual(metadata.subscribedSyncGroups, [workspaceId]);
  });

  test("partial bootstrap of an added group (the request a sync-group change makes)", async () => {
    const added = await seedWorkspace({ tasks: 4, labels: 1, members: [user] });
    const firstSyncId = await headSyncId();
    const { metadata, byModel } = await readBootstrap(transport, {
      firstSyncId,
      noSyncPackets: true,
      onlyModels: MODELS,
      schemaHash: "interop-hash",
      syncGroups: [added],
      type: "partial",
    });
    const db = await workspaceState(added);
    for (const model of MODELS) {
      assert.deepEqual(byModel[model] ?? {}, db[model], `${model} rows of the added group only`);
    }
    assert.deepEqual(metadata.subscribedSyncGroups, [added]);
    assert.match(metadata.lastSyncId, /^\d+$/);
  });

  test("batch load by id, workspaceId and taskId", async () => {
    const db = await workspaceState(workspaceId);
    const [task] = Object.values(db.Task);
    const taskLabels = Object.values(db.TaskLabel).filter((tl) => tl.taskId === task.id);
    const loaded = await collect(
      transport.batchLoad({
        firstSyncId: "0",
        requests: [
          { indexedKey: "id", keyValue: task.id, modelName: "Task" },
          { indexedKey: "workspaceId", keyValue: workspaceId, modelName: "Label" },
          { indexedKey: "taskId", keyValue: task.id, modelName: "TaskLabel" },
          { indexedKey: "id", keyValue: workspaceId, modelName: "Workspace" },
        ],
      })
    );
    const byModel = (m) => Object.fromEntries(loaded.filter((r) => r.modelName === m).map((r) => [r.data.id, r.data]));
    assert.deepEqual(byModel("Task"), { [task.id]: task });
    assert.deepEqual(byModel("Label"), db.Label);
    assert.deepEqual(byModel("TaskLabel"), Object.fromEntries(taskLabels.map((tl) => [tl.id, tl])));
    assert.deepEqual(byModel("Workspace"), db.Workspace);
  });

  test("REST mutate: per-transaction results with string sync ids", async () => {
    const clientId = `client-${user}`;
    const taskId = generateUUID();
    const insert = createInsertTransaction(clientId, "Task", taskId, {
      completedAt: null,
      description: "from the transport test",
      dueDate: 20_000 * DAY,
      id: taskId,
      priority: 2,
      title: "Inserted through REST",
      workspaceId,
    });
    const update = createUpdateTransaction(clientId, "Task", taskId, { priority: 3 }, { priority: 2 });
    const missing = createUpdateTransaction(clientId, "Task", generateUUID(), { title: "nope" }, { title: "x" });
    const before = await headSyncId();
    const result = await transport.mutate(createTransactionBatch([insert, update, missing]));
    assert.equal(result.success, false);
    assert.equal(result.results.length, 3);
    const [r1, r2, r3] = result.results;
    assert.deepEqual([r1.clientTxId, r2.clientTxId, r3.clientTxId], [insert.clientTxId, update.clientTxId, missing.clientTxId]);
    assert.equal(r1.success, true);
    assert.equal(r2.success, true);
    assert.equal(r3.success, false);
    assert.equal(typeof r3.error, "string");
    assert.match(r1.syncId, /^\d+$/);
    assert.ok(BigInt(r2.syncId) > BigInt(r1.syncId));
    assert.equal(result.lastSyncId, r2.syncId);
    assert.ok(BigInt(r1.syncId) > BigInt(before));
    const [row] = await rows(`SELECT title, priority FROM tasks WHERE id = '${taskId}'`);
    assert.deepEqual(row, { title: "Inserted through REST", priority: 3 });

    // The same batch again is deduplicated: same sync ids, no new log rows.
    const replay = await transport.mutate(createTransactionBatch([insert, update]));
    assert.deepEqual(
      replay.results.map((r) => r.syncId),
      [r1.syncId, r2.syncId]
    );
  });

  test("delta fetch: parsed actions, paging and fetchAllDeltas", async () => {
    const start = await headSyncId();
    const clientId = `client-${user}`;
    const ids = [generateUUID(), generateUUID(), generateUUID()];
    const txs = ids.map((id, i) =>
      createInsertTransaction(clientId, "Label", id, { color: "#00000" + i, id, name: `L${i}`, workspaceId })
    );
    const result = await transport.mutate(createTransactionBatch(txs));
    assert.equal(result.success, true);

    const packet = await transport.fetchDeltas(start);
    assert.deepEqual(
      packet.actions.map((a) => a.modelId),
      ids
    );
    for (const [i, action] of packet.actions.entries()) {
      assert.equal(action.action, "I");
      assert.equal(action.modelName, "Label");
      assert.equal(action.id, result.results[i].syncId);
      assert.equal(action.clientId, clientId);
      assert.equal(action.clientTxId, txs[i].clientTxId);
      assert.equal(action.groupId, workspaceId);
      assert.ok(action.createdAt instanceof Date && !Number.isNaN(action.createdAt.getTime()));
      assert.deepEqual(action.data, { color: "#00000" + i, id: ids[i], name: `L${i}`, workspaceId });
    }
    assert.equal(packet.lastSyncId, result.lastSyncId);
    assert.equal(packet.hasMore, false);

    const page = await transport.fetchDeltas(start, 1);
    assert.equal(page.actions.length, 1);
    assert.equal(page.hasMore, true);
    assert.equal(page.lastSyncId, page.actions[0].id);

    const all = [];
    const gen = fetchAllDeltas({
      afterSyncId: start,
      auth: { getAccessToken: async () => tokenFor(user) },
      batchSize: 2,
      syncEndpoint: `${env.baseUrl}/sync`,
    });
    let step = await gen.next();
    while (!step.done) {
      all.push(step.value);
      step = await gen.next();
    }
    assert.deepEqual(
      all.map((a) => a.modelId),
      ids
    );
    assert.equal(step.value, result.lastSyncId);

    // Groups the caller is not in: no group rows.
    const foreign = await transport.fetchDeltas(start, undefined, ["not-my-group"]);
    assert.deepEqual(foreign.actions, []);
  });

  test("WebSocket subscription: replay, then live deltas", async () => {
    const start = await headSyncId();
    const clientId = `client-${user}`;
    const first = generateUUID();
    await transport.mutate(
      createTransactionBatch([
        createInsertTransaction(clientId, "Label", first, { color: "#111111", id: first, name: "replayed", workspaceId }),
      ])
    );
    const ws = makeTransport({ userId: user });
    const states = [];
    ws.onConnectionStateChange((s) => states.push(s));
    const subscription = ws.subscribe({ afterSyncId: start, groups: [workspaceId, user] });
    const iterator = subscription[Symbol.asyncIterator]();
    const received = [];
    const pump = (async () => {
      while (true) {
        const { value, done } = await iterator.next();
        if (done) {
          return;
        }
        received.push(value);
      }
    })();
    try {
      await waitFor(() => received.some((p) => p.actions.some((a) => a.modelId === first)), {
        message: "the replayed action",
      });
      assert.equal(states.at(-1), "connected");
      const second = generateUUID();
      const live = await transport.mutate(
        createTransactionBatch([
          createInsertTransaction(clientId, "Label", second, { color: "#222222", id: second, name: "live", workspaceId }),
        ])
      );
      await waitFor(() => received.some((p) => p.actions.some((a) => a.modelId === second)), {
        message: "the live action",
      });
      const packet = received.find((p) => p.actions.some((a) => a.modelId === second));
      assert.equal(packet.lastSyncId, live.lastSyncId);
      assert.equal(packet.actions[0].clientId, clientId);
      assert.deepEqual(packet.actions[0].data, { color: "#222222", id: second, name: "live", workspaceId });
      // Replay and live frames arrive in sync-id order, each once.
      const seen = received.flatMap((p) => p.actions.map((a) => BigInt(a.id)));
      assert.deepEqual(seen, [...seen].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
      assert.equal(new Set(seen).size, seen.length);
    } finally {
      subscription.unsubscribe();
      await ws.close();
      await pump;
    }
  });

  test("auth: a 401 gets one token refresh and a retry; a refused token reaches onAuthError", async () => {
    const authErrors = [];
    const transportWith = (auth) =>
      createGraphQLTransport({
        auth: { onAuthError: (e) => authErrors.push(e), ...auth },
        retry: FAST_RETRY,
        syncEndpoint: `${env.baseUrl}/sync`,
        timeout: 10_000,
        wsEndpoint: `${env.baseUrl.replace(/^http/, "ws")}/sync/ws`,
      });
    const expired = `expired-${user}`;
    const refreshed = transportWith({ getAccessToken: async () => expired, refreshToken: async () => tokenFor(user) });
    const { byModel } = await readBootstrap(refreshed, { onlyModels: ["Workspace"], type: "full" });
    assert.ok(byModel.Workspace[workspaceId], "the retried bootstrap streamed the workspace");
    assert.deepEqual(
      httpRequests({ token: expired, path: "/sync/bootstrap" }).map((r) => r.status),
      [401]
    );
    assert.deepEqual(authErrors, []);

    const refused = transportWith({ getAccessToken: async () => expired, refreshToken: async () => `still-${expired}` });
    const error = await readBootstrap(refused, { type: "full" }).then(
      () => null,
      (e) => e
    );
    assert.equal(error?.status, 401);
    assert.deepEqual(JSON.parse(error.body), { error: "Invalid token" });
    assert.equal(authErrors.length, 1);

    // WebSocket: the URL token is accepted at the upgrade, the subscribe
    // frame's token is not: the server answers an error frame the client
    // treats as an auth failure.
    let calls = 0;
    const ws = transportWith({ getAccessToken: async () => (calls++ === 0 ? tokenFor(user) : expired) });
    const subscription = ws.subscribe({ afterSyncId: "0", groups: [] });
    try {
      await waitFor(() => authErrors.length >= 2, { message: "the WebSocket auth error" });
      assert.match(authErrors[1].message, /token/i);
      assert.equal(ws.getConnectionState(), "error");
    } finally {
      subscription.unsubscribe();
      await Promise.all([ws.close(), refreshed.close(), refused.close()]);
    }
  });

  test("WebSocket close handshake: the server answers a client's Close frame (RFC 6455 §5.5.1)", async () => {
    const { default: WebSocket } = await import("ws");
    const socket = new WebSocket(`${env.baseUrl.replace(/^http/, "ws")}/sync/ws?token=${tokenFor(user)}`);
    const frames = [];
    socket.on("message", (data) => frames.push(JSON.parse(data.toString())));
    await new Promise((resolve, reject) => {
      socket.once("open", resolve);
      socket.once("error", reject);
    });
    socket.send(JSON.stringify({ afterSyncId: "0", groups: [workspaceId], token: tokenFor(user), type: "subscribe" }));
    await waitFor(() => frames.some((f) => f.type === "subscribed"), { message: "subscribed" });
    const closed = new Promise((resolve) => socket.once("close", (code, reason) => resolve({ code, reason: reason.toString() })));
    socket.close(1000, "bye");
    const result = await Promise.race([closed, new Promise((r) => setTimeout(() => r({ code: "timeout" }), 5_000))]);
    // 1006 would mean the server dropped the TCP connection without a Close frame.
    assert.equal(result.code, 1000, `close event ${JSON.stringify(result)}`);
  });

  wireCheckTest();
});
