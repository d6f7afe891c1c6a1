import fs from 'node:fs';
import type { Entry, StreamEvent } from '../format/entry.js';
import { parseMembers } from '../format/gzip-members.js';
import { limits } from '../untrusted-input.js';
import { toDisplay } from '../../util/byte-path.js';
import { MemberInflater } from './member-inflater.js';
import { layout } from '../snapshot-layout.js';
import { reuseLargeBuffers } from '../../native/malloc-policy.js';

const DATA_END: StreamEvent = { type: 'data-end' };

/**
 * A restore into a new folder, or in place, from a local compressed snapshot (contentFds 'compressed'):
 * root sends the records only, and with the first file that has content the descriptors of
 * the snapshot's gzip member list and of its .tar.gz (restore-descriptors.ts). events() gives
 * the writer the stream it would get with the content in it: each such file's record marked
 * as followed by its content, then that content, inflated here (MemberInflater) from the
 * offset its record names. The writer checks it against the record's SHA-256 as it does a
 * stream's (contentChecked is off), so a damaged copy never stays under its name.
 */
export class CompressedContent {
  private inflater: MemberInflater | null = null;
  private fds: number[] = [];
  /** The file whose content the writer does not need (skipContent). */
  private skipped: Entry | null = null;

  /** `received`: the descriptors that came with the stream, not yet taken; `snapshot`: its account/id, for messages. */
  constructor(private readonly received: number[], private readonly snapshot: string) {}

  /**
   * The events by batch, as the writer takes them (eventBatches): the records that need no
   * content go on in their batch; a batch ends with each record whose content is read here,
   * so that the writer has taken it (and may have called skipContent) before any of that
   * content is read; then each piece of it comes alone, since a piece is valid only until the
   * next is read (MemberInflater.read).
   */
  async *events(source: AsyncIterable<StreamEvent[]>): AsyncGenerator<StreamEvent[]> {
    for await (const batch of source) {
      let out: StreamEvent[] = [];
      for (const ev of batch) {
        if (ev.type !== 'entry' || ev.entry.kind !== 'f' || ev.entry.size === 0 || ev.hasData) { out.push(ev); continue; }
        const e = ev.entry;
        if (!Number.isSafeInteger(e.dataRef) || e.dataRef < 0) throw new Error(`the restore stream names the content of ${JSON.stringify(toDisplay(e.path))} without its offset`);
        const inflater = this.open(e);
        // Content without a hash to check it against: the members' CRC is its only check.
        if (!e.hash) inflater.requireCrc();
        out.push({ ...ev, hasData: true });
        yield out;
        out = [];
        if (this.skipped === e) {
          this.skipped = null;
          out.push(DATA_END);
          continue;
        }
        // Most files lie in one member inflated already: taken at once, with the next records.
        const now = inflater.readNow(e.dataRef, e.size);
        if (now) {
          for (const chunk of now) out.push({ type: 'data', chunk });
          out.push(DATA_END);
          continue;
        }
        try {
          for await (const chunk of inflater.read(e.dataRef, e.size)) yield [{ type: 'data', chunk }];
        } catch (err) {
          // The words of the stream path (snapshot-content.ts, nameContentError).
          throw new Error(`snapshot ${this.snapshot}: ${layout.data('compressed')}: ${(err as Error).message} while reading ${JSON.stringify(toDisplay(e.path))}: the destination copy is damaged; that file was not restored and the restore stopped there`);
        }
        out.push(DATA_END);
      }
      if (out.length > 0) yield out;
    }
  }

  /**
   * The writer needs no content for `entry` (in place: the file there already holds it; or it
   * could not be opened), asked before it takes the next event: its members are not read or
   * inflated, and its record is followed by a data-end at once. A call for an entry whose
   * content is not read here has no effect.
   */
  skipContent(entry: Entry): void {
    this.skipped = entry;
  }

  /** Waits for the reads under way, then closes the descriptors taken. */
  async close(): Promise<void> {
    await this.inflater?.settle();
    for (const fd of this.fds.splice(0)) { try { fs.closeSync(fd); } catch { /* closed */ } }
  }

  private open(e: Entry): MemberInflater {
    if (this.inflater) return this.inflater;
    const name = JSON.stringify(toDisplay(e.path));
    const membersFd = this.received.shift();
    const archiveFd = this.received.shift();
    for (const fd of [membersFd, archiveFd]) if (fd !== undefined) this.fds.push(fd);
    if (membersFd === undefined || archiveFd === undefined) throw new Error(`the restore stream names the content of ${name} without its descriptors`);
    const what = `snapshot ${this.snapshot}: ${layout.members}`;
    // Members are read and inflated into 1-2 MiB Buffers, one after the other: freed ones are taken again.
    reuseLargeBuffers();
    const size = fs.fstatSync(membersFd).size;
    if (size > limits.membersBytes) throw new Error(`${what} is larger than ${limits.membersBytes} bytes: refused as damaged or hostile`);
    const raw = Buffer.allocUnsafe(size);
    for (let got = 0; got < size;) {
      const n = fs.readSync(membersFd, raw, got, size - got, got);
      if (n === 0) throw new Error(`${what} is shorter than its size`);
      got += n;
    }
    // Without the CRC: the writer checks each file's content against its SHA-256 (requireCrc for one without).
    this.inflater = new MemberInflater(archiveFd, parseMembers(raw, what), fs.fstatSync(archiveFd).size, false);
    return this.inflater;
  }
}
