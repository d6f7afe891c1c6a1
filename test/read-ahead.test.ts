import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Entry } from '../server/engine/format/entry.js';
import type { Selected } from '../server/engine/selection.js';
import type { ReadFlow } from '../server/destinations/types.js';
import { ReadAhead } from '../server/engine/read-ahead.js';

/**
 * The read-ahead of a restore with a batch reader (a remote tar of thousands of files): one
 * call per 2,048 files, the next once the last one's files have all come, and never more than
 * its window of fetched files waiting to be taken, whatever the batch holds.
 */
const file = (i: number, size: number): Selected =>
  ({ entry: { kind: 'f', size, path: Buffer.from(`f${i}`), dataRef: i } as unknown as Entry, ancestor: false, contentFrom: null });

/** A driver that delivers each file as soon as the flow lets it, one after the other, as a remote tar's stream would. */
function eagerDriver(log: { calls: number[]; delivered: number }): (sources: Entry[], flow: ReadFlow) => Promise<Buffer>[] {
  return (sources, flow) => {
    log.calls.push(sources.length);
    const settle: ((b: Buffer) => void)[] = [];
    const out = sources.map(() => new Promise<Buffer>((resolve) => { settle.push(resolve); }));
    void (async () => {
      for (const [k, s] of sources.entries()) {
        const wait = flow.room();
        if (wait) await wait;
        await new Promise((r) => setImmediate(r));
        log.delivered++;
        settle[k]!(Buffer.alloc(s.size, k % 251));
      }
    })().catch(() => undefined);
    return out;
  };
}

test('read-ahead with a batch reader: 2,048 files per call, the next once they all came; the window of fetched files is bounded by bytes, exact content in order', async () => {
  const size = 64 << 10;
  const selected = Array.from({ length: 5000 }, (_, i) => file(i, size));
  const log = { calls: [] as number[], delivered: 0 };
  const ahead = new ReadAhead(selected, () => Promise.reject(new Error('not per file')), eagerDriver(log));
  let taken = 0;
  let mostAhead = 0;
  for (let i = 0; i < selected.length; i++) {
    assert.ok(ahead.covers(i));
    const chunks = await ahead.take(i);
    taken++;
    const b = Buffer.concat(chunks);
    assert.equal(b.length, size);
    assert.equal(b[0], (i % 2048) % 251, `file ${i}`);
    // Let the driver run as far as it may before the next take.
    if (i % 97 === 0) for (let k = 0; k < 200; k++) await new Promise((r) => setImmediate(r));
    mostAhead = Math.max(mostAhead, log.delivered - taken);
  }
  assert.deepEqual(log.calls, [2048, 2048, 904]);
  // 4 MiB of 64 KiB files: 64 waiting, and one more that came while the window filled.
  assert.ok(mostAhead <= 65, `files fetched and not taken at most: ${mostAhead}`);
  assert.ok(mostAhead >= 32, `the driver reads ahead: ${mostAhead}`);
  ahead.close();
});

test('read-ahead with a batch reader: a take waiting for a file lets the driver read on past a full window; close() stops a held driver', async () => {
  // Files that came out of order (a file tar skipped comes over SFTP afterwards): the window
  // is full of later files while the one taken next has not come; the driver must go on.
  const size = 1 << 20;
  const selected = Array.from({ length: 12 }, (_, i) => file(i, size));
  let flowOf: ReadFlow | null = null;
  const settle: ((b: Buffer) => void)[] = [];
  const order = [1, 2, 3, 4, 5, 6, 0, 7, 8, 9, 10, 11];
  let driverStopped: Error | null = null;
  const ahead = new ReadAhead(selected, () => Promise.reject(new Error('not per file')), (sources, flow) => {
    flowOf = flow;
    const out = sources.map(() => new Promise<Buffer>((resolve) => { settle.push(resolve); }));
    void (async () => {
      for (const k of order) {
        const wait = flow.room();
        if (wait) await wait;
        settle[k]!(Buffer.alloc(size, k));
        await new Promise((r) => setImmediate(r));
      }
    })().catch((err: Error) => { driverStopped = err; });
    return out;
  });
  const first = await ahead.take(0);
  assert.equal(Buffer.concat(first)[0], 0, 'file 0 came although five later files filled the window');
  assert.equal((await ahead.take(1))[0]![0], 1);
  // Now held: the window is full again (files 2-6 came, 5 MiB). Nothing more is taken: close.
  for (let k = 0; k < 50; k++) await new Promise((r) => setImmediate(r));
  assert.ok(flowOf!.room() !== null, 'the window is full');
  ahead.close();
  for (let k = 0; k < 10 && !driverStopped; k++) await new Promise((r) => setImmediate(r));
  assert.match(String(driverStopped), /stopped reading/, 'a held driver is told to stop, not left waiting');
  await assert.rejects(flowOf!.room()!, /stopped reading/);
});
