// An in-memory StorageAdapter (@stratasync/client's `StorageAdapter`
// interface, dist/types.d.ts). Values are deep-copied in and out, as an
// IndexedDB store would. Data outlives close()/open(), so a new SyncClient
// given the same instance sees the previous session's state (a page reload).
import { compareSyncId } from "@stratasync/core";

const clone = (value) => (value === undefined ? undefined : structuredClone(value));

export class MemoryStorage {
  constructor() {
    this.models = new Map(); // modelName -> Map(id -> row)
    this.meta = {};
    this.persistence = new Map(); // modelName -> boolean
    this.outbox = new Map(); // clientTxId -> tx (insertion order)
    this.partialIndexes = new Set();
    this.syncActions = new Map(); // syncId -> action
    this.isOpen = false;
    this.openCount = 0;
  }

  table(modelName) {
    let table = this.models.get(modelName);
    if (!table) {
      table = new Map();
      this.models.set(modelName, table);
    }
    return table;
  }

  async open(_options) {
    this.isOpen = true;
    this.openCount += 1;
  }

  async close() {
    this.isOpen = false;
  }

  async get(modelName, id) {
    return clone(this.table(modelName).get(id)) ?? null;
  }

  async getAll(modelName) {
    return [...this.table(modelName).values()].map(clone);
  }

  async put(modelName, row) {
    const id = row.id;
    if (typeof id !== "string") {
      throw new Error(`MemoryStorage.put(${modelName}): row without a string id`);
    }
    this.table(modelName).set(id, clone(row));
  }

  async delete(modelName, id) {
    this.table(modelName).delete(id);
  }

  async getByIndex(modelName, indexName, key) {
    return [...this.table(modelName).values()].filter((row) => row[indexName] === key).map(clone);
  }

  async writeBatch(ops) {
    for (const op of ops) {
      if (op.type === "put") {
        await this.put(op.modelName, op.data);
      } else if (op.type === "delete") {
        await this.delete(op.modelName, op.id);
      }
    }
  }

  async getMeta() {
    return { lastSyncId: "0", ...clone(this.meta) };
  }

  async setMeta(meta) {
    this.meta = { ...this.meta, ...clone(meta) };
  }

  async getModelPersistence(modelName) {
    return { modelName, persisted: this.persistence.get(modelName) === true };
  }

  async setModelPersistence(modelName, persisted) {
    this.persistence.set(modelName, persisted);
  }

  async getOutbox() {
    return [...this.outbox.values()].map(clone);
  }

  async addToOutbox(tx) {
    this.outbox.set(tx.clientTxId, clone(tx));
  }

  async removeFromOutbox(clientTxId) {
    this.outbox.delete(clientTxId);
  }

  async updateOutboxTransaction(clientTxId, updates) {
    const tx = this.outbox.get(clientTxId);
    if (tx) {
      this.outbox.set(clientTxId, { ...tx, ...clone(updates) });
    }
  }

  async hasPartialIndex(modelName, indexedKey, keyValue) {
    return this.partialIndexes.has(JSON.stringify([modelName, indexedKey, keyValue]));
  }

  async setPartialIndex(modelName, indexedKey, keyValue) {
    this.partialIndexes.add(JSON.stringify([modelName, indexedKey, keyValue]));
  }

  async addSyncActions(actions) {
    for (const action of actions) {
      this.syncActions.set(action.id, clone(action));
    }
  }

  async getSyncActions(afterSyncId = "0", limit = Number.POSITIVE_INFINITY) {
    return [...this.syncActions.values()]
      .filter((a) => compareSyncId(a.id, afterSyncId) > 0)
      .sort((a, b) => compareSyncId(a.id, b.id))
      .slice(0, limit)
      .map(clone);
  }

  async clearSyncActions() {
    this.syncActions.clear();
  }

  async pruneSyncActions(beforeSyncId) {
    for (const id of [...this.syncActions.keys()]) {
      if (compareSyncId(id, beforeSyncId) <= 0) {
        this.syncActions.delete(id);
      }
    }
  }

  async clear(options = {}) {
    this.models.clear();
    this.meta = {};
    this.persistence.clear();
    this.partialIndexes.clear();
    this.syncActions.clear();
    if (!options.preserveOutbox) {
      this.outbox.clear();
    }
  }

  async count(modelName) {
    return this.table(modelName).size;
  }

  /** Test helper: every stored row of `modelName`, keyed by id. */
  snapshot(modelName) {
    return Object.fromEntries([...this.table(modelName).entries()].map(([id, row]) => [id, clone(row)]));
  }
}
