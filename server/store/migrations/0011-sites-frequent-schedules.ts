import type Database from 'better-sqlite3';

export const name = '0011-sites-frequent-schedules';

/**
 * `snapshots.sites`: the WordPress sites a snapshot records (JSON, see engine/sites/; NULL: not
 * looked for). Schedules may run every 5, 10, 15 or 30 minutes: SQLite cannot change a CHECK,
 * so the table is built again with the wider one (nothing refers to schedules' rows).
 */
export async function up({ context: db }: { context: Database.Database }): Promise<void> {
  db.exec(`
    ALTER TABLE snapshots ADD COLUMN sites TEXT;
    CREATE TABLE schedules_new (
      id INTEGER PRIMARY KEY,
      job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
      name TEXT NOT NULL,
      kind TEXT NOT NULL CHECK (kind IN ('every5min', 'every10min', 'every15min', 'every30min', 'hourly', 'daily', 'weekly', 'monthly', 'after')),
      at TEXT,
      weekday INTEGER,
      monthday INTEGER,
      after_job_id INTEGER REFERENCES jobs(id) ON DELETE CASCADE,
      keep INTEGER NOT NULL CHECK (keep >= 1),
      created_at INTEGER NOT NULL,
      last_run_at INTEGER,
      UNIQUE (job_id, name)
    );
    INSERT INTO schedules_new (id, job_id, name, kind, at, weekday, monthday, after_job_id, keep, created_at, last_run_at)
      SELECT id, job_id, name, kind, at, weekday, monthday, after_job_id, keep, created_at, last_run_at FROM schedules;
    DROP TABLE schedules;
    ALTER TABLE schedules_new RENAME TO schedules;
  `);
}
