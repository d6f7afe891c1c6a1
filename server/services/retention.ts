import type { SnapshotRecord } from '../store/snapshots.js';
import { lockAccount } from '../engine/account-lock.js';
import { layout } from '../engine/snapshot-layout.js';
import { UserError, type Context } from './context.js';
import { withDriver } from './destinations.js';
import type { Destination } from '../destinations/types.js';
import { ownerOf, ROOT, type Actor } from './actor.js';
import { sweepUnusedObjects, type SweepOutcome } from '../engine/object-sweep.js';

/** What one job keeps: the newest `keep` of each schedule's snapshots, and `manualKeep` of those taken on demand (null: all). */
export interface RetentionPolicy {
  jobId: number;
  manualKeep: number | null;
  schedules: { name: string; keep: number }[];
}

export const MANUAL = 'manual';

const newestFirst = (a: SnapshotRecord, b: SnapshotRecord): number =>
  b.finishedAt.localeCompare(a.finishedAt) || b.id.localeCompare(a.id);

/**
 * The snapshots retention removes. Each job, destination, account (identity) and schedule is a
 * series of its own that keeps its newest N. Locked snapshots are never removed and do not
 * count toward N. Snapshots of a removed job, of a removed schedule, or on demand without
 * `manualKeep` are kept: nothing is removed without a rule that says so.
 */
export function planRetention(snapshots: readonly SnapshotRecord[], policies: readonly RetentionPolicy[]): SnapshotRecord[] {
  const keepOf = new Map<string, number>();
  for (const p of policies) {
    if (p.manualKeep !== null) keepOf.set(`${p.jobId}|${MANUAL}`, p.manualKeep);
    for (const s of p.schedules) keepOf.set(`${p.jobId}|${s.name}`, s.keep);
  }
  const series = new Map<string, SnapshotRecord[]>();
  for (const s of snapshots) {
    if (s.jobId === null || s.locked) continue;
    if (!keepOf.has(`${s.jobId}|${s.schedule ?? MANUAL}`)) continue;
    // Each account identity is a series of its own: a later account of the name never pushes out a removed one's last snapshots.
    const key = JSON.stringify([s.jobId, s.schedule ?? MANUAL, s.destinationId, s.account, s.accountId ?? null]);
    series.set(key, [...(series.get(key) ?? []), s]);
  }
  const prune: SnapshotRecord[] = [];
  for (const list of series.values()) {
    const first = list[0]!;
    const keep = keepOf.get(`${first.jobId}|${first.schedule ?? MANUAL}`)!;
    prune.push(...list.sort(newestFirst).slice(keep));
  }
  return prune;
}

export function policiesOf(ctx: Context, jobIds?: readonly number[]): RetentionPolicy[] {
  const jobs = ctx.store.jobs.list().filter((j) => jobIds === undefined || jobIds.includes(j.id));
  return jobs.map((j) => ({
    jobId: j.id, manualKeep: ctx.store.schedules.manualKeep(j.id),
    schedules: ctx.store.schedules.ofJob(j.id).map((s) => ({ name: s.name, keep: s.keep })),
  }));
}

export interface RetentionOutcome {
  removed: { id: string; account: string; destination: string; schedule: string }[];
  /** Accounts left for the next time (a backup or restore holds them). */
  skipped: { account: string; destination: string; reason: string }[];
  failed: { id: string; account: string; destination: string; error: string }[];
  /** Destinations without hard links: what the sweep of each account's unused content objects did. */
  objects: ({ account: string; destination: string } & SweepOutcome)[];
}

/**
 * Removes what planRetention selects, one account at a time under the account lock (a
 * restore reading a snapshot holds it: that account waits for the next time). The folder
 * leaves the catalog first, is then renamed to a hidden `.partial-` name and deleted last,
 * so a removal cut short never leaves a listed snapshot with files missing. Each incremental
 * snapshot holds its own hard links, so removing one leaves the others whole.
 */
export async function applyRetention(ctx: Context, opts: { jobIds?: number[]; dryRun?: boolean } = {}): Promise<RetentionOutcome> {
  const plan = planRetention(ctx.store.snapshots.list(), policiesOf(ctx, opts.jobIds));
  const out: RetentionOutcome = { removed: [], skipped: [], failed: [], objects: [] };
  const byDestination = new Map<number, SnapshotRecord[]>();
  for (const s of plan) byDestination.set(s.destinationId, [...(byDestination.get(s.destinationId) ?? []), s]);
  for (const [destinationId, snapshots] of byDestination) {
    const dest = ctx.store.destinations.byId(destinationId);
    if (!dest) continue;
    const accounts = [...new Set(snapshots.map((s) => s.account))];
    if (opts.dryRun) {
      for (const s of snapshots) out.removed.push({ id: s.id, account: s.account, destination: dest.name, schedule: s.schedule ?? MANUAL });
      continue;
    }
    if (dest.readOnly) {
      for (const a of accounts) out.skipped.push({ account: a, destination: dest.name, reason: 'the destination is read-only' });
      continue;
    }
    await withDriver(ctx, dest, async (driver) => {
      for (const account of accounts) {
        let unlock: (() => void) | null = null;
        try {
          // Busy (a backup or restore, in this process or another): left for the next time.
          unlock = lockAccount(ctx.dataDir, account, 'retention');
        } catch (err) {
          out.skipped.push({ account, destination: dest.name, reason: (err as Error).message });
          continue;
        }
        try {
          let removedAny = false;
          for (const s of snapshots.filter((x) => x.account === account)) {
            // Looked up again under the lock: it may have been locked or removed meanwhile.
            const now = ctx.store.snapshots.byId(s.id).find((x) => x.destinationId === destinationId && x.account === account);
            if (!now || now.locked) continue;
            try {
              await removeSnapshotData(ctx, driver, now);
              removedAny = true;
              out.removed.push({ id: s.id, account, destination: dest.name, schedule: s.schedule ?? MANUAL });
            } catch (err) {
              out.failed.push({ id: s.id, account, destination: dest.name, error: (err as Error).message });
            }
          }
          // One sweep per account, after all its removals (it reads every kept index).
          if (removedAny) {
            try {
              const swept = await freeUnusedObjects(ctx, driver, account, dest.name);
              if (swept) out.objects.push({ account, destination: dest.name, ...swept });
            } catch (err) {
              out.failed.push({ id: 'objects', account, destination: dest.name, error: `unused objects not deleted: ${(err as Error).message}` });
            }
          }
        } finally {
          unlock?.();
        }
      }
    });
  }
  if (!opts.dryRun && (out.removed.length || out.failed.length)) {
    ctx.store.activity.record({ actor: ROOT.name, role: ROOT.role, action: 'retention', target: 'snapshots',
      result: out.failed.length ? 'failed' : 'ok', detail: JSON.stringify({ removed: out.removed.map((r) => `${r.account}/${r.id}`), failed: out.failed }) });
  }
  return out;
}

/**
 * Removes one snapshot's folder, then its catalog row; the caller holds the account lock.
 * The folder is first renamed to a hidden `.partial-` name, so a removal cut short never
 * looks like a complete snapshot (the next run sweeps it).
 */
export async function removeSnapshotData(ctx: Context, driver: Destination, s: SnapshotRecord): Promise<void> {
  const hidden = layout.partialDir(s.account, s.id);
  // Unlisted first, hidden next, deleted last: a run killed at any moment leaves either a
  // complete snapshot (unlisted until a reindex finds it) or a hidden leftover the next
  // backup removes, never a listed snapshot with files missing.
  ctx.store.snapshots.remove(s.destinationId, s.account, s.id);
  try {
    if (await driver.exists(layout.snapshotDir(s.account, s.id))) await driver.rename(layout.snapshotDir(s.account, s.id), hidden);
  } catch (err) {
    ctx.store.snapshots.insert(s);
    throw err;
  }
  await driver.remove(hidden);
}

/**
 * Destinations without hard links: deletes the content objects of `account` that no snapshot
 * refers to any more (engine/object-sweep.ts), under the account lock the caller holds. Null
 * on destinations with hard links, where removing a snapshot's folder frees its space.
 */
export async function freeUnusedObjects(ctx: Context, driver: Destination, account: string, destination: string): Promise<SweepOutcome | null> {
  if (driver.hardLinks) return null;
  const swept = await sweepUnusedObjects(driver, account);
  ctx.store.activity.record({ actor: ROOT.name, role: ROOT.role, action: 'objects.sweep', target: `${destination}/${account}`,
    result: swept.deferred ? 'deferred' : 'ok', detail: JSON.stringify(swept) });
  return swept;
}

/**
 * Locks a snapshot against retention, or unlocks it. The provider may lock any; an account
 * holder only snapshots on its own destinations (locking on the provider's would let it
 * keep them without limit).
 */
export function setSnapshotLocked(ctx: Context, s: SnapshotRecord, locked: boolean, actor: Actor = ROOT): SnapshotRecord {
  if (actor.role !== 'admin') {
    const d = ctx.store.destinations.byId(s.destinationId);
    if (!d || d.owner !== ownerOf(actor)) throw new UserError(`snapshot ${s.id} is on the provider's destination: only the provider locks it`);
  }
  ctx.store.snapshots.setLocked(s.destinationId, s.account, s.id, locked);
  ctx.store.activity.record({ actor: actor.name, role: actor.role, action: locked ? 'snapshot.lock' : 'snapshot.unlock', target: `${s.account}/${s.id}`, result: 'ok', detail: '' });
  return { ...s, locked };
}
