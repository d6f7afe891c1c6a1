/**
 * Which account a database name (or a database user name) belongs to: ONE rule, used by
 * discovery (what an account's backup holds) and by restore (what an account may write to).
 *
 * 1. A name the panel lists explicitly for an account (cPanel's /var/cpanel/databases/USER.json)
 *    is that account's, whatever it starts with.
 * 2. Otherwise the account whose `<name>_` is the LONGEST prefix of it: `bob_x_shop` is
 *    `bob_x`'s when both `bob` and `bob_x` exist, never `bob`'s.
 * 3. Otherwise nobody's.
 */

export type NameKind = 'database' | 'user';

export class DatabaseOwnership {
  /** Candidate owners by prefix, longest first. */
  private readonly prefixOwners: string[];
  /** Listed names (lower case) → account. */
  private readonly listed: { database: Map<string, string>; user: Map<string, string> };

  /**
   * `prefixOwners`: the names whose `<name>_` prefix owns names; `listed`: name → account, as the
   * panel lists them. Names are compared without regard to case: with lower_case_table_names=1
   * the server stores `Bob_X_shop` as `bob_x_shop`.
   */
  constructor(prefixOwners: Iterable<string>, listed: { database?: Iterable<[string, string]>; user?: Iterable<[string, string]> } = {}) {
    this.prefixOwners = [...new Set(prefixOwners)].filter((n) => n !== '').sort((a, b) => b.length - a.length || (a < b ? -1 : 1));
    const lower = (entries: Iterable<[string, string]> = []): Map<string, string> => new Map([...entries].map(([n, a]) => [n.toLowerCase(), a]));
    this.listed = { database: lower(listed.database), user: lower(listed.user) };
  }

  /** The account that owns `name`, or null. */
  ownerOf(kind: NameKind, name: string): string | null {
    const lower = name.toLowerCase();
    const explicit = this.listed[kind].get(lower);
    if (explicit !== undefined) return explicit;
    return this.prefixOwners.find((u) => lower.startsWith(`${u.toLowerCase()}_`)) ?? null;
  }

  owns(account: string, kind: NameKind, name: string): boolean {
    return this.ownerOf(kind, name) === account;
  }

  /**
   * Whether a database pattern of a grant (as mysql.db stores it: `_` and `%` are wildcards unless
   * escaped with `\\`) names only databases of `account`. Without wildcards it is the name itself.
   * With wildcards, read literally it must lie under `<account>_`, and it must not be able to
   * match a name of another account (by prefix or listed) nor any of `existing` (the server's
   * databases) that is not the account's.
   */
  patternOwnedBy(account: string, pattern: string, existing: readonly string[] = []): boolean {
    const tokens = patternTokens(pattern);
    if (tokens.every((t) => t.kind === 'char')) return this.owns(account, 'database', tokens.map((t) => t.text).join(''));
    const literalReading = tokens.map((t) => (t.kind === 'one' ? '_' : t.kind === 'any' ? '\0' : t.text)).join('');
    if (!literalReading.startsWith(`${account}_`)) return false;
    for (const other of this.prefixOwners) {
      if (other === account) continue;
      // Names under a shorter prefix of our own (`bob_` for `bob_x`) are ours when they start with `bob_x_`.
      if (`${account}_`.startsWith(`${other}_`) && forcesPrefix(tokens, `${account}_`)) continue;
      if (canMatchPrefix(tokens, `${other}_`)) return false;
    }
    for (const [name, owner] of this.listed.database) if (owner !== account && matches(tokens, name)) return false;
    for (const name of existing) if (!this.owns(account, 'database', name) && matches(tokens, name)) return false;
    return true;
  }
}

type PatternToken = { kind: 'char'; text: string } | { kind: 'one' } | { kind: 'any' };

function patternTokens(pattern: string): PatternToken[] {
  const out: PatternToken[] = [];
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '\\' && i + 1 < pattern.length) out.push({ kind: 'char', text: pattern[++i]! });
    else if (c === '_') out.push({ kind: 'one' });
    else if (c === '%') out.push({ kind: 'any' });
    else out.push({ kind: 'char', text: c });
  }
  return out;
}

// Compared case-insensitively: with lower_case_table_names=1 the server does.
const same = (a: string, b: string): boolean => a.toLowerCase() === b.toLowerCase();

/** Whether every name the pattern matches starts with `prefix`. */
function forcesPrefix(tokens: PatternToken[], prefix: string): boolean {
  if (tokens.length < prefix.length) return false;
  return [...prefix].every((c, i) => tokens[i]!.kind === 'char' && (tokens[i] as { text: string }).text === c);
}

/** Whether some name that starts with `prefix` matches the pattern. */
function canMatchPrefix(tokens: PatternToken[], prefix: string, ti = 0, pi = 0): boolean {
  if (pi === prefix.length) return true;
  if (ti === tokens.length) return false;
  const t = tokens[ti]!;
  if (t.kind === 'any') return true;
  if (t.kind === 'one' || same(t.text, prefix[pi]!)) return canMatchPrefix(tokens, prefix, ti + 1, pi + 1);
  return false;
}

/** Whether the pattern matches `name` entirely (dynamic programming: no backtracking blow-up on `%%%…`). */
function matches(tokens: PatternToken[], name: string): boolean {
  // can[j]: the first i tokens match the first j characters.
  let can = Array.from({ length: name.length + 1 }, (_, j) => j === 0);
  for (const t of tokens) {
    const next = new Array<boolean>(name.length + 1).fill(false);
    for (let j = 0; j <= name.length; j++) {
      if (t.kind === 'any') next[j] = can[j]! || (j > 0 && next[j - 1]!);
      else if (j > 0 && can[j - 1]) next[j] = t.kind === 'one' || same(t.text, name[j - 1]!);
    }
    can = next;
  }
  return can[name.length]!;
}
