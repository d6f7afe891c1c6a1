import type Database from 'better-sqlite3';

export const name = '0001-initial';

export async function up({ context: db }: { context: Database.Database }): Promise<void> {
  db.exec(`
    CREATE TABLE destinations (
      id INTEGER PRIMARY KEY,
      name TEXT NOT NULL UNIQUE,
      type TEXT NOT NULL,
      settings TEXT NOT NULL,            -- JSON, per type
      owner TEXT NOT NULL DEFAULT 'root',
      enabled INTEGER NOT NULL DEFAULT 1,
      snapshots_visible INTEGER NOT NULL DEFAULT 1,
      read_only INTEGER NOT NULL DEFAULT 0,
      free_space_limit_mb INTEGER NOT NULL DEFAULT 0,
      created_at TEXT NOT NULL
    );
    CREATE TABLE jobs (
      id INTEGER PRIMARY KEY,
      name TEXT NOT NULL UNIQUE,
      destination_id INTEGER NOT NULL REFERENCES destinations(id),
      structure TEXT NOT NULL CHECK (structure IN ('incremental', 'archive', 'compressed')),
      accounts TEXT NOT NULL,            -- JSON: {"all":true} | {"list":[...]}
      items TEXT NOT NULL,               -- JSON array
      excludes TEXT NOT NULL,            -- JSON array of globs
      enabled INTEGER NOT NULL DEFAULT 1,
      created_at TEXT NOT NULL
    );
    CREATE TABLE snapshots (
      id TEXT NOT NULL,
      destination_id INTEGER NOT NULL REFERENCES destinations(id),
      account TEXT NOT NULL,
      job_id INTEGER REFERENCES jobs(id) ON DELETE SET NULL,
      structure TEXT NOT NULL,
      status TEXT NOT NULL,              -- completed | partial
      started_at TEXT NOT NULL,
      finished_at TEXT NOT NULL,
      items TEXT NOT NULL,               -- JSON array
      files INTEGER NOT NULL,
      bytes INTEGER NOT NULL,
      stored_bytes INTEGER NOT NULL,
      databases TEXT NOT NULL,           -- JSON array
      locked INTEGER NOT NULL DEFAULT 0,
      note TEXT NOT NULL DEFAULT '',
      PRIMARY KEY (destination_id, account, id)
    );
    CREATE INDEX snapshots_by_account ON snapshots(account, finished_at);
    CREATE TABLE tasks (
      id INTEGER PRIMARY KEY,
      type TEXT NOT NULL,
      status TEXT NOT NULL,              -- queued | running | completed | partial | failed | cancelled
      account TEXT,
      job_id INTEGER,
      destination_id INTEGER,
      snapshot_id TEXT,
      params TEXT NOT NULL DEFAULT '{}',
      progress TEXT NOT NULL DEFAULT '{}',
      result TEXT NOT NULL DEFAULT '{}',
      error TEXT,
      pid INTEGER,
      created_at TEXT NOT NULL,
      started_at TEXT,
      finished_at TEXT
    );
    CREATE TABLE task_log (
      id INTEGER PRIMARY KEY,
      task_id INTEGER NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
      at TEXT NOT NULL,
      level TEXT NOT NULL,
      message TEXT NOT NULL
    );
    CREATE TABLE activity (
      id INTEGER PRIMARY KEY,
      at TEXT NOT NULL,
      actor TEXT NOT NULL,
      role TEXT NOT NULL,
      action TEXT NOT NULL,
      target TEXT NOT NULL,
      result TEXT NOT NULL,
      detail TEXT NOT NULL DEFAULT ''
    );
  `);
}
