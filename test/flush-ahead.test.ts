// The write-outs a restore into a new folder starts while it writes (flush-ahead.ts): one per
// FLUSH_AHEAD_BYTES written, never two at a time, and a failed one fails the restore at its end.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FlushAhead } from '../server/engine/worker/flush-ahead.js';

test('FlushAhead: a write-out starts each time enough was written, at most one at a time; settle waits for it', async () => {
  const calls: { fd: number; dir: string; finish: () => void }[] = [];
  const sync = (fd: number, dir: string): Promise<void> => new Promise((resolve) => { calls.push({ fd, dir, finish: resolve }); });
  const ahead = new FlushAhead(7, '/home/a/folder', 100, sync);
  ahead.wrote(60);
  assert.equal(calls.length, 0, 'not enough written yet');
  ahead.wrote(40);
  assert.equal(calls.length, 1);
  assert.deepEqual([calls[0]!.fd, calls[0]!.dir], [7, '/home/a/folder']);
  ahead.wrote(500);
  assert.equal(calls.length, 1, 'never a second while one runs');
  let settled = false;
  const settling = ahead.settle().then(() => { settled = true; });
  await new Promise((r) => setImmediate(r));
  assert.equal(settled, false, 'settle waits for the write-out under way');
  calls[0]!.finish();
  await settling;
  // What was written while it ran is not flushed yet: the next write starts the next write-out.
  ahead.wrote(1);
  assert.equal(calls.length, 2);
  calls[1]!.finish();
  await ahead.settle();
  ahead.wrote(99);
  assert.equal(calls.length, 2, 'counted again from the start of the last one');
  ahead.wrote(1);
  assert.equal(calls.length, 3);
  calls[2]!.finish();
  await ahead.settle();
});

test('FlushAhead: a write-out that fails is thrown by settle, even after later ones succeed (syncfs reports an error once)', async () => {
  let n = 0;
  const sync = (): Promise<void> => (++n === 1 ? Promise.reject(Object.assign(new Error('EIO: i/o error, syncfs'), { code: 'EIO' })) : Promise.resolve());
  const ahead = new FlushAhead(3, '/x', 10, sync);
  ahead.wrote(10);
  await new Promise((r) => setImmediate(r));
  ahead.wrote(10);
  await new Promise((r) => setImmediate(r));
  assert.equal(n, 2);
  await assert.rejects(ahead.settle(), { code: 'EIO' });
});

test('FlushAhead: with the real syncfs, written files are there after settle', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-flush-ahead-'));
  const fd = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  try {
    const ahead = new FlushAhead(fd, dir, 1 << 10);
    fs.writeFileSync(path.join(dir, 'a'), Buffer.alloc(4096, 1));
    ahead.wrote(4096);
    await ahead.settle();
    assert.equal(fs.readFileSync(path.join(dir, 'a')).length, 4096);
  } finally {
    fs.closeSync(fd);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
