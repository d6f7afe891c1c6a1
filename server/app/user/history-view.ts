import { displayName } from '../display-name.js';
import type express from 'express';
import type { Context } from '../../services/context.js';
import { UserError } from '../../services/context.js';
import { permissionsOf } from '../../services/permissions.js';
import type { SnapshotRef } from '../../services/path-history.js';
import { parentOf, type BytePath } from '../../util/byte-path.js';
import { encodePath } from '../path-param.js';
import { HttpError } from '../http-error.js';
import { actorOf } from '../session.js';
import { ACCOUNT_NAME } from '../../engine/snapshot-layout.js';

/**
 * What the search, versions and changes pages share. Names are shown through `shownName`
 * alone, so that the escaped rendering of odd bytes (newline, control, non-UTF-8) is
 * changed in one place.
 */
export const shownName = (p: BytePath): string => displayName(p);

/** The account the pages look into: an account holder's own; a provider's given as `?account=`. */
export function accountOf(req: express.Request, res: express.Response): string | null {
  const actor = actorOf(res);
  if (actor.role === 'user') return actor.name;
  const a = req.query.account;
  if (typeof a !== 'string' || a === '') return null;
  if (!ACCOUNT_NAME.test(a)) throw new HttpError(404, 'error.notFound');
  return a;
}

export const accountQuery = (req: express.Request, res: express.Response): string => {
  const a = actorOf(res).role === 'user' ? null : accountOf(req, res);
  return a ? `account=${encodeURIComponent(a)}` : '';
};

const snapshotBase = (s: Pick<SnapshotRef, 'destinationId' | 'account' | 'id'>): string =>
  `/snapshots/${s.destinationId}/${encodeURIComponent(s.account)}/${encodeURIComponent(s.id)}`;

/** Where a version of `path` in snapshot `s` is browsed, restored and downloaded (the snapshot page's own forms). */
export function actionsFor(s: SnapshotRef, path: BytePath): { browse: string; restore: string; download: string; changes: string; b64: string } {
  const base = snapshotBase(s);
  const parent = parentOf(path);
  return {
    browse: `${base}${parent === '' ? '' : `?p=${encodePath(parent)}`}`, restore: `${base}/restore`, download: `${base}/download`,
    changes: `${base}/changes`, b64: encodePath(path),
  };
}

export const versionsUrl = (path: BytePath, account: string): string => `/versions?p=${encodePath(path)}${account ? `&${account}` : ''}`;

export const mayOf = (ctx: Context, res: express.Response): ReturnType<typeof permissionsOf> => permissionsOf(ctx.config, actorOf(res));

/** A refusal of the services shown on the page, in its language: the known ones by key. */
export function problemKey(err: unknown): string {
  if (!(err instanceof UserError)) throw err;
  const m = err.message;
  if (/search text is empty/.test(m)) return 'search.errorEmpty';
  if (/has no "\]"/.test(m)) return 'search.errorBracket';
  if (/a day as YYYY-MM-DD/.test(m)) return 'search.errorDay';
  if (/path: /.test(m)) return 'error.badPath';
  if (err.code === 'not-found') throw new HttpError(404, 'error.notFound');
  if (err.code === 'invalid-input') throw new HttpError(400, 'error.invalidInput', m);
  throw new HttpError(409, 'error.refused', m);
}

/** How long a page waits for an account's catalog to be built before it shows how far it is. */
export const PAGE_WAIT_MS = 4000;
