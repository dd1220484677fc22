-- The example application's tables (docs/example.md).
CREATE TABLE IF NOT EXISTS workspaces (
  id          uuid PRIMARY KEY,
  name        text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS tasks (
  id            uuid PRIMARY KEY,
  workspace_id  uuid NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
  title         text NOT NULL,
  description   text,
  priority      integer NOT NULL DEFAULT 0,
  due_date      date,
  completed_at  timestamptz,
  archived_at   timestamptz,
  created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS tasks_workspace_id_idx ON tasks (workspace_id, id);

CREATE TABLE IF NOT EXISTS labels (
  id            uuid PRIMARY KEY,
  workspace_id  uuid NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
  name          text NOT NULL,
  color         text NOT NULL
);
CREATE INDEX IF NOT EXISTS labels_workspace_id_idx ON labels (workspace_id, id);

CREATE TABLE IF NOT EXISTS task_labels (
  task_id       uuid NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
  label_id      uuid NOT NULL REFERENCES labels(id) ON DELETE CASCADE,
  workspace_id  uuid NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
  created_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (task_id, label_id)
);
-- Not in docs/example.md: the scoped bootstrap and batch-by-workspace queries of
-- TaskLabel page by (task_id, label_id) within a workspace.
CREATE INDEX IF NOT EXISTS task_labels_workspace_idx ON task_labels (workspace_id, task_id, label_id);
