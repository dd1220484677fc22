// The TypeScript reference for the benchmarks: the published
// `@stratasync/server` on Fastify with drizzle-orm and postgres, serving the
// docs/example.md schema (same tables, models, wire names, codecs and actions as
// the Rust example server `taskboard`) with its development auth
// (`token-<userId>`, groups from sync_group_memberships).
//
// Environment: DATABASE_URL (required; the schema must already exist: the
// harness creates it), PORT (3100), BIND (127.0.0.1), REDIS_URL (optional:
// fan-out across processes through the package's Redis transport),
// PG_POOL_MAX (16, the Rust server's default pool size).
//
// Run by the harness as `node server.mjs` after `npm install` in this folder.

import Fastify from "fastify";
import websocket from "@fastify/websocket";
import postgres from "postgres";
import { drizzle } from "drizzle-orm/postgres-js";
import { and, eq, inArray } from "drizzle-orm";
import {
  bigserial,
  date,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uuid,
} from "drizzle-orm/pg-core";
import { createClient } from "redis";
import { createCompositeSyncId, createSyncServer } from "@stratasync/server";

// ---------------------------------------------------------------------------
// Tables: docs/example.md and docs/protocol.md §2.1, column for column.
// ---------------------------------------------------------------------------

const instant = (name) => timestamp(name, { withTimezone: true, mode: "date" });

export const workspaces = pgTable("workspaces", {
  id: uuid("id").primaryKey(),
  name: text("name").notNull(),
  createdAt: instant("created_at").notNull().defaultNow(),
});

export const tasks = pgTable("tasks", {
  id: uuid("id").primaryKey(),
  workspaceId: uuid("workspace_id")
    .notNull()
    .references(() => workspaces.id, { onDelete: "cascade" }),
  title: text("title").notNull(),
  description: text("description"),
  priority: integer("priority").notNull().default(0),
  dueDate: date("due_date"),
  completedAt: instant("completed_at"),
  archivedAt: instant("archived_at"),
  createdAt: instant("created_at").notNull().defaultNow(),
});

export const labels = pgTable("labels", {
  id: uuid("id").primaryKey(),
  workspaceId: uuid("workspace_id")
    .notNull()
    .references(() => workspaces.id, { onDelete: "cascade" }),
  name: text("name").notNull(),
  color: text("color").notNull(),
});

export const taskLabels = pgTable(
  "task_labels",
  {
    taskId: uuid("task_id")
      .notNull()
      .references(() => tasks.id, { onDelete: "cascade" }),
    labelId: uuid("label_id")
      .notNull()
      .references(() => labels.id, { onDelete: "cascade" }),
    workspaceId: uuid("workspace_id")
      .notNull()
      .references(() => workspaces.id, { onDelete: "cascade" }),
    createdAt: instant("created_at").notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.taskId, t.labelId] })],
);

export const syncActions = pgTable("sync_actions", {
  id: bigserial("id", { mode: "bigint" }).primaryKey(),
  model: text("model").notNull(),
  modelId: text("model_id").notNull(),
  action: text("action").notNull(),
  data: jsonb("data").notNull(),
  groupId: text("group_id"),
  clientId: text("client_id"),
  clientTxId: text("client_tx_id"),
  createdAt: instant("created_at").notNull().defaultNow(),
});

export const syncGroupMemberships = pgTable("sync_group_memberships", {
  id: uuid("id").primaryKey().defaultRandom(),
  userId: text("user_id").notNull(),
  groupId: text("group_id").notNull(),
  groupType: text("group_type").notNull(),
  createdAt: instant("created_at").notNull().defaultNow(),
});

// ---------------------------------------------------------------------------
// Models: docs/example.md "Sync models".
// ---------------------------------------------------------------------------

// Scope of a workspace-owned model: its workspace is one of the requested
// groups (the user's own id is never a workspace). An empty list matches
// nothing.
const inWorkspaces = (column, filter) =>
  inArray(column, filter.workspaceGroupIds.length > 0 ? filter.workspaceGroupIds : ["00000000-0000-0000-0000-000000000000"]);

const taskLabelId = (taskId, labelId) =>
  createCompositeSyncId("TaskLabel", [String(taskId), String(labelId)]);

export const models = {
  Workspace: {
    table: workspaces,
    groupKey: "__modelId__",
    bootstrap: {
      fields: ["id", "name", "createdAt"],
      instantFields: ["createdAt"],
      cursor: { type: "simple", idField: "id" },
      buildScopeWhere: (filter) => inWorkspaces(workspaces.id, filter),
      allowedIndexedKeys: ["id"],
    },
    mutate: {
      kind: "standard",
      actions: new Set(["U"]),
      insertFields: {},
      updateFields: new Set(["name"]),
    },
  },
  Task: {
    table: tasks,
    groupKey: "workspaceId",
    bootstrap: {
      fields: [
        "id",
        "workspaceId",
        "title",
        "description",
        "priority",
        "dueDate",
        "completedAt",
        "archivedAt",
        "createdAt",
      ],
      dateOnlyFields: ["dueDate"],
      instantFields: ["completedAt", "archivedAt", "createdAt"],
      cursor: { type: "simple", idField: "id" },
      buildScopeWhere: (filter) => inWorkspaces(tasks.workspaceId, filter),
      allowedIndexedKeys: ["id", "workspaceId"],
    },
    mutate: {
      kind: "standard",
      actions: new Set(["I", "U", "D", "A", "V"]),
      insertFields: {
        workspaceId: { type: "string" },
        title: { type: "string" },
        description: { type: "stringNull" },
        priority: { type: "number" },
        dueDate: { type: "dateOnly" },
        completedAt: { type: "date" },
        createdAt: { type: "dateNow" },
      },
      updateFields: new Set(["title", "description", "priority", "dueDate", "completedAt"]),
    },
  },
  Label: {
    table: labels,
    groupKey: "workspaceId",
    bootstrap: {
      fields: ["id", "workspaceId", "name", "color"],
      cursor: { type: "simple", idField: "id" },
      buildScopeWhere: (filter) => inWorkspaces(labels.workspaceId, filter),
      allowedIndexedKeys: ["id", "workspaceId"],
    },
    mutate: {
      kind: "standard",
      actions: new Set(["I", "U", "D"]),
      insertFields: {
        workspaceId: { type: "string" },
        name: { type: "string" },
        color: { type: "string" },
      },
      updateFields: new Set(["name", "color"]),
    },
  },
  TaskLabel: {
    table: taskLabels,
    groupKey: "workspaceId",
    bootstrap: {
      fields: ["taskId", "labelId", "workspaceId", "createdAt"],
      instantFields: ["createdAt"],
      cursor: {
        type: "composite",
        fields: ["taskId", "labelId"],
        syntheticId: (row) => taskLabelId(row.taskId, row.labelId),
      },
      buildScopeWhere: (filter) => inWorkspaces(taskLabels.workspaceId, filter),
      allowedIndexedKeys: ["taskId", "workspaceId"],
    },
    mutate: {
      kind: "composite",
      actions: new Set(["I", "D"]),
      insertFields: {
        taskId: { type: "string" },
        labelId: { type: "string" },
        workspaceId: { type: "string" },
        createdAt: { type: "dateNow" },
      },
      buildDeleteWhere: (payload) =>
        and(eq(taskLabels.taskId, String(payload.taskId)), eq(taskLabels.labelId, String(payload.labelId))),
      compositeId: {
        computeId: (_modelName, _modelId, payload) => taskLabelId(payload.taskId, payload.labelId),
      },
    },
  },
};

// ---------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------

const databaseUrl = process.env.DATABASE_URL;
if (!databaseUrl) {
  console.error("DATABASE_URL is required");
  process.exit(2);
}
const port = Number.parseInt(process.env.PORT ?? "3100", 10);
const host = process.env.BIND ?? "127.0.0.1";
const poolMax = Number.parseInt(process.env.PG_POOL_MAX ?? "16", 10);

const client = postgres(databaseUrl, { max: poolMax, onnotice: () => {} });
const db = drizzle({ client });

let redis;
if (process.env.REDIS_URL) {
  redis = createClient({ url: process.env.REDIS_URL });
  redis.on("error", (error) => console.error("redis:", error.message));
  await redis.connect();
}

const sync = await createSyncServer({
  db,
  tables: { syncActions, syncGroupMemberships },
  redis,
  models,
  auth: {
    // docs/example.md: `token-<userId>` verifies as `<userId>`, anything else is
    // rejected; a user's groups are their memberships (read by the package
    // itself) plus their own id (added by the package).
    verifyToken: async (token) =>
      token.startsWith("token-") && token.length > "token-".length ? { userId: token.slice("token-".length) } : null,
    resolveGroups: async () => [],
  },
});

const app = Fastify({ logger: false });
await app.register(websocket);
app.get("/health", async () => ({ status: "ok" }));
sync.registerRoutes(app);

const shutdown = async () => {
  try {
    await app.close();
    await sync.shutdown();
    if (redis) await redis.quit();
    await client.end({ timeout: 1 });
  } finally {
    process.exit(0);
  }
};
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);

await app.listen({ port, host });
console.error(`reference listening on http://${host}:${port} (pid ${process.pid}${redis ? ", redis fan-out" : ""})`);
