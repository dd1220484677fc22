// The `ws` WebSocket class, recording every frame each socket receives and
// sends, so tests can prove that a change reached a client over the WebSocket
// (and not through an HTTP catch-up).
import { parseDeltaPacket } from "@stratasync/core";
import WebSocket from "ws";

const problems = [];
const ISO_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const SYNC_ID = /^\d+$/;
const ACTION_KEYS = new Set(["action", "clientId", "clientTxId", "createdAt", "data", "groupId", "modelId", "modelName", "syncId"]);

/**
 * docs/protocol.md §7.4/§9.4 checks on every server frame: the client drops a
 * frame it cannot parse without a word, so the suite looks for them here.
 */
const checkFrame = (text, json) => {
  const fail = (why) => problems.push(`${why}: ${text.slice(0, 300)}`);
  if (!json || typeof json !== "object") {
    return fail("not a JSON object");
  }
  if (json.type === "subscribed" || json.type === "error") {
    return undefined;
  }
  if (json.type !== "delta") {
    return fail(`unexpected frame type ${JSON.stringify(json.type)}`);
  }
  try {
    const packet = parseDeltaPacket(json);
    if (!packet || packet.actions.length === 0) {
      fail("delta frame without actions");
    }
  } catch (error) {
    fail(`the client's parser rejects it (${error.message})`);
  }
  const { packet } = json;
  if (typeof packet?.lastSyncId !== "string" || !SYNC_ID.test(packet.lastSyncId)) {
    fail("packet.lastSyncId is not a sync-id string");
  }
  for (const action of packet?.actions ?? []) {
    for (const key of Object.keys(action)) {
      if (!ACTION_KEYS.has(key)) {
        fail(`unexpected action key ${key}`);
      }
    }
    for (const key of ["clientId", "clientTxId", "groupId"]) {
      if (key in action && typeof action[key] !== "string") {
        fail(`${key} present but not a string`);
      }
    }
    if (!"IUDAVS".includes(action.action) || action.action.length !== 1) {
      fail(`action letter ${action.action}`);
    }
    // A membership change: the user's whole group set, for that user only.
    if (action.action === "S") {
      const groups = action.data?.subscribedSyncGroups;
      if (action.modelName !== "SyncGroup" || action.modelId !== "sync-groups" || typeof action.groupId !== "string") {
        fail("an S action is not SyncGroup/sync-groups of one user");
      }
      if (!Array.isArray(groups) || !groups.every((g) => typeof g === "string") || groups.at(-1) !== action.groupId) {
        fail("an S action's subscribedSyncGroups is not the user's group list ending with their id");
      }
    }
    if (typeof action.syncId !== "string" || !SYNC_ID.test(action.syncId)) {
      fail("syncId is not a sync-id string");
    }
    if (packet.actions.length === 1 && action.syncId !== packet.lastSyncId) {
      fail("lastSyncId differs from the action's syncId");
    }
    if (typeof action.createdAt !== "string" || !ISO_MS.test(action.createdAt)) {
      fail("createdAt is not ISO-8601 UTC with 3 fraction digits");
    }
    if (typeof action.data !== "object" || action.data === null || Array.isArray(action.data)) {
      fail("data is not an object");
    }
  }
  return undefined;
};

/** Frames that broke a protocol rule (see checkFrame). */
export const wireProblems = () => [...problems];

const sockets = new Set();
let nextSeq = 0;

export class RecordingWebSocket extends WebSocket {
  constructor(url, ...rest) {
    super(url, ...rest);
    const parsed = new URL(url);
    this.record = {
      url,
      openedAt: Date.now(),
      seq: nextSeq++,
      token: parsed.searchParams.get("token"),
      received: [],
      sent: [],
      closed: null,
      opened: false,
      errors: [],
    };
    sockets.add(this);
    this.on("message", (data, isBinary) => {
      const text = Buffer.isBuffer(data) ? data.toString("utf8") : String(data);
      let json = null;
      try {
        json = JSON.parse(text);
      } catch {
        /* kept as text */
      }
      this.record.received.push({ at: Date.now(), isBinary, text, json });
      if (isBinary) {
        problems.push(`binary frame: ${text.slice(0, 200)}`);
      }
      checkFrame(text, json);
    });
    this.on("open", () => {
      this.record.opened = true;
    });
    this.on("error", (error) => {
      this.record.errors.push(error.message);
    });
    this.on("close", (code, reason) => {
      this.record.closed = { code, reason: reason.toString() };
      sockets.delete(this);
      closedRecords.push(this.record);
    });
  }

  send(data, ...rest) {
    this.record.sent.push({ at: Date.now(), text: String(data) });
    return super.send(data, ...rest);
  }
}

const closedRecords = [];

/** Every socket record (open and closed) for `token`, oldest first. */
export const wsRecords = (token) =>
  [...[...sockets].map((s) => s.record), ...closedRecords]
    .filter((r) => !token || r.token === token)
    .sort((x, y) => x.seq - y.seq);

/** Every delta action received over WebSocket by sockets using `token`. */
export const wsDeltaActions = (token) =>
  wsRecords(token)
    .flatMap((r) => r.received)
    .filter((f) => f.json?.type === "delta")
    .flatMap((f) => f.json.packet?.actions ?? []);

/** Every frame (parsed) received by sockets using `token`. */
export const wsFrames = (token) => wsRecords(token).flatMap((r) => r.received.map((f) => f.json ?? f.text));
