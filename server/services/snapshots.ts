import fs from 'node:fs';
import type { SnapshotRecord } from '../store/snapshots.js';
import { isUtf8, toDisplay, type BytePath } from '../util/byte-path.js';
import type { Entry } from '../engine/format/entry.js';
import { readIndex } from '../engine/snapshot-index.js';
import { layout } from '../engine/snapshot-layout.js';
import { listChildren } from '../engine/selection.js';
import { readManifest, restoreSnapshot, type RestoreOutcome } from '../engine/restore.js';
import { downloadSnapshot } from '../engine/download.js';
import { lockAccount } from '../engine/account-lock.js';
import { UserError, type Context } from './context.js';
import { getDestination, withDriver } from './destinations.js';

export function findSnapshot(ctx: Context, id: string, destinationName?: string): SnapshotRecord {
  let found = ctx.store.snapshots.byId(id);
  if (destinationName !== undefined) {
    const d = getDestination(ctx, destinationName);
    found = found.filter((s) => s.destinationId === d.id);
  }
  if (found.length === 0) throw new UserError(`no snapshot ${id}`);
  if (found.length > 1) throw new UserError(`snapshot ${id} exists on several destinations; add --destination`);
  return found[0]!;
}

export function describeSnapshot(ctx: Context, s: SnapshotRecord): Record<string, unknown> {
  return {
    id: s.id, account: s.account, destination: ctx.store.destinations.byId(s.destinationId)?.name ?? null,
    job: s.jobId === null ? null : ctx.store.jobs.byId(s.jobId)?.name ?? null, structure: s.structure, status: s.status,
    startedAt: s.startedAt, finishedAt: s.finishedAt, items: s.items, files: s.files, bytes: s.bytes, storedBytes: s.storedBytes,
    databases: s.databases, locked: s.locked, note: s.note,
  };
}

const TYPE_NAMES: Record<Entry['kind'], string> = { f: 'file', d: 'directory', l: 'symlink', h: 'hardlink', p: 'fifo' };

/** How a path appears in JSON: `path` is exact when it is UTF-8; otherwise `pathBase64` holds the bytes. */
export function describeEntry(e: Entry): Record<string, unknown> {
  const out: Record<string, unknown> = {
    path: toDisplay(e.path), name: toDisplay(e.path.slice(e.path.lastIndexOf('/') + 1)), type: TYPE_NAMES[e.kind],
    size: e.size, mode: (e.mode & 0o7777).toString(8).padStart(4, '0'), uid: e.uid, gid: e.gid,
    mtime: new Date(e.mtimeSec * 1000 + Math.floor(e.mtimeNsec / 1e6)).toISOString(),
  };
  if (!isUtf8(e.path)) out.pathBase64 = Buffer.from(e.path, 'latin1').toString('base64');
  if (e.kind === 'l' || e.kind === 'h') out.target = toDisplay(e.link);
  return out;
}

export async function snapshotFiles(ctx: Context, s: SnapshotRecord, dir: BytePath): Promise<Entry[]> {
  const index = await withDriver(ctx, ctx.store.destinations.byId(s.destinationId)!, (dest) => readIndex(dest, layout.snapshotDir(s.account, s.id)));
  try {
    return listChildren(index, dir);
  } catch (err) {
    throw new UserError((err as Error).message);
  }
}

export async function snapshotManifest(ctx: Context, s: SnapshotRecord): Promise<unknown> {
  return withDriver(ctx, ctx.store.destinations.byId(s.destinationId)!, (dest) => readManifest(dest, s.account, s.id));
}

export interface RestoreInput {
  paths: BytePath[];
  databases: { name: string; as?: string }[];
  intoFolder: boolean;
}

/** `onTask` learns the task's id as soon as it runs, so a page can show its progress while it works. */
export interface RestoreHooks {
  onTask?: (taskId: number) => void;
}

export async function restore(ctx: Context, s: SnapshotRecord, input: RestoreInput, hooks: RestoreHooks = {}): Promise<RestoreOutcome & { task: number }> {
  const withDb = input.databases.length > 0;
  const account = await ctx.panel(withDb).getAccount(s.account);
  if (!account) throw new UserError(`account "${s.account}" does not exist on this server (restore it as a new account first)`);
  const files = input.paths.length > 0 || input.databases.length === 0;
  const task = ctx.store.tasks.create({ type: 'restore', account: s.account, jobId: null, destinationId: s.destinationId, snapshotId: s.id, params: { ...input, paths: input.paths.map(toDisplay) } });
  ctx.store.tasks.start(task.id, process.pid);
  hooks.onTask?.(task.id);
  let unlock: (() => void) | null = null;
  try {
    unlock = lockAccount(ctx.dataDir, s.account, `restore task ${task.id}`);
    const outcome = await withDriver(ctx, ctx.store.destinations.byId(s.destinationId)!, (destination) => restoreSnapshot({
      account, destination, snapshotId: s.id, paths: input.paths, files, databases: input.databases, intoFolder: input.intoFolder,
      mysql: () => ctx.panel(true).mysqlCredentials(),
    }));
    const status = outcome.files && outcome.files.warningCount > 0 ? 'partial' : 'completed';
    for (const w of outcome.files?.warnings ?? []) ctx.store.tasks.log(task.id, 'warn', `${w.path}: ${w.message}`);
    ctx.store.tasks.finish(task.id, status, { ...outcome }, null);
    ctx.store.activity.record({ actor: 'root', role: 'admin', action: 'restore', target: `${s.account} ${s.id}`, result: status, detail: '' });
    return { ...outcome, task: task.id };
  } catch (err) {
    ctx.store.tasks.finish(task.id, 'failed', {}, (err as Error).message);
    ctx.store.activity.record({ actor: 'root', role: 'admin', action: 'restore', target: `${s.account} ${s.id}`, result: 'failed', detail: (err as Error).message });
    if (err instanceof UserError) throw err;
    throw new UserError(`restore failed: ${(err as Error).message}`);
  } finally {
    unlock?.();
  }
}

export async function download(ctx: Context, s: SnapshotRecord, input: { paths: BytePath[]; databases: string[]; out: string }): Promise<{ files: number; bytes: number; out: string }> {
  const tmp = `${input.out}.part`;
  const out = fs.createWriteStream(tmp, { mode: 0o600 });
  try {
    const r = await withDriver(ctx, ctx.store.destinations.byId(s.destinationId)!, (destination) => downloadSnapshot({
      destination, account: s.account, snapshotId: s.id, paths: input.paths, databases: input.databases, out,
    }));
    fs.renameSync(tmp, input.out);
    ctx.store.activity.record({ actor: 'root', role: 'admin', action: 'download', target: `${s.account} ${s.id}`, result: 'ok', detail: '' });
    return { ...r, out: input.out };
  } catch (err) {
    out.destroy();
    fs.rmSync(tmp, { force: true });
    throw new UserError(`download failed: ${(err as Error).message}`);
  }
}
