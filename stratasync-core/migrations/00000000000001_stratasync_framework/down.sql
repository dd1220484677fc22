DROP TABLE IF EXISTS sync_group_memberships;
DROP TABLE IF EXISTS sync_actions;
