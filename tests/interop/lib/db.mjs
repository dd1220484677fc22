// PostgreSQL access through `psql` (no extra npm dependency), with timeouts.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { env } from "./env.mjs";

const run = promisify(execFile);

/** Runs `query` and returns psql's unaligned, tuples-only output. */
export const sql = async (query, { databaseUrl = env.databaseUrl, timeout = 20_000 } = {}) => {
  try {
    const { stdout } = await run(
      "psql",
      [databaseUrl, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-At", "-c", query],
      { timeout, maxBuffer: 64 * 1024 * 1024, env: { ...process.env, PGCONNECT_TIMEOUT: "10" } }
    );
    return stdout.trim();
  } catch (error) {
    throw new Error(`psql failed: ${error.stderr || error.message}\nquery: ${query}`);
  }
};

/** Runs a SELECT and returns its rows as JSON objects. */
export const rows = async (query, options) => {
  const out = await sql(`SELECT coalesce(json_agg(t), '[]'::json) FROM (${query}) t`, options);
  return JSON.parse(out);
};

/** A SQL string literal. */
export const lit = (value) => `'${String(value).replaceAll("'", "''")}'`;

// Epoch milliseconds of a timestamptz / date column, as the wire carries them.
const ms = (col) => `(floor(extract(epoch FROM ${col}) * 1000))::bigint`;
const dayMs = (col) => `(extract(epoch FROM (${col})::timestamp AT TIME ZONE 'UTC') * 1000)::bigint`;

/**
 * The rows of one workspace in wire form (camelCase names, epoch-ms dates,
 * composite TaskLabel ids), keyed by model name and then by id.
 */
export const workspaceState = async (workspaceId, options) => {
  const ws = lit(workspaceId);
  const [workspace, tasks, labels, taskLabels] = await Promise.all([
    rows(`SELECT id::text AS id, name, ${ms("created_at")} AS "createdAt" FROM workspaces WHERE id = ${ws}`, options),
    rows(
      `SELECT id::text AS id, workspace_id::text AS "workspaceId", title, description, priority,
              ${dayMs("due_date")} AS "dueDate", ${ms("completed_at")} AS "completedAt",
              ${ms("archived_at")} AS "archivedAt", ${ms("created_at")} AS "createdAt"
         FROM tasks WHERE workspace_id = ${ws}`,
      options
    ),
    rows(
      `SELECT id::text AS id, workspace_id::text AS "workspaceId", name, color FROM labels WHERE workspace_id = ${ws}`,
      options
    ),
    rows(
      `SELECT task_id::text AS "taskId", label_id::text AS "labelId", workspace_id::text AS "workspaceId",
              ${ms("created_at")} AS "createdAt"
         FROM task_labels WHERE workspace_id = ${ws}`,
      options
    ),
  ]);
  const { compositeId } = await import("./uuidv5.mjs");
  const byId = (list) => Object.fromEntries(list.map((r) => [r.id, r]));
  return {
    Workspace: byId(workspace),
    Task: byId(tasks),
    Label: byId(labels),
    TaskLabel: byId(
      taskLabels.map((r) => ({ ...r, id: compositeId("TaskLabel", [r.taskId, r.labelId]) }))
    ),
  };
};

/** The highest sync id in the log (0 when empty). */
export const headSyncId = async (options) => sql("SELECT coalesce(max(id), 0) FROM sync_actions", options);

/** Makes `userId` a member of `groupId`. */
export const addMember = (userId, groupId, options) =>
  sql(
    `INSERT INTO sync_group_memberships (user_id, group_id, group_type)
     VALUES (${lit(userId)}, ${lit(groupId)}, 'workspace') ON CONFLICT DO NOTHING`,
    options
  );

/** Removes a user from a group (the server logs the user's `S` action). */
export const removeMember = (userId, groupId, options) =>
  sql(`DELETE FROM sync_group_memberships WHERE user_id = ${lit(userId)} AND group_id = ${lit(groupId)}`, options);
