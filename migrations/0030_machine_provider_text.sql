-- The machine provider is plain text: providers register in package fly
-- (fly.Providers), and a new one must need no migration. SQLite cannot drop
-- a CHECK constraint, so the column is replaced in place: renamed (its CHECK
-- follows it), a new unchecked column added, the values copied, and the old
-- column dropped (allowed, since the CHECK is the column's own). Unlike a
-- table rebuild this keeps every other column, index and foreign key as it
-- is, whichever migrations added them.
ALTER TABLE machines RENAME COLUMN provider TO provider_checked;
ALTER TABLE machines ADD COLUMN provider TEXT NOT NULL DEFAULT '';
UPDATE machines SET provider = provider_checked;
ALTER TABLE machines DROP COLUMN provider_checked;
