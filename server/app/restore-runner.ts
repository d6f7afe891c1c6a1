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
  /** The account identity of the snapshot (store/accounts.ts). */
  accountId: number | null;
  requestedBy: string;
  requestedAt: string;
  /** Set once it runs: from then on the task in the store tells its state. */
  taskId: number | null;
  error: string | null;
}

export type Submitted = { taskId: number } | { queued: PendingRestore } | { error: string };

/**
 * Runs restores started from the pages inside the daemon and answers the page at once
 * with the task: the queue (server/queue/) runs it when the account is free, so a
 * restore asked for while another runs shows as queued.
 */
export class RestoreRunner {
  private readonly waiting = new Map<string, PendingRestore>();

  constructor(private readonly ctx: Context) {}

  /** Restores accepted but not yet given a task (a moment, while their checks run). */
  pending(): PendingRestore[] {
    return [...this.waiting.values()].filter((p) => p.taskId === null && p.error === null);
  }

  async submit(actor: Actor, s: SnapshotRecord, input: RestoreInput, planned: Record<string, unknown>): Promise<Submitted> {
    const p: PendingRestore = {
      ticket: crypto.randomBytes(8).toString('hex'), account: s.account, destinationId: s.destinationId, snapshotId: s.id, accountId: s.accountId ?? null,
      requestedBy: actor.name, requestedAt: new Date().toISOString(), taskId: null, error: null,
    };
    this.waiting.set(p.ticket, p);
    let started!: (r: Submitted) => void;
    const answer = new Promise<Submitted>((resolve) => { started = resolve; });
    void (async () => {
      try {
        await restore(this.ctx, s, input, actor, {
          onTask: (taskId) => {
            p.taskId = taskId;
            this.ctx.store.tasks.progress(taskId, { ...planned, phase: 'restoring' });
            started({ taskId });
          },
        });
      } catch (err) {
        // After the task exists, its failure is in the store; before, only here.
        p.error = (err as Error).message;
        started({ error: p.error });
      } finally {
        this.waiting.delete(p.ticket);
      }
    })();
    const slow = new Promise<Submitted>((resolve) => setTimeout(() => resolve({ queued: p }), 1500).unref());
    return Promise.race([answer, slow]);
  }
}
