import os from 'node:os';
import { nativeAddon } from './addon.js';

const { EINVAL } = os.constants.errno;

interface Addon {
  openFilesAt(dirFd: number, names: string): Promise<Float64Array>;
}

const addon = nativeAddon<Addon>('openFilesAt');

/** At most this many names go to one openFilesAt call. */
export const MAX_NAMES_PER_OPEN = 4096;

/** What openFilesAt found for one name: only a regular file is opened. */
export type OpenedAt =
  | { type: 'file'; fd: number; size: number }
  | { type: 'missing' | 'dir' | 'link' | 'other' }
  | { type: 'error'; errno: number };

const KINDS = ['file', 'missing', 'dir', 'link', 'other', 'error'] as const;

export const openFilesAtSupported = (): boolean => addon !== null;

/**
 * Opens the files `names` (single components) of the folder open as `dirFd`, read-only, in
 * one job on libuv's pool (native/open-files.c): each is looked at without following a link
 * first, and opened only if it is a regular file, with O_NOFOLLOW, then checked to be the same
 * inode. The caller closes each descriptor it gets.
 */
export async function openFilesAt(dirFd: number, names: readonly string[]): Promise<OpenedAt[]> {
  if (!addon) throw new Error('the native addon is not built');
  if (names.length > MAX_NAMES_PER_OPEN) throw new RangeError(`openFilesAt: at most ${MAX_NAMES_PER_OPEN} names`);
  if (names.length === 0) return [];
  // A name holding '/' would be split into two, each refused or not on its own: refused here whole.
  const bad = names.map((n) => n.includes('/'));
  const raw = await addon.openFilesAt(dirFd, names.map((n, i) => (bad[i] ? '' : n)).join('/'));
  const out: OpenedAt[] = [];
  for (let i = 0; i < names.length; i++) {
    const kind = bad[i] ? 'error' : KINDS[raw[3 * i]!] ?? 'error';
    if (kind === 'file') out.push({ type: 'file', fd: raw[3 * i + 1]!, size: raw[3 * i + 2]! });
    else if (kind === 'error') out.push({ type: 'error', errno: bad[i] ? EINVAL : raw[3 * i + 1]! });
    else out.push({ type: kind });
  }
  return out;
}
