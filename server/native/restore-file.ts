import { nativeAddon } from './addon.js';

interface Addon {
  restoreNewFile(path: Buffer, parts: Buffer[], mode: number, uid: number, gid: number, sec: number, nsec: number): Promise<number>;
}

const addon = nativeAddon<Addon>('restoreNewFile');

/** How the owner went: 0 set (or not asked for), 1 only the group (the uid was refused), 2 neither. */
export type OwnerOutcome = 0 | 1 | 2;

/**
 * Creates `path` (O_EXCL|O_NOFOLLOW: EEXIST or ELOOP when anything is at the name, never
 * followed), writes `parts` in full, sets owner (uid and gid -1: left as created), mode and
 * times to the nanosecond, and closes it: one job on libuv's pool, run with the caller's
 * uid. A file the job created and could not complete is removed. null when the addon is not built.
 */
export function restoreNewFileOffLoop(path: Buffer, parts: Buffer[], mode: number, uid: number, gid: number, sec: number, nsec: number): Promise<OwnerOutcome> | null {
  if (!addon) return null;
  return addon.restoreNewFile(path, parts, mode, uid, gid, sec, nsec) as Promise<OwnerOutcome>;
}

export const restoreNewFileSupported = (): boolean => addon !== null;
