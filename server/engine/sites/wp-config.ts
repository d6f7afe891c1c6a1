/**
 * Reads the database name, host and table prefix out of a WordPress `wp-config.php` WITHOUT
 * running it. The file is the account holder's: anything outside the plain shapes WordPress
 * writes (`define('DB_NAME', 'x');`, `$table_prefix = 'wp_';`) is "not understood", never guessed.
 */

/** Larger files are not read: a wp-config.php is a few KiB. */
export const WP_CONFIG_MAX_BYTES = 256 * 1024;

export type WpConfigReading =
  | { ok: true; database: string; host: string | null; prefix: string }
  | { ok: false; reason: string };

interface Token { kind: 'string' | 'ident' | 'var' | 'punct'; text: string }

class NotUnderstood extends Error {}

/** PHP tokens, comments and whitespace left out; string tokens carry their value. */
function tokenize(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  const n = src.length;
  while (i < n) {
    const c = src[i]!;
    if (/\s/.test(c)) { i++; continue; }
    if (c === '#' || (c === '/' && src[i + 1] === '/')) {
      // A line comment ends at the line's end or at `?>`.
      let j = i;
      while (j < n && src[j] !== '\n' && !(src[j] === '?' && src[j + 1] === '>')) j++;
      i = j;
      continue;
    }
    if (c === '/' && src[i + 1] === '*') {
      const end = src.indexOf('*/', i + 2);
      if (end < 0) throw new NotUnderstood('a comment is not closed');
      i = end + 2;
      continue;
    }
    if (c === "'") {
      let j = i + 1;
      let value = '';
      for (;;) {
        if (j >= n) throw new NotUnderstood('a string is not closed');
        const d = src[j]!;
        if (d === '\\' && (src[j + 1] === "'" || src[j + 1] === '\\')) { value += src[j + 1]; j += 2; continue; }
        if (d === "'") break;
        value += d;
        j++;
      }
      out.push({ kind: 'string', text: value });
      i = j + 1;
      continue;
    }
    if (c === '"') {
      // Double quotes interpolate variables and know many escapes: only plain text is taken.
      const end = src.indexOf('"', i + 1);
      if (end < 0) throw new NotUnderstood('a string is not closed');
      const value = src.slice(i + 1, end);
      out.push({ kind: 'string', text: /[\\$]/.test(value) ? '\0complex' : value });
      i = end + 1;
      continue;
    }
    if (c === '`') throw new NotUnderstood('it runs shell commands (backticks)');
    if (c === '<' && src.startsWith('<<<', i)) throw new NotUnderstood('it uses heredoc strings');
    if (c === '$' && /[A-Za-z_]/.test(src[i + 1] ?? '')) {
      let j = i + 1;
      while (j < n && /[A-Za-z0-9_]/.test(src[j]!)) j++;
      out.push({ kind: 'var', text: src.slice(i + 1, j) });
      i = j;
      continue;
    }
    if (/[A-Za-z_\\]/.test(c)) {
      let j = i;
      while (j < n && /[A-Za-z0-9_\\]/.test(src[j]!)) j++;
      out.push({ kind: 'ident', text: src.slice(i, j) });
      i = j;
      continue;
    }
    out.push({ kind: 'punct', text: c });
    i++;
  }
  return out;
}

const WANTED = new Set(['DB_NAME', 'DB_HOST']);

/** A plain string value, or why it is not one. */
function plain(t: Token | undefined, what: string): string {
  if (t?.kind !== 'string') throw new NotUnderstood(`${what} is not a plain quoted string`);
  if (t.text === '\0complex') throw new NotUnderstood(`${what} is a double-quoted string with escapes or variables`);
  return t.text;
}

/** Reads `define('DB_NAME', '…');`, `define('DB_HOST', '…');` and `$table_prefix = '…';`. */
export function parseWpConfig(content: Buffer | string): WpConfigReading {
  const size = typeof content === 'string' ? Buffer.byteLength(content) : content.length;
  if (size > WP_CONFIG_MAX_BYTES) return { ok: false, reason: `larger than ${WP_CONFIG_MAX_BYTES} bytes` };
  const src = typeof content === 'string' ? content : content.toString('utf8');
  if (src.includes('\0')) return { ok: false, reason: 'it contains NUL bytes' };
  try {
    const tokens = tokenize(src);
    const found = new Map<string, string>();
    let prefix: string | null = null;
    const set = (key: string, value: string): void => {
      const before = key === 'prefix' ? prefix : found.get(key);
      if (before !== null && before !== undefined && before !== value) throw new NotUnderstood(`${key === 'prefix' ? '$table_prefix' : key} is set more than once, to different values`);
      if (key === 'prefix') prefix = value; else found.set(key, value);
    };
    for (let k = 0; k < tokens.length; k++) {
      const t = tokens[k]!;
      if (t.kind === 'ident' && t.text.replace(/^\\/, '').toLowerCase() === 'define' && tokens[k + 1]?.text === '(') {
        const name = tokens[k + 2];
        if (name?.kind !== 'string' || !WANTED.has(name.text)) {
          // define(SOME_CONST . 'x', …) could still spell DB_NAME.
          if (name?.kind !== 'string' && tokens.slice(k + 2, k + 8).some((x) => x.kind === 'string' && WANTED.has(x.text))) throw new NotUnderstood('a define() of DB_NAME or DB_HOST is not plain');
          continue;
        }
        const shape = tokens.slice(k + 3, k + 7).map((x) => (x.kind === 'string' ? 'S' : x.text)).join(' ');
        if (shape !== ', S ) ;') throw new NotUnderstood(`define('${name.text}', …) is not a plain string value`);
        set(name.text, plain(tokens[k + 4], name.text));
        k += 6;
      } else if (t.kind === 'var' && t.text === 'table_prefix') {
        const shape = tokens.slice(k + 1, k + 4).map((x) => (x.kind === 'string' ? 'S' : x.text)).join(' ');
        if (shape !== '= S ;') throw new NotUnderstood('$table_prefix is not set to a plain string');
        set('prefix', plain(tokens[k + 2], '$table_prefix'));
        k += 3;
      } else if (t.kind === 'string' && WANTED.has(t.text) && tokens[k - 1]?.text !== '(') {
        // DB_NAME named elsewhere than as define()'s first argument (an array, a constant() call …).
        throw new NotUnderstood(`${t.text} is set in a way that is not understood`);
      } else if (t.kind === 'var' && t.text === 'GLOBALS') {
        throw new NotUnderstood('it assigns through $GLOBALS');
      }
    }
    const database = found.get('DB_NAME');
    if (database === undefined) return { ok: false, reason: 'no define(\'DB_NAME\', …)' };
    if (prefix === null) return { ok: false, reason: 'no $table_prefix' };
    return { ok: true, database, host: found.get('DB_HOST') ?? null, prefix };
  } catch (err) {
    if (err instanceof NotUnderstood) return { ok: false, reason: err.message };
    throw err;
  }
}

/** A table prefix Tidemark works with: what WordPress itself allows, letters, digits and `_`. */
export const SAFE_PREFIX = /^[A-Za-z0-9_]{1,64}$/;

/**
 * Whether DB_HOST names this server's own database server (no host, localhost, 127.0.0.1,
 * ::1, optionally with a port or a socket path): a site whose database lives elsewhere is
 * not Tidemark's to restore.
 */
export function isLocalDbHost(host: string | null): boolean {
  if (host === null || host === '') return true;
  const h = host.trim().toLowerCase();
  const name = h.startsWith('[') ? h.slice(0, h.indexOf(']') + 1) : h.split(':')[0]!;
  return ['localhost', '127.0.0.1', '[::1]', '::1'].includes(name) || h === '::1';
}
