import express from 'express';
import type { Context } from '../../services/context.js';
import type { Actor } from '../../services/actor.js';
import { listSites, prepareSiteDownload, restoreSite, restoreSiteAt } from '../../services/sites.js';
import { parseMoment } from '../../services/point-in-time.js';
import { ApiError, sendGzip } from './errors.js';
import { bad, body, fields, handle, optBoolean, optString, query, startInBackground, type Body } from './routes.js';

/** The account a request is about: an account holder's own; the provider and resellers name it. */
function accountOf(actor: Actor, given: string | undefined): string {
  if (actor.role === 'user') {
    if (given !== undefined && given !== actor.name) throw new ApiError(404, `no account ${given}`);
    return actor.name;
  }
  if (given === undefined) throw bad('account: which account (required for the provider)');
  return given;
}

function siteInput(b: Body, actor: Actor): { account: string; folder: string; snapshot?: string; destination?: string } {
  const folder = optString(b, 'folder');
  if (folder === undefined || folder === '') throw bad("folder: the site's folder is required");
  const snapshot = optString(b, 'snapshot');
  const destination = optString(b, 'destination');
  return { account: accountOf(actor, optString(b, 'account')), folder, ...(snapshot !== undefined ? { snapshot } : {}), ...(destination !== undefined ? { destination } : {}) };
}

/** /api/v1/sites: WordPress sites (docs/api.md). */
export function siteApiRoutes(ctx: Context): express.Router {
  const r = express.Router();
  r.get('/sites', handle(async (req, res, actor) => {
    res.json(await listSites(ctx, accountOf(actor, query(req, 'account')), actor));
  }));
  r.post('/sites/restore', handle(async (req, res, actor) => {
    const b = fields(body(req), ['folder', 'account', 'snapshot', 'destination', 'moment', 'wait']);
    const input = siteInput(b, actor);
    const at = optString(b, 'moment');
    if (at !== undefined) {
      if (input.snapshot !== undefined) throw bad('moment: give a moment or a snapshot, not both');
      const moment = parseMoment(at);
      const run = { account: input.account, folder: input.folder, moment };
      if (optBoolean(b, 'wait')) { res.json(await restoreSiteAt(ctx, run, actor)); return; }
      const [task] = await startInBackground((onTasks) => restoreSiteAt(ctx, run, actor, { onTask: (id) => onTasks([id]) }));
      res.status(202).json({ task });
      return;
    }
    if (optBoolean(b, 'wait')) { res.json(await restoreSite(ctx, input, actor)); return; }
    const [task] = await startInBackground((onTasks) => restoreSite(ctx, input, actor, { onTask: (id) => onTasks([id]) }));
    res.status(202).json({ task });
  }));
  r.post('/sites/download', handle(async (req, res, actor) => {
    const { snapshot, write } = await prepareSiteDownload(ctx, siteInput(fields(body(req), ['folder', 'account', 'snapshot', 'destination']), actor), actor);
    await sendGzip(res, `${snapshot.account}-site-${snapshot.id}.tar.gz`, write);
  }));
  return r;
}
