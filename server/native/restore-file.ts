import { nativeAddon } from './addon.js';

interface Addon {
  restoreNewFile(path: Buffer, parts: Buffer[], mode: number, uid: number, gid: number, sec: number, nsec: number, hash: Buffer | null): Promise<number>;
  restoreFileFrom(path: Buffer, fd: number, offset: number, size: number, hash: Buffer | null, mode: number, uid: number, gid: number, sec: number, nsec: number, closeFd: boolean): Promise<number>;
}

const addon = nativeAddon<Addon>('restoreNewFile');

/** How the owner went: 0 set (or not asked for), 1 only the group (the uid was refused), 2 neither. */
export type OwnerOutcome = 0 | 1 | 2;

/**
 * Creates `path` (O_EXCL|O_NOFOLLOW: EEXIST or ELOOP when anything is at the name, never
 * followed), writes `parts` in full, sets owner (uid and gid -1: left as created), mode and
 * times to the nanosecond, and closes it: one job on libuv's pool, run with the caller's
 * uid. A file the job created and could not complete is removed. With `hash` the parts are
 * checked against that SHA-256 first, in the job: content that differs rejects with `stage`
 * "damaged" (`damage` "hash") and nothing is created. null when the addon is not built.
 */
export function restoreNewFileOffLoop(path: Buffer, parts: Buffer[], mode: number, uid: number, gid: number, sec: number, nsec: number, hash: Buffer | null = null): Promise<OwnerOutcome> | null {
  if (!addon) return null;
  return addon.restoreNewFile(path, parts, mode, uid, gid, sec, nsec, hash) as Promise<OwnerOutcome>;
}

export const restoreNewFileSupported = (): boolean => addon !== null;

const hashAddon = nativeAddon<{ hashSupported(): boolean }>('hashSupported');
/** Whether restoreNewFileOffLoop can check a hash in its job (the addon found Node's SHA-256). */
export const restoreNewFileChecks = (): boolean => addon !== null && hashAddon !== null && hashAddon.hashSupported();

const fromAddon = nativeAddon<Addon>('restoreFileFrom');

/**
 * restoreNewFileOffLoop for content that `size` bytes at `offset` of the open file `fd` hold
 * (a stored blob or the archive, handed over by root): read, checked against `hash` (when not
 * null) and written by the job. A damaged copy is never left under the name: the job rejects
 * with `stage` "damaged" and `damage` "hash" or "short"; "read" when the stored copy could not
 * be read. With `closeFd` the job closes `fd` when done, except after stage "open" (the caller
 * still holds it then). null when the addon is not built.
 */
export function restoreFileFromOffLoop(path: Buffer, fd: number, offset: number, size: number, hash: Buffer | null, mode: number, uid: number, gid: number, sec: number, nsec: number, closeFd: boolean): Promise<OwnerOutcome> | null {
  if (!fromAddon) return null;
  return fromAddon.restoreFileFrom(path, fd, offset, size, hash, mode, uid, gid, sec, nsec, closeFd) as Promise<OwnerOutcome>;
}

export const restoreFileFromSupported = (): boolean => fromAddon !== null;

/** What a batched file is checked against and given: its hash, mode, owner and mtime. */
interface RestoredFile {
  path: Buffer;
  hash: Buffer | null;
  mode: number;
  uid: number;
  gid: number;
  sec: number;
  nsec: number;
}

/** One file of restoreFilesFromOffLoop: restoreFileFromOffLoop's arguments. */
export interface FileFrom extends RestoredFile {
  fd: number;
  offset: number;
  size: number;
  closeFd: boolean;
}

/** One file's result in a batch: its owner outcome, or the error restoreFileFromOffLoop rejects with. */
export type FileOutcome = OwnerOutcome | (NodeJS.ErrnoException & { stage?: string; damage?: string });

/** The most files one restoreFilesFromOffLoop call takes. */
export const MAX_FILES_FROM = 256;
const FIELDS = 10;

const batchAddon = nativeAddon<{ restoreFilesFrom(paths: Buffer[], numbers: Float64Array, hashes: Buffer): Promise<(number | Error)[]> }>('restoreFilesFrom');

/**
 * restoreFileFromOffLoop for 1 to MAX_FILES_FROM files in one job on libuv's pool, one after
 * the other: one call, one wake-up and one promise for the batch. Resolves with one value
 * per file, in order: its OwnerOutcome, or the error restoreFileFromOffLoop would have
 * rejected with (`stage`, `damage`); a file that fails does not stop the others. null when
 * the addon is not built.
 */
export function restoreFilesFromOffLoop(files: readonly FileFrom[]): Promise<FileOutcome[]> | null {
  if (!batchAddon) return null;
  const numbers = new Float64Array(files.length * FIELDS);
  const hashes = Buffer.alloc(files.length * 32);
  const paths: Buffer[] = new Array<Buffer>(files.length);
  // Field by field: an array literal per file for numbers.set() was a garbage object per file.
  for (let i = 0; i < files.length; i++) {
    const f = files[i]!;
    const at = i * FIELDS;
    numbers[at] = f.fd;
    numbers[at + 1] = f.offset;
    numbers[at + 2] = f.size;
    numbers[at + 3] = f.mode;
    numbers[at + 4] = f.uid;
    numbers[at + 5] = f.gid;
    numbers[at + 6] = f.sec;
    numbers[at + 7] = f.nsec;
    numbers[at + 8] = f.closeFd ? 1 : 0;
    numbers[at + 9] = f.hash ? 1 : 0;
    f.hash?.copy(hashes, i * 32);
    paths[i] = f.path;
  }
  return batchAddon.restoreFilesFrom(paths, numbers, hashes) as Promise<FileOutcome[]>;
}

/** One file of restoreNewFilesOffLoop: restoreNewFileOffLoop's arguments. */
export interface NewFile extends RestoredFile {
  parts: Buffer[];
}

const NEW_FIELDS = 6;
const newBatchAddon = nativeAddon<{ restoreNewFiles(paths: Buffer[], parts: Buffer[][], numbers: Float64Array, hashes: Buffer): Promise<(number | Error)[]> }>('restoreNewFiles');

/**
 * restoreNewFileOffLoop for 1 to MAX_FILES_FROM files whose content is here, in one job on
 * libuv's pool, one after the other: one call, one wake-up and one promise for the batch.
 * Each file is checked (with a hash) before it is created, created with O_EXCL|O_NOFOLLOW,
 * and has its own outcome, in order: its OwnerOutcome, or the error restoreNewFileOffLoop
 * would have rejected with (`stage` "damaged", "open" or "write"). The parts stay untouched
 * until the promise settles. null when the addon is not built.
 */
export function restoreNewFilesOffLoop(files: readonly NewFile[]): Promise<FileOutcome[]> | null {
  if (!newBatchAddon) return null;
  const numbers = new Float64Array(files.length * NEW_FIELDS);
  const hashes = Buffer.alloc(files.length * 32);
  files.forEach((f, i) => {
    const at = i * NEW_FIELDS;
    numbers[at] = f.mode;
    numbers[at + 1] = f.uid;
    numbers[at + 2] = f.gid;
    numbers[at + 3] = f.sec;
    numbers[at + 4] = f.nsec;
    numbers[at + 5] = f.hash ? 1 : 0;
    f.hash?.copy(hashes, i * 32);
  });
  return newBatchAddon.restoreNewFiles(files.map((f) => f.path), files.map((f) => f.parts), numbers, hashes) as Promise<FileOutcome[]>;
}

