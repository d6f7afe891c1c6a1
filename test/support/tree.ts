import fs from 'node:fs';
import crypto from 'node:crypto';
import path from 'node:path';

/** Everything about a tree that a restore must reproduce, keyed by path bytes (latin1). */
export interface TreeEntry {
  type: 'file' | 'dir' | 'symlink' | 'fifo' | 'other';
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtimeNs: bigint;
  sha?: string;
  target?: string;
  inodeGroup?: string;
}

export function snapshotTree(root: string, opts: { skip?: (rel: string) => boolean } = {}): Map<string, TreeEntry> {
  const out = new Map<string, TreeEntry>();
  const inodes = new Map<string, string>();
  const rootBuf = Buffer.from(root);
  const walk = (rel: string): void => {
    const p = rel === '' ? rootBuf : Buffer.concat([rootBuf, Buffer.from('/'), Buffer.from(rel, 'latin1')]);
    const st = fs.lstatSync(p, { bigint: true });
    const mode = Number(st.mode) & 0o7777;
    const base = { mode, uid: Number(st.uid), gid: Number(st.gid), mtimeNs: st.mtimeNs, size: 0 };
    if (st.isDirectory()) {
      out.set(rel, { ...base, type: 'dir' });
      for (const name of fs.readdirSync(p, { encoding: 'buffer' })) {
        const child = rel === '' ? name.toString('latin1') : `${rel}/${name.toString('latin1')}`;
        if (opts.skip?.(child)) continue;
        walk(child);
      }
    } else if (st.isSymbolicLink()) {
      out.set(rel, { ...base, type: 'symlink', target: fs.readlinkSync(p, { encoding: 'buffer' }).toString('latin1') });
    } else if (st.isFile()) {
      const key = `${st.dev}:${st.ino}`;
      if (!inodes.has(key)) inodes.set(key, rel);
      out.set(rel, { ...base, type: 'file', size: Number(st.size), sha: crypto.createHash('sha256').update(fs.readFileSync(p)).digest('hex'), inodeGroup: inodes.get(key)! });
    } else if (st.isFIFO()) {
      out.set(rel, { ...base, type: 'fifo' });
    } else {
      out.set(rel, { ...base, type: 'other' });
    }
  };
  walk('');
  return out;
}

/** Differences between two trees, as readable lines (empty = identical). mtimes compared to the microsecond. */
export function diffTrees(a: Map<string, TreeEntry>, b: Map<string, TreeEntry>, opts: { ignoreRootTimes?: boolean } = {}): string[] {
  const out: string[] = [];
  const show = (p: string): string => JSON.stringify(Buffer.from(p, 'latin1').toString('utf8'));
  for (const [p, ea] of a) {
    const eb = b.get(p);
    if (!eb) { out.push(`missing ${show(p)}`); continue; }
    for (const k of ['type', 'mode', 'uid', 'gid', 'size', 'sha', 'target', 'inodeGroup'] as const) {
      if (ea[k] !== eb[k]) out.push(`${show(p)}: ${k} ${String(ea[k])} != ${String(eb[k])}`);
    }
    const skipTime = (p === '' && opts.ignoreRootTimes);
    // Node (libuv) sets file times to the microsecond.
    if (!skipTime && ea.mtimeNs / 1000n !== eb.mtimeNs / 1000n) out.push(`${show(p)}: mtime ${ea.mtimeNs} != ${eb.mtimeNs}`);
  }
  for (const p of b.keys()) if (!a.has(p)) out.push(`extra ${show(p)}`);
  return out;
}

/** Every file under a directory with its bytes, mode and mtime: what "intact" means. */
export function hashTree(dir: string): string {
  const h = crypto.createHash('sha256');
  const walk = (p: string): void => {
    for (const n of fs.readdirSync(p).sort()) {
      const q = path.join(p, n);
      const st = fs.lstatSync(q);
      h.update(`${path.relative(dir, q)}\0${st.mode}\0${st.mtimeMs}\0`);
      if (st.isDirectory()) walk(q); else if (st.isFile()) h.update(fs.readFileSync(q));
    }
  };
  walk(dir);
  return h.digest('hex');
}

/** Every `.tidemark-*` name (a restore's temporary names) anywhere below `root`. */
export function tidemarkLeftovers(root: string): string[] {
  const found: string[] = [];
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      if (e.name.startsWith('.tidemark-')) found.push(path.join(d, e.name));
      if (e.isDirectory()) walk(path.join(d, e.name));
    }
  };
  walk(root);
  return found;
}
