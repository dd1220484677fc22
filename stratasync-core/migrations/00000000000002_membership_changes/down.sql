DROP TRIGGER IF EXISTS stratasync_memberships_update ON sync_group_memberships;
DROP TRIGGER IF EXISTS stratasync_memberships_delete ON sync_group_memberships;
DROP TRIGGER IF EXISTS stratasync_memberships_insert ON sync_group_memberships;
DROP FUNCTION IF EXISTS stratasync_log_membership_change();
DROP FUNCTION IF EXISTS stratasync_member_groups(text);
