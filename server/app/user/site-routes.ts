import express from 'express';
import type { Context } from '../../services/context.js';
import { UserError } from '../../services/context.js';
import { PermissionError, permissionsOf } from '../../services/permissions.js';
import { checkMayRestore, prepareDownload } from '../../services/snapshots.js';
import { listSites, planSiteAt, siteOf, siteRestoreInput, siteWindow } from '../../services/sites.js';
import { parseMoment } from '../../services/point-in-time.js';
import { sitePaths } from '../../engine/sites/restore-site.js';
import { fromUtf8 } from '../../util/byte-path.js';
import { HttpError, notFound } from '../http-error.js';
import { refusalOf } from '../web-errors.js';
import { actorOf } from '../session.js';
import { Scope } from '../scope.js';
import type { RestoreRunner } from '../restore-runner.js';

/** `<destination id>:<snapshot id>`, as the page's select sends it. */
const SNAPSHOT_CHOICE = /^(\d{1,9}):([0-9A-Za-z-]{1,64})$/;

/** The account holder's WordPress sites page: list, restore a site to a snapshot, download a site. */
export function siteRoutes(ctx: Context, runner: RestoreRunner): express.Router {
  const r = express.Router();

  /** Whose sites: an account holder's own; the provider and resellers pick one with ?account=. */
  const accountOf = (res: express.Response, given: unknown): string => {
    const actor = actorOf(res);
    if (actor.role === 'user') return actor.name;
    if (typeof given !== 'string' || given === '') throw new HttpError(400, 'error.badRequest');
    return given;
  };

  /** The snapshot and site a form names, through the signed-in actor's scope. */
  const chosen = async (res: express.Response, body: Record<string, unknown>) => {
    const account = accountOf(res, body.account);
    const m = typeof body.snapshot === 'string' ? SNAPSHOT_CHOICE.exec(body.snapshot) : null;
    if (!m || typeof body.folder !== 'string') throw new HttpError(400, 'error.badRequest');
    const s = await new Scope(ctx, actorOf(res)).snapshot(Number(m[1]), account, m[2]!);
    try {
      return { s, site: siteOf(ctx, s, body.folder) };
    } catch (err) {
      if (err instanceof UserError) throw refusalOf(err);
      throw err;
    }
  };

  r.get('/sites', async (req, res) => {
    const actor = actorOf(res);
    if (actor.role !== 'user' && typeof req.query.account !== 'string') throw notFound();
    const account = accountOf(res, req.query.account);
    const sites = await Promise.all((await listSites(ctx, account, actor)).map(async (s) => ({
      ...s, window: s.problem === null && s.database ? await siteWindow(ctx, actor, account, s.database) : null,
    })));
    res.render('user/sites', { sites, account, showAccount: actor.role !== 'user', may: permissionsOf(ctx.config, actor) });
  });

  r.post('/sites/restore', async (req, res) => {
    const actor = actorOf(res);
    const { s, site } = await chosen(res, (req.body ?? {}) as Record<string, unknown>);
    const input = siteRestoreInput(site);
    try { checkMayRestore(ctx, actor, s, input); } catch (err) {
      if (err instanceof PermissionError) throw new HttpError(403, 'error.refused');
      throw err;
    }
    ctx.store.activity.record({ actor: actor.name, role: actor.role, action: 'restore.requested', target: `${s.account} ${s.id}`, result: 'ok', detail: `site ${site.folder}` });
    const answer = await runner.submit(actor, s, input, { items: 1, site: site.folder });
    if ('taskId' in answer) res.redirect(303, `/tasks/${answer.taskId}`);
    else if ('queued' in answer) res.redirect(303, '/tasks');
    else throw new HttpError(409, 'error.restoreRefused', answer.error);
  });

  /** To a moment (UTC, as the page's field says), within the window the page shows. */
  r.post('/sites/restore-at', async (req, res) => {
    const actor = actorOf(res);
    const body = (req.body ?? {}) as Record<string, unknown>;
    const account = accountOf(res, body.account);
    const raw = typeof body.moment === 'string' ? body.moment : '';
    if (typeof body.folder !== 'string' || !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$/.test(raw)) throw new HttpError(400, 'error.badRequest');
    // parseMoment, not Date: 2026-02-30T10:00 would be 2 March and 24:00 the next day's midnight.
    let moment: Date;
    try { moment = parseMoment(`${raw}Z`); } catch { throw new HttpError(400, 'error.badRequest'); }
    let plan: Awaited<ReturnType<typeof planSiteAt>>;
    try {
      plan = await planSiteAt(ctx, { account, folder: body.folder, moment }, actor);
      checkMayRestore(ctx, actor, plan.snapshot, plan.restoreInput);
    } catch (err) {
      if (err instanceof PermissionError) throw new HttpError(403, 'error.refused');
      if (err instanceof UserError) throw refusalOf(err);
      throw err;
    }
    ctx.store.activity.record({ actor: actor.name, role: actor.role, action: 'restore.requested', target: `${account} ${plan.snapshot.id}`, result: 'ok', detail: `site ${body.folder} at ${raw}Z` });
    const answer = await runner.submit(actor, plan.snapshot, plan.restoreInput, { items: 1, site: body.folder, moment: `${raw}Z` });
    if ('taskId' in answer) res.redirect(303, `/tasks/${answer.taskId}`);
    else if ('queued' in answer) res.redirect(303, '/tasks');
    else throw new HttpError(409, 'error.restoreRefused', answer.error);
  });

  r.post('/sites/download', async (req, res) => {
    const actor = actorOf(res);
    const { s, site } = await chosen(res, (req.body ?? {}) as Record<string, unknown>);
    let write: Awaited<ReturnType<typeof prepareDownload>>;
    try {
      write = await prepareDownload(ctx, s, { paths: sitePaths(site).map(fromUtf8), databases: [site.database], site: site.folder }, actor);
    } catch (err) {
      if (err instanceof PermissionError) throw new HttpError(403, 'error.refused');
      if (err instanceof UserError) throw refusalOf(err);
      throw err;
    }
    res.status(200).set({
      'Content-Type': 'application/gzip',
      'Content-Disposition': `attachment; filename="${s.account}-site-${s.id}.tar.gz"`,
      'Cache-Control': 'no-store',
    });
    try {
      await write(res);
    } catch (err) {
      if (res.headersSent) { res.destroy(err as Error); return; }
      for (const h of ['Content-Type', 'Content-Disposition']) res.removeHeader(h);
      throw new HttpError(502, 'error.downloadFailed', (err as Error).message);
    }
  });

  return r;
}
