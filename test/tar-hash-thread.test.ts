// The archive's hashes are computed in a worker thread of root: they must be exactly the
// hashes of what passes through, whatever the chunking, also for files behind long names,
// and the stage must hold the stream back (not buffer without end) when the thread lags.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { makeEntry } from '../server/engine/format/entry.js';
import { tarHeaders, tarPadding, TAR_END } from '../server/engine/format/tar.js';
import { TarHashThread } from '../server/engine/format/tar-hash-thread.js';

const sha = (b: Buffer): Buffer => crypto.createHash('sha256').update(b).digest();

function buildTar(files: { path: string; content: Buffer }[]): { tar: Buffer; offsets: number[] } {
  const parts: Buffer[] = [];
  const offsets: number[] = [];
  let at = 0;
  const push = (b: Buffer): void => { parts.push(b); at += b.length; };
  for (const f of files) {
    offsets.push(at);
    push(tarHeaders(makeEntry({ kind: 'f', path: f.path, mode: 0o644, size: f.content.length })));
    push(f.content);
    push(Buffer.alloc(tarPadding(f.content.length)));
  }
  push(TAR_END);
  return { tar: Buffer.concat(parts), offsets };
}

/** Feeds `tar` in pieces of the given sizes (cycled) through the thread's stage; returns what came out. */
async function run(tar: Buffer, pieces: number[], whole: boolean, slowSink = false): Promise<{ out: Buffer; hashes: TarHashThread; whole: string | null }> {
  const hashes = new TarHashThread({ whole });
  const chunks: Buffer[] = [];
  let o = 0;
  let i = 0;
  while (o < tar.length) { const n = pieces[i++ % pieces.length]!; chunks.push(tar.subarray(o, o + n)); o += n; }
  const got: Buffer[] = [];
  const sink = new Writable({
    write(c: Buffer, _e, cb) { got.push(Buffer.from(c)); if (slowSink) setImmediate(cb); else cb(); },
  });
  await pipeline(Readable.from(chunks), hashes.stream(), sink);
  const w = await hashes.finished();
  return { out: Buffer.concat(got), hashes, whole: w };
}

test('per-file and whole-stream hashes equal SHA-256 of the bytes, in any chunking, long names included', async () => {
  const files = [
    { path: 'a.txt', content: Buffer.from('alpha') },
    { path: 'empty', content: Buffer.alloc(0) },
    { path: `${'long-name-'.repeat(20)}/file.bin`, content: crypto.randomBytes(3 << 20) },
    { path: 'b.txt', content: crypto.randomBytes(513) },
  ];
  const { tar, offsets } = buildTar(files);
  for (const pieces of [[1 << 16], [1, 511, 7, 100000], [tar.length]]) {
    const r = await run(tar, pieces, true);
    assert.ok(r.out.equals(tar), 'passes the tar through unchanged');
    assert.equal(r.whole, crypto.createHash('sha256').update(tar).digest('hex'));
    files.forEach((f, i) => assert.deepEqual(r.hashes.takeHash(offsets[i]!), sha(f.content), f.path));
    assert.equal(r.hashes.takeHash(offsets[0]!), undefined, 'forgotten once taken');
  }
});

test('without the whole-stream hash it hands back null, and more than the in-flight limit passes with a slow reader', async () => {
  const big = crypto.randomBytes(24 << 20);
  const { tar, offsets } = buildTar([{ path: 'big', content: big }]);
  const r = await run(tar, [1 << 16], false, true);
  assert.equal(r.whole, null);
  assert.ok(r.out.equals(tar));
  assert.deepEqual(r.hashes.takeHash(offsets[0]!), sha(big));
});

test('a hostile stream (garbage, no end blocks) yields no hash and no exception', async () => {
  const garbage = crypto.randomBytes(1 << 20);
  const r = await run(garbage, [4096], true);
  assert.ok(r.out.equals(garbage));
  assert.equal(r.whole, crypto.createHash('sha256').update(garbage).digest('hex'));
});
