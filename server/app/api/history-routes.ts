import express from 'express';
import type { Context } from '../../services/context.js';
import type { Actor } from '../../services/actor.js';
import { pathHistory, searchPaths, snapshotChanges } from '../../services/path-history.js';
import { fromUtf8, type BytePath } from '../../util/byte-path.js';
import { clipLongRuns, decodeBase64Path } from '../../util/input-checks.js';
import { ApiError, statusOf } from './errors.js';
import { query as q } from './routes.js';

/**
 * GET /search, /versions and /snapshots/:id/changes of the JSON API (docs/api.md): the
 * same answers as `tidemark snapshot search|versions|diff --json`. While an account's
 * catalog is being built the answer waits up to 20 s, then carries `building`.
 */
const WAIT_MS = 20_000;

function pathParam(req: express.Request, text: string, b64: string): BytePath {
  const raw = q(req, b64);
  if (raw !== undefined) {
    const p = decodeBase64Path(raw);
    if (p === null) throw new ApiError(400, `${b64}: base64 (A-Z a-z 0-9 + /, padded with =) is expected`);
    return p;
  }
  return fromUtf8(q(req, text) ?? '');
}

/** A whole number from `min` to `max`, as the CLI's option of the same name takes it (a `limit` of 0 is refused there too). */
function whole(req: express.Request, key: string, min: number, max: number): number | undefined {
  const v = q(req, key);
  if (v === undefined) return undefined;
  if (!/^\d{1,9}$/.test(v) || Number(v) < min || Number(v) > max) throw new ApiError(400, `${key}: a whole number from ${min} to ${max} is expected`);
  return Number(v);
}

const withoutBytes = <T extends { bytes?: BytePath }>(x: T): Omit<T, 'bytes'> => { const { bytes: _b, ...rest } = x; return rest; };

type Handler = (req: express.Request, res: express.Response, actor: Actor) => Promise<void>;
const handle = (fn: Handler) => (req: express.Request, res: express.Response): void => {
  fn(req, res, res.locals.apiActor as Actor).catch((err: unknown) => {
    const status = statusOf(err);
    if (status === 500) process.stderr.write(`tidemark api: ${(err as Error)?.stack ?? String(err)}\n`);
    res.status(status).json({ error: status === 500 ? 'internal error' : clipLongRuns((err as Error).message) });
  });
};

export function historyApiRoutes(ctx: Context): express.Router {
  const r = express.Router();
  r.get('/search', handle(async (req, res, actor) => {
    const query = q(req, 'query');
    if (query === undefined) throw new ApiError(400, 'query: the text to search for is required');
    const opt = (k: string): Record<string, string> => (q(req, k) !== undefined ? { [k]: q(req, k)! } : {});
    const limit = whole(req, 'limit', 1, 1000);
    const offset = whole(req, 'offset', 0, 100_000_000);
    const r2 = await searchPaths(ctx, {
      query, folder: pathParam(req, 'in', 'inBase64'), ...opt('account'), ...opt('from'), ...opt('to'), ...opt('modifiedSince'),
      ...(limit !== undefined ? { limit } : {}), ...(offset !== undefined ? { offset } : {}),
    }, actor, { waitMs: WAIT_MS });
    res.json({ ...r2, results: r2.results.map(withoutBytes) });
  }));
  r.get('/versions', handle(async (req, res, actor) => {
    const account = q(req, 'account');
    res.json(await pathHistory(ctx, { path: pathParam(req, 'path', 'pathBase64'), ...(account !== undefined ? { account } : {}) }, actor, { waitMs: WAIT_MS }));
  }));
  r.get('/snapshots/:id/changes', handle(async (req, res, actor) => {
    const id = String(req.params.id ?? '');
    const account = q(req, 'account') ?? (actor.role === 'user' ? actor.name : ctx.store.snapshots.byId(id)[0]?.account);
    const limit = whole(req, 'limit', 1, 10000);
    const against = q(req, 'against');
    const destination = q(req, 'destination');
    const r2 = await snapshotChanges(ctx, {
      id, ...(account !== undefined ? { account } : {}), ...(against !== undefined ? { against } : {}), ...(destination !== undefined ? { destination } : {}),
      folder: pathParam(req, 'in', 'inBase64'), ...(limit !== undefined ? { limit } : {}),
    }, actor, { waitMs: WAIT_MS });
    res.json({ ...r2, changes: r2.changes.map(withoutBytes) });
  }));
  return r;
}
