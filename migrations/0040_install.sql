-- One row naming this installation. Its id is part of every Fly app name
-- and machine's metadata, so two installs in one Fly organization never
-- share an app (app names are global, secrets per app) and never reconcile
-- each other's machines away.
CREATE TABLE install (
  singleton  INTEGER PRIMARY KEY CHECK (singleton = 1),
  id         TEXT NOT NULL,
  created_at TEXT NOT NULL
);
