import express from 'express';
import { UserError, type Context } from '../../services/context.js';
import { ROOT } from '../../services/actor.js';
import {
  addDestination, publicSettings, removeDestination, setEnabled, setSnapshotsVisible, validateDestination, withDriver,
  type AddDestinationInput, type ValidationReport,
} from '../../services/destinations.js';
import { describeJob } from '../../services/jobs.js';
import { runBackup, type AccountBackupResult } from '../../services/backups.js';
import type { DestinationRecord } from '../../store/destinations.js';
import type { TaskRecord } from '../../store/tasks.js';
import { HttpError, notFound } from '../http-error.js';
import { actorOf } from '../session.js';
import { snapshotUrl } from '../user/routes.js';
import { Background } from './background.js';

const ACTIVE = new Set(['queued', 'running']);

export function taskJson(ctx: Context, t: TaskRecord): Record<string, unknown> {
  const destination = t.destinationId === null ? null : ctx.store.destinations.byId(t.destinationId)?.name ?? null;
  const job = t.jobId === null ? null : ctx.store.jobs.byId(t.jobId)?.name ?? null;
  return {
    id: t.id, type: t.type, status: t.status, account: t.account, destination, job, snapshotId: t.snapshotId,
    progress: t.progress, error: t.error, createdAt: t.createdAt, startedAt: t.startedAt, finishedAt: t.finishedAt, active: ACTIVE.has(t.status),
  };
}

const field = (body: Record<string, unknown>, name: string): string => (typeof body[name] === 'string' ? (body[name] as string).trim() : '');

/**
 * The provider's pages, for admins only (resellers get them once the services take an
 * actor and can scope destinations and jobs). To anyone else they do not exist.
 */
export function adminRoutes(ctx: Context): express.Router {
  const r = express.Router();
  const validations = new Background<ValidationReport>();
  const backups = new Background<AccountBackupResult[]>();

  r.use((_req, res, next) => { next(actorOf(res).role === 'admin' ? undefined : notFound()); });

  const destinationOf = (id: unknown): DestinationRecord => {
    const d = ctx.store.destinations.byId(Number(id));
    if (!d) throw notFound();
    return d;
  };
  const record = (res: express.Response, action: string, target: string, result: string, detail = ''): void => {
    const a = actorOf(res);
    ctx.store.activity.record({ actor: a.name, role: a.role, action, target, result, detail });
  };

  r.get('/', async (_req, res) => {
    const tasks = ctx.store.tasks.list(200);
    res.render('admin/dashboard', {
      destinations: ctx.store.destinations.list().map((d) => ({ ...d, snapshots: ctx.store.snapshots.countByDestination(d.id) })),
      jobs: ctx.store.jobs.list().map((j) => ({ id: j.id, ...describeJob(ctx, j) })),
      accounts: (await ctx.panel(false).listAccounts()).length,
      active: tasks.filter((t) => ACTIVE.has(t.status)).map((t) => taskJson(ctx, t)),
      failed: tasks.filter((t) => t.status === 'failed').slice(0, 5).map((t) => taskJson(ctx, t)),
      snapshots: ctx.store.snapshots.list().slice(0, 10).map((s) => ({ ...s, destination: ctx.store.destinations.byId(s.destinationId)?.name, url: snapshotUrl(s) })),
    });
  });

  r.get('/destinations', (_req, res) => {
    res.render('admin/destinations', {
      destinations: ctx.store.destinations.list().map((d) => ({
        ...d, settings: publicSettings(d), snapshots: ctx.store.snapshots.countByDestination(d.id), jobs: ctx.store.jobs.usingDestination(d.id).map((j) => j.name),
      })),
    });
  });

  /** Free space needs the destination itself (a network round trip for SSH): asked for by the page after it is shown. */
  r.get('/destinations/:id/space', async (req, res) => {
    const d = destinationOf(req.params.id);
    try {
      res.json({ ok: true, space: await withDriver(ctx, d, (driver) => driver.space()) });
    } catch (err) {
      res.json({ ok: false, error: (err as Error).message });
    }
  });

  const newForm = (res: express.Response, values: Record<string, string>, error: string | null, status = 200): void => {
    res.status(status).render('admin/destination-new', { values, error });
  };
  r.get('/destinations/new', (_req, res) => { newForm(res, { type: 'local', port: '22', timeout: '20' }, null); });

  r.post('/destinations', async (req, res) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    const type = field(body, 'type');
    // Secrets are used and forgotten: never put back into the form.
    const kept = Object.fromEntries(['name', 'type', 'path', 'freeSpaceLimitMb', 'host', 'port', 'username', 'timeout', 'hostKey', 'hidden']
      .map((k) => [k, field(body, k)]));
    const input: AddDestinationInput = {
      name: kept.name!, type, path: kept.path!, hidden: kept.hidden === '1', freeSpaceLimitMb: kept.freeSpaceLimitMb ? Number(kept.freeSpaceLimitMb) : 0,
    };
    if (type === 'ssh') {
      const secret = (k: string): string | undefined => (typeof body[k] === 'string' && body[k] !== '' ? (body[k] as string).replace(/\r\n/g, '\n') : undefined);
      Object.assign(input, {
        host: kept.host, port: kept.port ? Number(kept.port) : 22, username: kept.username,
        password: secret('password'), privateKey: secret('privateKey'), passphrase: secret('passphrase'),
        ...(kept.timeout ? { timeoutMs: Math.round(Number(kept.timeout) * 1000) } : {}),
        ...(kept.hostKey ? { hostKeyFingerprint: kept.hostKey.replace(/^SHA256:/, '') } : {}),
      });
    }
    try {
      const d = await addDestination(ctx, input);
      record(res, 'destination.add', d.name, 'ok');
      res.redirect(303, `/admin/destinations/${d.id}`);
    } catch (err) {
      if (!(err instanceof UserError)) throw err;
      newForm(res, kept, err.message, 400);
    }
  });

  r.get('/destinations/:id', (req, res) => {
    const d = destinationOf(req.params.id);
    res.render('admin/destination', {
      d, settings: publicSettings(d), snapshots: ctx.store.snapshots.countByDestination(d.id),
      jobs: ctx.store.jobs.usingDestination(d.id).map((j) => j.name), validation: validations.get(String(d.id)),
    });
  });

  r.post('/destinations/:id/enabled', (req, res) => {
    const d = destinationOf(req.params.id);
    const enabled = field(req.body as Record<string, unknown>, 'enabled') === '1';
    setEnabled(ctx, d.name, enabled, ROOT, d.owner);
    record(res, enabled ? 'destination.enable' : 'destination.disable', d.name, 'ok');
    res.redirect(303, `/admin/destinations/${d.id}`);
  });

  r.post('/destinations/:id/visibility', (req, res) => {
    const d = destinationOf(req.params.id);
    const visible = field(req.body as Record<string, unknown>, 'visible') === '1';
    setSnapshotsVisible(ctx, d.name, visible, ROOT, d.owner);
    record(res, 'destination.visibility', d.name, 'ok', visible ? 'visible' : 'hidden');
    res.redirect(303, `/admin/destinations/${d.id}`);
  });

  r.post('/destinations/:id/validate', (req, res) => {
    const d = destinationOf(req.params.id);
    validations.start(String(d.id), () => validateDestination(ctx, d.name, ROOT, d.owner));
    res.redirect(303, `/admin/destinations/${d.id}`);
  });

  r.get('/destinations/:id/validation', (req, res) => {
    const d = destinationOf(req.params.id);
    const v = validations.get(String(d.id));
    res.json({ running: v?.running ?? false, finished: v !== null && !v.running });
  });

  r.post('/destinations/:id/remove', async (req, res) => {
    const d = destinationOf(req.params.id);
    const deleteData = field(req.body as Record<string, unknown>, 'deleteData') === '1';
    try {
      const out = await removeDestination(ctx, d.name, { deleteData }, ROOT, d.owner);
      record(res, 'destination.remove', d.name, 'ok', `${out.deletedSnapshots} snapshots deleted`);
      res.redirect(303, '/admin/destinations');
    } catch (err) {
      if (!(err instanceof UserError)) throw err;
      throw new HttpError(409, 'error.refused', err.message);
    }
  });

  r.get('/jobs', (_req, res) => {
    res.render('admin/jobs', {
      jobs: ctx.store.jobs.list().map((j) => ({ id: j.id, ...describeJob(ctx, j), run: backups.get(String(j.id)) })),
    });
  });

  r.post('/jobs/:id/run', (req, res) => {
    const j = ctx.store.jobs.byId(Number(req.params.id));
    if (!j) throw notFound();
    const d = ctx.store.destinations.byId(j.destinationId);
    if (!d?.enabled) throw new HttpError(409, 'error.refused', `destination "${d?.name ?? '?'}" is disabled`);
    record(res, 'backup.requested', `job ${j.name}`, 'ok');
    backups.start(String(j.id), () => runBackup(ctx, j.name, undefined, ROOT, j.owner));
    res.redirect(303, '/admin/queue');
  });

  r.get('/accounts', async (_req, res) => {
    const latest = new Map<string, { count: number; last: string | null }>();
    for (const s of ctx.store.snapshots.list()) {
      const e = latest.get(s.account) ?? { count: 0, last: null };
      e.count++;
      e.last ??= s.finishedAt;
      latest.set(s.account, e);
    }
    const accounts = (await ctx.panel(false).listAccounts()).map((a) => ({
      username: a.username, owner: a.owner, suspended: a.suspended, snapshots: latest.get(a.username)?.count ?? 0, last: latest.get(a.username)?.last ?? null,
    }));
    res.render('admin/accounts', { accounts });
  });

  r.get('/queue', (_req, res) => {
    res.render('admin/queue', { tasks: ctx.store.tasks.list(100).map((t) => taskJson(ctx, t)) });
  });

  /** Server-sent events: the task list whenever it changes (checked every second). */
  r.get('/queue/events', (req, res) => {
    res.set({ 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-store', Connection: 'keep-alive', 'X-Accel-Buffering': 'no' });
    res.flushHeaders();
    let last = '';
    const send = (): void => {
      const doc = JSON.stringify(ctx.store.tasks.list(100).map((t) => taskJson(ctx, t)));
      if (doc !== last) { res.write(`event: tasks\ndata: ${doc}\n\n`); last = doc; } else res.write(': still here\n\n');
    };
    const sessionId = String(res.locals.sessionId);
    const opened = Date.now();
    const timer = setInterval(() => {
      // A stream is no use of the session: it ends with the session (or after a while; the browser reconnects).
      if (!ctx.store.sessions.isLive(sessionId) || Date.now() - opened > 10 * 60_000) { clearInterval(timer); res.end(); return; }
      send();
    }, 1000);
    send();
    req.on('close', () => clearInterval(timer));
  });

  r.get('/activity', (_req, res) => {
    res.render('user/activity', { entries: ctx.store.activity.list(500) });
  });

  return r;
}
