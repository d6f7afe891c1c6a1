import type { BytePath } from '../../util/byte-path.js';

/**
 * How a search query is matched against paths, all on bytes (names need not be UTF-8):
 * case is folded for ASCII letters and, in names that are UTF-8, for every letter; a
 * query without `/` is matched against the name (last part), one with `/` against the
 * whole path below the home. A query holding `*`, `?` or `[` is a glob: `*` any run of
 * bytes but `/` (`**` crosses `/` too), `?` one character (one UTF-8 sequence, or one
 * byte that is not part of one), `[abc]` one of the listed bytes; anything else is a
 * substring.
 */
export interface NameQuery {
  /** The folded query bytes (as a byte string). */
  folded: BytePath;
  scope: 'name' | 'path';
  /** Present for a glob: tests a folded name or path (a byte string). */
  glob: RegExp | null;
  /** A run of literal bytes every match contains (for a fast pre-filter), possibly empty. */
  literal: BytePath;
}

const latin1 = (b: Buffer): BytePath => b.toString('latin1');

/** Folds case: every letter when the bytes are UTF-8, ASCII letters otherwise. */
export function foldBytes(p: BytePath): BytePath {
  const buf = Buffer.from(p, 'latin1');
  const text = buf.toString('utf8');
  const back = Buffer.from(text, 'utf8');
  if (back.equals(buf)) {
    const lower = Buffer.from(text.toLowerCase(), 'utf8');
    return latin1(lower);
  }
  return p.replace(/[A-Z]/g, (c) => c.toLowerCase());
}

const ONE_CHAR = '(?:[\\x00-\\x7f]|[\\xc2-\\xdf][\\x80-\\xbf]|[\\xe0-\\xef][\\x80-\\xbf]{2}|[\\xf0-\\xf4][\\x80-\\xbf]{3}|[\\x80-\\xff])';
const escapeByte = (c: string): string => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`;

export const isGlob = (q: string): boolean => /[*?[]/.test(q);

/** `query` as a person typed it (UTF-8 text). Throws on an empty query or an unclosed `[`. */
export function parseNameQuery(query: string): NameQuery {
  const trimmed = query.replace(/^\/+|\/+$/g, '');
  if (trimmed === '') throw new Error('the search text is empty');
  const folded = foldBytes(Buffer.from(trimmed, 'utf8').toString('latin1'));
  const scope = trimmed.includes('/') ? 'path' : 'name';
  if (!isGlob(trimmed)) return { folded, scope, glob: null, literal: folded };
  let re = '';
  let run = '';
  let longest = '';
  const endRun = (): void => { if (run.length > longest.length) longest = run; run = ''; };
  for (let i = 0; i < folded.length; i++) {
    const c = folded[i]!;
    if (c === '*') {
      endRun();
      if (folded[i + 1] === '*') { re += '[\\x00-\\xff]*'; i++; } else re += '[^/]*';
    } else if (c === '?') {
      endRun();
      re += ONE_CHAR;
    } else if (c === '[') {
      const close = folded.indexOf(']', i + 2);
      if (close < 0) throw new Error('a "[" in the search text has no "]"');
      endRun();
      let body = folded.slice(i + 1, close);
      const negate = body.startsWith('!') || body.startsWith('^');
      if (negate) body = body.slice(1);
      const parts = [...body].map((x, k, all) => (x === '-' && k > 0 && k < all.length - 1 ? '-' : escapeByte(x))).join('');
      re += `[${negate ? '^/' : ''}${parts}]`;
      i = close;
    } else {
      run += c;
      re += escapeByte(c);
    }
  }
  endRun();
  // A path glob may start at any folder: `blog/*.txt` finds public_html/blog/post.txt.
  return { folded, scope, glob: new RegExp(scope === 'path' ? `^(?:[\\x00-\\xff]*/)?${re}$` : `^${re}$`), literal: longest };
}

/** The part of a folded path a query looks at. */
export const subjectOf = (q: NameQuery, foldedPath: BytePath): BytePath =>
  q.scope === 'path' ? foldedPath : foldedPath.slice(foldedPath.lastIndexOf('/') + 1);

/** Whether a folded path matches (the exact test, after any pre-filter). */
export function matches(q: NameQuery, foldedPath: BytePath): boolean {
  const subject = subjectOf(q, foldedPath);
  return q.glob ? q.glob.test(subject) : subject.includes(q.folded);
}
