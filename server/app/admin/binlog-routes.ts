import express from 'express';
import { notFound } from '../http-error.js';
import { binlogStatus } from '../../services/point-in-time.js';
import { scopeOf, type ProviderState } from './state.js';

/** The provider's view of binary-log shipping: whether the server logs (and what to set when not), and what each marked destination holds. */
export function binlogRoutes(st: ProviderState): express.Router {
  const { ctx } = st;
  const r = express.Router();
  r.get('/', async (_req, res) => {
    if (!scopeOf(st, res).isAdmin) throw notFound();
    const status = await binlogStatus(ctx);
    const marked = new Set(ctx.store.binlogs.markedDestinations());
    const candidates = ctx.store.destinations.list().filter((d) => d.owner === 'root').map((d) => ({ name: d.name, marked: marked.has(d.id) }));
    res.render('admin/binlogs', { status, candidates });
  });
  return r;
}
