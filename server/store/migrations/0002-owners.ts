import type Database from 'better-sqlite3';

export const name = '0002-owners';

/**
 * Names become unique per owner instead of globally, so that an account's destinations and
 * jobs never collide with the provider's or another account's: destinations get
 * UNIQUE(owner, name), jobs an `owner` column (the owner of their destination) with
 * UNIQUE(owner, name). SQLite cannot drop a UNIQUE constraint in place, so both tables are
 * rebuilt, keeping their ids (and so every reference to them from jobs, snapshots and tasks).
 */
export async function up({ context: db }: { context: Database.Database }): Promise<void> {
  // A rebuild drops and renames tables that others reference: foreign keys must be off for
  // it (a no-op inside a transaction, hence here) and are checked before the commit.
  const wasOn = db.pragma('foreign_keys', { simple: true }) === 1;
  db.pragma('foreign_keys = OFF');
  try {
    db.transaction(() => {
      db.exec(`
        CREATE TABLE destinations_new (
          id INTEGER PRIMARY KEY,
          name TEXT NOT NULL,
          type TEXT NOT NULL,
          settings TEXT NOT NULL,            -- JSON, per type
          owner TEXT NOT NULL DEFAULT 'root', -- 'root' (the provider) or an account
          enabled INTEGER NOT NULL DEFAULT 1,
          snapshots_visible INTEGER NOT NULL DEFAULT 1,
          read_only INTEGER NOT NULL DEFAULT 0,
          free_space_limit_mb INTEGER NOT NULL DEFAULT 0,
          created_at TEXT NOT NULL,
          UNIQUE (owner, name)
        );
        INSERT INTO destinations_new (id, name, type, settings, owner, enabled, snapshots_visible, read_only, free_space_limit_mb, created_at)
          SELECT id, name, type, settings, owner, enabled, snapshots_visible, read_only, free_space_limit_mb, created_at FROM destinations;
        DROP TABLE destinations;
        ALTER TABLE destinations_new RENAME TO destinations;

        CREATE TABLE jobs_new (
          id INTEGER PRIMARY KEY,
          name TEXT NOT NULL,
          owner TEXT NOT NULL DEFAULT 'root', -- the owner of its destination
          destination_id INTEGER NOT NULL REFERENCES destinations(id),
          structure TEXT NOT NULL CHECK (structure IN ('incremental', 'archive', 'compressed')),
          accounts TEXT NOT NULL,            -- JSON: {"all":true} | {"list":[...]}
          items TEXT NOT NULL,               -- JSON array
          excludes TEXT NOT NULL,            -- JSON array of globs
          enabled INTEGER NOT NULL DEFAULT 1,
          created_at TEXT NOT NULL,
          UNIQUE (owner, name)
        );
        INSERT INTO jobs_new (id, name, owner, destination_id, structure, accounts, items, excludes, enabled, created_at)
          SELECT j.id, j.name, COALESCE(d.owner, 'root'), j.destination_id, j.structure, j.accounts, j.items, j.excludes, j.enabled, j.created_at
          FROM jobs j LEFT JOIN destinations d ON d.id = j.destination_id;
        DROP TABLE jobs;
        ALTER TABLE jobs_new RENAME TO jobs;
        CREATE INDEX destinations_by_owner ON destinations(owner);
        CREATE INDEX jobs_by_destination ON jobs(destination_id);
      `);
      const broken = db.pragma('foreign_key_check') as unknown[];
      if (broken.length > 0) throw new Error(`migration ${name}: ${broken.length} broken references after rebuilding destinations and jobs: ${JSON.stringify(broken.slice(0, 5))}`);
    })();
  } finally {
    if (wasOn) db.pragma('foreign_keys = ON');
  }
}
