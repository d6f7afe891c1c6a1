import fs from 'node:fs';
import { encodeEntry, EntryScanner, fileFieldsOf, makeEntry, noticeRecord, NO_REF, type Entry } from '../format/entry.js';
import { tarHeaders, tarPadding, TAR_END } from '../format/tar.js';
import { toBuffer, type BytePath } from '../../util/byte-path.js';
import { SyncOutput } from './sync-output.js';
import { sendFileTo, spliceToPipe } from '../../native/splice-file.js';
import { descriptorChannelSupported, sendFdSync } from '../../native/pass-fds.js';
// Files up to DESCRIPTOR_MAX go to root as descriptors: root reads each in one piece and hands it
// to the destination's small-file write, which hashes it off root's event loop. Larger ones come
// through the socket, where root hashes each chunk while it is still in the processor's cache.
import { DESCRIPTOR_MAX, SHRANK_REASON } from '../descriptor-content.js';
import { makeExcluder, MARKER_FILE, SKIPPED_DIR_NAME } from './excludes.js';
import { PreviousFiles } from './previous-files.js';
import { fstatFields, inodeKeyOf, listDir, lstatFields, nameAt, sameDevice, sameInode, statAt, type Listing, type StatFields } from '../../native/list-dir.js';

export interface BackupReaderOptions {
  home: string;
  excludes: string[];
  /** Incremental: the previous snapshot's index arrives on stdin. */
  previous: boolean;
  /**
   * Archive and compressed: the worker writes the tar itself to fd 4 (the destination
   * file opened by root, or a pipe to the compressor) and sends only index records,
   * with their tar offsets, on fd 3. Content then crosses no pipe to root at all.
   */
  tar: boolean;
  /** Where the previous index arrives (default: a stream of stdin). */
  input?: AsyncIterable<Buffer>;
  /**
   * Incremental: root reads large files itself from descriptors the worker sends over its fd 5
   * (DESCRIPTOR_FD) instead of their content crossing the entry stream.
   */
  descriptors?: boolean;
}

/** The descriptor channel's end in the worker (spawn-worker.ts puts it there). */
export const DESCRIPTOR_FD = 5;

/**
 * Files from this size are spliced (or sent) into the content's pipe or socket, or handed to
 * root as a descriptor; smaller ones are gathered with the headers, many to a write.
 */
const SPLICE_MIN = 64 << 10;
/** Buffered records are sent from this much on (content read into the buffer is sent when it is full). */
const RECORDS_FLUSH = 128 << 10;
const O_READ = fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK;
const S_IFMT = 0o170000;

async function readPrevious(input: AsyncIterable<Buffer>): Promise<PreviousFiles> {
  const prev = new PreviousFiles();
  const scanner = new EntryScanner();
  // Only the files' path, size, time and blob are read from each record: no Entry, link or hash.
  const take = (b: Buffer, start: number, end: number): void => {
    const f = fileFieldsOf(b, start, end);
    if (f && f.dataRef !== NO_REF) prev.add(f.path, f);
  };
  for await (const chunk of input) scanner.feedRecords(chunk, take);
  scanner.finish();
  return prev;
}

function isSocket(fd: number): boolean {
  try {
    return fs.fstatSync(fd).isSocket();
  } catch {
    return false;
  }
}

const join = (dir: BytePath, name: BytePath): BytePath => (dir === '' ? name : `${dir}/${name}`);

/**
 * Walks the home as the account and streams every entry (and the content of new or
 * changed files) to fd 3. Never follows a symlink; what it cannot read is reported
 * with an 'S' notice, never silently dropped.
 */
export async function runBackupReader(opts: BackupReaderOptions): Promise<void> {
  const previous = opts.previous
    ? await readPrevious(opts.input ?? fs.createReadStream('', { fd: 0, highWaterMark: 1 << 20 }))
    : new PreviousFiles();
  // Records go out every RECORDS_FLUSH bytes: root links and indexes unchanged files while
  // the walk goes on (with 4 MiB, a second incremental's records all arrived at its end).
  const out = new SyncOutput(3, opts.tar ? 1 << 18 : 4 << 20, RECORDS_FLUSH);
  const tarOut = opts.tar ? new SyncOutput(4) : null;
  // Large files' content goes out without a copy into this process and out again: by splice(2)
  // when it goes to a pipe (the archive structure's tar to a local destination), by sendfile(2)
  // when it goes to a socket (the incremental structure's entry stream, fd 3).
  const contentFd = tarOut ? 4 : 3;
  const contentStat = fs.fstatSync(contentFd);
  const move = contentStat.isFIFO() ? spliceToPipe : contentStat.isSocket() ? sendFileTo : null;
  // Root reads a large file of the home's filesystem from the descriptor itself: one copy, on
  // root's pool, instead of a copy into the socket and another out of it on root's event loop.
  // Root accepts only regular files of that filesystem (one it cannot hang on: not FUSE, not
  // a network mount the account brought in).
  const channel = opts.descriptors === true && !tarOut && descriptorChannelSupported() && isSocket(DESCRIPTOR_FD);
  /** The home's lstat, taken when the walk starts: the descriptor channel takes files of its filesystem only. */
  let homeStat: StatFields | null = null;
  /** Hands the open file to root; false when the kernel will not take more descriptors in flight. */
  const sentAsDescriptor = (fd: number, entry: Entry): boolean => {
    out.flush();
    try {
      sendFdSync(DESCRIPTOR_FD, fd);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ETOOMANYREFS') return false;
      throw err;
    }
    out.write(encodeEntry(entry, false, false, true));
    return true;
  };
  let tarOffset = 0;
  const tarWrite = (b: Buffer): void => { tarOut!.write(b); tarOffset += b.length; };
  /** Sends an entry's record; in tar mode its headers go to the tar and the record carries their offset. */
  const emitEntry = (entry: Entry, withData: boolean): void => {
    if (tarOut) {
      entry.dataRef = tarOffset;
      tarWrite(tarHeaders(entry.path === '' ? { ...entry, path: '.' } : entry));
      out.write(encodeEntry(entry, false));
    } else {
      out.write(encodeEntry(entry, withData));
    }
  };
  /** Where content goes: the tar (fd 4) or the entry stream (fd 3). */
  const content = (): SyncOutput => tarOut ?? out;
  const excluded = makeExcluder(opts.excludes);
  const homeBuf = Buffer.from(opts.home, 'utf8');
  const abs = (rel: BytePath): Buffer => (rel === '' ? homeBuf : Buffer.concat([homeBuf, Buffer.from('/'), toBuffer(rel)]));
  const seenInodes = new Map<string, BytePath>();
  const myUid = process.getuid!();
  const skip = (rel: BytePath, reason: string): void => out.write(noticeRecord('S', rel, reason));

  const entryFromStat = (rel: BytePath, st: StatFields, kind: Entry['kind']): Entry => makeEntry({
    kind, path: rel, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtimeSec: st.mtimeSec, mtimeNsec: st.mtimeNsec,
  });

  /** Sends a regular file already open for reading; its metadata comes from fstat of that fd. */
  const streamOpenFile = (rel: BytePath, fd: number, fst: StatFields): boolean => {
    if ((fst.mode & S_IFMT) !== fs.constants.S_IFREG) {
      skip(rel, 'changed while being read (replaced)');
      return false;
    }
    const entry = entryFromStat(rel, fst, 'f');
    entry.size = fst.size;
    // Its records before it are flushed first: root takes the descriptor when it reads this record.
    if (channel && entry.size >= SPLICE_MIN && entry.size <= DESCRIPTOR_MAX && homeStat !== null && sameDevice(fst, homeStat) && sentAsDescriptor(fd, entry)) return true;
    emitEntry(entry, true);
    const sink = content();
    let left = entry.size;
    let eof = false;
    if (move && left >= SPLICE_MIN) {
      sink.flush();
      try {
        for (let moved = -1; left > 0 && moved !== 0;) {
          moved = move(fd, contentFd, left);
          left -= moved;
          if (tarOut) tarOffset += moved;
        }
        // Fewer bytes than announced: the file shrank, and the rest is zeros as below.
        if (left > 0) eof = true;
      } catch {
        // A filesystem that cannot splice or send (EINVAL): the rest is read and written below.
      }
    }
    while (left > 0) {
      const room = sink.reserve(65536);
      const want = Math.min(left, room.length);
      let n = 0;
      if (!eof) {
        n = fs.readSync(fd, room.buffer, room.offset, want, null);
        if (n === 0) eof = true;
      }
      if (eof) {
        // The file shrank while being read: the stream still carries the announced size.
        room.buffer.fill(0, room.offset, room.offset + want);
        n = want;
      }
      sink.commit(n);
      left -= n;
      if (tarOut) tarOffset += n;
    }
    if (tarOut) {
      const pad = tarPadding(entry.size);
      if (pad) tarWrite(Buffer.alloc(pad));
    }
    if (eof) skip(rel, SHRANK_REASON);
    return true;
  };

  const sendFile = (rel: BytePath, st: StatFields): boolean => {
    // Unchanged since the previous snapshot (size and mtime to the nanosecond): decided
    // from lstat alone, without opening the file.
    const prev = previous.get(rel);
    if (prev && prev.size === st.size && prev.mtimeSec === st.mtimeSec && prev.mtimeNsec === st.mtimeNsec) {
      const entry = entryFromStat(rel, st, 'f');
      entry.size = st.size;
      entry.prevRef = prev.dataRef;
      out.write(encodeEntry(entry, false));
      return true;
    }
    const path = abs(rel);
    let fd: number;
    let relaxed = false;
    try {
      fd = fs.openSync(path, O_READ);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // The owner may always read its own file by changing its mode; do it for the
      // shortest time possible and put the mode back (0000 files are backed up too).
      if (code === 'EACCES' && st.uid === myUid) {
        try {
          fs.chmodSync(path, (st.mode & 0o7777) | 0o400);
          relaxed = true;
          fd = fs.openSync(path, O_READ);
        } catch (err2) {
          if (relaxed) fs.chmodSync(path, st.mode & 0o7777);
          skip(rel, `cannot read: ${(err2 as NodeJS.ErrnoException).code ?? String(err2)}`);
          return false;
        } finally {
          if (relaxed) fs.chmodSync(path, st.mode & 0o7777);
        }
      } else {
        skip(rel, `cannot read: ${code ?? String(err)}`);
        return false;
      }
    }
    try {
      const fst = fstatFields(fd);
      if (!sameInode(fst, st)) {
        skip(rel, 'changed while being read (replaced)');
        return false;
      }
      return streamOpenFile(rel, fd, fst);
    } finally {
      fs.closeSync(fd);
    }
  };

  const walkDir = (rel: BytePath, st: StatFields): void => {
    let listing: Listing;
    const path = abs(rel);
    let relaxedMode: number | null = null;
    try {
      listing = listDir(path);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EACCES' && st.uid === myUid) {
        relaxedMode = st.mode & 0o7777;
        try {
          fs.chmodSync(path, relaxedMode | 0o700);
          listing = listDir(path);
        } catch (err2) {
          fs.chmodSync(path, relaxedMode);
          skip(rel, `cannot list: ${(err2 as NodeJS.ErrnoException).code ?? String(err2)}`);
          return;
        }
      } else {
        skip(rel, `cannot list: ${code ?? String(err)}`);
        return;
      }
    }
    try {
      const names: BytePath[] = [];
      for (let i = 0; i < listing.count; i++) names.push(nameAt(listing, i));
      if (names.includes(MARKER_FILE)) {
        skip(rel, `skipped: holds a ${MARKER_FILE} file`);
        return;
      }
      emitEntry(entryFromStat(rel, st, 'd'), false);
      for (let i = 0; i < listing.count; i++) {
        const child = join(rel, names[i]!);
        if (excluded(child)) continue;
        const childStat = statAt(listing, i);
        if (typeof childStat === 'string') skip(child, `cannot stat: ${childStat}`);
        else visit(child, childStat);
      }
    } finally {
      if (relaxedMode !== null) fs.chmodSync(path, relaxedMode);
    }
  };

  /** Files with several names are tracked by inode; others need no key. */
  const inodeKey = (st: StatFields): string | null => (st.nlink > 1 ? inodeKeyOf(st) : null);

  /** A further name of an inode already sent goes out as a hard link to the first name. */
  const sentAsHardLink = (rel: BytePath, st: StatFields, key: string | null): boolean => {
    const first = key === null ? undefined : seenInodes.get(key);
    if (first === undefined) return false;
    const entry = entryFromStat(rel, st, 'h');
    entry.link = first;
    emitEntry(entry, false);
    return true;
  };

  /** One entry, with the lstat its folder's listing took of it. */
  const visit = (rel: BytePath, st: StatFields): void => {
    const type = st.mode & S_IFMT;
    const name = rel.slice(rel.lastIndexOf('/') + 1);
    if (type === fs.constants.S_IFDIR) {
      if (rel !== '' && name === SKIPPED_DIR_NAME) {
        skip(rel, `skipped: directory named ${SKIPPED_DIR_NAME}`);
        return;
      }
      walkDir(rel, st);
      return;
    }
    if (type === fs.constants.S_IFLNK) {
      const entry = entryFromStat(rel, st, 'l');
      try {
        entry.link = (fs.readlinkSync(abs(rel), { encoding: 'buffer' })).toString('latin1');
      } catch (err) {
        skip(rel, `cannot read link: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
        return;
      }
      emitEntry(entry, false);
      return;
    }
    if (type === fs.constants.S_IFREG) {
      const key = inodeKey(st);
      if (sentAsHardLink(rel, st, key)) return;
      if (sendFile(rel, st) && key !== null) seenInodes.set(key, rel);
      return;
    }
    if (type === fs.constants.S_IFIFO) {
      emitEntry(entryFromStat(rel, st, 'p'), false);
      return;
    }
    skip(rel, type === fs.constants.S_IFSOCK ? 'socket: not backed up' : 'device file: not backed up');
  };

  try {
    homeStat = lstatFields(homeBuf);
  } catch (err) {
    skip('', `cannot stat: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  if (homeStat) visit('', homeStat);
  if (tarOut) {
    tarWrite(TAR_END);
    tarOut.flush();
  }
  out.write(noticeRecord('E', '', ''));
  out.flush();
}
