DROP TABLE IF EXISTS sync_compacted_keys;
DROP TABLE IF EXISTS sync_log_horizon;
