import crypto from 'node:crypto';
import type { SnapshotRecord } from '../store/snapshots.js';
import { verifySnapshotData, type Damage, type VerifyResult } from '../engine/verify.js';
import { lockAccountWhenFree } from '../engine/account-lock.js';
import { PRIORITIES } from '../queue/priority.js';
import { runAsTask } from '../queue/run-task.js';
import { UserError, type Context } from './context.js';
import { withDriver } from './destinations.js';
import { ROOT, type Actor } from './actor.js';
import { listSnapshots } from './snapshots.js';

export interface SnapshotVerifyReport extends VerifyResult {
  snapshot: string;
  account: string;
  destination: string | null;
  task: number;
  /** `ok`: every stored byte matches its hash; `damaged`: see `damaged`; `no hashes`: made before hashes were kept, only its structure was checked and found whole. */
  result: 'ok' | 'damaged' | 'no hashes';
}

const describeDamage = (d: Damage): string => `${d.file}${d.path !== undefined ? ` (${JSON.stringify(d.path)})` : ''}: ${d.problem}`;

/**
 * Re-reads one snapshot and compares it with its hashes, as a `verify` task of the queue.
 * Damage marks the snapshot `damaged` in the catalog (it is then never the base of an
 * incremental run), is written to the task's log file by file, and fails the task; a
 * snapshot marked damaged that verifies whole again gets its status back. `s` is one the
 * actor may see (found with findSnapshot or listSnapshots).
 */
export async function verifySnapshot(ctx: Context, s: SnapshotRecord, actor: Actor = ROOT, priority: number = PRIORITIES.normal): Promise<SnapshotVerifyReport> {
  const destRecord = ctx.store.destinations.byId(s.destinationId);
  if (!destRecord) throw new UserError(`no snapshot ${s.id}`);
  let taskId = 0;
  const result = await runAsTask(ctx, {
    type: 'verify', account: s.account, destinationId: s.destinationId, snapshotId: s.id, priority,
    params: { requestedBy: actor.name, accountIdentity: s.accountId ?? null },
  }, async (id) => {
    const unlock = await lockAccountWhenFree(ctx.dataDir, s.account, `verify task ${id}`);
    try {
      const r = await withDriver(ctx, destRecord, (dest) => verifySnapshotData(dest, s.account, s.id));
      for (const d of r.damaged) ctx.store.tasks.log(id, 'error', describeDamage(d));
      if (!r.hashes) ctx.store.tasks.log(id, 'warn', `snapshot ${s.id} was made before hashes were kept: its structure was checked, its content could not be compared`);
      else if (r.filesWithoutHash > 0) ctx.store.tasks.log(id, 'warn', `${r.filesWithoutHash} files have no hash in the index (carried over from an older snapshot): read, not compared`);
      const now = ctx.store.snapshots.byId(s.id).find((x) => x.destinationId === s.destinationId && x.account === s.account);
      if (now) {
        if (r.damaged.length > 0) ctx.store.snapshots.setStatus(s.destinationId, s.account, s.id, 'damaged');
        else if (now.status === 'damaged') ctx.store.snapshots.setStatus(s.destinationId, s.account, s.id, r.manifestStatus ?? 'completed');
      }
      return r;
    } finally {
      unlock();
    }
  }, {
    onTask: (id) => { taskId = id; },
    summary: (r) => ({ hashes: r.hashes, checked: r.checked, damaged: r.damaged.length, filesWithoutHash: r.filesWithoutHash }),
    problem: (r) => (r.damaged.length === 0 ? null
      : `snapshot ${s.id} of ${s.account} is damaged: ${r.damaged.slice(0, 5).map(describeDamage).join('; ')}${r.damaged.length > 5 ? ` (and ${r.damaged.length - 5} more)` : ''}`),
  });
  ctx.store.activity.record({ actor: actor.name, role: actor.role, action: 'snapshot.verify', target: `${s.account} ${s.id}`, result: result.damaged.length ? 'damaged' : 'ok', detail: '' });
  return {
    snapshot: s.id, account: s.account, destination: destRecord.name, task: taskId, ...result,
    result: result.damaged.length > 0 ? 'damaged' : result.hashes ? 'ok' : 'no hashes',
  };
}

export interface DestinationVerifyReport {
  destination: string;
  /** Snapshots that could be verified (the actor's, of `account` when given). */
  snapshots: number;
  verified: number;
  damaged: number;
  reports: SnapshotVerifyReport[];
}

/** `count` of `n` chosen at random (a share of the snapshots, e.g. each day a different one). */
function sample<T>(items: T[], percent: number): T[] {
  if (percent >= 100) return items;
  const want = Math.min(items.length, Math.ceil((items.length * percent) / 100));
  const copy = [...items];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = crypto.randomInt(i + 1);
    [copy[i], copy[j]] = [copy[j]!, copy[i]!];
  }
  return copy.slice(0, want);
}

/** Verifies the snapshots of a destination (of one account, or a random share of them), one task each. */
export async function verifyDestination(ctx: Context, name: string, opts: { account?: string; samplePercent?: number } = {}, actor: Actor = ROOT, owner?: string): Promise<DestinationVerifyReport> {
  const percent = opts.samplePercent ?? 100;
  if (!(percent > 0 && percent <= 100)) throw new UserError('--sample must be a percentage above 0 and at most 100', 'invalid-input');
  const all = await listSnapshots(ctx, { destination: name, ...(opts.account !== undefined ? { account: opts.account } : {}), ...(owner !== undefined ? { owner } : {}) }, actor);
  const chosen = sample(all, percent);
  const reports: SnapshotVerifyReport[] = [];
  for (const s of chosen) reports.push(await verifySnapshot(ctx, s, actor));
  return { destination: name, snapshots: all.length, verified: reports.length, damaged: reports.filter((r) => r.result === 'damaged').length, reports };
}

/**
 * The daemon's daily share (config `verification.dailyPercent`): that share of all the
 * catalog's snapshots, at low priority. Returns how many were verified and found damaged.
 */
export async function verifyDailyShare(ctx: Context, percent: number): Promise<{ verified: number; damaged: number }> {
  if (!(percent > 0)) return { verified: 0, damaged: 0 };
  const chosen = sample(ctx.store.snapshots.list(), Math.min(100, percent));
  let damaged = 0;
  for (const s of chosen) {
    try {
      if ((await verifySnapshot(ctx, s, ROOT, PRIORITIES.low)).result === 'damaged') damaged++;
    } catch {
      // A destination that cannot be reached fails that task (with its reason); the others still run.
    }
  }
  return { verified: chosen.length, damaged };
}
