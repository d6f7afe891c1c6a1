import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import crypto from 'node:crypto';
import { PassThrough, type Readable, type Writable } from 'node:stream';
import { DestinationError, type DirEntry, type Destination, type FileReader, type HardLinks, type OpenedFd, type OpenedForReads, type SpaceInfo } from './types.js';
import { describeFsError } from './errors.js';
import { chainProblems, describeProblems, NEVER_ACCEPTED, pathSyntaxProblem } from './local-path-security.js';
import { syncFilesystem } from '../native/syncfs.js';
import { parentOf } from '../util/byte-path.js';
import { newFilesWriter, writeNewFileOffLoop } from '../native/write-file.js';
import { SmallFileBatch } from './small-file-batch.js';
import { canLinkOffLoop, linkBlobsOffLoop, linkError, linkManyOffLoop } from '../native/link-many.js';
import { MAX_NAMES_PER_OPEN, openFilesAt, openFilesAtSupported } from '../native/open-files.js';
import { getSystemErrorName } from 'node:util';

export const FORMAT_VERSION = 1;
/** A component `.` or `..` anywhere in a relative path. */
const DOT_COMPONENT = /(^|\/)\.\.?(\/|$)/;

const { O_RDONLY, O_WRONLY, O_CREAT, O_TRUNC, O_NOFOLLOW, O_DIRECTORY, O_NONBLOCK } = fs.constants;
/** Hard links made by one job on libuv's pool. */
const LINK_BATCH = 128;
/** A blob's folder and name below an incremental snapshot's `files/` (as snapshot-layout.ts names them). */
const blobFolder = (n: number): string => Math.floor(n / 1024).toString(16).padStart(4, '0');
const blobName = (n: number): string => `${blobFolder(n)}/${n.toString(16).padStart(8, '0')}`;

interface LinkBatch { existing: string[]; created: string[]; waiters: { resolve: () => void; reject: (err: unknown) => void; rel: string }[] }

/** Folders fsynced at once when only folder entries need flushing. */
const FOLDER_FLUSHES_IN_FLIGHT = 16;
/**
 * Up to this many files written or linked since the last flush, `flush` fsyncs each of them
 * and the folders they are in instead of syncfs(2) of the whole filesystem: a small snapshot
 * (an empty or small account) then waits only for its own writes, not for whatever else is
 * dirty on a filesystem it shares.
 */
export const FILES_FSYNCED_ONE_BY_ONE = 256;
const WRITABLE_BY_GROUP_OR_OTHERS = 0o022;

export interface LocalOptions {
  /**
   * Problems of the path (PathProblem keys) the provider accepted with --force-insecure-path.
   * Any other problem, a new one included, stops every use of the destination.
   */
  acceptedRisks?: readonly string[];
  /** syncfs(2) of the filesystem that holds an open folder (tests put a failing one in its place). */
  syncFilesystem?: (fd: number, dir: string) => Promise<void>;
}

/**
 * A directory on this server (a mounted disk, NFS, …). Everything it writes is
 * root-only: ownership and modes of the backed-up files live in the index.
 *
 * Root never follows a symbolic link here: the chain from `/` to the root is checked
 * (local-path-security.ts) before the first use of each driver, and every directory under
 * the root is checked with lstat before a path through it is used (a link, or a directory
 * not owned by root or writable by others, is refused); files are opened with O_NOFOLLOW.
 */
/** Small files in flight at once when they go in batches (BlobSink also bounds their bytes). */
const SMALL_FILES_IN_FLIGHT = 64;

export class LocalDestination implements Destination, HardLinks {
  /** Both capabilities live on the driver itself. */
  readonly hardLinks: HardLinks = this;
  readonly type = 'local';
  /** Local files open and close in microseconds; a few in flight keep the disk busy. */
  readonly parallelism = 8;
  /** Small files go to the pool in batches (small-file-batch.ts): many in flight cost one job per batch. */
  readonly smallFileParallelism: number | undefined;
  private readonly smallFiles: SmallFileBatch | null;
  private readonly root: string;
  private readonly accepted: ReadonlySet<string>;
  private rootChecked = false;
  /** Directories under the root (relative) found safe by this driver. */
  private readonly safeDirs = new Set<string>();
  /**
   * The root, open from `open()` on: syncfs(2) through it reports the write errors of
   * everything written after it was opened (an fd opened later would not see them).
   */
  private rootFd: number | null = null;
  /** File content written (or linked) since the last flush. */
  private unflushedData = false;
  /**
   * What was written since the last flush, while it is few enough to fsync one by one: the
   * files written or linked, and the folders whose entries changed. null: too many, or
   * changes not tracked one by one (a cloned tree, a renamed folder holding such files), so
   * the next flush is a syncfs.
   */
  private unflushed: { files: Set<string>; folders: Set<string> } | null = { files: new Set(), folders: new Set() };
  private readonly syncFs: (fd: number, dir: string) => Promise<void>;
  /** Files opened for writing by stream or descriptor (an archive, a large blob, an index) since the last flush. */
  private streamed = new Set<string>();
  /** The write-out flushAhead started, while it runs. */
  private aheadRunning: Promise<void> | null = null;
  /** The first error a write-out by flushAhead met: syncfs(2) reports it once per descriptor, so the next flush throws it. */
  private aheadFailure: Error | null = null;

  constructor(root: string, opts: LocalOptions = {}) {
    const bad = pathSyntaxProblem(root);
    if (bad) throw new DestinationError(`the destination path ${bad}: ${root}`, 'invalid');
    this.root = path.resolve(root);
    this.accepted = new Set(opts.acceptedRisks ?? []);
    this.syncFs = opts.syncFilesystem ?? syncFilesystem;
    const writer = newFilesWriter();
    this.smallFiles = writer ? new SmallFileBatch(writer, 0o600) : null;
    this.smallFileParallelism = writer ? SMALL_FILES_IN_FLIGHT : undefined;
  }

  private abs(rel: string): string {
    if (rel.startsWith('/') || DOT_COMPONENT.test(rel) || rel.includes('\0')) {
      throw new DestinationError(`invalid path on destination: ${rel}`, 'invalid');
    }
    if (rel === '') return this.root;
    // Called several times per file of a backup: path.join only differs from the concatenation
    // when it has empty components to collapse (or the root is `/`).
    return rel.includes('//') || rel.endsWith('/') || this.root === '/' ? path.join(this.root, rel) : `${this.root}/${rel}`;
  }

  /** The chain from `/` to the root, checked once per driver (a driver lives for one task). */
  private checkRoot(): void {
    if (this.rootChecked) return;
    const problems = chainProblems(this.root);
    const missing = problems.find((p) => p.issue === 'missing');
    if (missing) throw new DestinationError(`the destination path ${this.root} does not exist (create or mount it first)`, 'unreachable');
    const refused = problems.filter((p) => NEVER_ACCEPTED.includes(p.issue) || !this.accepted.has(p.key));
    if (refused.length > 0) {
      throw new DestinationError(`${describeProblems(this.root, refused)}. A non-root user could redirect or read what root writes there: `
        + 'use a directory whose every parent is a real directory owned by root and writable only by root', 'insecure');
    }
    this.rootChecked = true;
  }

  /**
   * Checks (and with `create`, makes) the directory `rel` under the root, component by
   * component with lstat; returns its absolute path. Missing without `create`: not-found.
   */
  private safeDir(rel: string, create: boolean): string {
    this.checkRoot();
    if (rel === '') return this.root;
    const abs = this.abs(rel);
    if (this.safeDirs.has(rel)) return abs;
    const slash = rel.lastIndexOf('/');
    this.safeDir(slash < 0 ? '' : rel.slice(0, slash), create);
    let st: fs.Stats;
    try {
      st = fs.lstatSync(abs);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || !create) throw describeFsError(err, rel);
      try {
        fs.mkdirSync(abs, { mode: 0o700 });
        this.unflushed?.folders.add(slash < 0 ? '' : rel.slice(0, slash));
      } catch (mkErr) {
        if ((mkErr as NodeJS.ErrnoException).code !== 'EEXIST') throw describeFsError(mkErr, rel);
      }
      st = fs.lstatSync(abs);
    }
    if (st.isSymbolicLink()) throw symlinkError(rel);
    if (!st.isDirectory()) throw new DestinationError(`not a directory on the destination: ${rel}`, 'invalid');
    if (st.uid !== 0 || (st.mode & WRITABLE_BY_GROUP_OR_OTHERS) !== 0) {
      throw new DestinationError(`the folder ${rel} on the destination is ${st.uid !== 0 ? `owned by uid ${st.uid}` : 'writable by others'}: `
        + 'only root may have made it, refusing to use it', 'insecure');
    }
    this.safeDirs.add(rel);
    return abs;
  }

  /** The absolute path of `rel`, with every directory above it checked (made with `create`). */
  private safePath(rel: string, create: boolean): string {
    if (rel === '') { this.checkRoot(); return this.root; }
    const slash = rel.lastIndexOf('/');
    this.safeDir(slash < 0 ? '' : rel.slice(0, slash), create);
    return this.abs(rel);
  }

  private forget(rel: string): void {
    for (const d of [...this.safeDirs]) if (d === rel || d.startsWith(`${rel}/`)) this.safeDirs.delete(d);
  }

  /** The root must already exist: creating it would write backups onto the system disk when a mount is missing. */
  async open(): Promise<void> {
    this.rootChecked = false;
    this.safeDirs.clear();
    await this.close();
    try {
      this.checkRoot();
      await fsp.access(this.root, fs.constants.W_OK);
      this.openRootFd();
    } catch (err) {
      throw describeFsError(err, this.root);
    }
    if (!(await this.exists('tidemark.json'))) {
      const meta = { format: 'tidemark', version: FORMAT_VERSION, serverId: crypto.randomUUID(), createdAt: new Date().toISOString() };
      await this.writeFile('tidemark.json', JSON.stringify(meta, null, 2) + '\n');
      await this.flush(['']);
    }
  }

  async close(): Promise<void> {
    // A write-out still running uses the descriptor.
    await this.aheadRunning;
    if (this.rootFd !== null) fs.closeSync(this.rootFd);
    this.rootFd = null;
  }

  private openRootFd(): number {
    this.checkRoot();
    this.rootFd ??= fs.openSync(this.root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
    return this.rootFd;
  }

  /**
   * After many files were written: one syncfs(2) of the destination's filesystem (and of any
   * other filesystem mounted under it that holds one of `dirs`). Measured on 20,000 files of
   * 8 KiB on this project's machine: 0.14-0.25 s, against 2-3 s for an fsync of each file with
   * 8 or 32 in flight. But syncfs also waits for everything else dirty on that filesystem
   * (seconds on a busy shared disk), so after at most FILES_FSYNCED_ONE_BY_ONE files: an fsync
   * of each, then of the folders they are in. When only folder entries changed (a manifest
   * written, a folder renamed): an fsync of each folder.
   */
  async flush(dirs: string[]): Promise<void> {
    await this.aheadRunning;
    try {
      if (this.aheadFailure) {
        const failure = this.aheadFailure;
        this.aheadFailure = null;
        throw failure;
      }
      const rootFd = this.openRootFd();
      // What is written from here on is for the next flush.
      const tracked = this.unflushed;
      const data = this.unflushedData;
      this.unflushed = { files: new Set(), folders: new Set() };
      this.unflushedData = false;
      this.streamed = new Set();
      if (data && tracked !== null && tracked.files.size <= FILES_FSYNCED_ONE_BY_ONE) {
        // Files and folders at once: their order does not matter, only that all are done.
        const folders = this.flushFolders([...tracked.folders, ...dirs]).then(() => null, (err: unknown) => err);
        const [allThere, folderError] = await Promise.all([this.flushOneByOne(tracked.files), folders]);
        if (allThere) {
          if (folderError) throw folderError;
          return;
        }
      }
      if (data) {
        const rootDev = fs.fstatSync(rootFd).dev;
        await this.syncFs(rootFd, this.root);
        for (const rel of dirs) {
          const fd = fs.openSync(this.safeDir(rel, false), O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
          try {
            if (fs.fstatSync(fd).dev !== rootDev) await this.syncFs(fd, this.abs(rel));
          } finally {
            fs.closeSync(fd);
          }
        }
        return;
      }
      await this.flushFolders([...(tracked?.folders ?? []), ...dirs]);
    } catch (err) {
      this.unflushedData = true;
      this.unflushed = null;
      throw describeFsError(err, dirs[0] ?? '');
    }
  }

  /**
   * Writes out what was written since the last flush, on libuv's pool, one write-out at a
   * time: a backup of 900 MiB otherwise left it all dirty for the commit's flush (the kernel
   * starts on its own only at 10 % of memory or after 30 s), and the disk idled while the run
   * read and hashed. When the next flush is a syncfs anyway (more files than it fsyncs one by
   * one), a syncfs, which like that flush writes out whatever else is dirty on the filesystem
   * (written within 30 s anyway); else an fdatasync of each file written by stream or
   * descriptor (an archive, a large blob), and no other: a small run's flush must not wait
   * for a write-out of a shared filesystem, nor for one fsync after another of its small files.
   */
  flushAhead(): void {
    if (this.aheadRunning || !this.unflushedData || this.rootFd === null) return;
    const files = this.unflushed === null ? null : [...this.streamed];
    if (files?.length === 0) return;
    this.aheadRunning = (files === null ? this.syncFs(this.rootFd, this.root) : this.writeOut(files))
      .catch((err: unknown) => { this.aheadFailure ??= err as Error; })
      .finally(() => { this.aheadRunning = null; });
  }

  /** fdatasync of each file, one after another; one no longer there (renamed, removed) is passed over. */
  private async writeOut(files: string[]): Promise<void> {
    for (const rel of files) await this.syncFileAt(rel, 'data');
  }

  /** fsync (or fdatasync) of the file at `rel`, opened again; false when it is no longer there. */
  private async syncFileAt(rel: string, what: 'all' | 'data' = 'all'): Promise<boolean> {
    let fh: fsp.FileHandle;
    try {
      fh = await fsp.open(this.safePath(rel, false), O_RDONLY | O_NOFOLLOW);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
    try {
      await (what === 'data' ? fh.datasync() : fh.sync());
    } finally {
      await fh.close();
    }
    return true;
  }

  /** fsync of each folder (their entries), a few at a time. */
  private async flushFolders(dirs: string[]): Promise<void> {
    const pending = [...new Set(dirs)];
    const one = async (rel: string): Promise<void> => {
      const fh = await fsp.open(this.safeDir(rel, false), O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
      try { await fh.sync(); } finally { await fh.close(); }
    };
    await Promise.all(Array.from({ length: Math.min(FOLDER_FLUSHES_IN_FLIGHT, pending.length) }, async () => {
      for (let rel = pending.shift(); rel !== undefined; rel = pending.shift()) await one(rel);
    }));
  }

  /**
   * fsync of each file written since the last flush (a file opened again reports a write
   * error no one has seen yet, as the fd it was written through would). False, with nothing
   * done that matters, when they are too many or one is no longer where it was written:
   * then the caller flushes the whole filesystem.
   */
  private async flushOneByOne(files: Set<string>): Promise<boolean> {
    if (files.size > FILES_FSYNCED_ONE_BY_ONE) return false;
    const pending = [...files];
    let moved = false;
    const one = async (rel: string): Promise<void> => {
      if (!(await this.syncFileAt(rel))) moved = true;
    };
    await Promise.all(Array.from({ length: Math.min(FOLDER_FLUSHES_IN_FLIGHT, pending.length) }, async () => {
      for (let rel = pending.shift(); rel !== undefined && !moved; rel = pending.shift()) await one(rel);
    }));
    return !moved;
  }

  /** Notes a file written or linked at `rel` (its content and its folder's entry) for the next flush. */
  private noteWritten(rel: string): void {
    this.unflushedData = true;
    if (this.unflushed === null) return;
    this.unflushed.files.add(rel);
    this.unflushed.folders.add(parentOf(rel));
    if (this.unflushed.files.size > FILES_FSYNCED_ONE_BY_ONE) this.unflushed = null;
  }

  async mkdir(rel: string): Promise<void> {
    try {
      this.safeDir(rel.split('/').filter(Boolean).join('/'), true);
    } catch (err) {
      throw describeFsError(err, rel);
    }
  }

  async writeFile(rel: string, data: Buffer | string): Promise<void> {
    let tmp: string | null = null;
    try {
      const target = this.safePath(rel, true);
      tmp = `${target}.tmp-${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
      // O_EXCL: a name planted meanwhile (a link included) is never opened.
      const fh = await fsp.open(tmp, 'wx', 0o600);
      try {
        await fh.writeFile(data);
        await fh.sync();
      } finally {
        await fh.close();
      }
      // rename(2) replaces a link at `target` itself, never what it points to.
      await fsp.rename(tmp, target);
      this.unflushed?.folders.add(parentOf(rel));
    } catch (err) {
      if (tmp) await fsp.rm(tmp, { force: true }).catch(() => undefined);
      throw describeFsError(err, rel);
    }
  }

  createWriteStream(rel: string): Writable {
    try {
      const fd = this.openForWriting(rel);
      return fs.createWriteStream('', { fd, highWaterMark: 1 << 20 });
    } catch (err) {
      return failedStream(describeFsError(err, rel));
    }
  }

  openWriteFd(rel: string): number {
    try {
      return this.openForWriting(rel);
    } catch (err) {
      throw describeFsError(err, rel);
    }
  }

  /**
   * One job on libuv's pool per file (native/write-file.c): the create, write, close and hash
   * leave the event loop free for the account worker's stream. Without the addon: in place.
   */
  async writeSmallFile(rel: string, parts: Buffer[]): Promise<Buffer> {
    let target: string;
    try {
      target = this.writableTarget(rel);
    } catch (err) {
      throw describeFsError(err, rel);
    }
    const offLoop = this.smallFiles ? this.smallFiles.add(target, parts) : writeNewFileOffLoop(target, parts, 0o600, true);
    if (offLoop) {
      try {
        return (await offLoop)!;
      } catch (err) {
        throw describeFsError((err as NodeJS.ErrnoException).code === 'ELOOP' ? symlinkError(rel) : err, rel);
      }
    }
    this.writeSmallFileInPlace(rel, parts);
    const hash = crypto.createHash('sha256');
    for (const p of parts) hash.update(p);
    return hash.digest();
  }

  private writeSmallFileInPlace(rel: string, parts: Buffer[]): void {
    try {
      const fd = this.openForWriting(rel);
      try {
        let left = parts.reduce((n, p) => n + p.length, 0);
        let pending = parts;
        while (left > 0) {
          let n = fs.writevSync(fd, pending);
          left -= n;
          if (left === 0) break;
          // A short write: go on from where it stopped.
          const rest: Buffer[] = [];
          for (const p of pending) {
            if (n >= p.length) { n -= p.length; continue; }
            rest.push(n > 0 ? p.subarray(n) : p);
            n = 0;
          }
          pending = rest;
        }
      } finally {
        fs.closeSync(fd);
      }
    } catch (err) {
      throw describeFsError(err, rel);
    }
  }

  /** The path to write `rel` at, its folders checked (and made); from now on a flush syncs the filesystem. */
  private writableTarget(rel: string): string {
    const target = this.safePath(rel, true);
    this.openRootFd();
    this.noteWritten(rel);
    return target;
  }

  private openForWriting(rel: string): number {
    const target = this.writableTarget(rel);
    this.streamed.add(rel);
    try {
      return fs.openSync(target, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0o600);
    } catch (err) {
      throw (err as NodeJS.ErrnoException).code === 'ELOOP' ? symlinkError(rel) : err;
    }
  }

  private openForReading(rel: string): number {
    const target = this.safePath(rel, false);
    try {
      return fs.openSync(target, O_RDONLY | O_NOFOLLOW);
    } catch (err) {
      throw (err as NodeJS.ErrnoException).code === 'ELOOP' ? symlinkError(rel) : err;
    }
  }

  async readFile(rel: string): Promise<Buffer> {
    try {
      const fh = await fsp.open(this.safePath(rel, false), O_RDONLY | O_NOFOLLOW);
      try {
        return await fh.readFile();
      } finally {
        await fh.close();
      }
    } catch (err) {
      throw describeFsError((err as NodeJS.ErrnoException).code === 'ELOOP' ? symlinkError(rel) : err, rel);
    }
  }

  createReadStream(rel: string, range?: { start: number; end?: number }): Readable {
    const opts: { fd?: number; start?: number; end?: number; highWaterMark: number } = { highWaterMark: 1 << 20 };
    if (range) {
      opts.start = range.start;
      if (range.end !== undefined) opts.end = range.end - 1;
    }
    try {
      opts.fd = this.openForReading(rel);
    } catch (err) {
      return failedStream(describeFsError(err, rel));
    }
    return fs.createReadStream('', opts);
  }

  /**
   * lstat first, so that nothing but a regular file is ever opened (a device under the root
   * could have effects on open); then opened without following a link and checked to be the
   * same file.
   */
  openForReads(rel: string): OpenedForReads {
    try {
      let target: string;
      let st: fs.Stats;
      try {
        target = this.safePath(rel, false);
        st = fs.lstatSync(target);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err instanceof DestinationError && err.code === 'not-found')) return { type: 'missing' };
        throw err;
      }
      if (!st.isFile()) return { type: st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'link' : 'other' };
      let fd: number;
      try {
        fd = fs.openSync(target, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ELOOP') return { type: 'link' };
        if (code === 'ENOENT') return { type: 'missing' };
        throw err;
      }
      const opened = fs.fstatSync(fd);
      if (!opened.isFile() || opened.ino !== st.ino || opened.dev !== st.dev) {
        fs.closeSync(fd);
        return { type: 'other' };
      }
      return { type: 'file', reader: new LocalFileReader(fd, opened.size, rel) };
    } catch (err) {
      throw describeFsError(err, rel);
    }
  }

  /**
   * openForReads for many files of one folder, in one job on libuv's pool (native/open-files.c):
   * the folder is checked as every folder under the root is (safeDir: no link, root's, not
   * writable by others), opened with O_NOFOLLOW and checked again through its descriptor (the
   * same directory, still root's and not writable by others); each name is then looked at
   * relative to that descriptor without following a link, opened only if it is a regular
   * file (O_NOFOLLOW), and checked to be the same inode, as openForReads does.
   */
  async openManyForReads(dir: string, names: readonly string[]): Promise<OpenedFd[] | null> {
    if (!openFilesAtSupported() || names.length > MAX_NAMES_PER_OPEN) return null;
    if (names.some((n) => n === '' || n === '.' || n === '..' || n.includes('/') || n.includes('\0'))) {
      throw new DestinationError(`invalid name in a folder on the destination: ${dir}`, 'invalid');
    }
    let dirFd: number;
    try {
      let target: string;
      let st: fs.Stats;
      try {
        target = this.safeDir(dir, false);
        // safeDir remembers the folders it checked: this one may have been replaced since.
        st = fs.lstatSync(target);
        if (st.isSymbolicLink()) throw symlinkError(dir);
        if (!st.isDirectory()) throw new DestinationError(`not a directory on the destination: ${dir}`, 'invalid');
        dirFd = fs.openSync(target, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' || (err instanceof DestinationError && err.code === 'not-found')) return names.map(() => ({ type: 'missing' }));
        // Replaced by a link (or something else) between the lstat and the open.
        if (code === 'ELOOP' || code === 'ENOTDIR') throw symlinkError(dir);
        throw err;
      }
      const opened = fs.fstatSync(dirFd);
      if (!opened.isDirectory() || opened.ino !== st.ino || opened.dev !== st.dev || opened.uid !== 0 || (opened.mode & WRITABLE_BY_GROUP_OR_OTHERS) !== 0) {
        fs.closeSync(dirFd);
        throw new DestinationError(`the folder ${dir} on the destination changed while it was opened, or is not only root's: refusing to use it`, 'insecure');
      }
    } catch (err) {
      throw describeFsError(err, dir);
    }
    try {
      const found = await openFilesAt(dirFd, names);
      return found.map((f, i): OpenedFd => {
        if (f.type !== 'error') return f;
        const name = getSystemErrorName(-f.errno);
        const err = Object.assign(new Error(`${name}: open ${dir}/${names[i]!}`), { code: name, errno: -f.errno });
        return { type: 'error', error: describeFsError(err, `${dir}/${names[i]!}`) };
      });
    } finally {
      fs.closeSync(dirFd);
    }
  }

  async exists(rel: string): Promise<boolean> {
    try {
      fs.lstatSync(this.safePath(rel, false));
      return true;
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.code === 'ENOENT' || e.code === 'ENOTDIR' || (err instanceof DestinationError && err.code === 'not-found')) return false;
      throw describeFsError(err, rel);
    }
  }

  async list(rel: string): Promise<DirEntry[]> {
    try {
      const dir = this.safeDir(rel, false);
      const names = await fsp.readdir(dir);
      const out: DirEntry[] = [];
      for (const name of names.sort()) {
        const st = await fsp.lstat(path.join(dir, name));
        const type = st.isDirectory() ? 'dir' : st.isFile() ? 'file' : st.isSymbolicLink() ? 'link' : 'other';
        out.push({ name, type, size: st.size, mtimeMs: st.mtimeMs });
      }
      return out;
    } catch (err) {
      throw describeFsError(err, rel);
    }
  }

  /**
   * Incremental runs make tens of thousands of links: they are gathered into batches made by
   * one job each on libuv's pool (native/link-many.c), so the event loop goes on reading the
   * account worker meanwhile. Without the addon: link(2) in place. link(2) makes a link to a
   * symbolic link itself, never to what it points to.
   */
  async link(existing: string, created: string): Promise<void> {
    let from: string;
    let to: string;
    try {
      this.openRootFd();
      this.noteWritten(created);
      from = this.safePath(existing, false);
      to = this.safePath(created, true);
      if (!canLinkOffLoop()) {
        fs.linkSync(from, to);
        return;
      }
    } catch (err) {
      throw describeFsError(err, created);
    }
    await new Promise<void>((resolve, reject) => {
      const batch = this.linkBatch ?? this.newLinkBatch();
      batch.existing.push(from);
      batch.created.push(to);
      batch.waiters.push({ resolve, reject, rel: created });
      if (batch.existing.length >= LINK_BATCH) this.submitLinks(batch);
    });
  }

  private linkBatch: LinkBatch | null = null;

  /**
   * The incremental run's links of unchanged files, a batch per call (HardLinks.linkBlobs):
   * each blob folder is checked (and made on the `to` side) once, as link() checks each path,
   * and the links are made by one job on libuv's pool from the blob numbers.
   */
  readonly linkBlobs = canLinkOffLoop() ? async (from: string, to: string, blobs: Uint32Array): Promise<void> => {
    let fromAbs: string;
    let toAbs: string;
    try {
      this.openRootFd();
      fromAbs = this.safeDir(from, false);
      toAbs = this.safeDir(to, true);
      let folder = -1;
      for (const n of blobs) {
        const f = Math.floor(n / 1024);
        if (f === folder) continue;
        folder = f;
        this.safeDir(`${from}/${blobFolder(n)}`, false);
        this.safeDir(`${to}/${blobFolder(n)}`, true);
      }
      this.unflushedData = true;
      if (this.unflushed) for (const n of blobs) this.noteWritten(`${to}/${blobName(n)}`);
    } catch (err) {
      throw describeFsError(err, to);
    }
    const errs = await linkBlobsOffLoop(fromAbs, toAbs, blobs)!;
    const failed = errs.findIndex((e) => e !== 0);
    if (failed >= 0) {
      const n = blobs[failed]!;
      throw describeFsError(linkError(errs[failed]!, `${fromAbs}/${blobName(n)}`, `${toAbs}/${blobName(n)}`), `${to}/${blobName(n)}`);
    }
  } : undefined;

  private newLinkBatch(): LinkBatch {
    const batch: LinkBatch = { existing: [], created: [], waiters: [] };
    this.linkBatch = batch;
    // Whatever gathered by the time the event loop comes round goes as it is.
    setImmediate(() => { if (this.linkBatch === batch) this.submitLinks(batch); });
    return batch;
  }

  private submitLinks(batch: LinkBatch): void {
    if (this.linkBatch === batch) this.linkBatch = null;
    linkManyOffLoop(batch.existing, batch.created)!.then((errs) => {
      batch.waiters.forEach((w, i) => {
        if (errs[i] === 0) w.resolve();
        else w.reject(describeFsError(linkError(errs[i]!, batch.existing[i]!, batch.created[i]!), w.rel));
      });
    }, (err: unknown) => { for (const w of batch.waiters) w.reject(describeFsError(err, w.rel)); });
  }

  async rename(from: string, to: string): Promise<void> {
    try {
      const src = this.safePath(from, false);
      const dst = this.safePath(to, true);
      this.forget(from);
      this.forget(to);
      // Files noted under the old name are no longer there to be fsynced by name.
      if (this.unflushed && [...this.unflushed.files].some((f) => f === from || f.startsWith(`${from}/`))) this.unflushed = null;
      await fsp.rename(src, dst);
      this.unflushed?.folders.add(parentOf(from));
      this.unflushed?.folders.add(parentOf(to));
    } catch (err) {
      throw describeFsError(err, to);
    }
  }

  /**
   * Removes `rel` (a whole tree). Refused when `rel` is a link: whatever put it there is to
   * be looked at. Node's recursive removal never follows links inside the tree; it walks by
   * path, which is safe because only root can change anything under a checked root.
   */
  async remove(rel: string): Promise<void> {
    if (rel === '') throw new DestinationError('refusing to remove the destination root', 'invalid');
    try {
      let target: string;
      try {
        target = this.safePath(rel, false);
      } catch (err) {
        if (err instanceof DestinationError && err.code === 'not-found') return;
        throw err;
      }
      let st: fs.Stats;
      try {
        st = fs.lstatSync(target);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw err;
      }
      if (st.isSymbolicLink()) throw symlinkError(rel);
      this.forget(rel);
      if (this.unflushed) for (const f of this.unflushed.files) if (f === rel || f.startsWith(`${rel}/`)) this.unflushed.files.delete(f);
      await fsp.rm(target, { recursive: true, force: true });
    } catch (err) {
      throw describeFsError(err, rel);
    }
  }

  async space(): Promise<SpaceInfo> {
    try {
      this.checkRoot();
      const s = await fsp.statfs(this.root);
      return { totalBytes: s.blocks * s.bsize, freeBytes: s.bavail * s.bsize };
    } catch (err) {
      throw describeFsError(err, this.root);
    }
  }

  async linkCount(rel: string): Promise<number> {
    try {
      return fs.lstatSync(this.safePath(rel, false)).nlink;
    } catch (err) {
      throw describeFsError(err, rel);
    }
  }

  async cloneTree(from: string, to: string): Promise<void> {
    const walk = async (src: string, dst: string): Promise<void> => {
      const srcAbs = this.safeDir(src, false);
      const dstAbs = this.safePath(dst, true);
      await fsp.mkdir(dstAbs, { mode: 0o700 });
      for (const e of await fsp.readdir(srcAbs, { withFileTypes: true })) {
        if (e.isSymbolicLink()) throw symlinkError(`${src}/${e.name}`);
        if (e.isDirectory()) await walk(`${src}/${e.name}`, `${dst}/${e.name}`);
        else if (e.isFile()) fs.linkSync(path.join(srcAbs, e.name), path.join(dstAbs, e.name));
      }
    };
    try {
      this.openRootFd();
      this.unflushedData = true;
      this.unflushed = null;
      await walk(from, to);
    } catch (err) {
      throw describeFsError(err, to);
    }
  }

  /** Linking file by file is as fast as any clone here, and needs no pruning afterwards. */
  async cloneIsServerSide(): Promise<boolean> {
    return false;
  }

  /** Local only: the absolute path, for tools that run on this server (its folders checked). */
  pathOf(rel: string): string {
    return this.safePath(rel, false);
  }
}

/** Reads with pread(2), synchronously: a page-cache read of a small file takes microseconds. */
class LocalFileReader implements FileReader {
  constructor(private fd: number, readonly size: number, private readonly rel: string) {}

  read(position: number, length: number): Buffer {
    const buf = Buffer.allocUnsafe(length);
    let got = 0;
    try {
      while (got < length) {
        const n = fs.readSync(this.fd, buf, got, length - got, position + got);
        if (n === 0) break;
        got += n;
      }
    } catch (err) {
      throw describeFsError(err, this.rel);
    }
    return got === length ? buf : buf.subarray(0, got);
  }

  close(): void {
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
  }

  release(): number {
    const fd = this.fd;
    this.fd = -1;
    return fd;
  }
}

function symlinkError(rel: string): DestinationError {
  return new DestinationError(`a symbolic link was found on the destination at ${rel}: Tidemark never follows links under a destination root (something other than Tidemark put it there; remove it)`, 'insecure');
}

function failedStream(err: Error): PassThrough {
  const s = new PassThrough();
  process.nextTick(() => s.destroy(err));
  return s;
}
