import crypto from 'node:crypto';
import type { Context } from '../services/context.js';
import type { Actor } from '../services/actor.js';
import { restore, type RestoreInput } from '../services/snapshots.js';
import type { SnapshotRecord } from '../store/snapshots.js';

/** A restore asked for on a page that waits for an earlier one of the same account. */
export interface PendingRestore {
  ticket: string;
  account: string;
  destinationId: number;
  snapshotId: string;
  requestedBy: string;
  requestedAt: string;
  /** Set once it runs: from then on the task in the store tells its state. */
  taskId: number | null;
  error: string | null;
}

export type Submitted = { taskId: number } | { queued: PendingRestore } | { error: string };

/**
 * Runs restores started from the pages inside the daemon, one at a time per account
 * (the account lock would refuse a second one), and answers the page at once: with
 * the task when it started, or with its place in the queue.
 */
export class RestoreRunner {
  private readonly tails = new Map<string, Promise<void>>();
  private readonly waiting = new Map<string, PendingRestore>();

  constructor(private readonly ctx: Context) {}

  pending(): PendingRestore[] {
    return [...this.waiting.values()].filter((p) => p.taskId === null && p.error === null);
  }

  async submit(actor: Actor, s: SnapshotRecord, input: RestoreInput, planned: Record<string, unknown>): Promise<Submitted> {
    const p: PendingRestore = {
      ticket: crypto.randomBytes(8).toString('hex'), account: s.account, destinationId: s.destinationId, snapshotId: s.id,
      requestedBy: actor.name, requestedAt: new Date().toISOString(), taskId: null, error: null,
    };
    this.waiting.set(p.ticket, p);
    let started!: (r: Submitted) => void;
    const answer = new Promise<Submitted>((resolve) => { started = resolve; });
    const previous = this.tails.get(s.account) ?? Promise.resolve();
    const run = previous.then(async () => {
      try {
        await restore(this.ctx, s, input, actor, {
          onTask: (taskId) => {
            p.taskId = taskId;
            this.ctx.store.tasks.progress(taskId, { ...planned, phase: 'restoring' });
            started({ taskId });
          },
        });
      } catch (err) {
        // After the task started, its failure is in the store; before, only here.
        p.error = (err as Error).message;
        started({ error: p.error });
      } finally {
        this.waiting.delete(p.ticket);
      }
    });
    this.tails.set(s.account, run);
    void run.finally(() => { if (this.tails.get(s.account) === run) this.tails.delete(s.account); });
    // A restore that has to wait in line is shown as queued rather than holding up the page.
    const queued = new Promise<Submitted>((resolve) => setTimeout(() => resolve({ queued: p }), 1500).unref());
    return Promise.race([answer, queued]);
  }
}
