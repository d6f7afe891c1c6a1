import express from 'express';
import type { Context } from '../../services/context.js';
import { snapshotChanges, type ChangesResult } from '../../services/path-history.js';
import { listSnapshots } from '../../services/snapshots.js';
import { decodePath, encodePath } from '../path-param.js';
import { actorOf } from '../session.js';
import { HttpError, notFound } from '../http-error.js';
import { accountQuery, PAGE_WAIT_MS, problemKey, shownName, versionsUrl } from './history-view.js';
import { Scope } from '../scope.js';

const ID = /^[A-Za-z0-9._-]{1,100}$/;

/** GET /snapshots/:destination/:account/:id/changes: what changed since the snapshot before (or ?against=). */
export function changesRoutes(ctx: Context): express.Router {
  const r = express.Router();
  r.get('/snapshots/:destination/:account/:id/changes', async (req, res) => {
    const actor = actorOf(res);
    const dest = Number(req.params.destination);
    if (!Number.isSafeInteger(dest)) throw notFound();
    // The snapshot must be one the signed-in person sees (404 otherwise, as everywhere).
    const s = await new Scope(ctx, actor).snapshot(dest, req.params.account ?? '', req.params.id ?? '');
    const against = typeof req.query.against === 'string' && req.query.against !== '' ? req.query.against : undefined;
    if (against !== undefined && !ID.test(against)) throw notFound();
    const folder = decodePath(req.query.in);
    let result: ChangesResult;
    try {
      result = await snapshotChanges(ctx, { account: s.account, id: s.id, destinationId: s.destinationId, ...(against ? { against } : {}), folder, limit: 2000 }, actor, { waitMs: PAGE_WAIT_MS });
    } catch (err) {
      throw new HttpError(400, problemKey(err));
    }
    const acct = accountQuery(req, res);
    const others = (await listSnapshots(ctx, { account: s.account }, actor)).filter((x) => x.destinationId === s.destinationId && x.id !== s.id);
    const group = (kind: 'added' | 'changed' | 'removed') => result.changes.filter((c) => c.change === kind).map((c) => ({
      ...c, name: shownName(c.bytes), versionsUrl: versionsUrl(c.bytes, acct),
    }));
    res.render('user/changes', {
      result, others, against: result.against?.id ?? '', folderShown: folder === '' ? null : shownName(folder), folderB64: folder === '' ? '' : encodePath(folder),
      url: `/snapshots/${s.destinationId}/${encodeURIComponent(s.account)}/${encodeURIComponent(s.id)}`,
      added: group('added'), changed: group('changed'), removed: group('removed'),
    });
  });
  return r;
}
