import express from 'express';
import type { Context } from '../../services/context.js';
import { pathHistory, type VersionsResult } from '../../services/path-history.js';
import { parentOf } from '../../util/byte-path.js';
import { decodePath } from '../path-param.js';
import { actorOf } from '../session.js';
import { HttpError, notFound } from '../http-error.js';
import { accountOf, accountQuery, actionsFor, mayOf, PAGE_WAIT_MS, problemKey, shownName, versionsUrl } from './history-view.js';

/** GET /versions?p=…: every snapshot that holds a file or folder, newest first (services/path-history.ts). */
export function versionsRoutes(ctx: Context): express.Router {
  const r = express.Router();
  r.get('/versions', async (req, res) => {
    const path = decodePath(req.query.p);
    const account = accountOf(req, res);
    if (account === null) throw notFound();
    let result: VersionsResult;
    try {
      result = await pathHistory(ctx, { account, path }, actorOf(res), { waitMs: PAGE_WAIT_MS });
    } catch (err) {
      throw new HttpError(400, problemKey(err));
    }
    const acct = accountQuery(req, res);
    const isFolder = path === '' || result.versions.some((v) => v.type === 'directory');
    res.render('user/versions', {
      name: path === '' ? null : shownName(path), isFolder, result, may: mayOf(ctx, res),
      parentUrl: path === '' ? null : versionsUrl(parentOf(path), acct),
      searchUrl: `/search?${acct ? `${acct}&` : ''}inb=${encodeURIComponent(String(req.query.p ?? ''))}`,
      rows: result.versions.map((v) => ({ ...v, act: actionsFor(v.snapshot, path), inFolder: path })),
      folderB64: typeof req.query.p === 'string' ? req.query.p : '',
    });
  });
  return r;
}
