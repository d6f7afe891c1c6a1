import type Database from 'better-sqlite3';

export const name = '0005-schedules';

/**
 * Schedules of jobs, each with its own retention (keep the newest N of the snapshots it
 * made). `last_run_at` (milliseconds since the epoch) lets a daemon that was down start
 * a missed run once it is back. Snapshots record the schedule that made them; the ones
 * taken on demand (and those older than this migration) are 'manual', kept by the job's
 * `manual_keep` (NULL: all of them).
 */
export async function up({ context: db }: { context: Database.Database }): Promise<void> {
  db.exec(`
    CREATE TABLE schedules (
      id INTEGER PRIMARY KEY,
      job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
      name TEXT NOT NULL,
      kind TEXT NOT NULL CHECK (kind IN ('hourly', 'daily', 'weekly', 'monthly', 'after')),
      at TEXT,
      weekday INTEGER,
      monthday INTEGER,
      after_job_id INTEGER REFERENCES jobs(id) ON DELETE CASCADE,
      keep INTEGER NOT NULL CHECK (keep >= 1),
      created_at INTEGER NOT NULL,
      last_run_at INTEGER,
      UNIQUE (job_id, name)
    );
    ALTER TABLE jobs ADD COLUMN manual_keep INTEGER;
    ALTER TABLE snapshots ADD COLUMN schedule TEXT NOT NULL DEFAULT 'manual';
  `);
}
