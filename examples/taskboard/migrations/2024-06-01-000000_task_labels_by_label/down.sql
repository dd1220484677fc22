DROP INDEX IF EXISTS task_labels_label_idx;
