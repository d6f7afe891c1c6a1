/**
 * Runs IN THE ACCOUNT WORKER (as the account): finds WordPress installations in the home and
 * reads their wp-config.php. Never follows a symlink, never reads a file larger than
 * WP_CONFIG_MAX_BYTES, never runs PHP. Root checks what this reports (see discover-sites.ts):
 * the worker is the account's, and so is what it says.
 */
import fs from 'node:fs';
import { makeExcluder, MARKER_FILE, SKIPPED_DIR_NAME } from '../worker/excludes.js';
import { SyncOutput } from '../worker/sync-output.js';
import { parseWpConfig, WP_CONFIG_MAX_BYTES, type WpConfigReading } from './wp-config.js';

/** How deep below the home installations are looked for: `domains/<domain>/public_html/<dir>/` is 4. */
export const MAX_DEPTH = 5;
/** Folders looked at, at most, per account. */
export const MAX_FOLDERS = 20_000;

/** Folders never looked into: WordPress's own, version control, dependencies. */
const NOT_SITES = new Set(['wp-content', 'wp-includes', 'wp-admin', 'node_modules', 'vendor', '.git', '.svn', SKIPPED_DIR_NAME]);

export interface FoundSite {
  /** The installation's folder, relative to the home (where wp-settings.php is). */
  folder: string;
  /** The wp-config.php read: in the folder, or in its parent (WordPress looks there too). */
  config: string;
  reading: WpConfigReading;
}

export interface FindResult { sites: FoundSite[]; truncated: boolean }

const O_READ = fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK;

/** Reads a wp-config.php: a regular file, not a symlink, at most WP_CONFIG_MAX_BYTES. */
export function readWpConfig(absPath: string): WpConfigReading {
  let fd: number;
  try {
    fd = fs.openSync(absPath, O_READ);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ELOOP') return { ok: false, reason: 'wp-config.php is a symbolic link' };
    return { ok: false, reason: `wp-config.php cannot be read (${code ?? 'error'})` };
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) return { ok: false, reason: 'wp-config.php is not a regular file' };
    if (st.size > WP_CONFIG_MAX_BYTES) return { ok: false, reason: `larger than ${WP_CONFIG_MAX_BYTES} bytes` };
    const buf = Buffer.alloc(WP_CONFIG_MAX_BYTES + 1);
    let got = 0;
    for (;;) {
      const n = fs.readSync(fd, buf, got, buf.length - got, null);
      if (n === 0) break;
      got += n;
      if (got > WP_CONFIG_MAX_BYTES) return { ok: false, reason: `larger than ${WP_CONFIG_MAX_BYTES} bytes` };
    }
    return parseWpConfig(buf.subarray(0, got));
  } finally {
    fs.closeSync(fd);
  }
}

const utf8Name = (b: Buffer): string | null => {
  const s = b.toString('utf8');
  return Buffer.from(s, 'utf8').equals(b) && !s.includes('/') ? s : null;
};

/** Walks the home breadth-first (names that are not UTF-8 are not looked into). */
export function findSites(home: string, excludes: string[]): FindResult {
  const excluded = makeExcluder(excludes);
  const dirs = new Map<string, { config: boolean; settings: boolean }>();
  const queue: { rel: string; depth: number }[] = [{ rel: '', depth: 0 }];
  let truncated = false;
  let seen = 0;
  while (queue.length > 0) {
    const { rel, depth } = queue.shift()!;
    if (++seen > MAX_FOLDERS) { truncated = true; break; }
    let list: fs.Dirent<Buffer>[];
    try {
      list = fs.readdirSync(Buffer.from(rel === '' ? home : `${home}/${rel}`), { withFileTypes: true, encoding: 'buffer' });
    } catch {
      continue;
    }
    const names = list.map((d) => ({ d, name: utf8Name(d.name) }));
    if (rel !== '' && names.some((x) => x.name === MARKER_FILE)) continue;
    const flags = { config: false, settings: false };
    for (const { d, name } of names) {
      if (name === null) continue;
      const child = rel === '' ? name : `${rel}/${name}`;
      // d_type: a symlink is a symlink here, never what it points to.
      if (d.isFile() && name === 'wp-settings.php') flags.settings = true;
      if (name === 'wp-config.php' && !d.isDirectory()) flags.config = true;
      if (d.isDirectory() && depth < MAX_DEPTH && !NOT_SITES.has(name) && !name.startsWith('.') && !excluded(Buffer.from(child, 'utf8').toString('latin1'))) {
        queue.push({ rel: child, depth: depth + 1 });
      }
    }
    dirs.set(rel, flags);
  }
  const sites: FoundSite[] = [];
  const configOf = (rel: string): string => (rel === '' ? 'wp-config.php' : `${rel}/wp-config.php`);
  for (const [rel, f] of dirs) {
    if (!f.settings) continue;
    let config: string | null = null;
    if (f.config) config = configOf(rel);
    else if (rel !== '') {
      const parent = rel.includes('/') ? rel.slice(0, rel.lastIndexOf('/')) : '';
      const p = dirs.get(parent);
      if (p?.config && !p.settings) config = configOf(parent);
    }
    if (config === null) continue;
    sites.push({ folder: rel, config, reading: readWpConfig(`${home}/${config}`) });
  }
  sites.sort((a, b) => (a.folder < b.folder ? -1 : a.folder > b.folder ? 1 : 0));
  return { sites, truncated };
}

/** The worker's 'sites' mode: the result as JSON on fd 3. */
export function runSiteFinder(opts: { home: string; excludes: string[] }): void {
  const out = new SyncOutput(3, 1 << 16);
  out.write(Buffer.from(JSON.stringify(findSites(opts.home, opts.excludes))));
  out.flush();
}
