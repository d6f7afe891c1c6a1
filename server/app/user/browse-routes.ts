import express from 'express';
import { Writable } from 'node:stream';
import type { Context } from '../../services/context.js';
import { UserError } from '../../services/context.js';
import { checkMayRestore, prepareDownload } from '../../services/snapshots.js';
import { PermissionError, permissionsOf, type Action } from '../../services/permissions.js';
import { parentOf, type BytePath } from '../../util/byte-path.js';
import type { Entry } from '../../engine/format/entry.js';
import type { SnapshotRecord } from '../../store/snapshots.js';
import { refusalOf } from '../web-errors.js';
import { HttpError, notFound } from '../http-error.js';
import { actorOf } from '../session.js';
import { Scope } from '../scope.js';
import { decodePath, encodePath } from '../path-param.js';
import { streamDownload } from '../download-stream.js';
import type { RestoreRunner } from '../restore-runner.js';
import { displayName, displayNameHtml } from '../display-name.js';
import { contentDisposition } from '../content-disposition.js';
import { cachedListing, catalogFolderPage, filterItems, findChosen, folderListing, NoSuchFolder, type Chosen, type FolderItem } from './folder-listing.js';
import { hasErrors, noBrowseErrors, readBrowseForm, statusOf, type BrowseForm, type BrowseFormErrors } from './browse-form.js';
import { previewText, sniff } from './preview-sniff.js';

export const PAGE_SIZE = 100;
const PAGE_SIZES = [50, 100, 200, 500];
/** A text preview shows the start of the file; an image is shown whole up to this size. */
const PREVIEW_TEXT_BYTES = 64 * 1024;
const PREVIEW_IMAGE_BYTES = 8 * 1024 * 1024;

const KIND: Record<Entry['kind'], string> = { f: 'file', d: 'directory', l: 'symlink', h: 'hardlink', p: 'fifo' };

const text = (v: unknown, max = 200): string => (typeof v === 'string' ? v.slice(0, max) : '');

/** The browse page of a folder, with its filter and page in the query. */
export function browseUrl(s: Pick<SnapshotRecord, 'destinationId' | 'account' | 'id'>, dir: BytePath, opts: { filter?: string; page?: number; size?: number } = {}): string {
  const q = new URLSearchParams();
  if (dir !== '') q.set('p', encodePath(dir));
  if (opts.filter) q.set('q', opts.filter);
  if (opts.page && opts.page > 1) q.set('page', String(opts.page));
  if (opts.size && opts.size !== PAGE_SIZE) q.set('n', String(opts.size));
  const qs = q.toString();
  return `/snapshots/${s.destinationId}/${encodeURIComponent(s.account)}/${encodeURIComponent(s.id)}${qs ? `?${qs}` : ''}`;
}

interface BrowseState {
  dir: BytePath;
  filter: string;
  page: number;
  size: number;
  errors: BrowseFormErrors;
  /** Paths posted with a form that came back: ticked again, those of other folders kept as hidden fields. */
  chosen: BytePath[];
  databases: string[];
  renames: Record<string, string>;
  /** Drawn again after a posted form came back with problems (the page's script keeps the choice then). */
  returned: boolean;
}

/** One row as the JSON gives it; names always through display-name.ts. */
function rowOf(s: SnapshotRecord, item: FolderItem) {
  const e = item.entry;
  return {
    path: encodePath(e.path), name: displayName(item.name), displayPath: displayName(e.path),
    type: KIND[e.kind], size: e.kind === 'f' ? e.size : null, files: item.files, bytes: item.bytes,
    mtime: new Date(e.mtimeSec * 1000).toISOString(),
    target: e.kind === 'l' || e.kind === 'h' ? displayName(e.link) : null,
    targetPath: e.kind === 'h' ? encodePath(e.link) : null,
    url: e.kind === 'd' ? browseUrl(s, e.path) : null,
  };
}

/** A row of the page: the JSON row with the names as marked-up HTML. */
const pageRowOf = (s: SnapshotRecord, item: FolderItem) => ({
  ...rowOf(s, item), nameHtml: displayNameHtml(item.name),
  targetHtml: item.entry.kind === 'l' || item.entry.kind === 'h' ? displayNameHtml(item.entry.link) : null,
});

/** Refusals of the provider's permissions, in the page's words. */
const PERMISSION_MESSAGE: Record<Action, string> = {
  restoreFiles: 'browse.errors.mayNotRestoreFiles', restoreDatabases: 'browse.errors.mayNotRestoreDatabases', download: 'browse.errors.mayNotDownload',
  ownDestinations: 'error.forbidden', ownJobs: 'error.forbidden', backupNow: 'error.forbidden',
};

const pluralForms = (t: (k: string, o?: Record<string, unknown>) => string, key: string): Record<string, string> => Object.fromEntries(
  ['zero', 'one', 'two', 'few', 'many', 'other'].map((c) => [c, t(`${key}_${c}`, { n: '#', defaultValue: '' })]).filter(([, v]) => v !== ''));

/** A Writable that keeps what it is given (a preview's first bytes). */
class Collect extends Writable {
  readonly chunks: Buffer[] = [];
  override _write(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null) => void): void { this.chunks.push(chunk); done(); }
  get data(): Buffer { return Buffer.concat(this.chunks); }
}

/**
 * The account holder's file browser, restore and download: large folders in pages with a
 * filter, a choice kept across pages and folders (tidemark.js), every form problem shown
 * at once on the folder it came from, a confirmation that lists what an in-place restore
 * overwrites, one file downloaded as itself, and previews of text and images.
 */
export function browseRoutes(ctx: Context, runner: RestoreRunner): express.Router {
  const r = express.Router();
  const scope = (res: express.Response): Scope => new Scope(ctx, actorOf(res));
  const snapshotOf = (sc: Scope, p: Record<string, string | undefined>): Promise<SnapshotRecord> => {
    const dest = Number(p.destination);
    if (!Number.isSafeInteger(dest)) throw notFound();
    return sc.snapshot(dest, p.account ?? '', p.id ?? '');
  };
  const listingOf = async (s: SnapshotRecord, dir: BytePath) => {
    try {
      return await folderListing(ctx, s, dir);
    } catch (err) {
      if (err instanceof NoSuchFolder) throw new HttpError(404, 'error.notInSnapshot');
      throw err;
    }
  };

  /**
   * The folder's entries that match the filter: how many, the page asked for, and which of
   * the chosen paths are in this folder. A page without filter or returned choice is read
   * from the path catalog when the snapshot is not in memory (a count and a page instead of
   * the whole index); anything else, and a snapshot the catalog does not hold, from the index.
   */
  const shownOf = async (s: SnapshotRecord, st: BrowseState, all: boolean) => {
    const simple = !all && st.filter.trim() === '' && st.chosen.length === 0;
    const fromCatalog = simple && !cachedListing(s, st.dir) ? catalogFolderPage(ctx, s, st.dir, st.page, st.size) : null;
    if (fromCatalog) {
      const pages = Math.max(1, Math.ceil(fromCatalog.total / st.size));
      return { total: fromCatalog.total, totalAll: fromCatalog.total, pages, page: Math.min(st.page, pages), items: fromCatalog.items, here: new Set<BytePath>() };
    }
    const listing = await listingOf(s, st.dir);
    const matching = filterItems(listing.items, st.filter);
    const pages = Math.max(1, Math.ceil(matching.length / st.size));
    const page = Math.min(st.page, pages);
    return {
      total: matching.length, totalAll: listing.items.length, pages, page,
      items: all ? matching : matching.slice((page - 1) * st.size, page * st.size),
      here: st.chosen.length === 0 ? new Set<BytePath>() : new Set(listing.items.map((i) => i.entry.path)),
    };
  };

  const render = async (req: express.Request, res: express.Response, sc: Scope, s: SnapshotRecord, st: BrowseState, status = 200): Promise<void> => {
    const wantsJson = req.query.format === 'json' || (req.get('accept')?.includes('application/json') && !req.get('accept')?.includes('text/html'));
    const all = wantsJson === true && req.query.all === '1';
    const { total, totalAll, pages, page, items, here } = await shownOf(s, st, all);
    if (wantsJson) {
      res.json({
        snapshot: { id: s.id, account: s.account, destinationId: s.destinationId },
        folder: { path: encodePath(st.dir), name: displayName(st.dir) },
        filter: st.filter, page: all ? 1 : page, pages: all ? 1 : pages, pageSize: all ? total : st.size, total, entries: totalAll,
        items: items.map((i) => rowOf(s, i)),
      });
      return;
    }
    const crumbs: { nameHtml: string; url: string }[] = [];
    if (st.dir !== '') {
      const parts = st.dir.split('/');
      parts.forEach((part, i) => crumbs.push({ nameHtml: displayNameHtml(part), url: browseUrl(s, parts.slice(0, i + 1).join('/')) }));
    }
    const chosen = new Set(st.chosen.map(encodePath));
    const t = res.locals.t as (k: string, o?: Record<string, unknown>) => string;
    const tr = (m: { key: string; values?: Record<string, string | number> }): string => t(m.key, m.values);
    const pageUrl = (n: number): string => browseUrl(s, st.dir, { filter: st.filter, page: n, size: st.size });
    res.status(status).render('user/browse', {
      may: permissionsOf(ctx.config, sc.actor), s, destination: sc.destination(s.destinationId)!.name,
      url: browseUrl(s, ''), actionUrl: `/snapshots/${s.destinationId}/${encodeURIComponent(s.account)}/${encodeURIComponent(s.id)}`,
      folderUrl: browseUrl(s, st.dir), clearUrl: browseUrl(s, st.dir, { size: st.size }), dir: encodePath(st.dir), dirName: displayName(st.dir), atRoot: st.dir === '',
      parentUrl: st.dir === '' ? null : browseUrl(s, parentOf(st.dir)), crumbs,
      filter: st.filter, page, pages, pageSize: st.size, pageSizes: PAGE_SIZES, total, totalAll,
      firstIndex: total === 0 ? 0 : (page - 1) * st.size + 1, lastIndex: Math.min(page * st.size, total),
      prevUrl: page > 1 ? pageUrl(page - 1) : null, nextUrl: page < pages ? pageUrl(page + 1) : null,
      firstUrl: page > 1 ? pageUrl(1) : null, lastUrl: page < pages ? pageUrl(pages) : null,
      allUrl: `${browseUrl(s, st.dir, { filter: st.filter })}${st.dir === '' && !st.filter ? '?' : '&'}format=json&all=1`,
      entries: items.map((i) => ({ ...pageRowOf(s, i), checked: chosen.has(encodePath(i.entry.path)) })),
      kept: st.chosen.filter((p) => !here.has(p)).map((p) => ({ path: encodePath(p), name: displayName(p) })),
      chosenDatabases: st.databases, renames: st.renames, returned: st.returned,
      errors: {
        general: st.errors.general.map(tr),
        fields: Object.fromEntries(Object.entries(st.errors.fields).map(([k, m]) => [k, tr(m)])),
      },
      // Texts the script fills in as the choice changes: each plural form of the language, `#` for the number.
      plural: {
        selected: pluralForms(t, 'browse.selectedCount'), elsewhere: pluralForms(t, 'browse.selectedElsewhere'),
        size: t('browse.selectedSize', { size: '#' }),
      },
    });
  };

  const stateOfForm = (f: BrowseForm, errors: BrowseFormErrors, size = PAGE_SIZE): BrowseState => ({
    dir: f.dir, filter: f.filter, page: f.page, size, errors, chosen: f.paths, databases: f.databases.map((d) => d.name), renames: f.renames, returned: true,
  });

  /** The chosen paths as the snapshot holds them; a missing one is a problem of the form, named. */
  const lookUp = async (s: SnapshotRecord, f: BrowseForm): Promise<Chosen[]> => {
    if (f.paths.length === 0) return [];
    const { found, missing } = await findChosen(ctx, s, f.paths);
    if (missing.length > 0) {
      f.errors.general.push({ key: 'browse.errors.notInSnapshot', values: { names: missing.slice(0, 5).map(displayName).join(', ') + (missing.length > 5 ? ' …' : '') } });
    }
    return found;
  };

  r.get('/snapshots/:destination/:account/:id', async (req, res) => {
    const sc = scope(res);
    const s = await snapshotOf(sc, req.params);
    const size = Number(text(req.query.n, 4));
    const page = Number(text(req.query.page, 12));
    await render(req, res, sc, s, {
      dir: decodePath(req.query.p), filter: text(req.query.q), page: Number.isSafeInteger(page) && page > 0 ? page : 1,
      size: PAGE_SIZES.includes(size) ? size : PAGE_SIZE, errors: noBrowseErrors(), chosen: [], databases: [], renames: {}, returned: false,
    });
  });

  r.post('/snapshots/:destination/:account/:id/restore', async (req, res) => {
    const sc = scope(res);
    const actor = sc.actor;
    const s = await snapshotOf(sc, req.params);
    const f = readBrowseForm((req.body ?? {}) as Record<string, unknown>, s);
    if (f.mode === null) throw new HttpError(400, 'error.badRequest');
    try {
      checkMayRestore(ctx, actor, s, { paths: f.paths, databases: f.databases });
    } catch (err) {
      if (!(err instanceof PermissionError)) throw err;
      f.errors.general.push({ key: PERMISSION_MESSAGE[err.action] });
    }
    const found = await lookUp(s, f);
    if (hasErrors(f.errors)) { await render(req, res, sc, s, stateOfForm(f, f.errors), statusOf(f.errors)); return; }
    if (f.mode === 'place' && f.review && !f.confirmed) {
      // Before anything is overwritten: what will be, in words and numbers.
      const t = res.locals.t as (k: string, o?: Record<string, unknown>) => string;
      const files = found.reduce((n, c) => n + c.files, 0);
      const bytes = found.reduce((n, c) => n + c.bytes, 0);
      res.render('user/restore-confirm', {
        s, actionUrl: `/snapshots/${s.destinationId}/${encodeURIComponent(s.account)}/${encodeURIComponent(s.id)}/restore`,
        selectionKey: `/snapshots/${s.destinationId}/${encodeURIComponent(s.account)}/${encodeURIComponent(s.id)}`,
        backUrl: browseUrl(s, f.dir, { filter: f.filter, page: f.page }),
        items: found.slice(0, 200).map((c) => ({ name: displayName(c.path), nameHtml: displayNameHtml(c.path), type: KIND[c.entry.kind], files: c.files, bytes: c.bytes })),
        more: Math.max(0, found.length - 200),
        paths: f.paths.map(encodePath), databases: f.databases, renames: f.renames, dir: encodePath(f.dir), filter: f.filter, page: f.page,
        totalLine: files > 0 ? t('browse.confirm.total', { count: files, n: (res.locals.fmt as { number(n: number): string }).number(files), size: (res.locals.fmt as { bytes(n: number): string }).bytes(bytes) }) : null,
      });
      return;
    }
    ctx.store.activity.record({ actor: actor.name, role: actor.role, action: 'restore.requested', target: `${s.account} ${s.id}`, result: 'ok', detail: '' });
    const answer = await runner.submit(actor, s, { paths: f.paths, databases: f.databases, intoFolder: f.mode === 'folder' }, { items: f.paths.length + f.databases.length });
    if ('taskId' in answer) res.redirect(303, `/tasks/${answer.taskId}`);
    else if ('queued' in answer) res.redirect(303, '/tasks');
    else {
      f.errors.general.push({ key: 'browse.errors.restoreRefused', values: { reason: answer.error } });
      await render(req, res, sc, s, stateOfForm(f, f.errors), 409);
    }
  });

  r.post('/snapshots/:destination/:account/:id/download', async (req, res) => {
    const sc = scope(res);
    const s = await snapshotOf(sc, req.params);
    const f = readBrowseForm((req.body ?? {}) as Record<string, unknown>, s);
    if (!permissionsOf(ctx.config, sc.actor).download) f.errors.general.push({ key: 'browse.errors.mayNotDownload' });
    const found = await lookUp(s, f);
    if (hasErrors(f.errors)) { await render(req, res, sc, s, stateOfForm(f, f.errors), statusOf(f.errors)); return; }
    const dbs = f.databases.map((d) => d.name);
    const one = found.length === 1 && dbs.length === 0 ? found[0]! : null;
    const shape = one && (one.entry.kind === 'f' || one.entry.kind === 'h')
      ? { file: { name: one.path.slice(one.path.lastIndexOf('/') + 1), size: one.bytes } }
      : { archiveName: one ? `${one.path.slice(one.path.lastIndexOf('/') + 1)}.tar.gz` : `${s.account}-${s.id}.tar.gz` };
    try {
      await streamDownload(ctx, sc.actor, s, found.map((c) => c.path), dbs, res, shape);
    } catch (err) {
      if (err instanceof PermissionError) throw new HttpError(403, PERMISSION_MESSAGE[err.action]);
      if (err instanceof UserError) throw refusalOf(err);
      throw err;
    }
  });

  /** The first bytes of one file, read like a download (permission, hooks, task, activity). */
  const fileStart = async (s: SnapshotRecord, sc: Scope, path: BytePath, max: number): Promise<{ chosen: Chosen; data: Buffer }> => {
    if (path === '') throw new HttpError(404, 'error.notInSnapshot');
    const { found } = await findChosen(ctx, s, [path]);
    const chosen = found[0];
    if (!chosen || (chosen.entry.kind !== 'f' && chosen.entry.kind !== 'h')) throw new HttpError(404, 'error.notInSnapshot');
    const out = new Collect();
    try {
      const write = await prepareDownload(ctx, s, { paths: [path], databases: [], single: { maxBytes: max } }, sc.actor);
      await write(out);
    } catch (err) {
      if (err instanceof PermissionError) throw new HttpError(403, PERMISSION_MESSAGE[err.action]);
      if (err instanceof UserError) throw refusalOf(err);
      throw new HttpError(502, 'error.downloadFailed');
    }
    return { chosen, data: out.data };
  };

  r.get('/snapshots/:destination/:account/:id/preview', async (req, res) => {
    const sc = scope(res);
    const s = await snapshotOf(sc, req.params);
    const path = decodePath(req.query.p);
    const { chosen, data } = await fileStart(s, sc, path, PREVIEW_TEXT_BYTES);
    const what = sniff(data);
    const base = `/snapshots/${s.destinationId}/${encodeURIComponent(s.account)}/${encodeURIComponent(s.id)}`;
    const view: Record<string, unknown> = {
      s, nameHtml: displayNameHtml(path), name: displayName(path), size: chosen.bytes, backUrl: browseUrl(s, parentOf(path)),
      downloadUrl: `${base}/download`, path: encodePath(path), dir: encodePath(parentOf(path)), kind: what.kind, may: permissionsOf(ctx.config, sc.actor),
    };
    if (what.kind === 'image') {
      view.imageUrl = chosen.bytes <= PREVIEW_IMAGE_BYTES ? `${base}/preview-image?p=${encodePath(path)}` : null;
    } else if (what.kind === 'text') {
      const { text: body, encoding } = previewText(data, chosen.bytes > data.length);
      Object.assign(view, { text: body, encoding, truncated: chosen.bytes > data.length, shownBytes: data.length, markup: /^\s*(<\?xml|<!doctype|<html|<svg|<script|<)/i.test(body) });
    }
    res.render('user/preview', view);
  });

  /** Only a sniffed PNG, JPEG, GIF or WebP is ever sent, with a policy that runs nothing. */
  r.get('/snapshots/:destination/:account/:id/preview-image', async (req, res) => {
    const sc = scope(res);
    const s = await snapshotOf(sc, req.params);
    const path = decodePath(req.query.p);
    const { chosen, data } = await fileStart(s, sc, path, PREVIEW_IMAGE_BYTES);
    const what = sniff(data);
    if (what.kind !== 'image') throw new HttpError(415, 'browse.previewPage.notImage');
    if (chosen.bytes > data.length) throw new HttpError(413, 'browse.previewPage.tooLarge');
    res.set({
      'Content-Type': what.type, 'Content-Length': String(data.length), 'X-Content-Type-Options': 'nosniff',
      'Content-Security-Policy': "default-src 'none'; sandbox", 'Content-Disposition': contentDisposition(path.slice(path.lastIndexOf('/') + 1), 'inline'),
      'Cross-Origin-Resource-Policy': 'same-origin', 'Cache-Control': 'no-store',
    }).end(data);
  });

  /** A restore's progress for its page: files and bytes done, percent, time left. */
  r.get('/tasks/:id/progress', async (req, res) => {
    const t = await scope(res).task(Number(req.params.id));
    res.set('Cache-Control', 'no-store').json(restoreProgress(t));
  });

  return r;
}

export interface RestoreProgressView {
  id: number;
  status: string;
  finished: boolean;
  files: number;
  totalFiles: number;
  bytes: number;
  totalBytes: number;
  /** 0–100, null while the totals are not known. */
  percent: number | null;
  /** Estimated from the rate so far; null until there is one. */
  secondsLeft: number | null;
}

const FINAL = new Set(['completed', 'partial', 'failed', 'cancelled']);

export function restoreProgress(t: { id: number; status: string; startedAt: string | null; progress: Record<string, unknown> }): RestoreProgressView {
  const n = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : 0);
  const p = t.progress;
  const files = n(p.files), totalFiles = n(p.totalFiles), bytes = n(p.bytes), totalBytes = n(p.totalBytes);
  const finished = FINAL.has(t.status);
  const known = totalBytes > 0 || totalFiles > 0;
  // Bytes weigh most; an all-empty-files restore counts files.
  const percent = !known ? null : finished && t.status === 'completed' ? 100
    : Math.min(100, Math.floor(totalBytes > 0 ? (bytes / totalBytes) * 100 : (files / totalFiles) * 100));
  let secondsLeft: number | null = null;
  const elapsed = t.startedAt ? (Date.now() - Date.parse(t.startedAt)) / 1000 : 0;
  if (!finished && known && elapsed > 1 && bytes > 0 && totalBytes > bytes) secondsLeft = Math.ceil((totalBytes - bytes) / (bytes / elapsed));
  return { id: t.id, status: t.status, finished, files, totalFiles, bytes, totalBytes, percent, secondsLeft };
}
