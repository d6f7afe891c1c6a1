import type Database from 'better-sqlite3';

export const name = '0006-queue';

/**
 * The task queue: a priority per task (higher runs first) and a cancellation request,
 * set by whoever cancels and seen by the process that runs the task.
 */
export async function up({ context: db }: { context: Database.Database }): Promise<void> {
  db.exec(`
    ALTER TABLE tasks ADD COLUMN priority INTEGER NOT NULL DEFAULT 20;
    ALTER TABLE tasks ADD COLUMN cancel_requested_by TEXT;
    CREATE INDEX tasks_by_status ON tasks (status, priority, id);
  `);
}
