import { nativeAddon } from './addon.js';

/** Writes several new files, each with its SHA-256, as one job (native/write-file.c writeNewFiles). */
export type BatchWriter = (paths: string[], parts: Buffer[], counts: number[], mode: number) => Promise<(Buffer | number)[]>;

interface Addon {
  writeNewFile(path: string, parts: Buffer[], mode: number, hash: boolean): Promise<Buffer | undefined>;
  hashSupported(): boolean;
}

interface BatchAddon {
  writeNewFiles: BatchWriter;
}

const addon = nativeAddon<Addon>('writeNewFile', 'hashSupported');
const batchAddon = nativeAddon<BatchAddon>('writeNewFiles');

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

/**
 * writeNewFileOffLoop with the hash for several files in one pool job: file i gets the next
 * counts[i] buffers of `parts`; each result is its SHA-256 or the errno that failed it. null
 * without the addon or its SHA-256.
 */
export function newFilesWriter(): BatchWriter | null {
  if (!batchAddon || !hashes) return null;
  return batchAddon.writeNewFiles.bind(batchAddon);
}
