import express from 'express';
import { listSnapshots } from '../../services/snapshots.js';
import { snapshotUrl } from '../user/routes.js';
import { scopeOf, type ProviderState } from './state.js';
import { taskJson } from './provider-scope.js';
import { backUpNow, backupNowJobs } from '../../services/backup-now.js';
import { UserError } from '../../services/context.js';
import { PermissionError } from '../../services/permissions.js';
import { HttpError } from '../http-error.js';
import { refusalOf } from '../web-errors.js';
import { actorOf } from '../session.js';

/**
 * Accounts (an admin's all, a reseller's own) and each one's snapshots across
 * destinations. Restore and download on the account's behalf happen on the snapshot
 * pages, with the provider's own identity (and scope) in the activity log.
 */
export function accountRoutes(st: ProviderState): express.Router {
  const { ctx } = st;
  const r = express.Router();

  r.get('/', async (_req, res) => {
    const sc = scopeOf(st, res);
    const latest = new Map<string, { count: number; last: string | null }>();
    for (const s of await listSnapshots(ctx, {}, sc.actor)) {
      const e = latest.get(s.account) ?? { count: 0, last: null };
      e.count++;
      e.last ??= s.finishedAt;
      latest.set(s.account, e);
    }
    const accounts = (await sc.accounts()).map((a) => ({
      username: a.username, owner: a.owner, suspended: a.suspended, snapshots: latest.get(a.username)?.count ?? 0, last: latest.get(a.username)?.last ?? null,
    }));
    res.render('admin/accounts', { accounts });
  });

  r.get('/:name', async (req, res) => {
    const sc = scopeOf(st, res);
    const account = await sc.account(req.params.name);
    const snapshots = (await listSnapshots(ctx, { account: account.username }, sc.actor)).map((s) => ({
      ...s, destination: ctx.store.destinations.byId(s.destinationId)?.name ?? '?', url: snapshotUrl(s),
    }));
    const tasks = (await sc.tasks(200)).filter((t) => t.account === account.username).slice(0, 20).map((t) => taskJson(ctx, t));
    const jobs = backupNowJobs(ctx, sc.actor, account.username).map((j) => ({ id: j.id, name: j.name }));
    res.render('admin/account', { account, snapshots, tasks, jobs, backupError: null });
  });

  /** Back up this account now, with one of the jobs that cover it: its task goes through the queue. */
  r.post('/:name/backup', async (req, res) => {
    const sc = scopeOf(st, res);
    const account = await sc.account(req.params.name);
    const raw = ((req.body ?? {}) as Record<string, unknown>).job;
    const jobId = typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : undefined;
    try {
      const [task] = await backUpNow(ctx, actorOf(res), account.username, jobId);
      res.redirect(303, `/admin/queue/${task}`);
    } catch (err) {
      if (err instanceof PermissionError) throw new HttpError(403, 'error.refused');
      if (err instanceof UserError) throw refusalOf(err, 'error.backupNowRefused');
      throw err;
    }
  });

  return r;
}
