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
  glob: GlobMatcher | null;
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

const escapeByte = (c: string): string => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`;

export const isGlob = (q: string): boolean => /[*?[]/.test(q);

/** One step of a glob: a byte, `?` (one character), `[…]` (one byte of a set), `*` or `**`. */
type GlobToken = { kind: 'byte'; byte: number } | { kind: 'char' } | { kind: 'set'; bytes: Uint8Array } | { kind: 'star' } | { kind: 'any' };

/**
 * A glob matched by walking the subject once with every position of the pattern it could be
 * at (a set of states), never by backtracking: a RegExp of `*a*a*a…b` takes time exponential
 * in the stars on a long name of a's, and the search runs in the daemon's event loop, on
 * names an account holder chooses. Cost: subject length × pattern length.
 * A state is token index × 4 + the continuation bytes a `?` still expects (0-3).
 */
export class GlobMatcher {
  constructor(private readonly tokens: readonly GlobToken[], private readonly anyFolder: boolean) {}

  test(subject: string): boolean {
    const t = this.tokens;
    const width = (t.length + 1) * 4;
    let now = new Uint8Array(width);
    let next = new Uint8Array(width);
    const add = (set: Uint8Array, state: number): void => {
      let i = state >> 2;
      set[state] = 1;
      // A star may match nothing: the state after it is reached at once.
      if ((state & 3) === 0) while (i < t.length && (t[i]!.kind === 'star' || t[i]!.kind === 'any')) set[++i << 2] = 1;
    };
    add(now, 0);
    for (let pos = 0; pos < subject.length; pos++) {
      const c = subject.charCodeAt(pos);
      next.fill(0);
      let alive = false;
      for (let state = 0; state < width; state++) {
        if (!now[state]) continue;
        const i = state >> 2;
        const k = state & 3;
        if (i === t.length) continue;
        const tok = t[i]!;
        if (k > 0) {
          if (c >= 0x80 && c <= 0xbf) { add(next, k === 1 ? (i + 1) << 2 : state - 1); alive = true; }
          continue;
        }
        switch (tok.kind) {
          case 'byte': if (c === tok.byte) { add(next, (i + 1) << 2); alive = true; } break;
          case 'set': if (tok.bytes[c]) { add(next, (i + 1) << 2); alive = true; } break;
          case 'star': if (c !== 0x2f) { add(next, state); alive = true; } break;
          case 'any': add(next, state); alive = true; break;
          case 'char':
            // One UTF-8 sequence, or any one byte (a byte that is not part of one).
            add(next, (i + 1) << 2);
            if (c >= 0xc2 && c <= 0xdf) add(next, state + 1);
            else if (c >= 0xe0 && c <= 0xef) add(next, state + 2);
            else if (c >= 0xf0 && c <= 0xf4) add(next, state + 3);
            alive = true;
            break;
        }
      }
      // A path query may start at any folder: after each "/" the pattern starts again.
      if (this.anyFolder && c === 0x2f) { add(next, 0); alive = true; }
      if (!alive && !this.anyFolder) return false;
      [now, next] = [next, now];
    }
    return now[t.length << 2] === 1;
  }
}

/** The bytes a `[…]` body stands for (as RegExp reads it: ranges, `!`/`^` negation, never `/` when negated). */
function setOf(body: string): Uint8Array {
  const negate = body.startsWith('!') || body.startsWith('^');
  const inner = negate ? body.slice(1) : body;
  const parts = [...inner].map((x, k, all) => (x === '-' && k > 0 && k < all.length - 1 ? '-' : escapeByte(x))).join('');
  // One character class on one byte at a time: linear, and its reading of ranges is RegExp's own.
  let one: RegExp;
  try {
    one = new RegExp(`^[${negate ? '^/' : ''}${parts}]$`);
  } catch {
    throw new Error(`a "[…]" in the search text has a range that runs backwards (write [a-z], not [z-a])`);
  }
  const bytes = new Uint8Array(256);
  for (let b = 0; b < 256; b++) if (one.test(String.fromCharCode(b))) bytes[b] = 1;
  return bytes;
}

/** `query` as a person typed it (UTF-8 text). Throws on an empty query or an unclosed `[`. */
export function parseNameQuery(query: string): NameQuery {
  const trimmed = query.replace(/^\/+|\/+$/g, '');
  if (trimmed === '') throw new Error('the search text is empty');
  const folded = foldBytes(Buffer.from(trimmed, 'utf8').toString('latin1'));
  const scope = trimmed.includes('/') ? 'path' : 'name';
  if (!isGlob(trimmed)) return { folded, scope, glob: null, literal: folded };
  const tokens: GlobToken[] = [];
  let run = '';
  let longest = '';
  const endRun = (): void => { if (run.length > longest.length) longest = run; run = ''; };
  for (let i = 0; i < folded.length; i++) {
    const c = folded[i]!;
    if (c === '*') {
      endRun();
      if (folded[i + 1] === '*') { tokens.push({ kind: 'any' }); i++; } else tokens.push({ kind: 'star' });
    } else if (c === '?') {
      endRun();
      tokens.push({ kind: 'char' });
    } else if (c === '[') {
      const close = folded.indexOf(']', i + 2);
      if (close < 0) throw new Error('a "[" in the search text has no "]"');
      endRun();
      tokens.push({ kind: 'set', bytes: setOf(folded.slice(i + 1, close)) });
      i = close;
    } else {
      run += c;
      tokens.push({ kind: 'byte', byte: c.charCodeAt(0) });
    }
  }
  endRun();
  // A path glob may start at any folder: `blog/*.txt` finds public_html/blog/post.txt.
  return { folded, scope, glob: new GlobMatcher(tokens, scope === 'path'), literal: longest };
}

/** The part of a folded path a query looks at. */
export const subjectOf = (q: NameQuery, foldedPath: BytePath): BytePath =>
  q.scope === 'path' ? foldedPath : foldedPath.slice(foldedPath.lastIndexOf('/') + 1);

/** Whether a folded path matches (the exact test, after any pre-filter). */
export function matches(q: NameQuery, foldedPath: BytePath): boolean {
  const subject = subjectOf(q, foldedPath);
  return q.glob ? q.glob.test(subject) : subject.includes(q.folded);
}
