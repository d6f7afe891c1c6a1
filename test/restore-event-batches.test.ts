// The restore writer takes the entry stream by read (entry.ts, eventBatches) instead of
// one async generator step per event: a read's events must be the same events in the same
// order as parseEntryStream gives, a record split between reads must be joined, and a corrupt
// or cut stream must fail as it did, after the events that came whole before it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeEntry, makeEntry, parseEntryStream, type StreamEvent } from '../server/engine/format/entry.js';
import { eventBatches } from '../server/engine/format/entry.js';

async function* reads(chunks: Buffer[]): AsyncGenerator<Buffer> { for (const c of chunks) yield c; }

const stream = (): Buffer => Buffer.concat([
  encodeEntry(makeEntry({ kind: 'd', path: 'a', mode: 0o755 })),
  encodeEntry(makeEntry({ kind: 'f', path: 'a/one', size: 5, mode: 0o644 }), true), Buffer.from('hello'),
  encodeEntry(makeEntry({ kind: 'f', path: 'a/empty', size: 0, mode: 0o600 }), true),
  encodeEntry(makeEntry({ kind: 'l', path: 'a/link', link: 'one' })),
]);

const describe = (ev: StreamEvent): string => ev.type === 'entry' ? `entry ${ev.entry.path} ${ev.hasData}` : ev.type === 'data' ? `data ${ev.chunk.toString()}` : ev.type;

async function flat(chunks: Buffer[]): Promise<{ events: string[]; batches: number }> {
  const events: string[] = [];
  let batches = 0;
  for await (const batch of eventBatches(reads(chunks))) { batches++; for (const ev of batch) events.push(describe(ev)); }
  return { events, batches };
}

test('eventBatches: the events of parseEntryStream, in order, however the stream is cut into reads (data pieces joined back)', async () => {
  const whole = stream();
  const expected: string[] = [];
  for await (const ev of parseEntryStream(reads([whole]))) expected.push(describe(ev));
  const one = await flat([whole]);
  assert.deepEqual(one.events, expected);
  assert.equal(one.batches, 1, 'one read, one batch');
  for (const cut of [1, 3, 7, 50, 60, 61, whole.length - 1]) {
    const got = await flat([whole.subarray(0, cut), whole.subarray(cut)]);
    // Content cut between reads comes as two data events: compare the bytes joined.
    const join = (list: string[]): string[] => list.join('\n').replace(/data ([a-z]*)\ndata ([a-z]*)/g, 'data $1$2').split('\n');
    assert.deepEqual(join(got.events), expected, `cut at ${cut}`);
  }
});

test('eventBatches: a corrupt record fails after the whole events before it; a stream cut inside a record or its content fails', async () => {
  const whole = stream();
  const corrupt = Buffer.concat([whole, Buffer.from([8, 0, 0, 0, 0x66, 0, 0, 0, 0, 0, 0, 0])]);
  const seen: string[] = [];
  await assert.rejects((async () => { for await (const batch of eventBatches(reads([corrupt]))) for (const ev of batch) seen.push(describe(ev)); })(), /corrupt entry stream/);
  assert.ok(seen.includes('entry a/link false'), 'the records before the corrupt one were handed over');
  await assert.rejects(flat([whole.subarray(0, whole.length - 3)]), /ended in the middle of a record/);
  const cutInContent = encodeEntry(makeEntry({ kind: 'f', path: 'x', size: 10 }), true);
  await assert.rejects(flat([Buffer.concat([cutInContent, Buffer.from('abc')])]), /ended in the middle/);
});
