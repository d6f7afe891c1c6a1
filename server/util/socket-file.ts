import fs from 'node:fs';
import path from 'node:path';

/** A Unix socket file this process bound: which file it is, to remove it at exit only if it is still that one. */
export interface BoundSocket { file: string; dev: number; ino: number }

/** Notes the socket file just bound at `file` (from the server's 'listening'); null when it is not there as a socket. */
export function noteBoundSocket(file: string): BoundSocket | null {
  const st = fs.lstatSync(file, { throwIfNoEntry: false });
  return st?.isSocket() ? { file, dev: st.dev, ino: st.ino } : null;
}

/**
 * Whether nobody but this process's user (or root) can add, rename or replace entries of `dir`:
 * it and every folder above it are theirs and not group- or world-writable (a sticky folder such
 * as /tmp is fine: nobody else can rename or replace an entry of ours in it). A link on the way
 * (Debian's /var/run -> /run) is taken only when it is theirs too, in a folder so checked, and
 * then where it leads is checked the same way; any other link is refused.
 */
function onlyOursCanChange(dir: string): boolean {
  const uid = process.getuid?.() ?? 0;
  const ours = (st: fs.Stats): boolean => st.uid === uid || st.uid === 0;
  let sawLink = false;
  for (let d = dir; ; d = path.dirname(d)) {
    const st = fs.lstatSync(d, { throwIfNoEntry: false });
    if (!st) return false;
    if (st.isSymbolicLink()) {
      // Its folder is checked next round: nobody else can replace the link.
      if (!ours(st)) return false;
      sawLink = true;
    } else {
      if (!st.isDirectory() || !ours(st)) return false;
      const sticky = (st.mode & 0o1000) !== 0;
      // The folder the socket is in must be closed itself; one above may be sticky.
      if ((st.mode & 0o022) !== 0 && (d === dir || !sticky)) return false;
    }
    if (d === path.dirname(d)) break;
  }
  if (!sawLink) return true;
  const real = fs.realpathSync(dir);
  return real !== dir && onlyOursCanChange(real);
}

/**
 * Removes the socket file at a clean exit, so that none is left behind for a client to find
 * (and try) while no daemon listens. Only when it is still the very file bound here (same device
 * and inode: another daemon may have bound the name since) and only in a folder that nobody but
 * the daemon's user can change: root never removes what another user could have put in its place.
 * Returns whether it was removed. Never throws.
 */
export function removeBoundSocket(bound: BoundSocket | null): boolean {
  if (bound === null) return false;
  try {
    if (!onlyOursCanChange(path.dirname(bound.file))) return false;
    const st = fs.lstatSync(bound.file, { throwIfNoEntry: false });
    if (!st?.isSocket() || st.dev !== bound.dev || st.ino !== bound.ino) return false;
    fs.unlinkSync(bound.file);
    return true;
  } catch {
    return false;
  }
}
