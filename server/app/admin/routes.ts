import express from 'express';
import type { Context } from '../../services/context.js';
import { listSnapshots } from '../../services/snapshots.js';
import { notFound } from '../http-error.js';
import { actorOf } from '../session.js';
import { snapshotUrl } from '../user/routes.js';
import { accountRoutes } from './account-routes.js';
import { activityRoutes } from './activity-routes.js';
import { destinationRoutes, storedBytesOf } from './destination-routes.js';
import { jobRoutes } from './job-routes.js';
import { queueRoutes } from './queue-routes.js';
import { scheduleRoutes } from './schedule-routes.js';
import { snapshotRoutes } from './snapshot-routes.js';
import { isActive, taskJson } from './provider-scope.js';
import { newProviderState, scopeOf } from './state.js';

export { taskJson } from './provider-scope.js';

/**
 * The provider's pages: admins see everything; resellers the accounts they own, their
 * snapshots, tasks and activity, and no destination's or job's settings. To account
 * holders these pages do not exist (404).
 */
export function adminRoutes(ctx: Context): express.Router {
  const r = express.Router();
  const st = newProviderState(ctx);

  r.use((_req, res, next) => { next(['admin', 'reseller'].includes(actorOf(res).role) ? undefined : notFound()); });

  r.get('/', async (_req, res) => {
    const sc = scopeOf(st, res);
    const tasks = await sc.tasks(300);
    const snapshots = await listSnapshots(ctx, {}, sc.actor);
    const perDestination = new Map<number, { count: number; storedBytes: number }>();
    for (const s of snapshots) {
      const e = perDestination.get(s.destinationId) ?? { count: 0, storedBytes: 0 };
      e.count++;
      e.storedBytes += s.storedBytes;
      perDestination.set(s.destinationId, e);
    }
    const destinations = sc.isAdmin
      ? ctx.store.destinations.list().map((d) => ({ id: d.id, name: d.name, type: d.type, enabled: d.enabled, snapshots: ctx.store.snapshots.countByDestination(d.id), storedBytes: storedBytesOf(st, d.id) }))
      : [...perDestination].map(([id, e]) => ({ id, name: ctx.store.destinations.byId(id)?.name ?? '?', type: null, enabled: true, snapshots: e.count, storedBytes: e.storedBytes }));
    res.render('admin/dashboard', {
      isAdmin: sc.isAdmin,
      destinations,
      jobs: sc.isAdmin ? ctx.store.jobs.list().length : 0,
      accounts: (await sc.accounts()).length,
      active: tasks.filter(isActive).map((t) => taskJson(ctx, t)),
      failed: tasks.filter((t) => t.type === 'backup' && t.status === 'failed').slice(0, 5).map((t) => taskJson(ctx, t)),
      snapshots: snapshots.slice(0, 10).map((s) => ({ ...s, destination: ctx.store.destinations.byId(s.destinationId)?.name, url: snapshotUrl(s) })),
    });
  });

  r.use('/destinations', destinationRoutes(st));
  r.use('/jobs', jobRoutes(st));
  r.use('/schedules', scheduleRoutes(st));
  r.use('/snapshots', snapshotRoutes(st));
  r.use('/accounts', accountRoutes(st));
  r.use('/queue', queueRoutes(st));
  r.use('/activity', activityRoutes(st));
  return r;
}
