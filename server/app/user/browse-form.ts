import type { SnapshotRecord } from '../../store/snapshots.js';
import type { BytePath } from '../../util/byte-path.js';
import { decodePath, many } from '../path-param.js';

/** A message key (views/locales) and what it is filled with; translated when the page is drawn. */
export interface FormMessage { key: string; values?: Record<string, string | number> }

/** The browse form's problems: all of them, each by the field it is about (`general` for the rest). */
export interface BrowseFormErrors {
  fields: Record<string, FormMessage>;
  general: FormMessage[];
}

export const noBrowseErrors = (): BrowseFormErrors => ({ fields: {}, general: [] });
export const hasErrors = (e: BrowseFormErrors): boolean => e.general.length > 0 || Object.keys(e.fields).length > 0;

const NOT_FOUND = new Set(['browse.errors.notInSnapshot', 'browse.errors.noSuchDatabase']);
const FORBIDDEN = new Set(['browse.errors.mayNotRestoreFiles', 'browse.errors.mayNotRestoreDatabases', 'browse.errors.mayNotDownload']);

/** The answer's status: 404 when something chosen is not in the snapshot, 403 when not allowed, else 400. */
export function statusOf(e: BrowseFormErrors): number {
  if (e.general.some((m) => NOT_FOUND.has(m.key))) return 404;
  if (e.general.some((m) => FORBIDDEN.has(m.key))) return 403;
  return 400;
}

/** The browse form as posted, with every problem found at once (none are thrown one by one). */
export interface BrowseForm {
  paths: BytePath[];
  databases: { name: string; as?: string }[];
  /** `as_<db>` as typed, to show them again. */
  renames: Record<string, string>;
  mode: 'place' | 'folder' | null;
  /**
   * The page's own form asks for the review step before an in-place restore (`review=1`);
   * `confirm=yes` is the review's answer. A form posted without `review` (a script) goes ahead.
   */
  review: boolean;
  confirmed: boolean;
  /** Where the form was: the folder, its filter and page, to return there after a problem. */
  dir: BytePath;
  filter: string;
  page: number;
  errors: BrowseFormErrors;
}

const DATABASE_NAME = /^[A-Za-z0-9_]{1,64}$/;
/** Items one form may choose (the body parser takes 20,000 fields in all). */
export const MAX_CHOSEN = 10_000;

const text = (v: unknown, max = 200): string => (typeof v === 'string' ? v.slice(0, max) : '');

/**
 * Reads the form. A tampered value (a path that is not base64url of a relative path, a
 * field given as something other than text) is still refused outright by decodePath and
 * many(); what a person can get wrong is collected into `errors`.
 */
export function readBrowseForm(body: Record<string, unknown>, s: SnapshotRecord): BrowseForm {
  const errors = noBrowseErrors();
  // More than a form may carry: said in words, and nothing is decoded.
  const tooMany = Array.isArray(body.path) && body.path.length > MAX_CHOSEN;
  if (tooMany) errors.general.push({ key: 'browse.errors.tooMany', values: { max: MAX_CHOSEN } });
  const paths = tooMany ? [] : [...new Set(many(body.path).map(decodePath))].filter((p) => p !== '');
  const chosen = [...new Set(many(body.database))];
  const renames: Record<string, string> = {};
  const databases: { name: string; as?: string }[] = [];
  for (const name of chosen) {
    if (!s.databases.includes(name)) { errors.general.push({ key: 'browse.errors.noSuchDatabase', values: { name } }); continue; }
  }
  for (const name of s.databases) {
    const raw = text(body[`as_${name}`], 200).trim();
    if (raw !== '') renames[name] = raw;
    const field = `as_${name}`;
    if (raw !== '') {
      if (!chosen.includes(name)) errors.fields[field] = { key: 'browse.errors.renameUnchosen', values: { name } };
      else if (!DATABASE_NAME.test(raw)) errors.fields[field] = { key: 'browse.errors.badDatabaseName' };
      else if (!raw.startsWith(`${s.account}_`) || raw.length <= s.account.length + 1) errors.fields[field] = { key: 'browse.errors.foreignDatabase', values: { prefix: `${s.account}_` } };
    }
    if (chosen.includes(name)) databases.push(raw === '' || raw === name || errors.fields[field] ? { name } : { name, as: raw });
  }
  if (!tooMany && paths.length === 0 && chosen.length === 0) errors.general.push({ key: 'browse.errors.nothingChosen' });
  const mode = body.mode === 'place' || body.mode === 'folder' ? body.mode : null;
  const page = Number(text(body.page, 12));
  let dir: BytePath = '';
  try { dir = decodePath(body.dir); } catch { dir = ''; }
  return {
    paths, databases, renames, mode, review: body.review === '1', confirmed: body.confirm === 'yes', dir, filter: text(body.q), page: Number.isSafeInteger(page) && page > 0 ? page : 1, errors,
  };
}
