import type { Readable, Writable } from 'node:stream';

/**
 * Everything the engine needs from a place that stores snapshots: a core every driver has
 * (`Destination`) and capabilities some have (`hardLinks`). Paths are relative
 * to the destination's root, '/'-separated, and made only by Tidemark (account names,
 * snapshot ids, blob numbers): never bytes that came from an account.
 * The same conformance suite (test/destination-conformance) runs against every driver.
 */
export interface DirEntry {
  name: string;
  type: 'file' | 'dir' | 'link' | 'other';
  size: number;
  /**
   * When the storage last wrote it, by the storage's own clock (an object store's
   * LastModified). The object sweep compares these times with one another only, never with
   * this server's clock, so servers with skewed clocks sharing a destination stay safe.
   */
  mtimeMs: number;
}

export interface SpaceInfo {
  totalBytes: number;
  freeBytes: number;
}

/** A stored file open for reads at any position (see Destination.openForReads). */
export interface FileReader {
  readonly size: number;
  /** Up to `length` bytes from `position`, in a new Buffer; shorter only at the end of the file. */
  read(position: number, length: number): Buffer;
  close(): void;
  /**
   * Hands the open descriptor to the caller (who closes it) and leaves the reader closed: a
   * regular file, opened read-only without following a link (local destinations only).
   */
  release?(): number;
}

/** What openForReads found: only a regular file is opened. */
export type OpenedForReads = { type: 'file'; reader: FileReader } | { type: 'dir' | 'link' | 'other' | 'missing' };

/** What openManyForReads found for one name: a regular file's descriptor (the caller's to close), or why not. */
export type OpenedFd = { type: 'file'; fd: number; size: number } | { type: 'dir' | 'link' | 'other' | 'missing' } | { type: 'error'; error: Error };

/**
 * How a reader of many files (readSmallFiles) says when it has room for more: `room()` is
 * null when the driver may read on, else a promise resolved once it may.
 */
export interface ReadFlow {
  room(): Promise<void> | null;
}

export interface Destination {
  readonly type: string;
  /** Prepare the root (create it, write tidemark.json when missing); errors are clear and typed. */
  open(): Promise<void>;
  close(): Promise<void>;
  mkdir(rel: string): Promise<void>;
  /**
   * Writes a whole small file atomically: a temporary name, its content flushed to stable
   * storage, then renamed over `rel`. The rename itself is durable only after `flush` of
   * the folder that holds `rel`. Like createWriteStream and rename, it makes the folders
   * that lead to `rel` when they are missing.
   */
  writeFile(rel: string, data: Buffer | string): Promise<void>;
  /**
   * A stream writing `rel` (created or truncated); the file is complete once the stream has
   * finished, and durable once `flush` has resolved after that.
   */
  createWriteStream(rel: string): Writable;
  readFile(rel: string): Promise<Buffer>;
  /** Reads `rel` from byte `start` (inclusive) to `end` (exclusive), or to its end. */
  createReadStream(rel: string, range?: { start: number; end?: number }): Readable;
  exists(rel: string): Promise<boolean>;
  list(rel: string): Promise<DirEntry[]>;
  /** Renames a file or a tree. A renamed file appears under `to` whole or not at all. */
  rename(from: string, to: string): Promise<void>;
  /** Removes a file or a whole directory tree; missing is not an error. */
  remove(rel: string): Promise<void>;
  space(): Promise<SpaceInfo>;
  /**
   * The flush contract: once `flush(dirs)` resolves, a power cut or a crash of the machine
   * that holds the destination loses nothing of
   * - the content of every file this driver finished writing (writeFile, createWriteStream)
   *   or linked (hardLinks.link, hardLinks.cloneTree) since it was opened, and
   * - the entries of each folder in `dirs` (the names made in it by mkdir, writeFile, link
   *   and rename), where the driver can flush folders (see each driver).
   * Subfolders are not implied: a caller names every folder whose entries must last. It
   * throws when the storage reports that something written did not reach it (EIO, ENOSPC),
   * so that nothing is committed on top of it. Drivers batch the work (Local flushes the
   * filesystem once, SSH flushes each file as it is closed), so callers flush once per
   * commit step, never per file.
   */
  flush(dirs: string[]): Promise<void>;
  /**
   * Optional: starts writing out what was written so far and returns at once, so that the
   * storage writes while the caller goes on producing instead of all at its final flush. It
   * makes nothing durable by itself (only `flush` does); at most one write-out runs at a
   * time (a call meanwhile does nothing); an error it meets is thrown by the next `flush`,
   * which first waits for it.
   */
  flushAhead?(): void;
  /**
   * Optional, for drivers whose reads cost microseconds (local files): opens `rel` for
   * synchronous positioned reads, never following a link and never opening anything but a
   * regular file. Restores read the content of many small files this way, without a
   * stream (and its buffers) per file.
   */
  openForReads?(rel: string): OpenedForReads;
  /**
   * Optional, for local files with the native addon: opens the files `names` (single
   * components) of the folder `dir` read-only at once, off the event loop, with the refusals
   * of openForReads (only a regular file is opened, never through a link, and it is the same
   * file that was looked at). One outcome per name, in order; a folder that is missing makes
   * every name missing. null: this driver cannot here (use openForReads).
   */
  openManyForReads?(dir: string, names: readonly string[]): Promise<OpenedFd[] | null>;
  /**
   * Optional, for local files: writes the whole content of a small file at once (created or
   * truncated, as createWriteStream; durable once `flush` has resolved after it), without a
   * stream per file, and resolves with the SHA-256 of the bytes written, computed by this
   * process (off the event loop where it can) once they are written. A driver that sends
   * small files in batches (SSH with GNU tar on the server) resolves once the batch has taken
   * the file: it is readable, and a failure to write it reported, once `flush` (or a rename
   * of a folder that holds it) has resolved.
   */
  writeSmallFile?(rel: string, parts: Buffer[]): Promise<Buffer>;
  /**
   * Optional, for local files: opens `rel` for writing (created or truncated, as
   * createWriteStream; durable once `flush` has resolved after it is closed) and returns the
   * descriptor, for a writer on libuv's pool. The caller closes it.
   */
  openWriteFd?(rel: string): number;
  /**
   * Optional, for remote drivers whose every request waits for an answer: the first `size`
   * bytes of `rel` (fewer when it is shorter), read without a stream, as createReadStream
   * would read them. Restores read ahead the content of many small files this way.
   */
  readSmallFile?(rel: string, size: number): Promise<Buffer>;
  /**
   * Optional, with readSmallFile: the files `files` as readSmallFile reads each, fetched
   * together (one exchange where the driver can). One promise per file, in the same order; a
   * failure fails its own file only. A file's content is one Buffer or its pieces in order (as
   * they came, not joined). Restores hand over thousands at once, with `flow`: the driver
   * waits for `flow.room()` before it reads on (so that no more than the reader's window is
   * held in memory, however many files are asked for).
   */
  readSmallFiles?(files: readonly { rel: string; size: number }[], flow?: ReadFlow): Promise<Buffer | Buffer[]>[];
  /** Remote drivers: bytes sent over the network so far, for reports. */
  bytesSent?(): number;
  /** How many files the engine may have in transfer at once (opens and closes overlap). */
  readonly parallelism: number;
  /**
   * How many small files (writeSmallFile) may be in transfer at once, where that differs from
   * `parallelism`: a remote driver that writes one in a single exchange waits mostly for answers.
   */
  readonly smallFileParallelism?: number;
  /**
   * Present on drivers whose storage has hard links (Local, SSH). Without it (object
   * stores), incremental snapshots keep each content once as an object named by its hash
   * and their indexes refer to it (docs/snapshot-format.md, "Object layout").
   */
  readonly hardLinks?: HardLinks;
}

/** A capability: the destination's storage can give one file several names. */
export interface HardLinks {
  /** Hard link `existing` as `created` (both files on this destination). */
  link(existing: string, created: string): Promise<void>;
  /** Number of hard links of a file (used by tests and reports). */
  linkCount(rel: string): Promise<number>;
  /**
   * Makes the new tree `to` (which must not exist) with every file of the tree `from`
   * hard-linked into it: a point-in-time copy that costs no space. What it linked is
   * covered by the flush contract like what was written.
   */
  cloneTree(from: string, to: string): Promise<void>;
  /**
   * Whether cloneTree runs on the server as one operation (a remote `cp -al`). Then an
   * incremental run clones the previous snapshot's content and prunes what changed,
   * instead of asking for one link per unchanged file.
   */
  cloneIsServerSide(): Promise<boolean>;
  /**
   * Optional, where links are made in batches: hard links blob n of the folder `from` as
   * blob n of the folder `to`, for each n, a blob being named `XXXX/NNNNNNNN` (n / 1024 and
   * n in lowercase hex, as the incremental layout names them); `to`'s folders are made.
   */
  linkBlobs?(from: string, to: string, blobs: Uint32Array): Promise<void>;
}

export class DestinationError extends Error {
  constructor(message: string, readonly code: 'unreachable' | 'not-writable' | 'no-space' | 'not-found' | 'invalid' | 'insecure' | 'io') {
    super(message);
    this.name = 'DestinationError';
  }
}
