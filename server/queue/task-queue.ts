import type { Context } from '../services/context.js';
import type { Store } from '../store/index.js';
import type { TaskRecord } from '../store/tasks.js';
import { tasksToStart, type QueueLimits } from './plan.js';
import { isProcessAlive } from '../util/process-alive.js';

/** What a cancelled task throws (the abort reason of its signal). */
export class TaskCancelled extends Error {
  constructor(readonly by: string) {
    super(`cancelled by ${by}`);
    this.name = 'TaskCancelled';
  }
}

const TICK_MS = 250;

interface Waiter { resolve: () => void; reject: (err: Error) => void }

/**
 * The queue as seen by one process. Tasks live in the state store, shared by the daemon
 * and every CLI process; each process starts its own queued tasks when the queue lets
 * them (server/queue/plan.ts), inside one write transaction so that two processes never
 * both take the last slot. The same tick tells running tasks of this process that
 * someone asked to cancel them.
 */
export class TaskQueue {
  private readonly waiters = new Map<number, Waiter>();
  private readonly watched = new Map<number, AbortController>();
  private timer: NodeJS.Timeout | null = null;
  private scheduled = false;

  constructor(private readonly store: Store, private readonly limits: () => QueueLimits) {}

  /** Resolves once the task runs (status 'running'); rejects when it was cancelled or failed while queued. */
  waitForTurn(taskId: number): Promise<void> {
    const p = new Promise<void>((resolve, reject) => this.waiters.set(taskId, { resolve, reject }));
    this.nudge();
    return p;
  }

  /** A signal aborted (with TaskCancelled) when someone asks to cancel the task while this process runs it. */
  watch(taskId: number): { signal: AbortSignal; release: () => void } {
    const c = new AbortController();
    this.watched.set(taskId, c);
    this.arm();
    return { signal: c.signal, release: () => { this.watched.delete(taskId); this.arm(); } };
  }

  /** Looks at the queue now rather than at the next tick (a task of this process ended, or one was added). */
  nudge(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => { this.scheduled = false; this.tick(); });
    this.arm();
  }

  private arm(): void {
    const needed = this.waiters.size > 0 || this.watched.size > 0;
    if (!needed) {
      if (this.timer) clearInterval(this.timer);
      this.timer = null;
      return;
    }
    this.timer ??= setInterval(() => this.tick(), TICK_MS);
    // Waiting for a turn keeps the process alive; watching alone does not (the task's own work does).
    if (this.waiters.size > 0) this.timer.ref(); else this.timer.unref();
  }

  private tick(): void {
    if (this.waiters.size === 0 && this.watched.size === 0) return;
    let active: TaskRecord[];
    const started: number[] = [];
    try {
      active = this.store.tasks.exclusive(() => {
        this.store.tasks.failOrphans(isProcessAlive);
        const all = this.store.tasks.active();
        const running = all.filter((t) => t.status === 'running');
        // Another process's queued task keeps its place; ours only once someone waits on it.
        const queued = all.filter((t) => t.status === 'queued' && (t.pid !== process.pid || this.waiters.has(t.id)));
        for (const t of tasksToStart(queued, running, this.limits(), (q) => q.pid === process.pid)) {
          this.store.tasks.start(t.id, process.pid);
          started.push(t.id);
        }
        return all;
      });
    } catch (err) {
      // The store is busy or closed: try again at the next tick, unless nothing waits any more.
      if ((err as Error).message.includes('not open')) { for (const w of this.waiters.values()) w.reject(err as Error); this.waiters.clear(); this.arm(); }
      return;
    }
    for (const id of started) this.settle(id)?.resolve();
    const byId = new Map(active.map((t) => [t.id, t]));
    for (const id of [...this.waiters.keys()]) {
      if (byId.get(id)?.status === 'queued') continue;
      const t = this.store.tasks.byId(id);
      const w = this.settle(id)!;
      if (t?.status === 'running') w.resolve();
      else if (t?.status === 'cancelled') w.reject(new TaskCancelled(t.cancelRequestedBy ?? 'someone'));
      else w.reject(new Error(t?.error ?? `task ${id} left the queue`));
    }
    for (const [id, c] of this.watched) {
      const by = byId.get(id)?.cancelRequestedBy;
      if (by && !c.signal.aborted) c.abort(new TaskCancelled(by));
    }
    this.arm();
  }

  private settle(id: number): Waiter | undefined {
    const w = this.waiters.get(id);
    this.waiters.delete(id);
    return w;
  }
}

const queues = new WeakMap<Store, TaskQueue>();

/** The queue of this process for the context's state store. */
export function queueOf(ctx: Context): TaskQueue {
  let q = queues.get(ctx.store);
  if (!q) {
    q = new TaskQueue(ctx.store, () => ctx.config.queue);
    queues.set(ctx.store, q);
  }
  return q;
}
