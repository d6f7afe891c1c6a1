import crypto from 'node:crypto';
import { DestinationError, type Destination, type DirEntry } from '../destinations/types.js';
import { InFlight } from '../util/in-flight.js';
import { SNAPSHOT_ID } from './manifest.js';
import { ObjectLease } from './object-lease.js';
import { eachIndexEntry } from './snapshot-index.js';
import { layout, OBJECT_NAME } from './snapshot-layout.js';

export interface SweepOutcome {
  /** Why nothing was deleted this time (a backup of the account holds a lease), or null. */
  deferred: string | null;
  /** Content objects of the account before the sweep. */
  objects: number;
  /** Snapshot indexes read to find the objects in use. */
  snapshots: number;
  removed: number;
  removedBytes: number;
}

/** Deletions between two renewals of the sweep's lease, at most. */
const CONFIRM_EVERY_MS = 30_000;

async function listOrEmpty(dest: Destination, rel: string): Promise<DirEntry[]> {
  try {
    return await dest.list(rel);
  } catch (err) {
    if (err instanceof DestinationError && err.code === 'not-found') return [];
    throw err;
  }
}

/**
 * Mark and sweep of one account's content objects (docs/reliability.md, "Deleting in the
 * object layout"): deletes exactly the objects that no snapshot folder of the account refers
 * to, after one or more snapshots were removed.
 *
 * - Marked is every hash in the index of every snapshot folder the account folder holds,
 *   listed on the destination itself (not in this server's catalog: another server may have
 *   written some), with or without a manifest. Reading any of them failing stops the sweep
 *   before anything is deleted: an index that could not be read could name any object.
 * - Runs only under a sweep lease (object-lease.ts): if a backup of the account holds a lease,
 *   on this server or another, the sweep is deferred and deletes nothing; a backup that starts
 *   meanwhile waits for it. So no object a running backup builds on, or found already stored,
 *   is deleted under it.
 * - As a second guard, an object written at or after the moment the sweep's lease was (by the
 *   destination's clock) is never deleted.
 * - Unknown names under `objects/` are left alone: only what Tidemark names is deleted.
 */
export async function sweepUnusedObjects(dest: Destination, account: string, signal?: AbortSignal): Promise<SweepOutcome> {
  const outcome: SweepOutcome = { deferred: null, objects: 0, snapshots: 0, removed: 0, removedBytes: 0 };
  const objectsDir = layout.objectsDir(account);
  const buckets = (await listOrEmpty(dest, objectsDir)).filter((e) => e.type === 'dir' && /^[0-9a-f]{2}$/.test(e.name));
  if (buckets.length === 0) return outcome;

  const leaseId = `${new Date().toISOString().replace(/[-:.]/g, '')}-${crypto.randomBytes(4).toString('hex')}`;
  const lease = await ObjectLease.take(dest, account, 'sweep', leaseId);
  if (!lease) {
    outcome.deferred = 'a backup of the account is running on this destination (here or on another server): unused objects are deleted by the next sweep';
    return outcome;
  }
  try {
    const mine = (await dest.list(layout.leasesDir(account))).find((e) => e.name === `sweep-${leaseId}.json`);
    if (!mine) throw new Error(`the sweep's lease ${layout.leasesDir(account)}/sweep-${leaseId}.json is not on the destination`);
    // Times on an object store are whole seconds: anything from the lease's second on is spared.
    const cutoff = mine.mtimeMs - 1000;

    const inUse = new Set<string>();
    for (const e of await dest.list(layout.accountDir(account))) {
      signal?.throwIfAborted();
      if (e.type !== 'dir' || !SNAPSHOT_ID.test(e.name)) continue;
      const dir = layout.snapshotDir(account, e.name);
      if (!(await dest.exists(`${dir}/${layout.index}`))) continue;
      outcome.snapshots++;
      await eachIndexEntry(dest, dir, (entry) => {
        if (entry.kind === 'f' && entry.hash) inUse.add(entry.hash.toString('hex'));
      });
    }

    const unused: { rel: string; size: number }[] = [];
    for (const b of buckets) {
      signal?.throwIfAborted();
      for (const o of await listOrEmpty(dest, `${objectsDir}/${b.name}`)) {
        if (o.type !== 'file' || !OBJECT_NAME.test(o.name) || o.name.slice(0, 2) !== b.name) continue;
        outcome.objects++;
        if (!inUse.has(o.name) && o.mtimeMs < cutoff) unused.push({ rel: `${objectsDir}/${b.name}/${o.name}`, size: o.size });
      }
    }

    await lease.confirm();
    let confirmedAt = Date.now();
    const deletions = new InFlight(Math.max(1, dest.parallelism));
    for (const u of unused) {
      signal?.throwIfAborted();
      if (Date.now() - confirmedAt > CONFIRM_EVERY_MS) {
        await deletions.drain();
        await lease.confirm();
        confirmedAt = Date.now();
      }
      await deletions.add(dest.remove(u.rel).then(() => { outcome.removed++; outcome.removedBytes += u.size; }));
    }
    await deletions.drain();
    return outcome;
  } finally {
    await lease.release().catch(() => undefined);
  }
}
