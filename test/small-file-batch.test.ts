import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { SmallFileBatch } from '../server/destinations/small-file-batch.js';
import { newFilesWriter, type BatchWriter } from '../server/native/write-file.js';
import { LocalDestination } from '../server/destinations/local.js';
import { InFlight } from '../server/util/in-flight.js';

/**
 * Small files of a backup go to libuv's pool in batches (one job writes many files). Each file
 * must still get exactly its bytes and its own SHA-256, a failing file must fail alone, and a
 * symbolic link at a file's name is never followed.
 */

const dirs: string[] = [];
after(() => { for (const d of dirs) fs.rmSync(d, { recursive: true, force: true }); });

function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-batch-'));
  dirs.push(dir);
  return dir;
}

const sha256 = (parts: Buffer[]): Buffer => {
  const h = crypto.createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
};

/** The addon's batch writer, counting its calls and the files of each. */
function countingWriter(): { write: BatchWriter; batches: number[] } {
  const real = newFilesWriter();
  assert.ok(real, 'the native addon with writeNewFiles is built');
  const batches: number[] = [];
  return { batches, write: (paths, parts, counts, mode) => { batches.push(paths.length); return real(paths, parts, counts, mode); } };
}

test('a hundred small files added at once are written in a few jobs, each with its own bytes, hash and mode', async () => {
  const dir = tempDir();
  const { write, batches } = countingWriter();
  const batch = new SmallFileBatch(write, 0o600);
  const contents = Array.from({ length: 100 }, (_, i) => [Buffer.from(`file ${i} `), crypto.randomBytes(i * 37), Buffer.alloc(0), Buffer.from('end')]);
  const hashes = await Promise.all(contents.map((parts, i) => batch.add(path.join(dir, `f${i}`), parts)));
  assert.ok(batches.length >= 4 && batches.length < 100, `100 files in ${batches.length} jobs`);
  assert.equal(batches.reduce((a, b) => a + b, 0), 100);
  contents.forEach((parts, i) => {
    const file = path.join(dir, `f${i}`);
    assert.deepEqual(fs.readFileSync(file), Buffer.concat(parts));
    assert.deepEqual(hashes[i], sha256(parts));
    assert.equal(fs.statSync(file).mode & 0o7777, 0o600);
  });
});

test('one failing file of a batch fails alone, with the errno of its open as a Node error code', async () => {
  const dir = tempDir();
  const batch = new SmallFileBatch(countingWriter().write, 0o600);
  const victim = path.join(dir, 'victim');
  fs.writeFileSync(victim, 'untouched');
  fs.symlinkSync(victim, path.join(dir, 'link'));
  const results = await Promise.allSettled([
    batch.add(path.join(dir, 'a'), [Buffer.from('a')]),
    batch.add(path.join(dir, 'link'), [Buffer.from('through the link')]),
    batch.add(path.join(dir, 'missing-folder', 'b'), [Buffer.from('b')]),
    batch.add(path.join(dir, 'c'), [Buffer.from('c')]),
  ]);
  assert.equal(results[0].status, 'fulfilled');
  assert.equal(results[3].status, 'fulfilled');
  assert.equal(results[1].status === 'rejected' && (results[1].reason as NodeJS.ErrnoException).code, 'ELOOP');
  assert.equal(results[2].status === 'rejected' && (results[2].reason as NodeJS.ErrnoException).code, 'ENOENT');
  assert.equal(fs.readFileSync(victim, 'utf8'), 'untouched');
  assert.equal(fs.readFileSync(path.join(dir, 'c'), 'utf8'), 'c');
});

test('an existing file of the batch is truncated, not appended to', async () => {
  const dir = tempDir();
  const batch = new SmallFileBatch(countingWriter().write, 0o600);
  const file = path.join(dir, 'old');
  fs.writeFileSync(file, 'a much longer earlier content');
  await batch.add(file, [Buffer.from('new')]);
  assert.equal(fs.readFileSync(file, 'utf8'), 'new');
});

test('a batch the writer refuses as a whole rejects every file of it', async () => {
  const batch = new SmallFileBatch(() => { throw new TypeError('refused'); }, 0o600);
  const results = await Promise.allSettled([batch.add('/nowhere/a', [Buffer.from('a')]), batch.add('/nowhere/b', [Buffer.from('b')])]);
  assert.deepEqual(results.map((r) => r.status), ['rejected', 'rejected']);
});

test('the local destination writes small files through the batch and still refuses a symbolic link at a blob name', async () => {
  const root = tempDir();
  fs.chmodSync(root, 0o700);
  const dest = new LocalDestination(root);
  await dest.open();
  assert.ok((dest.smallFileParallelism ?? 0) > dest.parallelism, 'small files are taken many at once');
  await dest.mkdir('x');
  const parts = [Buffer.from('hello '), Buffer.from('world')];
  const hashes = await Promise.all([dest.writeSmallFile('x/one', parts), dest.writeSmallFile('x/two', [Buffer.from('2')])]);
  assert.deepEqual(hashes[0], sha256(parts));
  assert.equal(fs.readFileSync(path.join(root, 'x/one'), 'utf8'), 'hello world');
  const victim = path.join(tempDir(), 'victim');
  fs.writeFileSync(victim, 'untouched');
  fs.symlinkSync(victim, path.join(root, 'x/blob'));
  await assert.rejects(dest.writeSmallFile('x/blob', [Buffer.from('overwritten')]), /symbolic link/);
  assert.equal(fs.readFileSync(victim, 'utf8'), 'untouched');
});

test('InFlight with weights holds operations until their weights add up to less than the limit', async () => {
  const flight = new InFlight(10);
  const releases: (() => void)[] = [];
  const op = (): Promise<void> => new Promise<void>((r) => releases.push(r));
  await flight.add(op(), 4);
  await flight.add(op(), 4);
  let third = false;
  const adding = flight.add(op(), 4).then(() => { third = true; });
  await new Promise((r) => setImmediate(r));
  assert.equal(third, false, '12 of 10: the third add waits');
  releases[0]!();
  await adding;
  assert.equal(third, true);
  // One heavier than the limit alone still goes, and its add waits for it.
  let heavyDone = false;
  releases[1]!();
  releases[2]!();
  await flight.drain();
  const heavy = flight.add(op().then(() => { heavyDone = true; }), 50);
  await new Promise((r) => setImmediate(r));
  releases[3]!();
  await heavy;
  assert.equal(heavyDone, true);
});
