import fs from 'node:fs';
import path from 'node:path';

/**
 * When a Local destination's path is safe for root to write every account's backups into.
 *
 * The rule: every component from `/` down to the destination root is a real directory (never
 * a symbolic link) owned by root, and none is writable by group or others. One exception for
 * ancestors (never the root itself): a root-owned directory with the sticky bit (like /tmp)
 * may be writable by all, because in a sticky directory only the owner of an entry (here
 * root, which the next component must be) may rename or remove it. The root itself may not
 * be sticky-and-writable: others could create names inside it before Tidemark does.
 * The path also may not lie in an account's home or contain one (checked where the homes are
 * known: add, edit, validate).
 *
 * Under this rule only root can create, rename or replace anything on the way to the root,
 * so a non-root user cannot redirect root's writes with a symbolic link.
 */
export type PathIssue = 'missing' | 'symlink' | 'not-directory' | 'not-root-owned' | 'writable-by-others' | 'in-home' | 'contains-home' | 'in-home-root';

export interface PathProblem {
  issue: PathIssue;
  path: string;
  /** Stable words for the problem (what a provider accepts with --force-insecure-path). */
  key: string;
  /** What a person reads. */
  text: string;
}

const WRITABLE_BY_GROUP_OR_OTHERS = 0o022;
const STICKY = 0o1000;
/** Problems that no --force-insecure-path accepts: a root that is not there or is reached through a link. */
export const NEVER_ACCEPTED: readonly PathIssue[] = ['missing', 'symlink', 'not-directory'];

const problem = (issue: PathIssue, p: string, detail: string, text: string): PathProblem =>
  ({ issue, path: p, key: `${issue} ${p}${detail ? ` ${detail}` : ''}`, text });

/**
 * Why the path, as the provider typed it, cannot be taken as it is: relative, or with `.` or
 * `..` components (resolved, `/x/../../etc` would silently become `/etc`). Null when fine.
 */
export function pathSyntaxProblem(given: string): string | null {
  if (!path.isAbsolute(given)) return 'must be absolute';
  if (given.includes('\0')) return 'must not contain a NUL byte';
  if (given.split('/').some((p) => p === '.' || p === '..')) return 'must not contain "." or ".." components (give the directory\'s real path)';
  return null;
}

/**
 * The problems of the chain of directories from `/` to `root` (an absolute path without `.`
 * or `..`), by lstat: a link anywhere on the way is a problem, never followed.
 */
export function chainProblems(root: string): PathProblem[] {
  const parts = root.split('/').filter(Boolean);
  const out: PathProblem[] = [];
  let cur = '/';
  for (let i = 0; i <= parts.length; i++) {
    if (i > 0) cur = path.posix.join(cur, parts[i - 1]!);
    const isRoot = i === parts.length;
    let st: fs.Stats;
    try {
      st = fs.lstatSync(cur);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return [...out, problem('missing', cur, '', `${cur} does not exist`)];
      throw err;
    }
    if (st.isSymbolicLink()) {
      return [...out, problem('symlink', cur, '', `${cur} is a symbolic link (give the real path; a link can be changed to point elsewhere)`)];
    }
    if (!st.isDirectory()) return [...out, problem('not-directory', cur, '', `${cur} is not a directory`)];
    if (st.uid !== 0) out.push(problem('not-root-owned', cur, `uid ${st.uid}`, `${cur} is owned by uid ${st.uid}, not by root`));
    if ((st.mode & WRITABLE_BY_GROUP_OR_OTHERS) !== 0) {
      const stickyRootAncestor = !isRoot && st.uid === 0 && (st.mode & STICKY) !== 0;
      if (!stickyRootAncestor) {
        const mode = (st.mode & 0o7777).toString(8).padStart(4, '0');
        out.push(problem('writable-by-others', cur, `mode ${mode}`, `${cur} is writable by ${(st.mode & 0o002) !== 0 ? 'all users' : 'its group'} (mode ${mode})`));
      }
    }
  }
  return out;
}

const inside = (p: string, dir: string): boolean => dir === '/' || p === dir || p.startsWith(`${dir}/`);

/**
 * The problems of `root` against the accounts' homes: inside one (the account controls it), or
 * containing one (root would write `<root>/<account>` into a home). `homeRoots` (standalone)
 * are where new homes appear: a path inside one may become a home.
 */
export function homeProblems(root: string, homes: readonly string[], homeRoots: readonly string[] = []): PathProblem[] {
  const out: PathProblem[] = [];
  const clean = (h: string): string | null => (path.isAbsolute(h) ? path.posix.normalize(h).replace(/(.)\/+$/, '$1') : null);
  for (const raw of homes) {
    const h = clean(raw);
    if (!h) continue;
    if (inside(root, h)) out.push(problem('in-home', h, '', `it lies in the home of an account (${h}), which that account controls`));
    else if (inside(h, root)) out.push(problem('contains-home', h, '', `it contains the home of an account (${h})`));
    if (out.length >= 3) break;
  }
  for (const raw of homeRoots) {
    const r = clean(raw);
    if (r && r !== root && inside(root, r) && !out.some((p) => p.issue === 'in-home')) {
      out.push(problem('in-home-root', r, '', `it lies under ${r}, where the homes of accounts are made`));
    }
  }
  return out;
}

/** One message for a list of problems. */
export function describeProblems(root: string, problems: readonly PathProblem[]): string {
  return `the destination path ${root} is not secure: ${problems.map((p) => p.text).join('; ')}`;
}
