import fs from 'node:fs';
import crypto from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { eventBatches, type Entry, type StreamEvent } from '../format/entry.js';
import { parentOf, toBuffer, toDisplay, type BytePath } from '../../util/byte-path.js';
import { SyncOutput } from './sync-output.js';
import { openIfUnchanged } from './unchanged-file.js';
import { setFdTimes, setPathTimes } from '../../native/file-times.js';
import { syncFilesystemSync } from '../../native/syncfs.js';
import { DamagedContentError, NewFiles, damagedError, streamDamagedError } from './new-files.js';
import { SMALL_SLAB, slabReads, socketSlabReads } from './slab-reader.js';
import { restoreFileFromSupported } from '../../native/restore-file.js';
import { CompressedContent } from './compressed-content.js';
import { WrittenFiles } from './written-files.js';
import { FlushAhead } from './flush-ahead.js';
import { closeQuietly } from '../../util/close-fd.js';
import { bufferGrowthCollector } from '../../util/batch-gc.js';

export interface RestoreWriterOptions {
  home: string;
  /** '' restores into place; otherwise a new folder (relative to the home) that must not exist yet. */
  intoFolder: string;
  /**
   * Into place only: below `roots`, what the snapshot does not hold is moved into the new folder
   * `aside` (relative to the home), so the roots become what the snapshot holds and nothing is
   * lost; paths at or below `keep` are left alone (another site nested in a site's folder).
   */
  prune?: { roots: string[]; keep: string[]; aside: string };
  /**
   * Root checks each file's content against its hash and sends its last bytes only once they
   * matched (snapshot-content.ts): a file whose content is complete here is the snapshot's,
   * and hashing it again here is not needed. Without it (content from a remote destination)
   * the writer checks what it received: a file gathered whole before it is created (in its
   * pool job), a larger one before it is renamed over anything or counted; one that does not
   * match is removed and the restore stops.
   */
  contentChecked?: boolean;
  /**
   * The stream carries content root read from a remote destination (not a local one): it is
   * read into small slabs (SMALL_SLAB), whose memory malloc uses again, and dead ones are
   * collected as they add up (bufferGrowthCollector). In a restore from SSH of 20,000 files
   * the writer's page faults went 242,000 -> 31,000, its system time 7.4 -> 2.9 s and its
   * peak 118-131 -> 66 MiB.
   */
  remoteContent?: boolean;
  /**
   * stdin is a Unix socket that carries, besides the entry stream, a read-only descriptor of
   * each stored blob ('blobs'), or once of the archive ('archive') (restore-descriptors.ts). A
   * file's content is then not in the stream: its record's dataRef is where it starts in that
   * stored file, and the writer reads it, checks it against the record's hash and writes it
   * (into a new folder NewFiles.submitFrom, in place writeInPlaceFrom). 'compressed': the
   * first file with content comes with the descriptors of the snapshot's gzip member list and
   * of its .tar.gz; the writer inflates by member (member-inflater.ts), in place only the
   * members of the files it does not find already exact, and checks each file as a stream's.
   */
  contentFds?: 'blobs' | 'archive' | 'compressed';
  /** The snapshot (account/id) the content comes from, for messages. */
  snapshot?: string;
}

export interface RestoreResult {
  files: number;
  directories: number;
  links: number;
  bytes: number;
  warnings: { path: string; message: string }[];
  warningCount: number;
  /** prune: how many entries were moved aside, and where. */
  movedAside?: number;
  asideFolder?: string;
}

/**
 * Moves what lies below `prune.roots` and is not in `named` into `prune.aside` (same relative
 * path), never following a symlink: a folder is gone into only when it is a real one.
 */
function pruneExtra(home: Buffer, prune: NonNullable<RestoreWriterOptions['prune']>, named: Set<BytePath>, warn: (rel: BytePath, m: string) => void): number {
  const rel2abs = (rel: BytePath): Buffer => Buffer.concat([home, Buffer.from('/'), toBuffer(rel)]);
  const kept = (rel: BytePath): boolean => prune.keep.some((k) => rel === k || rel.startsWith(`${k}/`));
  if (!validRelative(prune.aside) || prune.aside === '') throw new Error('invalid folder for what a restore moves aside');
  let moved = 0;
  const stack = prune.roots.filter((r) => validRelative(r) && r !== '' && named.has(r));
  while (stack.length > 0) {
    const dir = stack.pop()!;
    let names: fs.Dirent<Buffer>[];
    try {
      if (!fs.lstatSync(rel2abs(dir)).isDirectory()) continue;
      names = fs.readdirSync(rel2abs(dir), { withFileTypes: true, encoding: 'buffer' });
    } catch { continue; }
    for (const d of names) {
      const rel = `${dir}/${d.name.toString('latin1')}`;
      if (kept(rel)) continue;
      if (named.has(rel)) {
        if (d.isDirectory()) stack.push(rel);
        continue;
      }
      try {
        const target = rel2abs(`${prune.aside}/${rel}`);
        fs.mkdirSync(target.subarray(0, target.lastIndexOf(0x2f)), { recursive: true, mode: 0o700 });
        fs.renameSync(rel2abs(rel), target);
        moved++;
      } catch (err) {
        warn(rel, `not in the snapshot, and could not be moved aside: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
      }
    }
  }
  return moved;
}

/** Writes all of `b` (a short write goes on where it stopped). */
function writeAllSync(fd: number, b: Buffer): void {
  let off = 0;
  while (off < b.length) off += fs.writeSync(fd, b, off, b.length - off);
}

const O_NEW = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW;
const MAX_WARNINGS = 200;
/** Content read from a descriptor goes through one reused buffer of this size (a new one per file costs a fresh mapping and its page faults). */
const COPY_PIECE = 1 << 20;
let copyPiece: Buffer | null = null;

/** A relative path of real names: no empty, '.' or '..' component, no NUL ('' is the top). One scan, no array per path. */
export function validRelative(p: BytePath): boolean {
  if (p === '') return true;
  if (p.includes('\0')) return false;
  for (let start = 0; ;) {
    const slash = p.indexOf('/', start);
    const length = (slash < 0 ? p.length : slash) - start;
    if (length === 0) return false;
    if (length <= 2 && p.charCodeAt(start) === 0x2e && (length === 1 || p.charCodeAt(start + 1) === 0x2e)) return false;
    if (slash < 0) return true;
    start = slash + 1;
  }
}

/** remoteContent: dead slabs are collected once they may amount to this, looked at every 32 slabs (3.5 MiB). */
const REMOTE_SLAB_GROWTH = 8 << 20;
const REMOTE_SLABS_PER_LOOK = 32;

/** What slabReads calls before each new slab of remote content: the collector, every REMOTE_SLABS_PER_LOOK slabs. */
function remoteSlabTurnover(): (() => void) | undefined {
  const collect = bufferGrowthCollector(REMOTE_SLAB_GROWTH);
  if (!collect) return undefined;
  let slabs = 0;
  return () => { if (++slabs % REMOTE_SLABS_PER_LOOK === 0) collect(); };
}

/** The names this writer gives its temporary entries (tmpName, fifos). */
const TEMP_NAME = /^\.tidemark-(?:fifo-)?[0-9a-f]{12}$/;
const isTempName = (name: Buffer): boolean => (name.length === 22 || name.length === 27) && name[0] === 0x2e && TEMP_NAME.test(name.toString('latin1'));
const SLASH = Buffer.from('/');

/**
 * Removes what killed restores left: temporary entries under the exact names this writer
 * makes, owned by the account (the writer runs as the account, so nothing else can be
 * touched). A read-only walk of names; symlinks are never followed. `skip`: a new folder a
 * restore is writing into while this runs (its own temporary names are there): never gone into.
 */
export async function removeRestoreLeftovers(home: Buffer, uid: number, skip: Buffer | null = null): Promise<number> {
  let removed = 0;
  const stack: Buffer[] = [home];
  while (stack.length > 0) {
    const dir = stack.pop()!;
    let names: fs.Dirent<Buffer>[];
    try { names = await fs.promises.readdir(dir, { withFileTypes: true, encoding: 'buffer' }); } catch { continue; }
    for (const d of names) {
      if (d.isDirectory()) {
        const sub = Buffer.concat([dir, SLASH, d.name]);
        if (!skip || !sub.equals(skip)) stack.push(sub);
        continue;
      }
      if (!isTempName(d.name)) continue;
      const p = Buffer.concat([dir, SLASH, d.name]);
      try {
        if ((await fs.promises.lstat(p)).uid !== uid) continue;
        await fs.promises.unlink(p);
        removed++;
      } catch { /* gone or not ours */ }
    }
  }
  return removed;
}

/**
 * Writes an entry stream (stdin) into the home as the account. A name that is free is
 * created in place with O_EXCL (a link planted there meanwhile makes the create fail, it
 * is never followed). Where something already exists, the new file, link or hard link is
 * made under a temporary name beside the target and renamed over it, so that the old
 * content stays whole until the new is complete, and a symlink at the target is replaced,
 * never followed. Directory modes and times are applied last,
 * deepest first, so that 0000 and read-only directories can still be filled.
 */
export async function runRestoreWriter(opts: RestoreWriterOptions): Promise<void> {
  const result: RestoreResult = { files: 0, directories: 0, links: 0, bytes: 0, warnings: [], warningCount: 0 };
  /** Every path the stream names (for prune). */
  const named = new Set<BytePath>();
  const warn = (rel: BytePath, message: string): void => {
    result.warningCount++;
    if (result.warnings.length < MAX_WARNINGS) result.warnings.push({ path: toDisplay(rel), message });
  };
  if (!validRelative(opts.intoFolder)) throw new Error('invalid restore folder');
  if (opts.contentFds && !restoreFileFromSupported()) throw new Error('content by descriptor needs the native addon');
  const homeBuf = Buffer.from(opts.home, 'utf8');
  const base = opts.intoFolder === '' ? homeBuf : Buffer.concat([homeBuf, Buffer.from('/'), toBuffer(opts.intoFolder)]);
  const abs = (rel: BytePath): Buffer => (rel === '' ? base : Buffer.concat([base, Buffer.from('/'), toBuffer(rel)]));
  const myUid = process.getuid!();
  const myGid = process.getgid!();

  // Into a new folder, nothing this restore writes is near what killed restores left: the walk
  // runs beside the restore instead of before it, and is done before the flush.
  // In place, the walk is done before anything is written (this restore's temporary names are
  // made beside the files they replace, anywhere in the home).
  const leftovers = removeRestoreLeftovers(homeBuf, myUid, opts.intoFolder === '' ? null : base);
  if (opts.intoFolder === '') await leftovers;
  // Content by descriptor: root starts the writer before it has read the index, and a restore
  // that fails there sends nothing: then no folder is made.
  const received: number[] = [];
  const batches = eventBatches(opts.contentFds ? socketSlabReads(0, received) : (opts.remoteContent ? slabReads(0, remoteSlabTurnover(), SMALL_SLAB) : slabReads(0)));
  let first: StreamEvent[] | null = null;
  if (opts.contentFds) {
    const got = await batches.next();
    first = got.done ? null : got.value;
    if (!first) {
      await leftovers;
      const out = new SyncOutput(3, 1 << 16);
      out.write(Buffer.from(JSON.stringify(result)));
      out.flush();
      return;
    }
  }
  const incoming = (async function* (): AsyncGenerator<StreamEvent[]> {
    if (first) yield first;
    yield* batches;
  })();
  const compressed = opts.contentFds === 'compressed' ? new CompressedContent(received, opts.snapshot ?? 'being restored') : null;
  if (opts.intoFolder !== '') {
    fs.mkdirSync(base, { mode: 0o700 });
  }
  // Opened before anything is written: the flush at the end reports the write errors of the whole restore.
  const flushFd = fs.openSync(base, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  const flushAhead = opts.intoFolder !== '' ? new FlushAhead(flushFd, base.toString('utf8')) : null;

  const readyDirs = new Set<BytePath>(['']);
  const pendingDirs: { rel: BytePath; entry: Entry }[] = [];
  const tmpName = (rel: BytePath): Buffer => {
    const slash = rel.lastIndexOf('/');
    const dir = slash < 0 ? '' : rel.slice(0, slash);
    return Buffer.concat([abs(dir), Buffer.from(`/.tidemark-${crypto.randomBytes(6).toString('hex')}`)]);
  };

  /**
   * Into a new folder, where every name is nearly always free: makes `rel` (its parents
   * first) with one mkdir, and answers true; false when something is at the name already (the
   * caller then looks at it as in place). Before, each new folder cost an lstat that threw
   * ENOENT (an exception built for it) before its mkdir.
   */
  const makeFreshDir = (rel: BytePath): boolean => {
    const slash = rel.lastIndexOf('/');
    ensureDir(slash < 0 ? '' : rel.slice(0, slash));
    try {
      fs.mkdirSync(abs(rel), { mode: 0o700 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw err;
    }
    readyDirs.add(rel);
    return true;
  };

  /**
   * Makes `rel` a real, writable directory, replacing a file or symlink in the way (a symlink
   * is removed, never followed: lstat). True when this call made the folder (nothing, a file or
   * a symlink was at the name); false when a real folder was there, or was made before.
   */
  const ensureDir = (rel: BytePath): boolean => {
    if (readyDirs.has(rel)) return false;
    if (opts.intoFolder !== '' && makeFreshDir(rel)) return true;
    const slash = rel.lastIndexOf('/');
    ensureDir(slash < 0 ? '' : rel.slice(0, slash));
    const p = abs(rel);
    let st: fs.BigIntStats | null = null;
    try { st = fs.lstatSync(p, { bigint: true, throwIfNoEntry: false }) ?? null; } catch { st = null; }
    if (st && !st.isDirectory()) {
      fs.unlinkSync(p);
      st = null;
    }
    const made = !st;
    if (!st) {
      fs.mkdirSync(p, { mode: 0o700 });
    } else if ((Number(st.mode) & 0o700) !== 0o700 && Number(st.uid) === myUid) {
      const mode = Number(st.mode) & 0o7777;
      fs.chmodSync(p, mode | 0o700);
      pendingDirs.push({ rel, entry: { kind: 'd', path: rel, mode, uid: Number(st.uid), gid: Number(st.gid), size: 0,
        mtimeSec: Number(st.mtimeNs / 1_000_000_000n), mtimeNsec: Number(st.mtimeNs % 1_000_000_000n), link: '', dataRef: -1, prevRef: -1 } });
    }
    readyDirs.add(rel);
    return made;
  };

  const applyOwner = (set: (uid: number, gid: number) => void, rel: BytePath, e: Entry): void => {
    if (e.uid === myUid && myGid === e.gid) return;
    try {
      set(e.uid, e.gid);
    } catch {
      try {
        set(myUid, e.gid);
        if (e.uid !== myUid) warn(rel, `owner uid ${e.uid} not restored (files are restored as the account)`);
      } catch {
        warn(rel, `owner ${e.uid}:${e.gid} not restored (files are restored as the account)`);
      }
    }
  };

  /** A written file's owner (as far as the account may), mode and times to the nanosecond. */
  const setAttributes = (fd: number, e: Entry): void => {
    applyOwner((u, g) => fs.fchownSync(fd, u, g), e.path, e);
    fs.fchmodSync(fd, e.mode);
    setFdTimes(fd, e.mtimeSec, e.mtimeNsec);
  };

  // To the nanosecond (utimensat through the native addon): a time cut to the microsecond
  // would make the next incremental run store every restored file again.
  const setTimes = (p: Buffer, e: Entry, noFollow: boolean): void => setPathTimes(p, e.mtimeSec, e.mtimeNsec, noFollow);

  /**
   * Makes an entry at `rel` with `make`: at the real name when it is free, else at a
   * temporary name that install() then moves over what is there. Returns the temporary
   * name, or null when the entry already has its real name.
   */
  const makeAt = (rel: BytePath, make: (p: Buffer) => void): Buffer | null => {
    try {
      make(abs(rel));
      return null;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const tmp = tmpName(rel);
    make(tmp);
    return tmp;
  };

  /** Moves a prepared temporary entry over the target; a directory in the way is reported, not deleted. */
  const install = (tmp: Buffer | null, rel: BytePath): boolean => {
    if (tmp === null) return true;
    try {
      fs.renameSync(tmp, abs(rel));
      return true;
    } catch (err) {
      fs.rmSync(tmp, { force: true });
      const code = (err as NodeJS.ErrnoException).code;
      warn(rel, code === 'EISDIR' || code === 'ENOTEMPTY' || code === 'EEXIST' ? 'not restored: a directory is in the way' : `not restored: ${code ?? String(err)}`);
      return false;
    }
  };

  /**
   * `tmp`: the temporary name, or null when the file is being written at its real name (which
   * it did not have before). `hash`: of what arrived, when root sent the content's expected SHA-256.
   */
  let current: { fd: number; tmp: Buffer | null; entry: Entry; hash: crypto.Hash | null; kept: boolean } | null = null;
  /**
   * Removes the file being written (its temporary name, or the real name this restore
   * created); a file kept because it already held the content is left alone.
   */
  const discard = (c: { tmp: Buffer | null; entry: Entry; kept: boolean }): void => { if (!c.kept) fs.rmSync(c.tmp ?? abs(c.entry.path), { force: true }); };
  /**
   * Regular files this restore wrote: the only things a hard link may point at. A stream
   * that names any other file (one already in the home, one outside it) gets no link.
   */
  const written = new WrittenFiles();
  /** A regular file now has its content and attributes at its name. */
  const restored = (e: Entry): void => { result.files++; result.bytes += e.size; written.add(e); };

  /**
   * Into a new folder every name is free: files up to NewFiles' size are gathered whole and
   * written by pool jobs, several at a time (new-files.ts); larger ones, and every file of a
   * restore in place, go through `current` below.
   */
  const newFiles = opts.intoFolder !== '' ? NewFiles.create({
    abs,
    owner: (e) => (e.uid === myUid && e.gid === myGid ? null : { uid: e.uid, gid: e.gid }),
    done: (e) => { restored(e); flushAhead?.wrote(e.size); },
    warn,
    ownerWarning: (e, outcome) => {
      if (outcome === 1 && e.uid !== myUid) warn(e.path, `owner uid ${e.uid} not restored (files are restored as the account)`);
      if (outcome === 2) warn(e.path, `owner ${e.uid}:${e.gid} not restored (files are restored as the account)`);
    },
    // A name taken after all (a link the account planted meanwhile, a path named twice): the
    // way of a restore in place, a temporary name renamed over it.
    taken: (e, parts) => writeOverTaken(e, parts),
    takenFrom: (e, fd, offset) => writeOverTakenFrom(e, fd, offset),
    checkHash: !opts.contentChecked,
    // The inflated members' memory is reused once read past (MemberInflater.read).
    copyChunks: compressed !== null,
  }) : null;

  const writeOverTaken = (e: Entry, parts: Buffer[]): void => {
    const tmp = tmpName(e.path);
    const fd = fs.openSync(tmp, O_NEW, 0o600);
    try {
      for (const part of parts) writeAllSync(fd, part);
      setAttributes(fd, e);
    } catch (err) {
      fs.closeSync(fd);
      fs.rmSync(tmp, { force: true });
      throw err;
    }
    fs.closeSync(fd);
    if (install(tmp, e.path)) restored(e);
  };

  /**
   * Writes the `e.size` bytes at `offset` of `fd` into `out` (a file this restore just
   * created, at `name`), checked against the record's hash, with its attributes; on any
   * failure `name` is removed, so a damaged copy never keeps a name.
   */
  const copyCheckedFrom = (e: Entry, fd: number, offset: number, out: number, name: Buffer): void => {
    try {
      const hash = e.hash ? crypto.createHash('sha256') : null;
      const buf = (copyPiece ??= Buffer.allocUnsafeSlow(COPY_PIECE));
      for (let at = 0; at < e.size;) {
        const n = fs.readSync(fd, buf, 0, Math.min(buf.length, e.size - at), offset + at);
        if (n === 0) throw damagedError(e, true);
        hash?.update(buf.subarray(0, n));
        writeAllSync(out, buf.subarray(0, n));
        at += n;
      }
      if (hash && !hash.digest().equals(e.hash!)) throw damagedError(e, false);
      setAttributes(out, e);
    } catch (err) {
      fs.closeSync(out);
      fs.rmSync(name, { force: true });
      throw err;
    }
    fs.closeSync(out);
  };

  /** writeOverTaken for content at `offset` of `fd`, read and checked here. */
  const writeOverTakenFrom = (e: Entry, fd: number, offset: number): void => {
    const tmp = tmpName(e.path);
    copyCheckedFrom(e, fd, offset, fs.openSync(tmp, O_NEW, 0o600), tmp);
    if (install(tmp, e.path)) restored(e);
  };

  /**
   * Where the regular file `e` goes. With `canKeep`, an existing file that already holds
   * exactly its content (openIfUnchanged) is `kept`: open for reading, its bytes stay and it
   * only gets the snapshot's owner, mode and times. Else the name, when free (O_EXCL, no link
   * followed), or a temporary name beside it (`tmp`) that install() moves over what is there
   * once the content is complete and checked. In place the kept file is looked for first,
   * since most names are taken there and a create (O_CREAT) of a name that exists takes its
   * folder's lock for nothing; into a new folder only once the name turned out taken.
   */
  const openTarget = (e: Entry, canKeep: boolean): { fd: number; tmp: Buffer | null; kept: boolean } => {
    const target = abs(e.path);
    const keep = (): number => (canKeep ? openIfUnchanged(target, e.size, e.hash!, myUid) : -1);
    let fd = opts.intoFolder === '' ? keep() : -1;
    if (fd >= 0) return { fd, tmp: null, kept: true };
    try {
      return { fd: fs.openSync(target, O_NEW, 0o600), tmp: null, kept: false };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    fd = opts.intoFolder !== '' ? keep() : -1;
    if (fd >= 0) return { fd, tmp: null, kept: true };
    const tmp = tmpName(e.path);
    return { fd: fs.openSync(tmp, O_NEW, 0o600), tmp, kept: false };
  };

  /** A restore in place by descriptor: `e`'s content at `offset` of `fd`, written only where the file there does not already hold it (openTarget). */
  const writeInPlaceFrom = (e: Entry, fd: number, offset: number): void => {
    const to = openTarget(e, e.hash !== undefined);
    if (to.kept) {
      try {
        setAttributes(to.fd, e);
      } finally {
        fs.closeSync(to.fd);
      }
      restored(e);
      return;
    }
    copyCheckedFrom(e, fd, offset, to.fd, to.tmp ?? abs(e.path));
    if (install(to.tmp, e.path)) restored(e);
  };

  // `received`: descriptors received and not yet taken by a file (contentFds); the archive's once taken.
  let archiveFd = -1;
  /**
   * The descriptor that holds the content of `e` (contentFds, a file with content): taken
   * before anything else is decided about the entry, so that one skipped keeps the order.
   */
  const descriptorOf = (e: Entry): number => {
    if ((opts.contentFds !== 'blobs' && opts.contentFds !== 'archive') || e.kind !== 'f' || e.size === 0) return -1;
    const fd = opts.contentFds === 'archive' ? (archiveFd >= 0 ? archiveFd : (archiveFd = received.shift() ?? -1)) : received.shift() ?? -1;
    if (fd < 0 || !Number.isSafeInteger(e.dataRef) || e.dataRef < 0) throw new Error(`the restore stream names the content of ${JSON.stringify(toDisplay(e.path))} without its descriptor`);
    return fd;
  };

  /** Whether a job still writing decides what is at `rel` or at a folder above it (then all jobs are waited for). */
  const pendingAt = (rel: BytePath, link?: BytePath): boolean => {
    if (!newFiles || newFiles.idle()) return false;
    if (newFiles.writing(rel) || (link !== undefined && newFiles.writing(link))) return true;
    for (let p = parentOf(rel); p !== '' && !readyDirs.has(p); p = parentOf(p)) if (newFiles.writing(p)) return true;
    return false;
  };

  const finishFile = (): void => {
    if (!current) return;
    const { fd, tmp, entry, hash, kept } = current;
    current = null;
    // Checked before the rename: content that does not match never replaces anything, and a
    // new file written at its real name is removed.
    if (hash && !hash.digest().equals(entry.hash!)) {
      fs.closeSync(fd);
      discard({ tmp, entry, kept });
      throw streamDamagedError(entry);
    }
    try {
      setAttributes(fd, entry);
    } finally {
      fs.closeSync(fd);
    }
    if (install(tmp, entry.path)) restored(entry);
  };

  /** A descriptor taken for an entry that is not written after all (blobs: closed; the archive's stays). */
  const releaseDescriptor = (fd: number): void => { if (fd >= 0 && opts.contentFds === 'blobs') closeQuietly(fd); };

  /** An entry that could not be placed: a warning, unless its stored copy is damaged (the restore stops). */
  const entryFailed = (err: unknown, e: Entry, fd: number): void => {
    releaseDescriptor(fd);
    compressed?.skipContent(e);
    if (err instanceof DamagedContentError) throw err;
    warn(e.path, `not restored: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    if (current && current.entry === e) { fs.closeSync(current.fd); discard(current); current = null; }
  };

  /** Puts the entry `ev` at its path; `fromFd`: the descriptor that holds its content (descriptorOf), or -1. */
  const placeEntry = (ev: StreamEvent & { type: 'entry' }, fromFd: number): Promise<void> | undefined => {
    const e = ev.entry;
    // Whatever is put at a path now, it is no longer a file this restore wrote.
    written.named(e);
    if (opts.prune) named.add(e.path);
    let queued: Promise<void> | undefined;
    try {
      if (e.kind === 'd') {
        // Whether this restore made the folder: nothing, a file or a symlink was at its name
        // (ensureDir looks with lstat; a symlink to a folder, or a dangling one, is not a folder
        // and is replaced, never followed). An ancestor of the chosen paths that was a real folder
        // is left as it is; one made here gets its recorded mode, owner and times like any
        // other folder, and is counted (fs.existsSync, used before, followed the link and did not
        // ask for a folder: such an ancestor was left at 0700 and not counted).
        const queuedBefore = pendingDirs.length;
        const made = ensureDir(e.path);
        if (made || !ev.ancestor) {
          // A real folder there that its owner could not write into was made writable, and its
          // own mode and times queued to be put back (ensureDir): the record's take their place,
          // else they would be applied first and then undone by the folder's old ones.
          const last = pendingDirs.length > queuedBefore ? pendingDirs[pendingDirs.length - 1]! : null;
          if (last && last.rel === e.path) last.entry = e;
          else pendingDirs.push({ rel: e.path, entry: e });
        }
        if (made) result.directories++;
        return undefined;
      }
      ensureDir(parentOf(e.path));
      if (fromFd >= 0 && !newFiles) {
        try {
          writeInPlaceFrom(e, fromFd, e.dataRef);
        } finally {
          releaseDescriptor(fromFd);
          fromFd = -1;
        }
      } else if (fromFd >= 0) {
        const fd = fromFd;
        fromFd = -1;
        queued = newFiles!.submitFrom(e, fd, e.dataRef, opts.contentFds === 'blobs');
      } else if (e.kind === 'f' && newFiles?.takes(e, ev.hasData)) {
        if (!ev.hasData || e.size === 0) queued = newFiles.submit();
      } else if (e.kind === 'f') {
        // An empty file by descriptor has no content in the stream, but its hash is known.
        const { fd, tmp, kept } = openTarget(e, e.hash !== undefined && (ev.hasData || opts.contentFds !== undefined));
        // Its content is not inflated at all (compressed, in place).
        if (kept) compressed?.skipContent(e);
        current = { fd, tmp, entry: e, hash: e.hash && ev.hasData && !kept && !(opts.contentChecked && e.size > 0) ? crypto.createHash('sha256') : null, kept };
        if (!ev.hasData || e.size === 0) finishFile();
      } else if (e.kind === 'l') {
        const target = toBuffer(e.link);
        const tmp = makeAt(e.path, (p) => fs.symlinkSync(target, p));
        const made = tmp ?? abs(e.path);
        applyOwner((u, g) => fs.lchownSync(made, u, g), e.path, e);
        setTimes(made, e, true);
        if (install(tmp, e.path)) result.links++;
      } else if (e.kind === 'h') {
        if (!validRelative(e.link) || e.link === '' || !written.has(e.link)) { warn(e.path, 'hard link to a file this restore did not write; skipped'); return undefined; }
        const first = abs(e.link);
        const tmp = makeAt(e.path, (p) => fs.linkSync(first, p));
        if (install(tmp, e.path)) { result.files++; written.add(e); }
      } else if (e.kind === 'p') {
        // A fifo, made by mkfifo as the account: never a device (the stream has no kind for one).
        // Node cannot make a fifo: mkfifo gets a plain name at the top, then it is moved in place.
        const fifoName = `.tidemark-fifo-${crypto.randomBytes(6).toString('hex')}`;
        const fifo = Buffer.concat([base, Buffer.from('/' + fifoName)]);
        const made = spawnSync('mkfifo', ['-m', '600', '--', fifoName], { cwd: base.toString('utf8') });
        if (made.status !== 0) { warn(e.path, 'fifo not restored'); return undefined; }
        fs.chmodSync(fifo, e.mode & 0o777);
        applyOwner((u, g) => fs.lchownSync(fifo, u, g), e.path, e);
        setTimes(fifo, e, true);
        install(fifo, e.path);
      }
    } catch (err) {
      entryFailed(err, e, fromFd);
      return undefined;
    }
    // A file handed to NewFiles that must wait (or failed): the same as a failure above.
    return queued?.catch((err: unknown) => entryFailed(err, e, -1));
  };

  /** One record of the stream: the descriptor of its content taken first (so that one skipped keeps the order), checked, placed. */
  const entryEvent = (ev: StreamEvent & { type: 'entry' }): Promise<void> | undefined => {
    const e = ev.entry;
    const fromFd = descriptorOf(e);
    if (!validRelative(e.path)) { releaseDescriptor(fromFd); warn(e.path, 'invalid path in the snapshot; skipped'); return undefined; }
    try {
      newFiles?.throwIfFailed();
      if (pendingAt(e.path, e.kind === 'h' ? e.link : undefined)) {
        return newFiles!.drain().then(() => placeEntry(ev, fromFd), (err: unknown) => { releaseDescriptor(fromFd); throw err; });
      }
    } catch (err) {
      releaseDescriptor(fromFd);
      throw err;
    }
    return placeEntry(ev, fromFd);
  };

  /** One event of the stream; a promise only where the writer must wait (most events need none). */
  const step = (ev: StreamEvent): Promise<void> | undefined => {
    if (newFiles?.gathering()) {
      if (ev.type === 'data') { newFiles.add(ev.chunk); return undefined; }
      if (ev.type === 'data-end') return newFiles.submit();
    }
    if (ev.type === 'data') {
      if (current && !current.kept) {
        current.hash?.update(ev.chunk);
        writeAllSync(current.fd, ev.chunk);
      }
      return undefined;
    }
    if (ev.type === 'data-end') { finishFile(); return undefined; }
    if (ev.type === 'notice') return undefined;
    return entryEvent(ev);
  };

  try {
  // A batch's events in a plain loop: no promise per event, only where a step waits. From a
  // compressed snapshot, the content comes inflated between the records (CompressedContent).
  for await (const batch of compressed ? compressed.events(incoming) : incoming) {
    for (const ev of batch) { const waiting = step(ev); if (waiting) await waiting; }
  }
  finishFile();
  if (newFiles?.gathering()) throw new Error('entry stream ended in the middle of a file');
  await newFiles?.drain();
  newFiles?.throwIfFailed();
  } catch (err) {
    // The stream broke off (root found damage, or died): the file being written is not kept
    // (a gathered one was never created); jobs under way finish (or remove their file) first.
    if (current) { try { fs.closeSync(current.fd); } catch { /* closed */ } discard(current); current = null; }
    newFiles?.abandon();
    await newFiles?.drain();
    throw err;
  } finally {
    await compressed?.close();
    for (const fd of received) closeQuietly(fd);
    if (archiveFd >= 0) closeQuietly(archiveFd);
  }

  if (opts.prune && opts.intoFolder === '') {
    const moved = pruneExtra(homeBuf, opts.prune, named, warn);
    result.movedAside = moved;
    if (moved > 0) result.asideFolder = opts.prune.aside;
  }

  for (let i = pendingDirs.length - 1; i >= 0; i--) {
    const { rel, entry } = pendingDirs[i]!;
    const p = abs(rel);
    try {
      applyOwner((u, g) => fs.lchownSync(p, u, g), rel, entry);
      fs.chmodSync(p, entry.mode);
      setTimes(p, entry, true);
    } catch (err) {
      warn(rel, `directory attributes not restored: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
  }
  // Success is reported only once what was written (files, links, folders and their
  // attributes) is on the disk: one syncfs(2) of the home's filesystem, cheaper than an
  // fsync per file (see LocalDestination.flush).
  await leftovers;
  try {
    await flushAhead?.settle();
    syncFilesystemSync(flushFd, base.toString('utf8'));
  } finally {
    fs.closeSync(flushFd);
  }
  const out = new SyncOutput(3, 1 << 16);
  out.write(Buffer.from(JSON.stringify(result)));
  out.flush();
}
