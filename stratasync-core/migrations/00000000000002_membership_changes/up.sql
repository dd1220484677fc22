-- Membership changes are sync actions: whenever a statement changes users'
-- rows of `sync_group_memberships` (the engine's `memberships::add` and
-- `remove`, or the application's own SQL), the same transaction logs one
-- `S` action per affected user carrying that user's whole group set after
-- the statement. Its group is the user's own id, so only that user sees it.

-- A user's groups as the engine assembles them from this table: the
-- memberships in the order they were added (ties by group id), at most
-- 10 000, then the user's own id unless already there. Rust's
-- `storage::memberships::groups_of` reads the same order.
CREATE OR REPLACE FUNCTION stratasync_member_groups(uid text) RETURNS jsonb
LANGUAGE sql STABLE AS $$
  SELECT to_jsonb(CASE WHEN uid = ANY (g) THEN g ELSE g || uid END)
  FROM (SELECT coalesce(array_agg(group_id ORDER BY created_at, group_id), '{}') AS g
        FROM (SELECT group_id, created_at FROM sync_group_memberships
              WHERE user_id = uid ORDER BY created_at, group_id LIMIT 10000) AS m) AS a
$$;

-- Logs the `S` actions of one statement. The insert-order lock (the same
-- key as the engine's log insert) is taken before any id is drawn and held
-- until the transaction ends, so ids stay in commit order.
CREATE OR REPLACE FUNCTION stratasync_log_membership_change() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  users text[];
BEGIN
  IF TG_OP = 'INSERT' THEN
    SELECT array_agg(DISTINCT user_id ORDER BY user_id) INTO users FROM stratasync_new;
  ELSIF TG_OP = 'DELETE' THEN
    SELECT array_agg(DISTINCT user_id ORDER BY user_id) INTO users FROM stratasync_old;
  ELSE
    -- Only rows whose user or group changed (not a relabelled group_type).
    SELECT array_agg(DISTINCT u ORDER BY u) INTO users FROM (
      SELECT n.user_id AS u FROM stratasync_new n JOIN stratasync_old o ON n.id = o.id
        WHERE (n.user_id, n.group_id) IS DISTINCT FROM (o.user_id, o.group_id)
      UNION ALL
      SELECT o.user_id FROM stratasync_new n JOIN stratasync_old o ON n.id = o.id
        WHERE (n.user_id, n.group_id) IS DISTINCT FROM (o.user_id, o.group_id)
      UNION ALL
      SELECT n.user_id FROM stratasync_new n WHERE NOT EXISTS (SELECT 1 FROM stratasync_old o WHERE o.id = n.id)
      UNION ALL
      SELECT o.user_id FROM stratasync_old o WHERE NOT EXISTS (SELECT 1 FROM stratasync_new n WHERE n.id = o.id)
    ) AS changed;
  END IF;
  IF users IS NULL THEN
    RETURN NULL;
  END IF;
  PERFORM pg_advisory_xact_lock(hashtext('stratasync:sync_actions'), hashtext('sync_actions'));
  INSERT INTO sync_actions (model, model_id, action, data, group_id)
  SELECT 'SyncGroup', 'sync-groups', 'S',
         jsonb_build_object('subscribedSyncGroups', stratasync_member_groups(u.uid)), u.uid
  FROM unnest(users) WITH ORDINALITY AS u(uid, n)
  ORDER BY u.n;
  RETURN NULL;
END
$$;

-- One trigger per event: a trigger with transition tables may name one
-- event only.
CREATE TRIGGER stratasync_memberships_insert AFTER INSERT ON sync_group_memberships
  REFERENCING NEW TABLE AS stratasync_new
  FOR EACH STATEMENT EXECUTE FUNCTION stratasync_log_membership_change();
CREATE TRIGGER stratasync_memberships_delete AFTER DELETE ON sync_group_memberships
  REFERENCING OLD TABLE AS stratasync_old
  FOR EACH STATEMENT EXECUTE FUNCTION stratasync_log_membership_change();
CREATE TRIGGER stratasync_memberships_update AFTER UPDATE ON sync_group_memberships
  REFERENCING OLD TABLE AS stratasync_old NEW TABLE AS stratasync_new
  FOR EACH STATEMENT EXECUTE FUNCTION stratasync_log_membership_change();
