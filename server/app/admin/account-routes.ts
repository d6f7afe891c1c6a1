import express from 'express';
import { listSnapshots } from '../../services/snapshots.js';
import { snapshotUrl } from '../user/routes.js';
import { scopeOf, type ProviderState } from './state.js';
import { taskJson } from './provider-scope.js';

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
    res.render('admin/account', { account, snapshots, tasks });
  });

  return r;
}
