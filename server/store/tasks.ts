import type { Db } from './database.js';

export type LogAudience = 'all' | 'provider';
export type TaskType = 'backup' | 'restore' | 'download' | 'reindex' | 'validate' | 'verify';
export type TaskStatus = 'queued' | 'running' | 'completed' | 'partial' | 'failed' | 'cancelled';

export interface TaskRecord {
  id: number;
  type: TaskType;
  status: TaskStatus;
  account: string | null;
  jobId: number | null;
  destinationId: number | null;
  snapshotId: string | null;
  params: Record<string, unknown>;
  progress: Record<string, unknown>;
  result: Record<string, unknown>;
  error: string | null;
  pid: number | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  /** Higher runs first (see server/queue/priority.ts). */
  priority: number;
  /** Who asked to cancel it while it ran; the process running it stops at the next check. */
  cancelRequestedBy: string | null;
}

interface Row {
  id: number; type: string; status: string; account: string | null; job_id: number | null; destination_id: number | null;
  snapshot_id: string | null; params: string; progress: string; result: string; error: string | null; pid: number | null;
  created_at: string; started_at: string | null; finished_at: string | null; priority: number; cancel_requested_by: string | null;
}

const fromRow = (r: Row): TaskRecord => ({
  id: r.id, type: r.type as TaskType, status: r.status as TaskStatus, account: r.account, jobId: r.job_id,
  destinationId: r.destination_id, snapshotId: r.snapshot_id, params: JSON.parse(r.params) as Record<string, unknown>,
  progress: JSON.parse(r.progress) as Record<string, unknown>, result: JSON.parse(r.result) as Record<string, unknown>,
  error: r.error, pid: r.pid, createdAt: r.created_at, startedAt: r.started_at, finishedAt: r.finished_at,
  priority: r.priority, cancelRequestedBy: r.cancel_requested_by,
});

const now = (): string => new Date().toISOString();

export class TaskRepository {
  constructor(private readonly db: Db) {}

  /** A queued task, claimed by this process (see failOrphans): it waits for its turn (server/queue/task-queue.ts). */
  create(t: Pick<TaskRecord, 'type' | 'account' | 'jobId' | 'destinationId' | 'snapshotId' | 'params'> & { priority?: number }): TaskRecord {
    const info = this.db.prepare(`INSERT INTO tasks (type, status, account, job_id, destination_id, snapshot_id, params, created_at, priority, pid)
      VALUES (?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?)`).run(t.type, t.account, t.jobId, t.destinationId, t.snapshotId, JSON.stringify(t.params), now(), t.priority ?? 20, process.pid);
    return this.byId(Number(info.lastInsertRowid))!;
  }
  /** Queued and running tasks, in the order the queue takes them. */
  active(): TaskRecord[] {
    return (this.db.prepare(`SELECT * FROM tasks WHERE status IN ('queued', 'running') ORDER BY status DESC, priority DESC, id`).all() as Row[]).map(fromRow);
  }
  /** Cancels a task that has not started; false when it no longer waits. */
  cancelQueued(id: number, by: string): boolean {
    const info = this.db.prepare(`UPDATE tasks SET status = 'cancelled', cancel_requested_by = ?, error = ?, finished_at = ? WHERE id = ? AND status = 'queued'`)
      .run(by, `cancelled by ${by} before it started`, now(), id);
    return info.changes > 0;
  }
  /** Asks the process running a task to stop it; false when it is not running. */
  requestCancel(id: number, by: string): boolean {
    const info = this.db.prepare(`UPDATE tasks SET cancel_requested_by = ? WHERE id = ? AND status = 'running' AND cancel_requested_by IS NULL`).run(by, id);
    return info.changes > 0;
  }
  /** Runs `fn` in one write transaction: no other process changes the queue meanwhile. */
  exclusive<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }
  byId(id: number): TaskRecord | null {
    const r = this.db.prepare('SELECT * FROM tasks WHERE id = ?').get(id) as Row | undefined;
    return r ? fromRow(r) : null;
  }
  list(limit = 100): TaskRecord[] {
    return (this.db.prepare('SELECT * FROM tasks ORDER BY id DESC LIMIT ?').all(limit) as Row[]).map(fromRow);
  }
  start(id: number, pid: number): void {
    this.db.prepare(`UPDATE tasks SET status = 'running', pid = ?, started_at = ? WHERE id = ?`).run(pid, now(), id);
  }
  progress(id: number, progress: Record<string, unknown>): void {
    this.db.prepare('UPDATE tasks SET progress = ? WHERE id = ?').run(JSON.stringify(progress), id);
  }
  finish(id: number, status: TaskStatus, result: Record<string, unknown>, error: string | null): void {
    // A task ends once: a cancellation or an orphan's failure recorded first stays.
    this.db.prepare(`UPDATE tasks SET status = ?, result = ?, error = ?, finished_at = ? WHERE id = ? AND status IN ('queued', 'running')`)
      .run(status, JSON.stringify(result), error, now(), id);
  }
  /** `provider`: a line only the server's administrator reads (what a provider's hook printed). */
  log(id: number, level: 'info' | 'warn' | 'error', message: string, audience: LogAudience = 'all'): void {
    this.db.prepare('INSERT INTO task_log (task_id, at, level, message, audience) VALUES (?, ?, ?, ?, ?)').run(id, now(), level, message, audience);
  }
  /** The lines `viewer` may read: the provider reads every line, everyone else the `all` ones. */
  logs(id: number, viewer: { provider: boolean }): { at: string; level: string; message: string }[] {
    const sql = viewer.provider
      ? 'SELECT at, level, message FROM task_log WHERE task_id = ? ORDER BY id'
      : `SELECT at, level, message FROM task_log WHERE task_id = ? AND audience = 'all' ORDER BY id`;
    return this.db.prepare(sql).all(id) as { at: string; level: string; message: string }[];
  }
  /** Tasks left running or queued by a process that no longer exists (killed): marked failed, never completed. */
  failOrphans(isAlive: (pid: number) => boolean): number {
    const rows = this.db.prepare(`SELECT id, pid FROM tasks WHERE status IN ('running', 'queued')`).all() as { id: number; pid: number | null }[];
    let n = 0;
    for (const r of rows) {
      if (r.pid !== null && isAlive(r.pid)) continue;
      this.finish(r.id, 'failed', {}, 'interrupted: the process running this task ended before it finished');
      n++;
    }
    return n;
  }
}
