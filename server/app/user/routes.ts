import express from 'express';
import type { Context } from '../../services/context.js';
import { UserError } from '../../services/context.js';
import { PermissionError, permissionsOf } from '../../services/permissions.js';
import { backUpNow, backupNowJobs, backupsNowToday, BackupNowLimitError } from '../../services/backup-now.js';
import type { BytePath } from '../../util/byte-path.js';
import type { SnapshotRecord } from '../../store/snapshots.js';
import type { TaskRecord } from '../../store/tasks.js';
import { HttpError, notFound } from '../http-error.js';
import { refusalOf } from '../web-errors.js';
import { actorOf } from '../session.js';
import { Scope } from '../scope.js';
import { encodePath } from '../path-param.js';
import { browseRoutes } from './browse-routes.js';
import type { RestoreRunner } from '../restore-runner.js';
import { cancelTask } from '../../services/tasks.js';
import type { Actor } from '../../services/actor.js';
import { restoreMailSetting, setRestoreMail, type RestoreMailSetting } from '../../services/account-preferences.js';
import { historyRoutes } from './history-routes.js';
import { snapshotListExtras } from './snapshot-list-view.js';

const FINAL = new Set(['completed', 'partial', 'failed', 'cancelled']);

export const snapshotUrl = (s: Pick<SnapshotRecord, 'destinationId' | 'account' | 'id'>, dir?: BytePath): string =>
  `/snapshots/${s.destinationId}/${encodeURIComponent(s.account)}/${encodeURIComponent(s.id)}${dir ? `?p=${encodePath(dir)}` : ''}`;

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

/** The provider's permissions refuse with 403 and nothing happens; any other refusal of the services as refusalOf says. */
async function refusedAs403<T>(fn: () => T | Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof PermissionError) throw new HttpError(403, 'error.refused');
    if (err instanceof UserError) throw refusalOf(err);
    throw err;
  }
}

/** The account holder's pages; every lookup goes through the signed-in actor's scope. */
export function userRoutes(ctx: Context, runner: RestoreRunner): express.Router {
  const r = express.Router();
  const scope = (res: express.Response): Scope => new Scope(ctx, actorOf(res));

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

  // Browsing a snapshot, restore, download and preview (browse-routes.ts).
  r.use(browseRoutes(ctx, runner));

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
      throw refusalOf(err);
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
      if (err instanceof UserError) throw refusalOf(err, 'error.backupNowRefused');
      throw err;
    }
  });

  r.get('/activity', async (_req, res) => {
    res.render('user/activity', { entries: await scope(res).activity() });
  });

  return r;
}
