-- Deleting a label removes its task labels (ON DELETE CASCADE, and the
-- engine first reads them to log their deletes: `cascade(parent = Label,
-- field = label_id)`). The primary key starts with task_id, so without this
-- index each label delete reads the whole table.
CREATE INDEX IF NOT EXISTS task_labels_label_idx ON task_labels (label_id);
