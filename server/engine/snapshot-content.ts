import crypto from 'node:crypto';
import { DestinationError, type Destination } from '../destinations/types.js';
import { describeFsError } from '../destinations/errors.js';
import type { Structure } from '../store/jobs.js';
import type { Entry } from './format/entry.js';
import { parseTar, tarHeadersLength } from './format/tar.js';
import { findMember, inflateFrom, type GzipMember } from './format/parallel-gzip.js';
import { parseMembers } from './format/gzip-members.js';
import type { Readable } from 'node:stream';
import { layout } from './snapshot-layout.js';
import { DirectReads } from './direct-reads.js';
import { ReadAhead, type OpenBatch } from './read-ahead.js';
import type { Selected } from './selection.js';
import { limits, readBounded, requireRegularFile, shortContentError, SnapshotInputError } from './untrusted-input.js';
import { toDisplay, type BytePath } from '../util/byte-path.js';

export type ContentEvent =
  | { type: 'entry'; sel: Selected }
  | { type: 'data'; chunk: Buffer }
  | { type: 'data-end' };

type TarEvent = Awaited<ReturnType<ReturnType<typeof parseTar>['next']>>['value'];

/** A file's content read back from a destination does not match the hash its index entry holds. */
export class ContentDamagedError extends Error {
  constructor(readonly path: BytePath, readonly storedIn: string, message: string) {
    super(message);
    this.name = 'ContentDamagedError';
  }
}

export interface ContentOptions {
  /**
   * Called for each file whose content does not match its hash (verify: go on and name
   * them all). Without it the first mismatch throws a ContentDamagedError before that
   * file's 'data-end', so no consumer ever takes damaged content for complete.
   */
  onDamage?: (err: ContentDamagedError) => void;
  /**
   * The snapshot is in the object layout (manifest `content: "objects"`): each file's content
   * is the object its hash names, in the account folder's `objects/`.
   */
  objects?: boolean;
  /**
   * The consumer checks each file's content against the hash in its entry where it writes it,
   * and keeps no file that does not match (the restore writer without
   * RestoreWriterOptions.contentChecked): the content is passed on as it is read, unhashed and
   * not held back. A short or long stored copy is still refused here.
   */
  checkedByConsumer?: boolean;
}

/** The options that read a snapshot as its manifest says it was written. */
export const contentLayout = (manifest: { structure: Structure; content?: 'objects' }): Pick<ContentOptions, 'objects'> =>
  manifest.structure === 'incremental' && manifest.content === 'objects' ? { objects: true } : {};

/** The account folder of a snapshot folder `<account>/<id>`. */
const accountDirOf = (dir: string): string => dir.slice(0, dir.lastIndexOf('/'));

/** Where an entry's content is stored, for messages: relative to the snapshot, or to the account folder for objects. */
function storedInOf(dir: string, structure: Structure, source: Entry, objects: boolean): string {
  if (structure !== 'incremental') return layout.data(structure);
  if (!objects) return layout.blob(source.dataRef);
  return source.hash ? layout.object('', source.hash.toString('hex')).slice(1) : '(no content hash)';
}

/**
 * The content of each selected file, checked against the SHA-256 in its index entry as it
 * streams by (entries of indexes written before hashes existed are passed unchecked). The
 * last piece of a checked file is passed on only once the whole content matched: a consumer
 * never holds all of a file's bytes unless they are the snapshot's (the restore writer
 * relies on it, see RestoreWriterOptions.contentChecked).
 */
export async function* snapshotContent(dest: Destination, dir: string, structure: Structure, selected: Selected[], opts: ContentOptions = {}): AsyncGenerator<ContentEvent> {
  for await (const batch of snapshotContentBatches(dest, dir, structure, selected, opts)) yield* batch;
}

/**
 * snapshotContent's events in batches, in the same order and with the same check: one
 * promise for the events of many small files read ahead (a restore from a remote
 * destination) instead of several per event.
 */
export async function* snapshotContentBatches(dest: Destination, dir: string, structure: Structure, selected: Selected[], opts: ContentOptions = {}): AsyncGenerator<ContentEvent[]> {
  // Local incremental and archive: the synchronous reader (the same events and check).
  const sync = await snapshotContentSync(dest, dir, structure, selected, opts);
  if (sync) {
    for (const ev of sync) yield [ev];
    return;
  }
  const objects = opts.objects === true;
  const check = contentCheck(dir, structure, objects, opts);
  // The errors of reading are named here (nameContentError), not by one more generator around rawSnapshotContent.
  try {
    for await (const raw of rawSnapshotContent(dest, dir, structure, selected, objects)) {
      if (!Array.isArray(raw)) {
        yield check.step(raw as ContentEvent);
        continue;
      }
      const out: ContentEvent[] = [];
      try {
        for (const ev of raw) for (const o of check.step(ev)) out.push(o);
      } catch (err) {
        // The files before the one refused are complete and checked: passed on, as one by one.
        if (out.length) yield out;
        throw err;
      }
      if (out.length) yield out;
    }
  } catch (err) {
    throw nameContentError(err, dir, structure, check.current(), objects);
  }
}

/**
 * snapshotContent without a promise per event, where the destination reads synchronously
 * (Destination.openForReads: local) and the structure is read by range (incremental blobs,
 * archive): the same events, the same check and the same refusals. null elsewhere: use
 * snapshotContent.
 */
export async function snapshotContentSync(dest: Destination, dir: string, structure: Structure, selected: Selected[], opts: ContentOptions = {}): Promise<Generator<ContentEvent> | null> {
  if (!dest.openForReads || opts.objects || (structure !== 'incremental' && structure !== 'archive')) return null;
  const what = (rel: string): string => `snapshot ${dir}: ${rel}`;
  if (structure === 'archive' && selected.some((s) => s.entry.kind === 'f' && s.entry.size > 0)) {
    try {
      await requireRegularFile(dest, dir, layout.data('archive'), what(layout.data('archive')));
    } catch (err) {
      throw nameContentError(err, dir, structure, null, false);
    }
  }
  const direct = new DirectReads(dest.openForReads.bind(dest), dir, structure, what);
  const check = contentCheck(dir, structure, false, opts);
  return (function* (): Generator<ContentEvent> {
    try {
      for (const sel of selected) {
        yield* check.step({ type: 'entry', sel });
        if (sel.entry.kind !== 'f') continue;
        const source = sel.contentFrom ?? sel.entry;
        if (source.size > 0) {
          for (const piece of direct.content(source, structure === 'incremental' ? 0 : source.dataRef + tarHeadersLength(source))) yield* check.step(piece);
        }
        yield* check.step({ type: 'data-end' });
      }
    } catch (err) {
      throw nameContentError(err, dir, structure, check.current(), false);
    } finally {
      direct.close();
    }
  })();
}

/**
 * The check of snapshotContent, one event at a time: step() returns what to pass on for
 * `ev`, in order. A checked file's last piece is held back until its data-end, and passed
 * on then only if the content matched (else ContentDamagedError, or onDamage).
 */
function contentCheck(dir: string, structure: Structure, objects: boolean, opts: ContentOptions): { step: (ev: ContentEvent) => ContentEvent[]; current: () => Entry | null } {
  let hash: crypto.Hash | null = null;
  let source: Entry | null = null;
  let held: Buffer | null = null;
  let current: Entry | null = null;
  const none: ContentEvent[] = [];
  const step = (ev: ContentEvent): ContentEvent[] => {
    if (ev.type === 'entry') {
      current = ev.sel.entry;
      source = ev.sel.entry.kind === 'f' ? ev.sel.contentFrom ?? ev.sel.entry : null;
      hash = source?.hash && !opts.checkedByConsumer ? crypto.createHash('sha256') : null;
    } else if (ev.type === 'data') {
      if (hash) {
        hash.update(ev.chunk);
        const before = held;
        held = ev.chunk;
        return before ? [{ type: 'data', chunk: before }] : none;
      }
    } else if (hash && source) {
      const got = hash.digest();
      hash = null;
      if (!got.equals(source.hash!)) {
        const storedIn = storedInOf(dir, structure, source, objects);
        const err = new ContentDamagedError(source.path, storedIn,
          `snapshot ${dir}: the content of ${JSON.stringify(toDisplay(source.path))} (stored in ${storedIn}) does not match its hash: the destination copy is damaged`);
        if (!opts.onDamage) throw err;
        opts.onDamage(err);
      }
      const last = held;
      held = null;
      if (last) return [{ type: 'data', chunk: last }, ev];
    }
    return [ev];
  };
  return { step, current: () => current };
}

/**
 * zlib's and the system's messages name nothing ("unexpected end of file", "incorrect data
 * check", EIO): the error says which snapshot, which of its files, and which entry was read.
 */
function nameContentError(err: unknown, dir: string, structure: Structure, entry: Entry | null, objects: boolean): unknown {
  const e = err as NodeJS.ErrnoException;
  const reading = entry ? ` while reading ${JSON.stringify(toDisplay(entry.path))}` : '';
  const file = entry ? storedInOf(dir, structure, entry, objects) : objects ? 'objects' : layout.data(structure);
  if (typeof e?.code === 'string' && e.code.startsWith('Z_')) {
    return new SnapshotInputError(`snapshot ${dir}: ${file}: ${e.message}${reading}: the destination copy is damaged`);
  }
  if (typeof e?.code === 'string' && !(err instanceof DestinationError)) return describeFsError(err, `snapshot ${dir}: ${file}${reading}`);
  return err;
}

/**
 * Yields the selected entries of a snapshot in order, each regular file followed by
 * its content. Incremental reads one blob per file; archive reads byte ranges of the
 * tar; compressed inflates the archive once from start to end, and seeks by gzip
 * member only for the rare entry whose content lies behind the read position.
 */
async function* rawSnapshotContent(dest: Destination, dir: string, structure: Structure, selected: Selected[], objects: boolean): AsyncGenerator<ContentEvent | ContentEvent[]> {
  if (objects) {
    yield* objectContent(dest, dir, selected);
    return;
  }
  if (structure === 'compressed') {
    yield* compressedContent(dest, dir, selected);
    return;
  }
  const what = (rel: string): string => `snapshot ${dir}: ${rel}`;
  if (structure === 'archive' && selected.some((s) => s.entry.kind === 'f' && s.entry.size > 0)) {
    await requireRegularFile(dest, dir, layout.data('archive'), what(layout.data('archive')));
  }
  // Blob folders listed once each: a blob that is a symlink, fifo or device is never opened.
  const blobDirs = new Map<string, Promise<Map<string, string>>>();
  const checkBlob = async (n: number): Promise<void> => {
    const d = layout.blobDir(n);
    let listed = blobDirs.get(d);
    if (!listed) {
      listed = dest.list(`${dir}/${d}`).then((l) => new Map(l.map((e) => [e.name, e.type])));
      blobDirs.set(d, listed);
    }
    const names = await listed;
    const name = layout.blob(n).slice(d.length + 1);
    const type = names.get(name);
    if (type === undefined) throw new Error(`${what(layout.blob(n))}: not found on the destination: the destination copy is damaged`);
    if (type !== 'file') throw new SnapshotInputError(`${what(layout.blob(n))} is not a regular file on the destination (${type}): refused`);
  };
  // Drivers with synchronous reads (local) take snapshotContentSync. Remote blobs: small ones
  // are fetched several at once, ahead of their turn.
  const blobOf = async (source: Entry): Promise<string> => {
    await checkBlob(source.dataRef);
    return `${dir}/${layout.blob(source.dataRef)}`;
  };
  const ahead = structure === 'incremental'
    ? new ReadAhead(selected, async (source) => readStart(dest, await blobOf(source), source.size), batchReader(dest, blobOf))
    : null;
  // Entries and the content of files read ahead, gathered: one event of rawSnapshotContent for many.
  let batch: ContentEvent[] = [];
  let batchBytes = 0;
  try {
    for (const [i, sel] of selected.entries()) {
      if (sel.entry.kind !== 'f') {
        batch.push({ type: 'entry', sel });
        if (batch.length >= BATCH_EVENTS) { yield batch; batch = []; batchBytes = 0; }
        continue;
      }
      const source = sel.contentFrom ?? sel.entry;
      if (ahead?.covers(i)) {
        batch.push({ type: 'entry', sel });
        try {
          batchBytes += exactParts(await ahead.take(i), source, batch);
        } catch (err) {
          // Passed on as one by one: the files before, then this one's entry (the error names it).
          const before = batch;
          batch = [];
          yield before;
          throw err;
        }
        batch.push({ type: 'data-end' });
        if (batch.length >= BATCH_EVENTS || batchBytes >= BATCH_BYTES) { yield batch; batch = []; batchBytes = 0; }
        continue;
      }
      if (source.size === 0) {
        batch.push({ type: 'entry', sel }, { type: 'data-end' });
        if (batch.length >= BATCH_EVENTS) { yield batch; batch = []; batchBytes = 0; }
        continue;
      }
      if (batch.length) { yield batch; batch = []; batchBytes = 0; }
      yield { type: 'entry', sel };
      if (source.size > 0) {
        if (structure === 'incremental') await checkBlob(source.dataRef);
        const stream = structure === 'incremental'
          ? dest.createReadStream(`${dir}/${layout.blob(source.dataRef)}`)
          : dest.createReadStream(`${dir}/${layout.data('archive')}`, {
            start: source.dataRef + tarHeadersLength(source), end: source.dataRef + tarHeadersLength(source) + source.size,
          });
        yield* exactSize(stream, source);
      }
      yield { type: 'data-end' };
    }
    if (batch.length) yield batch;
  } finally {
    ahead?.close();
  }
}

/** rawSnapshotContent's batches: at most this many events, or this many bytes of content (files read ahead are at most 1 MiB). */
const BATCH_EVENTS = 256;
const BATCH_BYTES = 1 << 20;

/** exactSize for content already read (a file read ahead): its data events pushed onto `into`; the bytes passed. */
function exactParts(chunks: readonly Buffer[], source: Entry, into: ContentEvent[]): number {
  let got = 0;
  for (const chunk of chunks) {
    const part = got + chunk.length > source.size ? chunk.subarray(0, source.size - got) : chunk;
    got += part.length;
    if (part.length) into.push({ type: 'data', chunk: part });
    if (got >= source.size) break;
  }
  if (got !== source.size) throw shortContentError(source.path);
  return got;
}

/** The first `size` bytes of `rel` (fewer when it is shorter): in one exchange where the driver can. */
const readStart = (dest: Destination, rel: string, size: number): Buffer | Promise<Buffer> | Readable =>
  dest.readSmallFile ? dest.readSmallFile(rel, size) : dest.createReadStream(rel, { start: 0, end: size });

/**
 * Reads of several small files at once where the driver fetches them together
 * (readSmallFiles), null elsewhere. Each file is found (and checked to be a regular file by
 * `locate`) first; one that fails there, or in the fetch, fails alone.
 */
function batchReader(dest: Destination, locate: (source: Entry) => Promise<string>): OpenBatch | null {
  if (!dest.readSmallFiles) return null;
  const readMany = dest.readSmallFiles.bind(dest);
  return (sources, flow) => {
    const located = sources.map((s) => locate(s));
    const fetched = Promise.allSettled(located).then((found) => {
      const ok = [...found.keys()].filter((k) => found[k]!.status === 'fulfilled');
      const got = readMany(ok.map((k) => ({ rel: (found[k] as PromiseFulfilledResult<string>).value, size: sources[k]!.size })), flow);
      return new Map(ok.map((k, j) => [k, got[j]!]));
    });
    return sources.map((_, k) => located[k]!.then(() => fetched.then((byIndex) => byIndex.get(k)!)));
  };
}

/** A file's content from `stream`: exactly `source.size` bytes, or an error when the stored copy is short. */
async function* exactSize(stream: AsyncIterable<Buffer> | Iterable<Buffer> | NodeJS.ReadableStream, source: Entry): AsyncGenerator<ContentEvent> {
  let got = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    const part = got + chunk.length > source.size ? chunk.subarray(0, source.size - got) : chunk;
    got += part.length;
    if (part.length) yield { type: 'data', chunk: part };
    if (got >= source.size) break;
  }
  if (got !== source.size) throw shortContentError(source.path);
}

/**
 * Object layout: each file's content is `<account>/objects/<hh>/<sha256>`, a name made from the
 * 32 bytes of the entry's hash (so an index cannot point anywhere else). A file with content
 * and no hash names no object: refused. Object folders are listed once each, so an object
 * that is a symlink, fifo or device is never opened.
 */
async function* objectContent(dest: Destination, dir: string, selected: Selected[]): AsyncGenerator<ContentEvent> {
  const accountDir = accountDirOf(dir);
  const folders = new Map<string, Promise<Map<string, string>>>();
  /** The object of a file's content, checked to be a regular file there. */
  const objectOf = async (source: Entry): Promise<string> => {
    if (!source.hash || source.hash.length !== 32) {
      throw new SnapshotInputError(`snapshot ${dir}: the index entry of ${JSON.stringify(toDisplay(source.path))} names no content object (no SHA-256): refused as damaged or hostile`);
    }
    const hex = source.hash.toString('hex');
    const d = layout.objectDir(accountDir, hex);
    let listed = folders.get(d);
    if (!listed) {
      listed = dest.list(d).catch((err: unknown) => {
        if (err instanceof DestinationError && err.code === 'not-found') return [];
        throw err;
      }).then((l) => new Map(l.map((e) => [e.name, e.type])));
      folders.set(d, listed);
    }
    const names = await listed;
    const rel = layout.object(accountDir, hex);
    const type = names.get(hex);
    if (type === undefined) throw new Error(`snapshot ${dir}: object ${rel} not found on the destination: the destination copy is damaged`);
    if (type !== 'file') throw new SnapshotInputError(`snapshot ${dir}: object ${rel} is not a regular file on the destination (${type}): refused`);
    return rel;
  };
  const ahead = new ReadAhead(selected, async (source) => readStart(dest, await objectOf(source), source.size), batchReader(dest, objectOf));
  try {
    for (const [i, sel] of selected.entries()) {
      yield { type: 'entry', sel };
      if (sel.entry.kind !== 'f') continue;
      const source = sel.contentFrom ?? sel.entry;
      if (ahead.covers(i)) yield* exactSize(await ahead.take(i), source);
      else if (source.size > 0) yield* exactSize(dest.createReadStream(await objectOf(source)), source);
      yield { type: 'data-end' };
    }
  } finally {
    ahead.close();
  }
}

/** Uncompressed bytes the sequential reader of a compressed archive inflates and drops before it seeks instead. */
const SEEK_AHEAD = 4 << 20;

async function* compressedContent(dest: Destination, dir: string, selected: Selected[]): AsyncGenerator<ContentEvent> {
  const file = `${dir}/${layout.data('compressed')}`;
  let tar: AsyncGenerator<NonNullable<TarEvent>> | null = null;
  let inflated: Readable | null = null;
  /** Where the sequential reader is: the offset of the last entry it reached. */
  let position = -1;
  let pending: NonNullable<TarEvent> | null = null;
  let members: GzipMember[] | null = null;
  /** Starts the sequential reader at the entry at `offset`, inflating from member `m` (null: the start). */
  const openAt = (offset: number, m: GzipMember | null): AsyncGenerator<NonNullable<TarEvent>> => {
    inflated = inflateFrom(dest.createReadStream(file, m ? { start: m.cOffset } : undefined), m ? offset - m.uOffset : 0);
    return parseTar(inflated, offset) as AsyncGenerator<NonNullable<TarEvent>>;
  };
  const next = async (): Promise<NonNullable<TarEvent> | null> => {
    if (pending) { const p = pending; pending = null; return p; }
    tar ??= openAt(0, null);
    const r = await tar.next();
    return r.done ? null : r.value;
  };
  /** Moves the sequential reader to the entry at `offset`: inflating starts at the member that holds it. */
  const restartAt = async (offset: number): Promise<void> => {
    await tar?.return(undefined);
    inflated?.destroy();
    pending = null;
    tar = openAt(offset, findMember(members!, offset));
    position = offset - 1;
  };

  if (selected.some((s) => s.entry.kind === 'f' && s.entry.size > 0)) {
    await requireRegularFile(dest, dir, layout.data('compressed'), `snapshot ${dir}: ${layout.data('compressed')}`);
  }
  try {
    for (const sel of selected) {
      yield { type: 'entry', sel };
      if (sel.entry.kind !== 'f') continue;
      const source = sel.contentFrom ?? sel.entry;
      // Behind the sequential reader: one bounded read of the members that hold the entry.
      // Far ahead of it: the reader moves there (starting at the member that holds the
      // entry) instead of inflating everything in between, and goes on from there.
      if (source.dataRef <= position) {
        members ??= await readMembers(dest, dir);
        yield* seekOne(dest, dir, source, members);
        continue;
      }
      if (source.dataRef - Math.max(position, 0) > SEEK_AHEAD) {
        members ??= await readMembers(dest, dir);
        await restartAt(source.dataRef);
      }
      // Advance the sequential reader to the entry at source.dataRef.
      for (;;) {
        const ev = await next();
        if (!ev) throw new Error(`snapshot archive ends before ${JSON.stringify(source.path)}: the destination copy is damaged`);
        if (ev.type === 'entry' && ev.offset === source.dataRef) { position = ev.offset; break; }
        // Past the offset the index gives: the index and the archive disagree (stop here
        // rather than inflate the rest of a possibly endless archive).
        if (ev.type === 'entry' && ev.offset > source.dataRef) {
          throw new Error(`snapshot archive has no entry at the offset the index gives for ${JSON.stringify(source.path)}: the destination copy is damaged`);
        }
      }
      let got = 0;
      for (;;) {
        const ev = await next();
        if (!ev) break;
        if (ev.type === 'data') { got += ev.chunk.length; yield { type: 'data', chunk: ev.chunk }; continue; }
        if (ev.type === 'data-end') break;
        pending = ev;
        break;
      }
      if (got !== source.size) throw shortContentError(source.path);
      yield { type: 'data-end' };
    }
  } finally {
    await (tar as AsyncGenerator<unknown> | null)?.return(undefined);
    (inflated as Readable | null)?.destroy();
  }
}

/**
 * The gzip member list (bounded, see limits.membersBytes), checked: whole non-negative
 * offsets, both increasing. Read once per restore or download, when the first seek needs it.
 */
async function readMembers(dest: Destination, dir: string): Promise<GzipMember[]> {
  const what = `snapshot ${dir}: ${layout.members}`;
  return parseMembers(await readBounded(dest, `${dir}/${layout.members}`, limits.membersBytes, what), what);
}

async function* seekOne(dest: Destination, dir: string, source: Entry, members: GzipMember[]): AsyncGenerator<ContentEvent> {
  const m = findMember(members, source.dataRef);
  // Read only up to the first member that starts after the file's last byte: on an object
  // store each byte read is a byte fetched, and a bounded range is one request that ends.
  const fileEnd = source.dataRef + tarHeadersLength(source) + source.size;
  const after = members.find((x) => x.uOffset >= fileEnd && x.cOffset > m.cOffset);
  const raw = dest.createReadStream(`${dir}/${layout.data('compressed')}`, { start: m.cOffset, ...(after ? { end: after.cOffset } : {}) });
  const stream = inflateFrom(raw, source.dataRef + tarHeadersLength(source) - m.uOffset);
  try {
    yield* exactSize(stream, source);
  } finally {
    stream.destroy();
  }
  yield { type: 'data-end' };
}
