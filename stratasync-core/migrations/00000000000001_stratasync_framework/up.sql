-- StrataSync framework tables (docs/protocol.md §2.1).
CREATE TABLE IF NOT EXISTS sync_actions (
  id            bigserial   PRIMARY KEY,
  model         text        NOT NULL,
  model_id      text        NOT NULL,
  action        text        NOT NULL,
  data          jsonb       NOT NULL,
  group_id      text,
  client_id     text,
  client_tx_id  text,
  created_at    timestamptz NOT NULL DEFAULT now()
);
-- The dedupe key carries the name the reference recognizes (§2.2, §10 #12).
CREATE UNIQUE INDEX IF NOT EXISTS sync_actions_client_id_client_tx_id_unique
  ON sync_actions (client_id, client_tx_id);
-- Hot queries: visible(G) pages and the earliest/head lookups (§10 #20).
CREATE INDEX IF NOT EXISTS sync_actions_group_id_id_idx ON sync_actions (group_id, id);
CREATE INDEX IF NOT EXISTS sync_actions_model_model_id_id_idx ON sync_actions (model, model_id, id);

CREATE TABLE IF NOT EXISTS sync_group_memberships (
  id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id     text        NOT NULL,
  group_id    text        NOT NULL,
  group_type  text        NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX IF NOT EXISTS sync_group_memberships_user_group_unique
  ON sync_group_memberships (user_id, group_id);
