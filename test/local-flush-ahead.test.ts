import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FILES_FSYNCED_ONE_BY_ONE, LocalDestination } from '../server/destinations/local.js';

/**
 * LocalDestination.flushAhead: a backup asks the destination to start writing out while it
 * runs (backup.ts), so that the commit's flush waits for little. A write-out starts only when
 * the next flush would be a syncfs anyway, never two at once; flush waits for one under way
 * and throws an error it met (syncfs reports a write-out error only once per descriptor).
 */

const made: string[] = [];
after(() => { for (const d of made) fs.rmSync(d, { recursive: true, force: true }); });

interface Call { fd: number; dir: string; finish: (err?: Error) => void }

async function destination(): Promise<{ dest: LocalDestination; calls: Call[] }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-flush-ahead-'));
  fs.chmodSync(dir, 0o700);
  made.push(dir);
  const calls: Call[] = [];
  const syncFilesystem = (fd: number, d: string): Promise<void> => new Promise((resolve, reject) => {
    calls.push({ fd, dir: d, finish: (err) => (err ? reject(err) : resolve()) });
  });
  const dest = new LocalDestination(dir, { syncFilesystem });
  await dest.open();
  // Opening may flush the destination's own marker file: that is not what is counted here.
  for (const c of calls.splice(0)) c.finish();
  return { dest, calls };
}

/** Writes `n` small files, the way a backup's blobs are written. */
async function writeFiles(dest: LocalDestination, n: number, prefix = 'f'): Promise<void> {
  await dest.mkdir('snap');
  for (let i = 0; i < n; i++) await dest.writeSmallFile(`snap/${prefix}${i}`, [Buffer.from(`content ${i}`)]);
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('LocalDestination.flushAhead', () => {
  test('nothing written, or few files (the flush fsyncs them one by one): no write-out of the whole filesystem', async () => {
    const { dest, calls } = await destination();
    dest.flushAhead();
    await writeFiles(dest, 3);
    dest.flushAhead();
    assert.equal(calls.length, 0);
    await dest.flush(['snap']);
    assert.equal(calls.length, 0, 'three files are fsynced one by one');
    await dest.close();
  });

  test('many files: one write-out at a time, and the flush waits for it before its own', async () => {
    const { dest, calls } = await destination();
    await writeFiles(dest, FILES_FSYNCED_ONE_BY_ONE + 1);
    dest.flushAhead();
    dest.flushAhead();
    assert.equal(calls.length, 1, 'never a second while one runs');
    let flushed = false;
    const flushing = dest.flush(['snap']).then(() => { flushed = true; });
    await tick();
    assert.equal(calls.length, 1, 'the flush waits for the write-out under way');
    assert.equal(flushed, false);
    calls[0]!.finish();
    for (let i = 0; i < 10 && calls.length < 2; i++) await tick();
    assert.equal(calls.length, 2, "then the flush's own syncfs");
    calls[1]!.finish();
    await flushing;
    // Flushed: nothing is left to write out.
    dest.flushAhead();
    assert.equal(calls.length, 2);
    const listed = await dest.list('snap');
    assert.equal(listed.length, FILES_FSYNCED_ONE_BY_ONE + 1);
    await dest.close();
  });

  test('regression guard: a write-out that failed fails the next flush, though its own syncfs succeeds', async () => {
    const { dest, calls } = await destination();
    await writeFiles(dest, FILES_FSYNCED_ONE_BY_ONE + 1);
    dest.flushAhead();
    calls[0]!.finish(Object.assign(new Error('EIO: i/o error, syncfs'), { code: 'EIO' }));
    await tick();
    await assert.rejects(dest.flush(['snap']), (err: Error & { code?: string }) => /i\/o error/i.test(err.message) || err.code === 'EIO');
    // What the failed write-out covered is still unflushed: the next flush syncs the filesystem again.
    const again = dest.flush(['snap']);
    for (let i = 0; i < 10 && calls.length < 2; i++) await tick();
    assert.equal(calls.length, 2);
    calls[1]!.finish();
    await again;
    await dest.close();
  });

  test('few files, one of them streamed (an archive): the streamed file is written out by itself, no syncfs; one removed since is passed over', async () => {
    const { dest, calls } = await destination();
    await writeFiles(dest, 3);
    const body = Buffer.alloc(3 << 20, 7);
    await new Promise<void>((resolve, reject) => {
      const w = dest.createWriteStream('snap/data.tar');
      w.on('error', reject);
      w.end(body, () => resolve());
    });
    const fd = dest.openWriteFd('snap/gone');
    fs.closeSync(fd);
    await dest.remove('snap/gone');
    dest.flushAhead();
    await dest.flush(['snap']);
    assert.equal(calls.length, 0, 'no write-out of the whole filesystem');
    assert.deepEqual(await dest.readFile('snap/data.tar'), body);
    await dest.close();
  });

  test('close waits for a write-out still using the descriptor', async () => {
    const { dest, calls } = await destination();
    await writeFiles(dest, FILES_FSYNCED_ONE_BY_ONE + 1);
    dest.flushAhead();
    let closed = false;
    const closing = dest.close().then(() => { closed = true; });
    await tick();
    assert.equal(closed, false);
    calls[0]!.finish();
    await closing;
  });
});
