// Builds the real published client stack: GraphQLTransportAdapter (REST
// mutate path, NDJSON bootstrap/batch, deltas, WebSocket) and SyncClient
// with the in-memory storage adapter.
import { createSyncClient } from "@stratasync/client";
import { noopReactivityAdapter } from "@stratasync/core";
import { createGraphQLTransport } from "@stratasync/transport-graphql";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { headSyncId, workspaceState } from "./db.mjs";
import { httpRequests } from "./http-recorder.mjs";
import { wsRecords } from "./ws-recorder.mjs";
import { env } from "./env.mjs";
import { MemoryStorage } from "./memory-storage.mjs";
import { sleep, waitFor } from "./wait.mjs";

/**
 * The client-side schema of docs/example.md's four models, as the server
 * exports it (`taskboard schema --format json`, written by run.sh before the
 * tests), and the server's schema hash.
 */
const generated = JSON.parse(readFileSync(new URL("./schema.generated.json", import.meta.url), "utf8"));
export const schema = { models: generated.models };
export const SERVER_SCHEMA_HASH = generated.schemaHash;

export const MODELS = Object.keys(schema.models);

/** Short retries so network scenarios finish quickly (same code paths). */
export const FAST_RETRY = { baseDelay: 150, maxDelay: 1500, maxRetries: 4, jitter: 0.2 };

export const tokenFor = (userId) => `token-${userId}`;

/** The transport adapter for `userId` against `baseUrl` (http://host:port). */
export const makeTransport = ({ userId, baseUrl = env.baseUrl, retry = FAST_RETRY, timeout = 15_000 }) => {
  const wsBase = baseUrl.replace(/^http/, "ws");
  return createGraphQLTransport({
    auth: { getAccessToken: async () => tokenFor(userId) },
    retry,
    syncEndpoint: `${baseUrl}/sync`,
    timeout,
    wsEndpoint: `${wsBase}/sync/ws`,
  });
};

/**
 * A started-or-not SyncClient plus its storage, transport and an event log.
 * Pass `storage` to reuse a previous session's local database.
 */
export const makeClient = ({
  userId,
  baseUrl,
  storage = new MemoryStorage(),
  retry,
  dbName = `interop-${userId}-${randomBytes(3).toString("hex")}`,
  ...options
}) => {
  const transport = makeTransport({ userId, baseUrl, retry });
  const client = createSyncClient({
    dbName,
    reactivity: noopReactivityAdapter,
    schema,
    storage,
    transport,
    userId,
    ...options,
  });
  const events = [];
  client.onEvent((event) => events.push({ at: Date.now(), ...event }));
  return { client, transport, storage, events, userId, dbName };
};

/** Errors the client reported (syncError events). */
export const syncErrors = (handle) => handle.events.filter((e) => e.type === "syncError").map((e) => e.error);

/** The client's state, errors, sockets and recent requests, for failure messages. */
export const describeClient = (handle) => {
  const token = tokenFor(handle.userId);
  const sockets = wsRecords(token).map(
    (r) =>
      `#${r.seq} opened=${r.opened} closed=${JSON.stringify(r.closed)} errors=${JSON.stringify(r.errors)} ` +
      `sent=${JSON.stringify(r.sent.map((f) => f.text.replace(/"token":"[^"]*"/, '"token":…')))} ` +
      `received=${JSON.stringify(r.received.map((f) => f.text.slice(0, 160)))}`
  );
  const requests = httpRequests({ token })
    .slice(-12)
    .map((r) => `${r.method} ${r.path}${r.search} -> ${r.status}`);
  return [
    `state=${handle.client.state} connection=${handle.client.connectionState} lastSyncId=${handle.client.lastSyncId}`,
    `errors=${syncErrors(handle).map((e) => e.message).join(" | ") || "none"}`,
    `sockets:\n  ${sockets.join("\n  ")}`,
    `recent requests:\n  ${requests.join("\n  ")}`,
  ].join("\n");
};

/** Waits until the client is running, connected, subscribed and idle. */
export const waitSettled = async (handle, { timeout = 20_000, atLeast } = {}) => {
  await waitFor(
    async () => {
      const { client } = handle;
      if (client.state !== "syncing" || client.connectionState !== "connected") {
        return false;
      }
      if ((await client.getPendingCount()) !== 0) {
        return false;
      }
      if (atLeast !== undefined && BigInt(client.lastSyncId) < BigInt(atLeast)) {
        return false;
      }
      return true;
    },
    { timeout, message: () => `client ${handle.userId} to settle (${describeClient(handle)}, want lastSyncId>=${atLeast})` }
  );
};

/**
 * Waits until the client's start-up catch-up is over: it is settled, it has
 * sent at least one HTTP delta request (the catch-up after its bootstrap;
 * its WebSocket connecting sends another), every delta request it sent has
 * been answered, and its lastSyncId has reached the log's head. From then on
 * it asks for deltas over HTTP only when its WebSocket lets it down.
 */
export const waitCaughtUp = async (handle, { timeout = 20_000 } = {}) => {
  await waitSettled(handle, { timeout });
  const head = BigInt(await headSyncId());
  const token = tokenFor(handle.userId);
  await waitFor(
    () => {
      const fetches = httpRequests({ token, path: "/sync/deltas" });
      return (
        fetches.length > 0 && fetches.every((r) => r.status !== null) && BigInt(handle.client.lastSyncId) >= head
      );
    },
    { timeout, message: () => `client ${handle.userId} to finish its start-up catch-up (${describeClient(handle)}, head ${head})` }
  );
};

/** The client's identity-map rows of one workspace, keyed by model then id. */
export const clientView = (handle, workspaceId) => {
  const view = {};
  for (const model of MODELS) {
    const map = handle.client.getIdentityMap(model);
    view[model] = {};
    for (const [id, row] of map.entries()) {
      const data = { ...row };
      const ws = model === "Workspace" ? data.id : data.workspaceId;
      if (ws === workspaceId) {
        view[model][id] = data;
      }
    }
  }
  return view;
};

/** The client's stored rows of one workspace. */
export const storageView = (handle, workspaceId) => {
  const view = {};
  for (const model of MODELS) {
    view[model] = Object.fromEntries(
      Object.entries(handle.storage.snapshot(model)).filter(([, row]) =>
        model === "Workspace" ? row.id === workspaceId : row.workspaceId === workspaceId
      )
    );
  }
  return view;
};

// Absent and null are the same to an application; the server's `I` data
// carries only the insert fields (no `archivedAt`), exactly as the reference.
const normalize = (row) => Object.fromEntries(Object.entries(row).filter(([, v]) => v !== undefined && v !== null));

/**
 * Asserts that the client's stored replica equals the database exactly and
 * that every field the identity map holds equals the database's value.
 */
export const assertViewEqualsDb = async (
  handle,
  workspaceId,
  { label = handle.userId, skipLive = new Set(), databaseUrl } = {}
) => {
  const db = await workspaceState(workspaceId, databaseUrl ? { databaseUrl } : undefined);
  const stored = storageView(handle, workspaceId);
  const live = clientView(handle, workspaceId);
  for (const model of MODELS) {
    const dbIds = Object.keys(db[model]).sort();
    assert.deepEqual(Object.keys(stored[model]).sort(), dbIds, `${label}: stored ${model} ids differ from the database`);
    assert.deepEqual(Object.keys(live[model]).sort(), dbIds, `${label}: in-memory ${model} ids differ from the database`);
    for (const id of dbIds) {
      assert.deepEqual(
        normalize(stored[model][id]),
        normalize(db[model][id]),
        `${label}: stored ${model} ${id} differs from the database`
      );
      if (skipLive.has(`${model}:${id}`)) {
        continue;
      }
      const liveRow = normalize(live[model][id]);
      const dbRow = normalize(db[model][id]);
      for (const [key, value] of Object.entries(liveRow)) {
        assert.deepEqual(value, dbRow[key], `${label}: in-memory ${model} ${id}.${key} differs from the database`);
      }
      for (const [key, value] of Object.entries(dbRow)) {
        if (key !== "createdAt" && key !== "archivedAt") {
          assert.deepEqual(liveRow[key], value, `${label}: in-memory ${model} ${id} lacks ${key}`);
        }
      }
    }
  }
  return db;
};

/**
 * Asserts that two clients hold the same rows of one workspace: their
 * stored replicas field for field, and their in-memory rows field for field
 * (absent and `null` alike, as in `assertViewEqualsDb`).
 */
export const assertSameReplica = (x, y, workspaceId) => {
  const label = `${x.userId} vs ${y.userId}`;
  const same = (xs, ys, where) => {
    for (const model of MODELS) {
      assert.deepEqual(Object.keys(xs[model]).sort(), Object.keys(ys[model]).sort(), `${label}: ${where} ${model} ids differ`);
      for (const id of Object.keys(xs[model])) {
        assert.deepEqual(normalize(xs[model][id]), normalize(ys[model][id]), `${label}: ${where} ${model} ${id} differs`);
      }
    }
  };
  same(storageView(x, workspaceId), storageView(y, workspaceId), "stored");
  same(clientView(x, workspaceId), clientView(y, workspaceId), "in-memory");
};

/** Stops a client, bounded (a stuck stop must not hang the suite). */
export const stopClient = async (handle) => {
  if (!handle) {
    return;
  }
  await Promise.race([handle.client.stop().catch(() => {}), sleep(5_000)]);
};
