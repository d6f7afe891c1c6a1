import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { Readable } from 'node:stream';
import type { Destination, DirEntry } from '../server/destinations/types.js';
import type { Entry } from '../server/engine/format/entry.js';
import type { Selected } from '../server/engine/selection.js';
import { layout } from '../server/engine/snapshot-layout.js';
import { ContentDamagedError, snapshotContent, snapshotContentBatches, type ContentEvent } from '../server/engine/snapshot-content.js';

/**
 * A restore from a remote destination takes snapshotContent's events in batches (one promise
 * for many small files read ahead): the same events in the same order, with the same check;
 * a damaged or short file still fails before its data-end, named, with every file before it
 * passed on complete.
 */
const DIR = 'acct/snap';

/** A remote-like incremental snapshot in memory: no synchronous reads, small files in batches. */
function remote(blobs: Map<number, Buffer>): Destination {
  const files = new Map<string, Buffer>([...blobs].map(([n, b]) => [`${DIR}/${layout.blob(n)}`, b]));
  const read = (rel: string, size: number): Promise<Buffer> => {
    const b = files.get(rel);
    return b ? Promise.resolve(b.subarray(0, size)) : Promise.reject(new Error(`not found: ${rel}`));
  };
  return {
    type: 'fake-remote',
    list: async (rel: string): Promise<DirEntry[]> => [...files.keys()].filter((k) => k.startsWith(`${rel}/`))
      .map((k) => ({ name: k.slice(rel.length + 1), type: 'file' as const, size: files.get(k)!.length, mtimeMs: 0 })),
    readSmallFile: read,
    readSmallFiles: (wanted: readonly { rel: string; size: number }[]) => wanted.map((w) => read(w.rel, w.size)),
    createReadStream: (rel: string) => Readable.from([files.get(rel)!.subarray(0, 100_000), files.get(rel)!.subarray(100_000)]),
  } as unknown as Destination;
}

function snapshot(n: number): { selected: Selected[]; blobs: Map<number, Buffer> } {
  const selected: Selected[] = [];
  const blobs = new Map<number, Buffer>();
  for (let i = 0; i < n; i++) {
    if (i % 7 === 3) {
      selected.push({ entry: { kind: 'd', path: `d${i}`, size: 0 } as unknown as Entry, ancestor: false, contentFrom: null } as Selected);
      continue;
    }
    // Mostly small files, an empty one, and a few over the read-ahead's 1 MiB (read as a stream).
    const size = i % 50 === 10 ? (1 << 20) + 12345 : i % 11 === 0 ? 0 : 1 + ((i * 7919) % 9000);
    const data = crypto.randomBytes(size);
    blobs.set(i, data);
    const hash = crypto.createHash('sha256').update(data).digest();
    selected.push({ entry: { kind: 'f', path: `f${i}`, size, dataRef: i, hash } as unknown as Entry, ancestor: false, contentFrom: null } as Selected);
  }
  return { selected, blobs };
}

/** The events as (kind, path or bytes) so two runs compare by content. */
const describe = (evs: ContentEvent[]): string[] => {
  const out: string[] = [];
  let data: Buffer[] = [];
  for (const ev of evs) {
    if (ev.type === 'entry') out.push(`entry ${String(ev.sel.entry.path)}`);
    else if (ev.type === 'data') data.push(ev.chunk);
    else { out.push(`data ${crypto.createHash('sha256').update(Buffer.concat(data)).digest('hex')}`, 'end'); data = []; }
  }
  return out;
};

async function collect(it: AsyncIterable<ContentEvent | ContentEvent[]>): Promise<{ events: ContentEvent[]; error: unknown }> {
  const events: ContentEvent[] = [];
  try {
    for await (const x of it) events.push(...(Array.isArray(x) ? x : [x]));
  } catch (error) {
    return { events, error };
  }
  return { events, error: null };
}

test('content in batches: the same events, in order, as one by one, and every file exact', async () => {
  const { selected, blobs } = snapshot(3000);
  const one = await collect(snapshotContent(remote(blobs), DIR, 'incremental', selected));
  const many = await collect(snapshotContentBatches(remote(blobs), DIR, 'incremental', selected));
  assert.equal(one.error, null);
  assert.equal(many.error, null);
  assert.deepEqual(describe(many.events), describe(one.events));
  // Every file's bytes are its blob's.
  let i = -1;
  let got: Buffer[] = [];
  for (const ev of many.events) {
    if (ev.type === 'entry') { i = Number(String(ev.sel.entry.path).slice(1)); got = []; } else if (ev.type === 'data') got.push(ev.chunk);
    else assert.ok(Buffer.concat(got).equals(blobs.get(i)!), `file ${i}`);
  }
  let batches = 0;
  for await (const b of snapshotContentBatches(remote(blobs), DIR, 'incremental', selected)) { batches++; assert.ok(b.length <= 256 + 2); }
  assert.ok(batches < many.events.length / 10, `batches: ${batches} for ${many.events.length} events`);
});

test('content in batches: a damaged file fails before its data-end, named, after every file before it came complete', async () => {
  const { selected, blobs } = snapshot(600);
  const damaged = 200;
  const b = blobs.get(damaged)!;
  b[b.length - 1] = b[b.length - 1]! ^ 1;
  const { events, error } = await collect(snapshotContentBatches(remote(blobs), DIR, 'incremental', selected));
  assert.ok(error instanceof ContentDamagedError, String(error));
  assert.match((error as Error).message, /f200/);
  const seen = describe(events);
  const ends = seen.filter((s) => s === 'end').length;
  const filesBefore = selected.slice(0, damaged).filter((s) => s.entry.kind === 'f').length;
  assert.equal(ends, filesBefore, 'each file before the damaged one ended, the damaged one did not');
  assert.equal(seen.at(-1), `entry f${damaged}`, 'the damaged file\'s data is held back');
});

test('content in batches: a short stored copy of a file read ahead is refused, named, after the files before it', async () => {
  const { selected, blobs } = snapshot(600);
  const short = 301;
  blobs.set(short, blobs.get(short)!.subarray(0, 5));
  const { events, error } = await collect(snapshotContentBatches(remote(blobs), DIR, 'incremental', selected));
  assert.ok(error, 'refused');
  assert.match((error as Error).message, /f301/);
  const ends = describe(events).filter((s) => s === 'end').length;
  assert.equal(ends, selected.slice(0, short).filter((s) => s.entry.kind === 'f').length);
});

test('content in batches, checked by the consumer: a damaged file passes whole, unheld, as stored; a short copy is still refused', async () => {
  const { selected, blobs } = snapshot(600);
  const damaged = 200;
  const b = blobs.get(damaged)!;
  b[b.length - 1] = b[b.length - 1]! ^ 1;
  const { events, error } = await collect(snapshotContentBatches(remote(blobs), DIR, 'incremental', selected, { checkedByConsumer: true }));
  assert.equal(error, null);
  // Every file, the damaged one too, is its stored copy, whole (the writer checks it).
  let i = -1;
  let got: Buffer[] = [];
  let ends = 0;
  for (const ev of events) {
    if (ev.type === 'entry') { i = Number(String(ev.sel.entry.path).slice(1)); got = []; } else if (ev.type === 'data') got.push(ev.chunk);
    else { ends++; assert.ok(Buffer.concat(got).equals(blobs.get(i)!), `file ${i}`); }
  }
  assert.equal(ends, selected.filter((s) => s.entry.kind === 'f').length);

  const short = 301;
  blobs.set(short, blobs.get(short)!.subarray(0, 5));
  const cut = await collect(snapshotContentBatches(remote(blobs), DIR, 'incremental', selected, { checkedByConsumer: true }));
  assert.ok(cut.error, 'refused');
  assert.match((cut.error as Error).message, /f301/);
});
