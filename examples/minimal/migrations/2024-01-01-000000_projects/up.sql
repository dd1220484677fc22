CREATE TABLE projects (
  id        uuid PRIMARY KEY,
  owner_id  text NOT NULL,
  name      text NOT NULL
);
CREATE INDEX projects_owner_id_idx ON projects (owner_id);
