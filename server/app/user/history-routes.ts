import express from 'express';
import type { Context } from '../../services/context.js';
import { searchRoutes } from './search-routes.js';
import { versionsRoutes } from './versions-routes.js';
import { changesRoutes } from './changes-routes.js';

/** The account holder's pages that look across snapshots: search, versions of a path, what changed. */
export function historyRoutes(ctx: Context): express.Router {
  const r = express.Router();
  r.use(searchRoutes(ctx), versionsRoutes(ctx), changesRoutes(ctx));
  return r;
}
