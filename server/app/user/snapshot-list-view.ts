import type { Context } from '../../services/context.js';
import type { Actor } from '../../services/actor.js';
import type { SnapshotRecord } from '../../store/snapshots.js';
import { changeCountsOf } from '../../services/path-history.js';
import type { TimelinePoint } from '../../engine/catalog/catalog-query.js';

/** How long the list waits for change counts of a catalog being built: the list never waits long for them. */
const COUNTS_WAIT_MS = 1500;

/**
 * What tells snapshots apart on the list beyond their time: the job (or schedule) that
 * made them and, for one account's list, the number of changes since the one before
 * (null: the first; undefined: not known yet, its catalog is being built).
 */
export async function snapshotListExtras(ctx: Context, actor: Actor, account: string | null, snapshots: SnapshotRecord[]):
  Promise<(s: SnapshotRecord) => { job: string | null; changes: TimelinePoint | null | undefined; changesUrl: string }> {
  let counts = new Map<string, TimelinePoint | null>();
  if (account !== null && snapshots.length > 0) {
    try {
      counts = await changeCountsOf(ctx, account, actor, { waitMs: COUNTS_WAIT_MS });
    } catch (err) {
      // A destination out of reach must not take the list down: the counts are left out.
      process.stderr.write(`tidemark: change counts of ${account}: ${(err as Error).message}\n`);
    }
  }
  const jobs = new Map<number, string | null>();
  return (s) => {
    if (s.jobId !== null && !jobs.has(s.jobId)) jobs.set(s.jobId, ctx.store.jobs.byId(s.jobId)?.name ?? null);
    const key = `${s.destinationId}/${s.id}`;
    return {
      job: s.jobId === null ? null : jobs.get(s.jobId) ?? null, changes: counts.has(key) ? counts.get(key) : undefined,
      changesUrl: `/snapshots/${s.destinationId}/${encodeURIComponent(s.account)}/${encodeURIComponent(s.id)}/changes`,
    };
  };
}
