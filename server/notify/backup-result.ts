import os from 'node:os';
import type { Context } from '../services/context.js';
import type { AccountBackupResult } from '../services/backups.js';
import type { JobRecord } from '../store/jobs.js';
import type { DestinationRecord } from '../store/destinations.js';
import { shouldNotify, type Outcome } from './policy.js';
import { deliver } from './deliver.js';

/** Outcomes of the earlier runs of this job for this account, newest first (from the tasks table). */
function earlierOutcomes(ctx: Context, jobId: number, account: string, beforeTask: number): Outcome[] {
  const rows = ctx.store.db.prepare(`SELECT status, result FROM tasks WHERE type = 'backup' AND job_id = ? AND account = ? AND id < ?
    AND status IN ('completed', 'partial', 'failed') ORDER BY id DESC LIMIT 10`).all(jobId, account, beforeTask) as { status: Outcome; result: string }[];
  return rows.map((r) => (r.status === 'partial' && hasProblems(r.result) ? 'failed' : r.status));
}

const hasProblems = (result: string): boolean => {
  try { return Array.isArray((JSON.parse(result) as { problems?: unknown }).problems); } catch { return false; }
};

/**
 * A part that failed (the databases could not be listed) counts as a failure for notices, even
 * though the snapshot of the rest stands: nobody would otherwise learn that the databases are missing.
 */
export const notifyOutcome = (r: Pick<AccountBackupResult, 'status' | 'problems'>): Outcome =>
  (r.status === 'partial' && r.problems?.length ? 'failed' : r.status as Outcome);

function describe(job: JobRecord, dest: DestinationRecord, r: AccountBackupResult): { subject: string; body: string } {
  const verb = r.status === 'failed' ? 'FAILED' : r.status === 'partial' ? 'partly done' : 'done';
  const lines = [
    `Backup of account ${r.account} ${verb}.`,
    '',
    `Server:      ${os.hostname()}`,
    `Job:         ${job.name}`,
    `Account:     ${r.account}`,
    `Destination: ${dest.name}`,
    `Status:      ${r.status}`,
    `Task:        ${r.task}`,
  ];
  if (r.snapshot) lines.push(`Snapshot:    ${r.snapshot}`, `Files:       ${r.files} (${r.skipped} skipped)`);
  if (r.error) lines.push(`Error:       ${r.error}`);
  for (const p of r.problems ?? []) lines.push(`Not backed up: ${p.item}: ${p.reason}`);
  return { subject: `[Tidemark] backup of ${r.account} ${verb} (job ${job.name})`, body: `${lines.join('\n')}\n` };
}

/**
 * Tells the provider about one account's backup when the policy asks for it. Never throws: a
 * notice that cannot be sent is written to the task's log and the activity log, and the backup's
 * result stays what it was.
 */
export async function notifyBackupResult(ctx: Context, job: JobRecord, dest: DestinationRecord, r: AccountBackupResult): Promise<void> {
  const n = ctx.config.notifications;
  // Someone stopped it on purpose: nothing to warn about.
  if (!n || (!n.email && !n.webhook) || r.status === 'cancelled') return;
  try {
    if (!shouldNotify(earlierOutcomes(ctx, job.id, r.account, r.task), notifyOutcome(r), n)) return;
    const { subject, body } = describe(job, dest, r);
    const structured = { event: 'backup', job: job.name, destination: dest.name, account: r.account, status: r.status, snapshot: r.snapshot, task: r.task, error: r.error, problems: r.problems ?? [] };
    for (const d of await deliver(n, subject, body, structured)) {
      const target = `job ${job.name} account ${r.account}`;
      if (d.error === null) {
        ctx.store.tasks.log(r.task, 'info', `notification sent by ${d.channel}`);
        ctx.store.activity.record({ actor: 'tidemark', role: 'admin', action: 'notify', target, result: 'ok', detail: `${d.channel}: ${subject}` });
      } else {
        ctx.store.tasks.log(r.task, 'warn', `notification by ${d.channel} failed: ${d.error}`);
        ctx.store.activity.record({ actor: 'tidemark', role: 'admin', action: 'notify', target, result: 'failed', detail: `${d.channel}: ${d.error}` });
      }
    }
  } catch (err) {
    ctx.store.tasks.log(r.task, 'warn', `notification failed: ${(err as Error).message}`);
  }
}

/**
 * Tells the provider about a run that failed before any account started (its one failed
 * task, account-less): it counts like any failure, so a second run failing in a row is the
 * "second failure" of the job.
 */
export async function notifyRunFailure(ctx: Context, job: JobRecord, task: number, reason: string): Promise<void> {
  const n = ctx.config.notifications;
  if (!n || (!n.email && !n.webhook)) return;
  try {
    const history = (ctx.store.db.prepare(`SELECT status FROM tasks WHERE type = 'backup' AND job_id = ? AND account IS NULL AND id < ?
      AND status IN ('completed', 'partial', 'failed') ORDER BY id DESC LIMIT 10`).all(job.id, task) as { status: Outcome }[]).map((r) => r.status);
    if (!shouldNotify(history, 'failed', n)) return;
    const subject = `[Tidemark] backup job ${job.name} FAILED before it started`;
    const body = [`Backup job ${job.name} failed before any account started.`, '', `Server:      ${os.hostname()}`, `Job:         ${job.name}`,
      `Task:        ${task}`, `Error:       ${reason}`].join('\n') + '\n';
    for (const d of await deliver(n, subject, body, { event: 'backup', job: job.name, account: null, status: 'failed', task, error: reason })) {
      ctx.store.tasks.log(task, d.error === null ? 'info' : 'warn', d.error === null ? `notification sent by ${d.channel}` : `notification by ${d.channel} failed: ${d.error}`);
      ctx.store.activity.record({ actor: 'tidemark', role: 'admin', action: 'notify', target: `job ${job.name}`, result: d.error === null ? 'ok' : 'failed', detail: `${d.channel}: ${d.error ?? subject}` });
    }
  } catch (err) {
    ctx.store.tasks.log(task, 'warn', `notification failed: ${(err as Error).message}`);
  }
}
