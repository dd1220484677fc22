// A user added to a workspace (a row in sync_group_memberships) is told by
// an `S` action over the WebSocket, loads the workspace with a partial
// bootstrap, and from then on receives its live deltas. Before, neither
// bootstrap, deltas nor the WebSocket leak the workspace. Removed again,
// the running client drops the workspace's rows and its socket receives
// nothing more of it. All of it on the socket the client opened first.
import { generateUUID } from "@stratasync/core";
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { assertViewEqualsDb, clientView, makeClient, stopClient, tokenFor, waitSettled } from "../lib/client.mjs";
import { addMember, headSyncId, removeMember } from "../lib/db.mjs";
import { seedWorkspace, uniqueUser } from "../lib/server.mjs";
import { waitFor } from "../lib/wait.mjs";
import { wsDeltaActions, wsFrames, wsRecords } from "../lib/ws-recorder.mjs";
import { wireCheckTest } from "../lib/wire-check.mjs";

describe("a user added to a workspace is told and loads it", () => {
  const alice = uniqueUser("member_a");
  const carol = uniqueUser("member_c");
  let home;
  let other;
  let a;
  let c;

  before(async () => {
    home = await seedWorkspace({ tasks: 3, labels: 1, members: [alice, carol], name: "Carol's home" });
    other = await seedWorkspace({ tasks: 40, labels: 2, members: [alice], name: "Not yet Carol's" });
    a = makeClient({ userId: alice });
    c = makeClient({ userId: carol });
    await Promise.all([a.client.start(), c.client.start()]);
    await Promise.all([waitSettled(a), waitSettled(c)]);
  });

  after(async () => {
    await Promise.all([stopClient(a), stopClient(c)]);
  });

  /** A label Alice creates in Carol's home workspace, once Carol's WebSocket delivered it. */
  const markerInHome = async () => {
    const txs = [];
    await a.client.create("Label", { color: "#000000", id: generateUUID(), name: "marker", workspaceId: home }, {
      onTransactionCreated: (tx) => txs.push(tx),
    });
    await waitFor(() => wsDeltaActions(tokenFor(carol)).some((x) => x.clientTxId === txs[0].clientTxId), {
      message: "Carol's WebSocket to deliver the marker in her home workspace",
    });
    return txs[0];
  };

  test("before joining: nothing of the other workspace reaches the user", async () => {
    await assertViewEqualsDb(c, home);
    const view = clientView(c, other);
    for (const model of Object.keys(view)) {
      assert.deepEqual(view[model], {}, `${model} rows of a foreign workspace`);
    }
    const secret = generateUUID();
    await a.client.create("Label", { color: "#abcdef", id: secret, name: "private", workspaceId: other });
    await waitSettled(a);
    // A later action in Carol's own workspace: the server delivers in
    // sync-id order, so once it arrived, the earlier one would have too.
    await markerInHome();
    assert.ok(!wsDeltaActions(tokenFor(carol)).some((x) => x.modelId === secret), "a foreign delta reached Carol's WebSocket");
    const packet = await c.transport.fetchDeltas("0");
    assert.ok(!packet.actions.some((x) => x.groupId === other), "a foreign delta reached Carol's delta fetch");
  });

  test("after the membership row is added, the running client is told and loads the workspace", async () => {
    await addMember(carol, other);

    // The server logs Carol's new group set as an `S` action in her own
    // group; her WebSocket delivers it live.
    await waitFor(
      () =>
        wsDeltaActions(tokenFor(carol)).some(
          (x) => x.action === "S" && x.groupId === carol && x.data.subscribedSyncGroups.includes(other)
        ),
      { message: "Carol's WebSocket to deliver her S action" }
    );
    // The client bootstraps the added group partially, stores the new
    // set, and subscribes again with it.
    await waitFor(() => Object.keys(clientView(c, other).Task ?? {}).length === 40, {
      message: "Carol's client to load the new workspace",
    });
    await waitSettled(c);
    assert.deepEqual([...(await c.storage.getMeta()).subscribedSyncGroups].sort(), [home, other, carol].sort());
    const db = await assertViewEqualsDb(c, other);
    assert.equal(Object.keys(db.Task).length, 40);
    await assertViewEqualsDb(c, home);
    await waitFor(
      () => wsFrames(tokenFor(carol)).filter((f) => f?.type === "subscribed").at(-1)?.groups.includes(other),
      { message: "the new WebSocket subscription to cover the workspace" }
    );
  });

  test("and then receives its live deltas over WebSocket, and can edit it", async () => {
    const txs = [];
    const taskId = generateUUID();
    await a.client.create(
      "Task",
      { completedAt: null, description: null, dueDate: null, id: taskId, priority: 1, title: "For Carol", workspaceId: other },
      { onTransactionCreated: (tx) => txs.push(tx) }
    );
    await waitFor(() => wsDeltaActions(tokenFor(carol)).some((x) => x.clientTxId === txs[0].clientTxId), {
      message: "Carol's WebSocket to deliver the new task",
    });
    await waitFor(() => c.client.getIdentityMap("Task").has(taskId), { message: "Carol to apply it" });
    await c.client.update("Task", taskId, { title: "Carol was here" });
    await waitSettled(c);
    await waitSettled(a, { atLeast: await headSyncId() });
    await waitFor(() => a.client.getIdentityMap("Task").get(taskId)?.title === "Carol was here", {
      message: "Alice to see Carol's edit",
    });
    await assertViewEqualsDb(c, other);
    await assertViewEqualsDb(a, other);
  });

  test("after the membership row is removed, the running client drops the workspace and hears nothing more of it", async () => {
    await removeMember(carol, other);
    await waitFor(
      () =>
        wsDeltaActions(tokenFor(carol)).some(
          (x) => x.action === "S" && x.groupId === carol && !x.data.subscribedSyncGroups.includes(other)
        ),
      { message: "Carol's WebSocket to deliver her S action" }
    );
    await waitFor(
      () => Object.values(clientView(c, other)).every((rowsOfModel) => Object.keys(rowsOfModel).length === 0),
      { message: () => `Carol's client to drop the workspace's rows (${JSON.stringify(Object.keys(clientView(c, other).Task ?? {}).length)} tasks left)` }
    );
    await waitSettled(c);
    assert.deepEqual([...(await c.storage.getMeta()).subscribedSyncGroups].sort(), [home, carol].sort());

    // Alice keeps writing to the workspace; a later marker in Carol's home
    // reaches Carol, the workspace's write never does.
    const secret = generateUUID();
    await a.client.create("Label", { color: "#123456", id: secret, name: "after Carol left", workspaceId: other });
    await waitSettled(a);
    await markerInHome();
    assert.ok(!wsDeltaActions(tokenFor(carol)).some((x) => x.modelId === secret), "a revoked workspace's delta reached Carol");
    assert.ok(!c.client.getIdentityMap("Label").has(secret));
    await assertViewEqualsDb(c, home);
  });

  test("the client followed both changes on the WebSocket it opened first", () => {
    assert.equal(wsRecords(tokenFor(carol)).filter((r) => r.opened).length, 1, "Carol's client reconnected");
  });

  wireCheckTest();
});
