import { nativeAddon } from './addon.js';

interface Addon {
  writeNewFile(path: string, parts: Buffer[], mode: number, hash: boolean): Promise<Buffer | undefined>;
  hashSupported(): boolean;
}

const addon = nativeAddon<Addon>('writeNewFile', 'hashSupported');

const hashes = addon?.hashSupported() ?? false;

/**
 * Creates or truncates `path` (never through a symlink at it: ELOOP), writes `parts` in full
 * and closes it, as one job on libuv's pool; with `hash`, resolves with the SHA-256 of what
 * was written. null when the addon is not built (or, with `hash`, has no SHA-256): the caller
 * writes the file itself.
 */
export function writeNewFileOffLoop(path: string, parts: Buffer[], mode: number, hash: boolean): Promise<Buffer | undefined> | null {
  if (!addon || (hash && !hashes)) return null;
  return addon.writeNewFile(path, parts, mode, hash);
}
