import type { Destination } from '../destinations/types.js';
import type { Structure } from '../store/jobs.js';
import { encodeEntry, type Entry } from './format/entry.js';
import { tarHeadersLength } from './format/tar.js';
import { DirectReads } from './direct-reads.js';
import { layout } from './snapshot-layout.js';
import type { Selected } from './selection.js';
import { requireRegularFile } from './untrusted-input.js';
import { eachIndexEntry } from './snapshot-index.js';
import { MAX_FDS_PER_SEND, passFdsSupported, sendWithFds } from '../native/pass-fds.js';
import { closeQuietly } from '../util/close-fd.js';

/** Records are gathered into sends of about this size. */
const SEND_BYTES = 256 << 10;

export type DescriptorMode = 'blobs' | 'archive' | 'compressed';

/**
 * How the restore writer gets content, when root can hand it descriptors instead of bytes:
 * 'blobs' (one descriptor per file of an incremental snapshot), 'archive' (one of the tar, the
 * content of each file at the offset its record names), 'compressed' (one of the gzip member
 * list and one of the .tar.gz: the writer inflates by member, member-inflater.ts), or null
 * (the content crosses the stream). Only a destination with synchronous local reads, and only
 * snapshots read by range (a compressed one without its member list is read as a stream).
 * Into a new folder every file is new; in place the writer reads (or inflates) a file's
 * content only when the file there does not already hold it (restore-writer.ts), instead of
 * root reading, checking and sending every byte.
 */
export function descriptorMode(dest: Destination, dir: string, structure: Structure, objects: boolean): DescriptorMode | null {
  if (!dest.openForReads || objects || !passFdsSupported()) return null;
  if (structure === 'compressed') {
    const members = dest.openForReads(`${dir}/${layout.members}`);
    if (members.type !== 'file') return null;
    members.reader.close();
    return 'compressed';
  }
  return structure === 'incremental' ? 'blobs' : structure === 'archive' ? 'archive' : null;
}

/** Hands the entries to send, in order: `take` returns a promise when the caller must wait for it. */
export type EntrySource = (take: (sel: Selected) => Promise<void> | undefined) => Promise<void>;

/** The entries of a list, as an EntrySource. */
export const fromList = (selected: readonly Selected[]): EntrySource => async (take) => {
  for (const sel of selected) {
    const waiting = take(sel);
    if (waiting) await waiting;
  }
};

/**
 * Every entry of a snapshot's index, as it streams in (a whole home: selectEntries keeps each
 * as it is). The entries read so far are sent as each next chunk is inflated, the reading
 * held back until they are (eachIndexEntry's onInflated), and the rest at the end.
 */
export const fromIndex = (dest: Destination, dir: string): EntrySource => async (take) => {
  let pending: Selected[] = [];
  const drain = async (): Promise<void> => {
    const list = pending;
    pending = [];
    await fromList(list)(take);
  };
  await eachIndexEntry(dest, dir, (entry) => { pending.push({ entry, ancestor: false, contentFrom: null }); }, drain);
  await drain();
};

/**
 * Sends the selected entries to the restore writer over the socket `sock`: each file with
 * content goes as its record, whose dataRef is where its content starts in the stored file,
 * and (blobs) a read-only descriptor of its blob, or (archive) once the tar's, opened after
 * the checks of root's own reads (a regular file, no link followed, the same inode as listed)
 * and checked to be long enough; or (compressed) once the member list's and the .tar.gz's,
 * the content at the offset its record names in the inflated tar. The writer reads (or
 * inflates), checks the SHA-256 of the record and writes (restore-file.c, NewFiles): a
 * damaged copy fails there and never gets a name.
 * `entries` hands the selected entries (a list, or the index as it streams in); `record` gives
 * what to send for each (the owner mapped, the hash). `sent` is true once a record has gone.
 */
export async function sendByDescriptors(sock: number, dest: Destination, dir: string, structure: Structure, entries: EntrySource,
  record: (sel: Selected, source: Entry) => Entry, sent: { any: boolean } = { any: false }): Promise<void> {
  const what = (rel: string): string => `snapshot ${dir}: ${rel}`;
  // The stored archive is checked once, before the first file with content is sent.
  let checked = structure === 'incremental';
  const check = async (): Promise<void> => {
    await requireRegularFile(dest, dir, layout.data(structure), what(layout.data(structure)));
    if (structure === 'compressed') await requireRegularFile(dest, dir, layout.members, what(layout.members));
    checked = true;
  };
  const direct = new DirectReads(dest.openForReads!.bind(dest), dir, structure, what, dest.openManyForReads?.bind(dest));
  // Blobs: opened per send, in one job per folder off the event loop (DirectReads.blobDescriptors),
  // where the driver can; each with the record it goes with (its index in `records`).
  const batched = structure === 'incremental' && dest.openManyForReads !== undefined;
  let blobs: { source: Entry; record: number }[] = [];
  let records: Buffer[] = [];
  let bytes = 0;
  let fds: number[] = [];
  let owned = true;
  let sentMembers = false;
  let inFlight: Promise<void> | null = null;
  const send = async (): Promise<void> => {
    let parts = records;
    let batch = fds;
    const wanted = blobs;
    const close = owned;
    records = [];
    bytes = 0;
    fds = [];
    blobs = [];
    // This batch's blobs open (on the pool) while the previous send finishes.
    const opening = batched && wanted.length > 0 ? direct.blobDescriptors(wanted.map((b) => b.source)) : null;
    // One send under way while the next batch is gathered: the order is kept by waiting for it first.
    try {
      if (inFlight) await inFlight;
    } catch (err) {
      if (opening) for (const fd of (await opening).fds) closeQuietly(fd);
      throw err;
    }
    let failure: Error | null = null;
    if (opening) {
      const got = await opening;
      batch = got.fds;
      if (got.error) {
        // The entries before the one whose blob failed are whole: they still go, then the failure.
        failure = got.error;
        parts = parts.slice(0, wanted[got.fds.length]!.record);
      }
    }
    // Nothing goes when the batch's first blob failed: then no record has gone (no folder made).
    if (parts.length > 0 || batch.length > 0) {
      sent.any = true;
      inFlight = sendWithFds(sock, Buffer.concat(parts), batch, close);
    }
    if (failure) {
      await inFlight;
      throw failure;
    }
  };
  const add = (sel: Selected): Promise<void> | undefined => {
    const source = sel.entry.kind === 'f' ? sel.contentFrom ?? sel.entry : null;
    let start = -1;
    if (source && source.size > 0 && batched) {
      start = 0;
      blobs.push({ source, record: records.length });
    } else if (source && source.size > 0) {
      start = structure === 'incremental' ? 0 : source.dataRef + tarHeadersLength(source);
      // Compressed: the member list goes first, with the archive (both once).
      if (structure === 'compressed' && !sentMembers) {
        const m = direct.lend(layout.members);
        if (m === null) throw new Error('descriptor reads are not supported by this destination');
        fds.push(m);
        sentMembers = true;
      }
      const d = direct.descriptor(source, start);
      if (!d) throw new Error('descriptor reads are not supported by this destination');
      owned = d.owned;
      if (d.fd >= 0) fds.push(d.fd);
    }
    const e = record(sel, source ?? sel.entry);
    const b = encodeEntry(source ? { ...e, size: source.size, dataRef: start } : e, false, sel.ancestor);
    records.push(b);
    bytes += b.length;
    return bytes >= SEND_BYTES || fds.length + blobs.length >= MAX_FDS_PER_SEND ? send() : undefined;
  };
  const take = (sel: Selected): Promise<void> | undefined => {
    if (!checked && sel.entry.kind === 'f' && (sel.contentFrom ?? sel.entry).size > 0) return check().then(() => add(sel));
    return add(sel);
  };
  try {
    await entries(take);
    if (bytes > 0) await send();
    if (inFlight) await inFlight;
  } catch (err) {
    // The entries gathered before the failure are whole: they still go (the files restored so
    // far stay, as with content sent as bytes).
    try {
      if (bytes > 0) await send();
      if (inFlight) await inFlight;
    } catch {
      if (owned) for (const fd of fds) closeQuietly(fd);
    }
    throw err;
  } finally {
    direct.close();
  }
}
