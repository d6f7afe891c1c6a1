import type { Context } from '../services/context.js';
import { PRIORITIES } from '../queue/priority.js';
import { runBackup } from '../services/backups.js';
import { applyRetention } from '../services/retention.js';
import { ROOT } from '../services/actor.js';
import type { ScheduleRecord } from '../store/schedules.js';
import type { Clock } from './clock.js';
import { dueAt } from './next-run.js';

export interface SchedulerLog {
  info(data: object, message: string): void;
  error(data: object, message: string): void;
}

const silent: SchedulerLog = { info: () => {}, error: () => {} };

/**
 * Runs jobs on their schedules, one run at a time, each followed by its job's retention
 * and by the jobs scheduled "after" it. A schedule is due at its next time after its last
 * run (or its creation): a time already past when the daemon starts is a missed run, which
 * starts once, however many were missed. Schedules added or removed by the CLI in another
 * process are picked up every `syncMs`.
 */
export class Scheduler {
  private readonly armed = new Map<number, { due: number; cancel: () => void }>();
  /** Fired and waiting for (or in) their run: not armed again until the run has recorded itself. */
  private readonly pending = new Set<number>();
  private chain: Promise<void> = Promise.resolve();
  private stopSync: (() => void) | null = null;
  private stopped = false;

  constructor(private readonly ctx: Context, private readonly clock: Clock, private readonly log: SchedulerLog = silent, private readonly syncMs = 60_000) {}

  start(): void {
    this.stopped = false;
    this.sync();
  }

  stop(): void {
    this.stopped = true;
    this.stopSync?.();
    for (const t of this.armed.values()) t.cancel();
    this.armed.clear();
  }

  /** Resolves once no run is going on (tests wait on it after moving the clock). */
  async idle(): Promise<void> {
    let seen: Promise<void> | null = null;
    while (seen !== this.chain) {
      seen = this.chain;
      await seen;
    }
  }

  /** Arms what the store holds: new schedules get a timer, removed ones lose theirs. */
  sync(): void {
    if (this.stopped) return;
    const schedules = this.ctx.store.schedules.list();
    const ids = new Set(schedules.map((s) => s.id));
    for (const [id, t] of this.armed) if (!ids.has(id)) { t.cancel(); this.armed.delete(id); }
    for (const s of schedules) if (!this.armed.has(s.id) && !this.pending.has(s.id)) this.arm(s);
    this.stopSync?.();
    this.stopSync = this.clock.at(this.clock.now() + this.syncMs, () => this.sync());
  }

  private arm(s: ScheduleRecord): void {
    const due = dueAt(s);
    if (due === null || this.stopped) return;
    const cancel = this.clock.at(due, () => {
      this.armed.delete(s.id);
      this.pending.add(s.id);
      this.enqueue(async () => {
        try {
          await this.runSchedule(s.id, new Set());
        } finally {
          this.pending.delete(s.id);
        }
      });
    });
    this.armed.set(s.id, { due, cancel });
  }

  private enqueue(fn: () => Promise<void>): void {
    this.chain = this.chain.then(fn).catch((err: unknown) => this.log.error({ err: (err as Error).message }, 'scheduled run failed'));
  }

  private async runSchedule(id: number, chain: Set<number>): Promise<void> {
    const s = this.ctx.store.schedules.byId(id);
    const job = s ? this.ctx.store.jobs.byId(s.jobId) : null;
    if (!s || !job || this.stopped) return;
    const startedAt = this.clock.now();
    try {
      if (job.enabled) {
        this.log.info({ job: job.name, schedule: s.name }, 'scheduled run');
        const results = await runBackup(this.ctx, job.name, undefined, ROOT, job.owner, { priority: PRIORITIES.low, schedule: s.name });
        for (const r of results) {
          if (!r.snapshot) this.log.error({ job: job.name, account: r.account, err: r.error }, 'scheduled backup failed');
        }
      }
    } catch (err) {
      this.log.error({ job: job.name, schedule: s.name, err: (err as Error).message }, 'scheduled run failed');
    }
    // Written once the run is over: a daemon killed during a run starts it again when back.
    this.ctx.store.schedules.setLastRun(s.id, startedAt);
    try {
      const r = await applyRetention(this.ctx, { jobIds: [job.id] });
      if (r.removed.length || r.skipped.length || r.failed.length) this.log.info({ job: job.name, ...r }, 'retention');
    } catch (err) {
      this.log.error({ job: job.name, err: (err as Error).message }, 'retention failed');
    }
    if (this.stopped) return;
    const current = this.ctx.store.schedules.byId(s.id);
    if (current && !this.armed.has(s.id)) this.arm(current);
    chain.add(job.id);
    for (const next of this.ctx.store.schedules.list()) {
      if (next.kind === 'after' && next.afterJobId === job.id && !chain.has(next.jobId)) await this.runSchedule(next.id, chain);
    }
  }
}
