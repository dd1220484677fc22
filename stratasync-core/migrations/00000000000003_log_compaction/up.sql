-- Log compaction (docs/protocol.md §2.6).
--
-- The retention horizon: every action below it is gone, so a client whose
-- cursor is below `horizon - 1` must bootstrap again. Compaction also
-- removes superseded actions above it, which leaves holes that are not a
-- reason to bootstrap; once a horizon is recorded it, not the lowest id
-- still in the log, decides.
CREATE TABLE IF NOT EXISTS sync_log_horizon (
  only_row  boolean PRIMARY KEY DEFAULT true CHECK (only_row),
  horizon   bigint  NOT NULL
);
-- The dedupe keys of actions compaction removed above the horizon, so a
-- transaction retried after its action was compacted away is still
-- answered from its first commit.
CREATE TABLE IF NOT EXISTS sync_compacted_keys (
  client_id     text   NOT NULL,
  client_tx_id  text   NOT NULL,
  id            bigint NOT NULL,
  PRIMARY KEY (client_id, client_tx_id)
);
CREATE INDEX IF NOT EXISTS sync_compacted_keys_id_idx ON sync_compacted_keys (id);
