import fs from 'node:fs';
import crypto from 'node:crypto';

const O_READ = fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK;
const PIECE = 1 << 20;
let piece: Buffer | null = null;

/**
 * An in-place restore meets a file that is already there: when it is the account's own
 * regular file with one name, of the snapshot's size, whose content has the SHA-256 root
 * sent for the snapshot's copy, its bytes are already exact and need not be written again.
 * Returns it open for reading (the restore sets owner, mode and times through this fd), or
 * -1 when it must be replaced (temporary name and rename) as any other existing entry.
 * Reading and hashing a file costs far less than writing it anew and renaming it over the
 * old one (a rename over a file makes ext4 allocate and start writing the new one at once).
 */
export function openIfUnchanged(path: Buffer, size: number, expected: Buffer, uid: number): number {
  let fd: number;
  try {
    fd = fs.openSync(path, O_READ);
  } catch {
    return -1;
  }
  try {
    const st = fs.fstatSync(fd);
    // Another name of the inode would see the new owner, mode and times: replaced instead.
    if (!st.isFile() || st.nlink !== 1 || st.uid !== uid || st.size !== size) throw new Error('differs');
    const hash = crypto.createHash('sha256');
    piece ??= Buffer.allocUnsafe(PIECE);
    let pos = 0;
    while (pos < size) {
      const n = fs.readSync(fd, piece, 0, Math.min(PIECE, size - pos), pos);
      if (n === 0) throw new Error('shrank');
      hash.update(piece.subarray(0, n));
      pos += n;
    }
    if (!hash.digest().equals(expected)) throw new Error('differs');
    return fd;
  } catch {
    fs.closeSync(fd);
    return -1;
  }
}
