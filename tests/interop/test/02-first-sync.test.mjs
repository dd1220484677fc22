// SyncClient, first sync of a seeded workspace: full bootstrap into the
// in-memory storage, then the WebSocket subscription.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  MODELS,
  assertViewEqualsDb,
  schema,
  makeClient,
  stopClient,
  syncErrors,
  tokenFor,
  waitSettled,
} from "../lib/client.mjs";
import { headSyncId, workspaceState } from "../lib/db.mjs";
import { seedWorkspace, uniqueUser } from "../lib/server.mjs";
import { httpRequests } from "../lib/http-recorder.mjs";
import { wsFrames } from "../lib/ws-recorder.mjs";

describe("first sync of a workspace", () => {
  const user = uniqueUser("first");
  let workspaceId;
  let handle;

  before(async () => {
    workspaceId = await seedWorkspace({ tasks: 1200, labels: 12, members: [user] });
    handle = makeClient({ userId: user });
  });

  after(() => stopClient(handle));

  test("bootstraps every model, subscribes over WebSocket, and matches the database", async () => {
    const started = Date.now();
    await handle.client.start();
    await waitSettled(handle);
    assert.deepEqual(syncErrors(handle), []);

    const db = await assertViewEqualsDb(handle, workspaceId);
    assert.equal(Object.keys(db.Task).length, 1200);
    assert.equal(Object.keys(db.TaskLabel).length, 1200);
    for (const model of MODELS) {
      assert.equal((await handle.client.getAll(model)).filter((r) => (model === "Workspace" ? r.id : r.workspaceId) === workspaceId).length,
        Object.keys(db[model]).length, `${model} via getAll`);
      assert.equal((await handle.storage.getModelPersistence(model)).persisted, true, `${model} marked persisted`);
    }

    const meta = await handle.storage.getMeta();
    assert.equal(meta.bootstrapComplete, true);
    assert.match(meta.lastSyncId, /^\d+$/);
    assert.ok(BigInt(meta.lastSyncId) <= BigInt(await headSyncId()));
    assert.deepEqual([...meta.subscribedSyncGroups].sort(), [workspaceId, user].sort());
    assert.equal(handle.client.lastSyncId, meta.lastSyncId);

    // The subscription the client sent, and the server's acknowledgement.
    const frames = wsFrames(tokenFor(user));
    const subscribed = frames.find((f) => f?.type === "subscribed");
    assert.ok(subscribed, `no subscribed frame; frames: ${JSON.stringify(frames).slice(0, 500)}`);
    assert.deepEqual([...subscribed.groups].sort(), [workspaceId, user].sort());
    assert.ok(frames.every((f) => f?.type !== "error"), `error frames: ${JSON.stringify(frames)}`);

    // A single read of one row goes through the identity map.
    const [taskId] = Object.keys(db.Task);
    const task = await handle.client.get("Task", taskId);
    assert.equal(task.title, db.Task[taskId].title);
    assert.ok(Date.now() - started < 30_000);
  });

  test("a lazily loaded model is fetched on demand by batch load (ensureModel)", async () => {
    const lazySchema = { models: { ...schema.models, Label: { ...schema.models.Label, loadStrategy: "lazy" } } };
    const lazy = makeClient({ userId: user, schema: lazySchema });
    try {
      await lazy.client.start();
      await waitSettled(lazy);
      const db = await workspaceState(workspaceId);
      assert.equal(lazy.client.getIdentityMap("Label").size, 0, "Label is not part of the bootstrap");
      const bootstrap = httpRequests({ token: tokenFor(user), path: "/sync/bootstrap" }).at(-1);
      assert.match(decodeURIComponent(bootstrap.search), /onlyModels=Workspace,Task,TaskLabel&/);
      const [labelId] = Object.keys(db.Label);
      const batchesBefore = httpRequests({ token: tokenFor(user), path: "/sync/batch" }).length;
      const label = await lazy.client.ensureModel("Label", labelId);
      assert.deepEqual({ ...label }, db.Label[labelId]);
      assert.deepEqual(lazy.storage.snapshot("Label")[labelId], db.Label[labelId]);
      const missing = await lazy.client.ensureModel("Label", "00000000-0000-4000-8000-000000000000");
      assert.equal(missing, null);
      assert.equal(lazy.client.isModelMissing("Label", "00000000-0000-4000-8000-000000000000"), true);
      const batches = httpRequests({ token: tokenFor(user), path: "/sync/batch" }).slice(batchesBefore);
      assert.deepEqual(
        batches.map((r) => [r.method, r.status]),
        [
          ["POST", 200],
          ["POST", 200],
        ]
      );
    } finally {
      await stopClient(lazy);
    }
  });

  test("a restarted client reuses its local database (no second bootstrap)", async () => {
    if (handle.client.state !== "syncing") {
      await handle.client.start(); // when run alone (--test-name-pattern)
      await waitSettled(handle);
    }
    // A cursor of "0" always means "bootstrap again" to the client, and a
    // freshly seeded workspace has no sync actions yet: make one first.
    await handle.client.update("Workspace", workspaceId, { name: `Renamed by ${user}` });
    await waitSettled(handle, { atLeast: 1 });
    const storage = handle.storage;
    await stopClient(handle);
    const db = await workspaceState(workspaceId);
    handle = makeClient({ userId: user, storage, dbName: handle.dbName });
    const bootstrapCalls = [];
    const original = handle.transport.bootstrap.bind(handle.transport);
    handle.transport.bootstrap = (options) => {
      bootstrapCalls.push(options);
      return original(options);
    };
    await handle.client.start();
    await waitSettled(handle);
    assert.deepEqual(bootstrapCalls, []);
    assert.equal(handle.client.getIdentityMap("Task").size, Object.keys(db.Task).length);
    await assertViewEqualsDb(handle, workspaceId);
  });
});
