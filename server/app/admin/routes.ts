import express from 'express';
import type { Context } from '../../services/context.js';
import { listSnapshots } from '../../services/snapshots.js';
import { accountFreshness, ageParts, lastGoodPerDestination } from '../../services/freshness.js';
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
import { settingsRoutes } from './settings-routes.js';
import { binlogRoutes } from './binlog-routes.js';
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
    const lastGood = lastGoodPerDestination(snapshots);
    const age = (ms: number | null): { unit: string; n: number } | null => (ms === null ? null : ageParts(ms));
    const withLastGood = destinations.map((d) => {
      const g = lastGood.get(d.id);
      return { ...d, lastGood: g?.snapshot ? { at: g.snapshot.finishedAt, url: snapshotUrl(g.snapshot), account: g.snapshot.account, age: age(g.ageMs) } : null };
    });
    const freshness = accountFreshness(ctx, (await sc.accounts()).map((a) => a.username), snapshots).map((f) => ({
      account: f.account, overdue: f.overdue, periodDays: Math.round(f.periodMs / 86_400_000),
      at: f.snapshot?.finishedAt ?? null, url: f.snapshot ? snapshotUrl(f.snapshot) : null, destination: f.snapshot ? ctx.store.destinations.byId(f.snapshot.destinationId)?.name ?? '?' : null, age: age(f.ageMs),
    }));
    res.render('admin/dashboard', {
      freshness,
      isAdmin: sc.isAdmin,
      destinations: withLastGood,
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
  r.use('/settings', settingsRoutes(st));
  r.use('/binlogs', binlogRoutes(st));
  return r;
}
