import express from 'express';
import type { Context } from '../../services/context.js';
import { UserError } from '../../services/context.js';
import { checkMayRestore, snapshotFiles } from '../../services/snapshots.js';
import { PermissionError, permissionsOf } from '../../services/permissions.js';
import { backUpNow, backupNowJobs, backupsNowToday, BackupNowLimitError } from '../../services/backup-now.js';
import { parentOf, toDisplay, type BytePath } from '../../util/byte-path.js';
import type { Entry } from '../../engine/format/entry.js';
import type { SnapshotRecord } from '../../store/snapshots.js';
import type { TaskRecord } from '../../store/tasks.js';
import { HttpError, notFound } from '../http-error.js';
import { actorOf } from '../session.js';
import { Scope } from '../scope.js';
import { decodePath, encodePath, many } from '../path-param.js';
import { streamDownload } from '../download-stream.js';
import type { RestoreRunner } from '../restore-runner.js';
import { cancelTask } from '../../services/tasks.js';
import type { Actor } from '../../services/actor.js';
import { restoreMailSetting, setRestoreMail, type RestoreMailSetting } from '../../services/account-preferences.js';
import { historyRoutes } from './history-routes.js';
import { snapshotListExtras } from './snapshot-list-view.js';

const FINAL = new Set(['completed', 'partial', 'failed', 'cancelled']);

export const snapshotUrl = (s: Pick<SnapshotRecord, 'destinationId' | 'account' | 'id'>, dir?: BytePath): string =>
  `/snapshots/${s.destinationId}/${encodeURIComponent(s.account)}/${encodeURIComponent(s.id)}${dir ? `?p=${encodePath(dir)}` : ''}`;

interface EntryView { name: string; type: string; size: number; mtime: string; b64: string; isDir: boolean; target: string | null }

const entryView = (e: Entry): EntryView => ({
  name: toDisplay(e.path.slice(e.path.lastIndexOf('/') + 1)),
  type: { f: 'file', d: 'directory', l: 'symlink', h: 'hardlink', p: 'fifo' }[e.kind],
  size: e.size, mtime: new Date(e.mtimeSec * 1000).toISOString(), b64: encodePath(e.path), isDir: e.kind === 'd',
  target: e.kind === 'l' ? toDisplay(e.link) : null,
});

function taskView(t: TaskRecord): Record<string, unknown> {
  const params = t.params as { paths?: string[]; databases?: { name: string }[]; intoFolder?: boolean };
  const result = t.result as { files?: { files: number; directories: number; links: number; bytes: number; warningCount: number } | null; folder?: string | null; databases?: { name: string; restoredAs: string }[] };
  return {
    id: t.id, type: t.type, status: t.status, account: t.account, snapshotId: t.snapshotId, createdAt: t.createdAt,
    startedAt: t.startedAt, finishedAt: t.finishedAt, finished: FINAL.has(t.status), error: t.error, cancellable: t.status === 'queued' && t.type === 'restore',
    paths: params.paths ?? [], databases: (params.databases ?? []).map((d) => d.name), intoFolder: Boolean(params.intoFolder),
    files: result.files ?? null, folder: result.folder ?? null, restoredDatabases: result.databases ?? [],
    snapshotUrl: t.destinationId !== null && t.account !== null && t.snapshotId !== null ? snapshotUrl({ destinationId: t.destinationId, account: t.account, id: t.snapshotId }) : null,
  };
}

/** Checks that every chosen path is in the snapshot: one index read per folder they come from (normally one). */
async function checkPaths(ctx: Context, s: SnapshotRecord, paths: BytePath[]): Promise<void> {
  const byParent = new Map<BytePath, BytePath[]>();
  for (const p of paths) {
    if (p === '') throw new HttpError(400, 'error.badRequest');
    byParent.set(parentOf(p), [...(byParent.get(parentOf(p)) ?? []), p]);
  }
  for (const [dir, wanted] of byParent) {
    let children: Entry[];
    try { children = await snapshotFiles(ctx, s, dir); } catch (err) {
      if (err instanceof UserError) throw new HttpError(404, 'error.notInSnapshot');
      throw err;
    }
    const have = new Set(children.map((e) => e.path));
    if (!wanted.every((p) => have.has(p))) throw new HttpError(404, 'error.notInSnapshot');
  }
}

interface Selection { paths: BytePath[]; databases: string[] }

function selection(body: Record<string, unknown>, s: SnapshotRecord): Selection {
  const paths = [...new Set(many(body.path).map(decodePath))];
  const databases = [...new Set(many(body.database))];
  if (!databases.every((d) => s.databases.includes(d))) throw new HttpError(404, 'error.notInSnapshot');
  if (paths.length === 0 && databases.length === 0) throw new HttpError(400, 'error.nothingChosen');
  return { paths, databases };
}

const DATABASE_NAME = /^[A-Za-z0-9_]{1,64}$/;

/**
 * The new name a database is to be restored under (form field `as_<name>`), if any. It
 * must be one of the account's own names (`<account>_…`): checked here so a refused
 * name starts no task at all.
 */
function renameOf(body: Record<string, unknown>, s: SnapshotRecord, name: string): { as?: string } {
  const raw = body[`as_${name}`];
  if (raw === undefined || raw === '') return {};
  if (typeof raw !== 'string' || !DATABASE_NAME.test(raw)) throw new HttpError(400, 'error.badDatabaseName');
  if (!raw.startsWith(`${s.account}_`)) throw new HttpError(403, 'error.foreignDatabase');
  return raw === name ? {} : { as: raw };
}

/** The provider's permissions refuse with 403 and nothing happens; any other refusal of the services is a 409. */
async function refusedAs403<T>(fn: () => T | Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof PermissionError) throw new HttpError(403, 'error.refused');
    if (err instanceof UserError) throw new HttpError(409, 'error.refused', err.message);
    throw err;
  }
}

/** The account holder's pages; every lookup goes through the signed-in actor's scope. */
export function userRoutes(ctx: Context, runner: RestoreRunner): express.Router {
  const r = express.Router();
  const scope = (res: express.Response): Scope => new Scope(ctx, actorOf(res));
  const snapshotOf = (sc: Scope, p: Record<string, string | undefined>): Promise<SnapshotRecord> => {
    const dest = Number(p.destination);
    if (!Number.isSafeInteger(dest)) throw notFound();
    return sc.snapshot(dest, p.account ?? '', p.id ?? '');
  };

  r.get('/', (_req, res) => { res.redirect(303, actorOf(res).role === 'user' ? '/snapshots' : '/admin'); });
  r.use(historyRoutes(ctx));

  r.get('/snapshots', async (req, res) => {
    const sc = scope(res);
    const days: { key: string; first: string; snapshots: Record<string, unknown>[] }[] = [];
    const fmt = res.locals.fmt as { dayKey(iso: string): string };
    // A provider may narrow the list to one account; an account holder has only one anyway.
    const only = sc.actor.role !== 'user' && typeof req.query.account === 'string' && req.query.account !== '' ? req.query.account : null;
    const wanted = typeof req.query.day === 'string' && /^\d{4}-\d{2}-\d{2}$/.test(req.query.day) ? req.query.day : null;
    const all = (await sc.snapshots()).filter((s) => only === null || s.account === only);
    const extras = await snapshotListExtras(ctx, sc.actor, sc.actor.role === 'user' ? sc.actor.name : only, all);
    for (const s of all) {
      const key = fmt.dayKey(s.finishedAt);
      if (wanted !== null && key !== wanted) continue;
      let day = days[days.length - 1];
      if (!day || day.key !== key) { day = { key, first: s.finishedAt, snapshots: [] }; days.push(day); }
      day.snapshots.push({ ...s, ...extras(s), destination: sc.destination(s.destinationId)!.name, url: snapshotUrl(s) });
    }
    const dayKeys = [...new Set(all.map((s) => fmt.dayKey(s.finishedAt)))];
    // "Back up now" for an account holder the provider allows it, with the jobs that cover the account.
    const backupNow = sc.actor.role === 'user' && permissionsOf(ctx.config, sc.actor).backupNow
      ? { jobs: backupNowJobs(ctx, sc.actor, sc.actor.name).map((j) => ({ id: j.id, name: j.name })),
        left: Math.max(0, ctx.config.permissions.backupNowPerDay - backupsNowToday(ctx, sc.actor)) }
      : null;
    res.render('user/snapshots', { days, showAccount: sc.actor.role !== 'user', only, backupNow, wanted, newestDay: dayKeys[0] ?? null, oldestDay: dayKeys[dayKeys.length - 1] ?? null, searchAccount: sc.actor.role === 'user' ? null : only });
  });

  r.get('/snapshots/:destination/:account/:id', async (req, res) => {
    const sc = scope(res);
    const s = await snapshotOf(sc, req.params);
    const dir = decodePath(req.query.p);
    let entries: Entry[];
    try { entries = await snapshotFiles(ctx, s, dir); } catch (err) {
      if (err instanceof UserError) throw new HttpError(404, 'error.notInSnapshot');
      throw err;
    }
    const list = entries.filter((e) => e.path !== dir).map(entryView)
      .sort((a, b) => (a.isDir === b.isDir ? (a.name < b.name ? -1 : a.name > b.name ? 1 : 0) : a.isDir ? -1 : 1));
    const crumbs: { name: string; url: string }[] = [];
    if (dir !== '') {
      const parts = dir.split('/');
      parts.forEach((part, i) => crumbs.push({ name: toDisplay(part), url: snapshotUrl(s, parts.slice(0, i + 1).join('/')) }));
    }
    res.render('user/browse', {
      may: permissionsOf(ctx.config, sc.actor), s, destination: sc.destination(s.destinationId)!.name, url: snapshotUrl(s), dir: encodePath(dir), atRoot: dir === '',
      parentUrl: dir === '' ? null : snapshotUrl(s, parentOf(dir)), crumbs,
      entries: list.map((e) => ({ ...e, url: e.isDir ? snapshotUrl(s, Buffer.from(e.b64, 'base64url').toString('latin1')) : null })),
    });
  });

  r.post('/snapshots/:destination/:account/:id/restore', async (req, res) => {
    const actor = actorOf(res);
    const s = await snapshotOf(scope(res), req.params);
    const body = (req.body ?? {}) as Record<string, unknown>;
    const mode = body.mode;
    if (mode !== 'place' && mode !== 'folder') throw new HttpError(400, 'error.badRequest');
    const sel = selection(body, s);
    await refusedAs403(() => checkMayRestore(ctx, actor, s, sel));
    await checkPaths(ctx, s, sel.paths);
    ctx.store.activity.record({ actor: actor.name, role: actor.role, action: 'restore.requested', target: `${s.account} ${s.id}`, result: 'ok', detail: '' });
    const databases = sel.databases.map((name) => ({ name, ...renameOf(body, s, name) }));
    const answer = await runner.submit(actor, s, {
      paths: sel.paths, databases, intoFolder: mode === 'folder',
    }, { items: sel.paths.length + sel.databases.length });
    if ('taskId' in answer) res.redirect(303, `/tasks/${answer.taskId}`);
    else if ('queued' in answer) res.redirect(303, '/tasks');
    else throw new HttpError(409, 'error.restoreRefused', answer.error);
  });

  r.post('/snapshots/:destination/:account/:id/download', async (req, res) => {
    const actor = actorOf(res);
    const s = await snapshotOf(scope(res), req.params);
    const sel = selection((req.body ?? {}) as Record<string, unknown>, s);
    await checkPaths(ctx, s, sel.paths);
    await refusedAs403(() => streamDownload(ctx, actor, s, sel.paths, sel.databases, res));
  });

  r.get('/tasks', async (_req, res) => {
    const sc = scope(res);
    const tasks: Record<string, unknown>[] = [];
    for (const t of ctx.store.tasks.list(200)) if ((t.type === 'restore' || t.type === 'download') && await sc.mayMonitor(t)) tasks.push(taskView(t));
    const queued = [];
    for (const p of runner.pending()) if (await sc.maySee(p)) queued.push(p);
    res.render('user/tasks', { tasks, queued, busy: queued.length > 0 || tasks.some((t) => !t.finished), restoreMail: await restoreMailControl(sc.actor) });
  });

  /** "Mail me about my restores", for an account holder, while the provider sends such mail at all. */
  const restoreMailControl = async (actor: Actor): Promise<RestoreMailSetting | null> => {
    if (actor.role !== 'user' || !ctx.config.notifications?.email) return null;
    const setting = await restoreMailSetting(ctx, actor.name, actor);
    return setting.mode === 'off' ? null : setting;
  };

  r.post('/preferences/restore-mail', async (req, res) => {
    const actor = actorOf(res);
    if (!(await restoreMailControl(actor))) throw notFound();
    const on = ((req.body ?? {}) as Record<string, unknown>).restoreMail === 'on';
    await refusedAs403(() => setRestoreMail(ctx, actor.name, on, actor));
    res.redirect(303, '/tasks');
  });

  r.get('/tasks/:id', async (req, res) => {
    const t = await scope(res).task(Number(req.params.id));
    res.render('user/task', { task: taskView(t), logs: ctx.store.tasks.logs(t.id, { provider: false }).slice(0, 200) });
  });

  /** A restore that waits in the queue can be called off; one that runs is never stopped halfway. */
  r.post('/tasks/:id/cancel', async (req, res) => {
    const t = await scope(res).task(Number(req.params.id));
    try {
      await cancelTask(ctx, t.id, actorOf(res));
    } catch (err) {
      if (!(err instanceof UserError)) throw err;
      throw new HttpError(409, 'error.refused', err.message);
    }
    res.redirect(303, `/tasks/${t.id}`);
  });

  r.get('/tasks/:id/status', async (req, res) => {
    const t = await scope(res).task(Number(req.params.id));
    res.set('Cache-Control', 'no-store').json({ id: t.id, status: t.status, finished: FINAL.has(t.status) });
  });

  /** An account holder's "back up now", when the provider allows it (and within its daily limit). */
  r.post('/backup-now', async (req, res) => {
    const actor = actorOf(res);
    if (actor.role !== 'user') throw notFound();
    const raw = ((req.body ?? {}) as Record<string, unknown>).job;
    const jobId = typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : undefined;
    try {
      const [task] = await backUpNow(ctx, actor, actor.name, jobId);
      res.redirect(303, `/tasks/${task}`);
    } catch (err) {
      if (err instanceof PermissionError) throw new HttpError(403, 'error.refused');
      if (err instanceof BackupNowLimitError) throw new HttpError(429, 'error.backupNowLimit', err.message);
      if (err instanceof UserError) throw new HttpError(409, 'error.backupNowRefused', err.message);
      throw err;
    }
  });

  r.get('/activity', async (_req, res) => {
    res.render('user/activity', { entries: await scope(res).activity() });
  });

  return r;
}
