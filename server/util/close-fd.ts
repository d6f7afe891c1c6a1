import fs from 'node:fs';

/** Closes a descriptor, ignoring that it is already closed. */
export function closeQuietly(fd: number): void {
  try { fs.closeSync(fd); } catch { /* already closed */ }
}
