import { isDeepStrictEqual } from 'node:util';
import { DestinationError, type Destination } from '../destinations/types.js';
import { lockAccount } from '../engine/account-lock.js';
import { identify, type AccountIdentity } from './account-identity.js';
import { runAsTask } from '../queue/run-task.js';
import { PRIORITIES } from '../queue/priority.js';
import { ACCOUNT_NAME, layout } from '../engine/snapshot-layout.js';
import type { DestinationRecord } from '../store/destinations.js';
import type { Item } from '../store/jobs.js';
import { SNAPSHOT_ID, validateManifest } from '../engine/manifest.js';
import type { DumpPosition } from '../store/binlogs.js';
import type { Manifest } from '../engine/snapshot-layout.js';
import { limits, readBounded } from '../engine/untrusted-input.js';
import type { SnapshotRecord } from '../store/snapshots.js';
import { mayManageDestination, ROOT, type Actor } from './actor.js';
import { UserError, type Context } from './context.js';
import { MARKER_FILE, readMarker } from './destination-marker.js';
import { getDestination, withDriver } from './destinations.js';

export { SNAPSHOT_ID };

export interface ReindexProblem {
  /** Relative to the destination's root. */
  path: string;
  error: string;
}

export interface ReindexReport {
  destination: string;
  /** The account folders read. */
  accounts: string[];
  /** Complete snapshots with a valid manifest. */
  found: number;
  added: number;
  updated: number;
  removed: number;
  problems: ReindexProblem[];
}

type ParsedManifest = Manifest;

/**
 * Rebuilds the catalog of one destination (or of one account on it) from what the
 * destination holds: the manifests of complete snapshots. Snapshots the catalog lacks are
 * added, changed ones updated (their lock and note kept), and rows whose folder is gone
 * removed. A manifest that cannot be read or does not match its folder is reported and
 * left out; its row, if any, stays. Nothing on the destination is written.
 */
export async function reindexDestination(ctx: Context, name: string, opts: { account?: string } = {}, actor: Actor = ROOT, owner?: string): Promise<ReindexReport> {
  const d = getDestination(ctx, name, actor, owner);
  if (!mayManageDestination(actor, d)) throw new UserError(`no destination named "${name}"`);
  if (opts.account !== undefined && !ACCOUNT_NAME.test(opts.account)) throw new UserError(`account: "${opts.account}" is not a valid account name`);
  try {
    const report = await runAsTask(ctx,
      { type: 'reindex', account: opts.account ?? null, destinationId: d.id, priority: PRIORITIES.normal, params: { requestedBy: actor.name } },
      () => withDriver(ctx, d, (driver) => reindexWith(ctx, d, driver, opts.account)),
      { summary: (r) => ({ found: r.found, added: r.added, updated: r.updated, removed: r.removed, problems: r.problems.length }) });
    ctx.store.activity.record({
      actor: actor.name, role: actor.role, action: 'destination.reindex', target: d.name, result: report.problems.length ? 'partial' : 'ok',
      detail: `${opts.account ? `account ${opts.account}: ` : ''}found ${report.found}, added ${report.added}, updated ${report.updated}, removed ${report.removed}, problems ${report.problems.length}`,
    });
    return report;
  } catch (err) {
    ctx.store.activity.record({ actor: actor.name, role: actor.role, action: 'destination.reindex', target: d.name, result: 'failed', detail: (err as Error).message });
    throw err;
  }
}

async function reindexWith(ctx: Context, d: DestinationRecord, driver: Destination, onlyAccount: string | undefined): Promise<ReindexReport> {
  // Read, never open(): open() would write a fresh tidemark.json into a wrong folder.
  let marker;
  try {
    marker = await readMarker(driver);
  } catch (err) {
    throw new UserError(`destination "${d.name}" cannot be reindexed: ${(err as Error).message}`);
  }
  if (!marker) {
    throw new UserError(`destination "${d.name}" cannot be reindexed: there is no ${MARKER_FILE} at its root, so it holds no Tidemark snapshots (is the path right?)`);
  }
  const report: ReindexReport = { destination: d.name, accounts: [], found: 0, added: 0, updated: 0, removed: 0, problems: [] };

  const onDestination = onlyAccount !== undefined
    ? (await folderExists(driver, layout.accountDir(onlyAccount)) ? [onlyAccount] : [])
    : (await driver.list('')).filter((e) => e.type === 'dir' && ACCOUNT_NAME.test(e.name)).map((e) => e.name);
  const cataloged = ctx.store.snapshots.list({ destinationId: d.id, ...(onlyAccount !== undefined ? { account: onlyAccount } : {}) });
  const accounts = [...new Set([...onDestination, ...cataloged.map((s) => s.account)])].sort();
  const onDestinationSet = new Set(onDestination);

  for (const account of accounts) {
    if (onDestinationSet.has(account) && !(await ownerMayHold(ctx, d, account))) {
      report.problems.push({ path: account, error: `destination "${d.name}" belongs to ${d.owner}, who does not own account ${account}: not imported` });
      continue;
    }
    let unlock: () => void;
    try {
      // A backup of this account would add its snapshot between our listing and our writing.
      unlock = lockAccount(ctx.dataDir, account, 'reindex');
    } catch (err) {
      report.problems.push({ path: account, error: `${(err as Error).message}; reindex it again later` });
      continue;
    }
    try {
      if (onDestinationSet.has(account)) report.accounts.push(account);
      await reindexAccount(ctx, d, driver, account, onDestinationSet.has(account), report);
    } finally {
      unlock();
    }
  }
  return report;
}

async function folderExists(driver: Destination, rel: string): Promise<boolean> {
  try {
    await driver.list(rel);
    return true;
  } catch (err) {
    if (err instanceof DestinationError && err.code === 'not-found') return false;
    throw err;
  }
}

/**
 * A destination owned by an account holder or a reseller is theirs to fill: it may hold
 * only snapshots of accounts they own, or another account's files could be planted there.
 */
async function ownerMayHold(ctx: Context, d: DestinationRecord, account: string): Promise<boolean> {
  if (d.owner === 'root' || d.owner === account) return true;
  const a = await ctx.panel(false).getAccount(account);
  return a !== null && a.owner === d.owner;
}

async function reindexAccount(ctx: Context, d: DestinationRecord, driver: Destination, account: string, hasFolder: boolean,
  report: ReindexReport): Promise<void> {
  const folders = hasFolder
    ? (await driver.list(layout.accountDir(account))).filter((e) => e.type === 'dir' && SNAPSHOT_ID.test(e.name)).map((e) => e.name)
    : [];
  const existing = new Map(ctx.store.snapshots.list({ destinationId: d.id, account }).map((s) => [s.id, s]));
  const identity = await identify(ctx, account);
  const toAdd: SnapshotRecord[] = [];
  const toUpdate: SnapshotRecord[] = [];
  const positions: DumpPosition[] = [];
  for (const id of folders) {
    const file = `${layout.snapshotDir(account, id)}/${layout.manifest}`;
    let manifest: ParsedManifest;
    try {
      manifest = await readValidManifest(driver, file, account, id);
    } catch (err) {
      if (err instanceof DestinationError && err.code === 'unreachable') throw err;
      report.problems.push({ path: file, error: (err as Error).message });
      existing.delete(id); // the folder is there: its row, if any, is not removed
      continue;
    }
    report.found++;
    const old = existing.get(id);
    existing.delete(id);
    const record = recordOf(ctx, d, manifest, old, identity);
    // Where each dump is in the binary log (point in time), as the manifest says.
    for (const db of manifest.databases) {
      if (!db.binlog) continue;
      positions.push({
        destinationId: d.id, account, snapshotId: id, database: db.name, binlogFile: db.binlog.file,
        binlogPosition: db.binlog.position, gtid: db.binlog.gtid ?? null, dumpedAt: db.binlog.at,
      });
    }
    if (!old) toAdd.push(record);
    else if (!isDeepStrictEqual(record, old)) toUpdate.push(record);
  }
  const gone = [...existing.values()];
  ctx.store.db.transaction(() => {
    for (const s of toAdd) ctx.store.snapshots.insert(s);
    for (const s of toUpdate) ctx.store.snapshots.update(s);
    for (const s of gone) ctx.store.snapshots.remove(d.id, s.account, s.id);
    for (const p of positions) ctx.store.binlogs.addPosition(p);
  })();
  report.added += toAdd.length;
  report.updated += toUpdate.length;
  report.removed += gone.length;
}

/** The manifest, read bounded (a huge or endless file is refused, not loaded) and validated. */
async function readValidManifest(driver: Destination, file: string, account: string, id: string): Promise<ParsedManifest> {
  let raw: Buffer;
  try {
    raw = await readBounded(driver, file, limits.manifestBytes, 'manifest.json');
  } catch (err) {
    if (err instanceof DestinationError && err.code === 'not-found') throw new Error('no manifest.json: the snapshot is incomplete or damaged');
    throw err;
  }
  let doc: unknown;
  try {
    doc = JSON.parse(raw.toString('utf8'));
  } catch {
    throw new Error('manifest.json is not valid JSON');
  }
  const manifest = await validateManifest(doc, 'manifest.json');
  if (manifest.account !== account) throw new Error(`the manifest names account "${manifest.account}", not "${account}": not imported`);
  if (manifest.id !== id) throw new Error(`the manifest names snapshot "${manifest.id}", not "${id}": not imported`);
  return manifest;
}

/**
 * The account a snapshot new to the catalog belongs to: the account now of its name only when
 * it was taken of that account (the uid it recorded, and not before the panel created the
 * account); otherwise nobody's but the provider's (a former account's, say), until the
 * provider hands it over (snapshot assign).
 */
function identityOfFound(identity: AccountIdentity | null, m: ParsedManifest): number | null {
  if (!identity || identity.removedAt !== null) return null;
  if (identity.uid !== null && m.accountInfo !== undefined && m.accountInfo.uid !== identity.uid) return null;
  if (identity.panelCreatedAt !== null && !Number.isNaN(Date.parse(identity.panelCreatedAt)) && Date.parse(m.startedAt) < Date.parse(identity.panelCreatedAt)) return null;
  return identity.id;
}

/** The catalog row for a manifest; a row that stays keeps its job, schedule, lock and note. */
function recordOf(ctx: Context, d: DestinationRecord, m: ParsedManifest, old: SnapshotRecord | undefined, identity: AccountIdentity | null): SnapshotRecord {
  let jobId: number | null = old?.jobId ?? null;
  if (!old && m.job !== null) {
    // Only a job that writes to this destination: a same-named job elsewhere did not make it.
    const job = ctx.store.jobs.byName(m.job, d.owner);
    jobId = job && job.destinationId === d.id ? job.id : null;
  }
  return {
    id: m.id, destinationId: d.id, account: m.account, jobId, structure: m.structure, status: m.status,
    startedAt: m.startedAt, finishedAt: m.finishedAt, items: m.items as Item[], files: m.stats.files, bytes: m.stats.bytes,
    storedBytes: m.stats.storedBytes, databases: m.databases.map((x) => x.name), locked: old?.locked ?? false, note: old?.note ?? '',
    schedule: old?.schedule ?? 'manual', sites: m.sites ?? null,
    accountId: old ? old.accountId ?? null : identityOfFound(identity, m),
  };
}
