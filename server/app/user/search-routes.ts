import express from 'express';
import type { Context } from '../../services/context.js';
import { searchPaths, type SearchResult } from '../../services/path-history.js';
import { UserError } from '../../services/context.js';
import { parseNameQuery } from '../../engine/catalog/name-match.js';
import { fromUtf8, normaliseRelative, type BytePath } from '../../util/byte-path.js';
import { isDay } from '../../util/input-checks.js';
import { decodePath, encodePath } from '../path-param.js';
import { actorOf } from '../session.js';
import { accountOf, accountQuery, actionsFor, mayOf, PAGE_WAIT_MS, problemKey, shownName, versionsUrl } from './history-view.js';

const PAGE = 50;
const text = (v: unknown): string => (typeof v === 'string' ? v.slice(0, 4096) : '');

/** GET /search: find files by name or path across the account's snapshots (services/path-history.ts). */
export function searchRoutes(ctx: Context): express.Router {
  const r = express.Router();
  r.get('/search', async (req, res) => {
    const form = { q: text(req.query.q), in: text(req.query.in), from: text(req.query.from), to: text(req.query.to), since: text(req.query.since), account: text(req.query.account) };
    const page = Math.max(1, Math.min(100000, Number.parseInt(text(req.query.page), 10) || 1));
    const errors: Record<string, string> = {};
    // The folder: from a link as exact bytes (inb), or typed.
    let folder: BytePath = '';
    if (typeof req.query.inb === 'string' && req.query.inb !== '') folder = decodePath(req.query.inb);
    else if (form.in !== '') {
      try { folder = normaliseRelative(fromUtf8(form.in)); } catch { errors.in = 'error.badPath'; }
    }
    // A day the calendar lacks (2026-02-30) is the field's mistake too, not the search text's.
    for (const k of ['from', 'to', 'since'] as const) if (form[k] !== '' && !isDay(form[k])) errors[k] = 'search.errorDay';
    if (form.q.trim() !== '') {
      try { parseNameQuery(form.q); } catch (err) { errors.q = problemKey(new UserError((err as Error).message, 'invalid-input')); }
    }
    const account = accountOf(req, res);
    if (account === null && form.q !== '') errors.account = 'search.errorAccount';
    let result: SearchResult | null = null;
    if (form.q.trim() !== '' && Object.keys(errors).length === 0) {
      try {
        result = await searchPaths(ctx, {
          account: account!, query: form.q, folder, ...(form.from ? { from: form.from } : {}), ...(form.to ? { to: form.to } : {}),
          ...(form.since ? { modifiedSince: form.since } : {}), limit: PAGE, offset: (page - 1) * PAGE,
        }, actorOf(res), { waitMs: PAGE_WAIT_MS });
      } catch (err) {
        errors.q = problemKey(err);
      }
    }
    const acct = accountQuery(req, res);
    const pageUrl = (n: number): string => {
      const p = new URLSearchParams();
      for (const [k, v] of Object.entries(form)) if (v !== '') p.set(k, v);
      if (typeof req.query.inb === 'string') p.set('inb', req.query.inb);
      p.set('page', String(n));
      return `/search?${p.toString()}`;
    };
    res.status(Object.keys(errors).length ? 400 : 200).render('user/search', {
      form, errors, folderShown: folder === '' ? '' : shownName(folder), folderB64: folder === '' ? '' : encodePath(folder),
      askAccount: actorOf(res).role !== 'user', may: mayOf(ctx, res), result, page, pageSize: PAGE,
      prevUrl: page > 1 ? pageUrl(page - 1) : null, nextUrl: result && result.total > page * PAGE ? pageUrl(page + 1) : null,
      hits: (result?.results ?? []).map((h) => ({
        name: shownName(h.bytes), versionsUrl: versionsUrl(h.bytes, acct),
        versions: h.versions.map((v) => ({ ...v, newest: v.snapshots[0]!, count: v.snapshots.length, act: actionsFor(v.snapshots[0]!, h.bytes) })),
      })),
    });
  });
  return r;
}
