/**
 * Which logged statements (Query events) a filtered replay may run, and how they read for the
 * database they are replayed into. Row changes never come through here: they are replayed as
 * binary row images. What comes here is DDL: its text was written by whoever ran it, and it is
 * run again by root, so only a few table statements pass, and only when every name they give is
 * a table of the replayed database.
 */
import { quoteIdent, tokenizeSql, unquoteIdent, type SqlToken } from './connection.js';

export type StatementVerdict =
  | { kind: 'marker' }
  | { kind: 'ignore' }
  | { kind: 'run'; sql: string; tables: string[] }
  | { kind: 'refuse'; reason: string };

const TABLE_ENGINES = new Set(['INNODB', 'MYISAM', 'ARIA', 'MEMORY', 'HEAP']);
/** Words that reach outside the database's own tables (files, other servers, queries of other tables). */
const REFUSED_WORDS = new Set(['DIRECTORY', 'CONNECTION', 'FILE_NAME', 'SELECT', 'TABLESPACE', 'OUTFILE', 'DUMPFILE', 'SONAME']);
/**
 * sql_mode flags that change where a quoted name or text ends (ANSI_QUOTES, NO_BACKSLASH_ESCAPES,
 * and the modes implying ANSI_QUOTES): under them the checks above would read the statement
 * otherwise than the server.
 */
export const PARSING_MODE_NAMES = ['ANSI_QUOTES', 'NO_BACKSLASH_ESCAPES', 'ANSI', 'ORACLE', 'MSSQL', 'DB2', 'POSTGRESQL', 'MAXDB'];

const word = (t: SqlToken | undefined): string => (t && t.kind === 'word' ? t.text.toUpperCase() : '');

/** Statements that are transaction markers in a log. */
const MARKERS = new Set(['BEGIN', 'COMMIT', 'ROLLBACK', 'XA']);

/**
 * The verdict on one logged statement for a replay of database `source` into `target`,
 * limited to `tables` when given. `defaultDb` is the database the statement ran in.
 */
export function judgeStatement(sql: string, defaultDb: string, source: string, target: string, tables: ReadonlySet<string> | null): StatementVerdict {
  const tokens = tokenizeSql(sql);
  const sig = tokens.filter((t) => t.kind !== 'space' && t.kind !== 'comment');
  const first = word(sig[0]);
  if (MARKERS.has(first) && sig.length <= 3) return { kind: 'marker' };
  if (first === 'SAVEPOINT' || (first === 'RELEASE' && word(sig[1]) === 'SAVEPOINT') || (first === 'ROLLBACK' && word(sig[1]) === 'TO')) return { kind: 'marker' };

  // Names qualified with a database: `db`.`t`. Is the statement about the replayed database at all?
  const qualifiers: string[] = [];
  for (let i = 0; i + 1 < sig.length; i++) {
    const t = sig[i]!;
    if ((t.kind === 'ident' || t.kind === 'word') && sig[i + 1]!.kind === 'punct' && sig[i + 1]!.text === '.') qualifiers.push(unquoteIdent(t.text));
  }
  if (defaultDb !== source && !qualifiers.includes(source)) return { kind: 'ignore' };

  // The text is shown (in the account's task log) only when the statement ran in the account's database.
  const show = defaultDb === source ? `: ${sql.replace(/\s+/g, ' ').trim().slice(0, 120)}` : '';
  const refuse = (reason: string): StatementVerdict => ({ kind: 'refuse', reason: `${reason}${show}` });
  // Executable comments run their content: what they hide cannot be judged here.
  if (tokens.some((t) => t.kind === 'comment' && /^\/\*[!M+]/.test(t.text))) return refuse('a statement with an executable comment is not replayed');
  if (sig.some((t) => t.kind === 'string' && t.text.startsWith('"'))) return refuse('a statement with double-quoted text is not replayed');
  if (sig.some((t) => t.kind === 'punct' && (t.text === ';' || t.text === '@'))) return refuse('not a single table statement');
  if (qualifiers.some((q) => q !== source)) return refuse('a statement naming another database is not replayed');
  const bad = sig.find((t) => t.kind === 'word' && REFUSED_WORDS.has(t.text.toUpperCase()));
  if (bad) return refuse(`a statement with ${bad.text.toUpperCase()} is not replayed`);
  for (let i = 0; i < sig.length; i++) {
    if (word(sig[i]) !== 'ENGINE') continue;
    const v = sig[i + 1]?.text === '=' ? sig[i + 2] : sig[i + 1];
    if (!v || !TABLE_ENGINES.has(unquoteIdent(v.text).toUpperCase())) return refuse('a table of that engine is not replayed');
  }

  // The table statements, and the tables they name.
  let names: string[];
  let i = 1;
  const skip = (...ws: string[]): void => { while (ws.includes(word(sig[i]))) i++; };
  let unqualified = 0;
  const nameAt = (j: number): { name: string; next: number } | null => {
    let t = sig[j];
    if (!t) return null;
    if (sig[j + 1]?.text === '.') { t = sig[j + 2]; j += 2; } else unqualified++;
    if (!t || (t.kind !== 'ident' && t.kind !== 'word')) return null;
    return { name: unquoteIdent(t.text), next: j + 1 };
  };
  const nameList = (): string[] | null => {
    const out: string[] = [];
    for (;;) {
      const n = nameAt(i);
      if (!n) return null;
      out.push(n.name);
      i = n.next;
      if (sig[i]?.text !== ',') return out;
      i++;
    }
  };
  if (first === 'CREATE' || first === 'DROP' || first === 'ALTER' || first === 'TRUNCATE') {
    if (first === 'CREATE') skip('OR', 'REPLACE');
    skip('TEMPORARY', 'ONLINE', 'IGNORE', 'UNIQUE', 'FULLTEXT', 'SPATIAL');
    const what = word(sig[i]);
    if (what === 'INDEX' && (first === 'CREATE' || first === 'DROP')) {
      i++;
      skip('IF', 'NOT', 'EXISTS');
      i++; // the index name
      if (word(sig[i]) !== 'ON') return refuse('not a table statement');
      i++;
      const n = nameAt(i);
      if (!n) return refuse('not a table statement');
      names = [n.name];
    } else if (what === 'TABLE' || (first === 'TRUNCATE' && sig[i] && word(sig[i]) !== 'TABLE')) {
      if (what === 'TABLE') i++;
      skip('IF', 'NOT', 'EXISTS');
      const list = nameList();
      if (!list) return refuse('not a table statement');
      names = list;
      if (first === 'CREATE' && word(sig[i]) === 'LIKE') {
        i++;
        const n = nameAt(i);
        if (!n) return refuse('not a table statement');
        names.push(n.name);
      }
      // ALTER TABLE … RENAME [TO|AS] new
      const r = sig.findIndex((t, k) => k >= i && word(t) === 'RENAME' && !['COLUMN', 'INDEX', 'KEY'].includes(word(sig[k + 1])));
      if (first === 'ALTER' && r >= 0) {
        let k = r + 1;
        if (['TO', 'AS'].includes(word(sig[k]))) k++;
        const n = nameAt(k);
        if (!n) return refuse('not a table statement');
        names.push(n.name);
      }
    } else {
      return refuse(`${first} ${what || sig[i]?.text || ''} is not replayed`.replace(/\s+/g, ' '));
    }
  } else if (first === 'RENAME' && word(sig[1]) === 'TABLE') {
    i = 2;
    names = [];
    for (;;) {
      const a = nameAt(i);
      if (!a || word(sig[a.next]) !== 'TO') return refuse('not a table statement');
      const b = nameAt(a.next + 1);
      if (!b) return refuse('not a table statement');
      names.push(a.name, b.name);
      i = b.next;
      if (sig[i]?.text !== ',') break;
      i++;
    }
  } else {
    return refuse(`${first || 'this statement'} is not replayed (point-in-time restores need binlog_format=ROW)`);
  }

  // Unqualified names mean the database the statement ran in.
  if (unqualified > 0 && defaultDb !== source) return refuse('a statement run from another database is not replayed');
  if (tables) {
    const inside = names.filter((n) => tables.has(n));
    if (inside.length === 0) return { kind: 'ignore' };
    if (inside.length !== names.length) return refuse('a statement about restored and other tables together is not replayed');
  }
  // Qualified names point at the target database.
  const out = tokens.map((t) => t);
  for (let k = 0; k + 1 < out.length; k++) {
    const t = out[k]!;
    if ((t.kind === 'ident' || t.kind === 'word') && unquoteIdent(t.text) === source) {
      let n = k + 1;
      while (n < out.length && (out[n]!.kind === 'space' || out[n]!.kind === 'comment')) n++;
      if (out[n]?.kind === 'punct' && out[n]!.text === '.') out[k] = { kind: 'ident', text: quoteIdent(target) };
    }
  }
  return { kind: 'run', sql: out.map((t) => t.text).join(''), tables: names };
}
