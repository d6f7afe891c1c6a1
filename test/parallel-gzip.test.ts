import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import crypto from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { compressBlock, compressMember, compressMemberAsync, createParallelGzip, gzipBlockBound, findMember, inflateFrom, type GzipMember, type ParallelGzipOptions } from '../server/engine/format/parallel-gzip.js';
import { makeEntry } from '../server/engine/format/entry.js';
import { tarHeaders, tarPadding, TAR_END } from '../server/engine/format/tar.js';
import { nativeAddon } from '../server/native/addon.js';

const MODULE = fileURLToPath(new URL('../server/engine/format/parallel-gzip.js', import.meta.url));
const hasPigz = spawnSync('sh', ['-c', 'command -v pigz']).status === 0;

/** Text-like bytes: words from a small vocabulary, numbers, punctuation. */
function text(n: number, seed = 1): Buffer {
  const words = ['backup', 'restore', 'account', 'public_html', 'index', 'the', 'of', 'and', 'mysql', 'error', 'GET', 'POST', '200', '404', 'tidemark', 'snapshot', 'file', 'directory', 'user', 'mail'];
  let x = seed;
  const next = (): number => { x = (Math.imul(x, 1103515245) + 12345) >>> 0; return x >>> 8; };
  const parts: string[] = [];
  let len = 0;
  while (len < n) {
    const line = `${next() % 100000} ${Array.from({ length: 4 + (next() % 10) }, () => words[next() % words.length]).join(' ')}\n`;
    parts.push(line);
    len += line.length;
  }
  return Buffer.from(parts.join('')).subarray(0, n);
}

/** Random "images" and text interleaved, with boundaries anywhere. */
function mixed(total: number): Buffer {
  const parts: Buffer[] = [];
  let n = 0;
  let i = 0;
  while (n < total) {
    const size = Math.min(total - n, 1000 + ((i * 7_919_731) % 700_000));
    parts.push(i % 2 === 0 ? crypto.randomBytes(size) : text(size, i));
    n += size;
    i++;
  }
  return Buffer.concat(parts);
}

async function compress(chunks: Iterable<Buffer> | AsyncIterable<Buffer>, opts?: ParallelGzipOptions): Promise<{ out: Buffer; members: GzipMember[] }> {
  const gz = createParallelGzip(opts);
  const outs: Buffer[] = [];
  gz.on('data', (c: Buffer) => outs.push(c));
  const ended = new Promise<void>((resolve, reject) => { gz.on('end', resolve); gz.on('error', reject); });
  for await (const c of chunks) {
    if (!gz.write(c)) await new Promise((r) => gz.once('drain', r));
  }
  gz.end();
  await ended;
  return { out: Buffer.concat(outs), members: gz.members() };
}

function* slices(b: Buffer, size: number): Generator<Buffer> {
  for (let o = 0; o < b.length; o += size) yield b.subarray(o, o + size);
}

let tmp: string;
before(() => { tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-pgz-')); });
after(() => { fs.rmSync(tmp, { recursive: true, force: true }); });

/** Where the gzip member that starts at `at` ends: its deflate stream inflated to the end, plus the trailer. */
function nextMember(gz: Buffer, at: number): number {
  const inflater = zlib.inflateRawSync(gz.subarray(at + 10), { info: true }) as unknown as { engine: { bytesWritten: number } };
  return at + 10 + inflater.engine.bytesWritten + 8;
}

let fileNo = 0;
/** Checks the output with gzip -t, gunzip -c, pigz -d and zlib; returns the file written. */
function verify(out: Buffer, input: Buffer): string {
  const file = path.join(tmp, `out-${fileNo++}.gz`);
  fs.writeFileSync(file, out);
  const t = spawnSync('gzip', ['-t', file]);
  assert.equal(t.status, 0, `gzip -t: ${t.stderr}`);
  const g = spawnSync('gunzip', ['-c', file], { maxBuffer: 1 << 30 });
  assert.equal(g.status, 0, `gunzip: ${g.stderr}`);
  assert.ok(g.stdout.equals(input), 'gunzip -c gives the input');
  assert.ok(zlib.gunzipSync(out).equals(input), 'zlib gives the input');
  if (hasPigz) {
    const p = spawnSync('pigz', ['-d', '-c', file], { maxBuffer: 1 << 30 });
    assert.equal(p.status, 0, `pigz -d: ${p.stderr}`);
    assert.ok(p.stdout.equals(input), 'pigz -d gives the input');
  }
  return file;
}

async function readAll(r: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of r) parts.push(c);
  return Buffer.concat(parts);
}

function checkTable(members: GzipMember[], inputLength: number, blockSize: number, outLength: number): void {
  assert.deepEqual(members[0], { uOffset: 0, cOffset: 0 });
  members.forEach((m, i) => {
    if (i === 0) return;
    const prev = members[i - 1]!;
    assert.equal(m.uOffset, prev.uOffset + blockSize);
    assert.ok(m.cOffset > prev.cOffset);
  });
  assert.ok(members[members.length - 1]!.uOffset < Math.max(1, inputLength));
  assert.ok(members[members.length - 1]!.cOffset < outLength);
}

describe('ParallelGzip output', () => {
  test('empty input gives one valid empty member', async () => {
    const { out, members } = await compress([]);
    verify(out, Buffer.alloc(0));
    assert.deepEqual(members, [{ uOffset: 0, cOffset: 0 }]);
  });

  test('one byte', async () => {
    const { out, members } = await compress([Buffer.from('x')]);
    verify(out, Buffer.from('x'));
    assert.equal(members.length, 1);
  });

  test('exactly one block (1 MiB, default size)', async () => {
    const input = text(1 << 20);
    const { out, members } = await compress(slices(input, 100_000));
    verify(out, input);
    assert.deepEqual(members, [{ uOffset: 0, cOffset: 0 }]);
    const one = await compress(slices(Buffer.concat([input, Buffer.from('!')]), 1 << 20));
    assert.equal(one.members.length, 2);
  });

  test('many blocks of random data mixed with text; random data is stored', async () => {
    const input = mixed(12 << 20);
    const blockSize = 256 * 1024;
    const { out, members } = await compress(slices(input, 64 * 1024), { blockSize });
    verify(out, input);
    assert.equal(members.length, Math.ceil(input.length / blockSize));
    checkTable(members, input.length, blockSize, out.length);
    const gzip6 = zlib.gzipSync(input, { level: 6 }).length;
    assert.ok(out.length <= gzip6 * 1.02, `${out.length} bytes vs gzip -6 ${gzip6}`);

    const random = crypto.randomBytes(5 << 20);
    const r = await compress(slices(random, 1 << 20));
    verify(r.out, random);
    assert.ok(r.out.length < random.length * 1.001, `random data grew to ${r.out.length}`);
  });

  test('repetitive data with high byte entropy is still compressed', async () => {
    const unit = crypto.randomBytes(8 * 1024);
    const input = Buffer.concat(Array.from({ length: 256 }, () => unit)); // 2 MiB
    const { out } = await compress([input]);
    verify(out, input);
    assert.ok(out.length < input.length / 10, `only down to ${out.length}`);
  });

  test('level 0 stores and level 9 compresses, both valid', async () => {
    const input = mixed(3 << 20);
    const stored = await compress([input], { level: 0 });
    verify(stored.out, input);
    assert.ok(stored.out.length > input.length);
    const best = await compress([input], { level: 9 });
    verify(best.out, input);
    assert.ok(best.out.length < input.length);
  });

  test('order is kept under many small writes and more blocks than workers', async () => {
    const input = mixed(3 << 20);
    const chunks: Buffer[] = [];
    for (let o = 0, i = 0; o < input.length; i++) {
      const n = 1 + ((i * 7919) % 300);
      chunks.push(input.subarray(o, o + n));
      o += n;
    }
    const { out, members } = await compress(chunks, { blockSize: 16 * 1024, workers: 3, maxInFlight: 4 });
    verify(out, input);
    assert.equal(members.length, Math.ceil(input.length / (16 * 1024)));
  });

  test('a reader that stops reading stops the writer (bounded blocks in flight)', async () => {
    const blockSize = 64 * 1024;
    const gz = createParallelGzip({ blockSize, workers: 2, maxInFlight: 3 });
    const written: Buffer[] = [];
    let stalled = false;
    for (let i = 0; i < 400 && !stalled; i++) {
      const chunk = crypto.randomBytes(16 * 1024);
      written.push(chunk);
      if (!gz.write(chunk)) {
        stalled = !(await Promise.race([
          new Promise<boolean>((r) => gz.once('drain', () => r(true))),
          new Promise<boolean>((r) => setTimeout(() => r(false), 500)),
        ]));
      }
    }
    assert.ok(stalled, 'the writer was never held back');
    assert.ok(gz.uncompressedBytes <= (3 + 2) * blockSize, `took ${gz.uncompressedBytes} bytes without a reader`);
    const outs: Buffer[] = [];
    gz.on('data', (c: Buffer) => outs.push(c));
    const ended = new Promise((r) => gz.on('end', r));
    gz.end();
    await ended;
    assert.ok(zlib.gunzipSync(Buffer.concat(outs)).equals(Buffer.concat(written)));
  });

  test('one big write spanning many blocks', async () => {
    const input = mixed(5 << 20);
    const { out } = await compress([input], { blockSize: 64 * 1024 });
    verify(out, input);
  });

  test('GNU tar extracts a .tar.gz made of our headers and members', async () => {
    const files = [
      { path: 'a/text.txt', data: text(300_000) },
      { path: 'a/random.bin', data: crypto.randomBytes(2_500_000) },
      { path: `odd ${Buffer.from([0xff]).toString('latin1')}name`, data: Buffer.from('x') },
    ];
    const parts: Buffer[] = [tarHeaders(makeEntry({ kind: 'd', path: 'a', mode: 0o755 }))];
    for (const f of files) {
      parts.push(tarHeaders(makeEntry({ kind: 'f', path: f.path, mode: 0o644, size: f.data.length })), f.data, Buffer.alloc(tarPadding(f.data.length)));
    }
    parts.push(TAR_END);
    const tar = Buffer.concat(parts);
    const { out } = await compress(slices(tar, 10_000), { blockSize: 256 * 1024 });
    const file = verify(out, tar);
    const dest = fs.mkdtempSync(path.join(tmp, 'x-'));
    const r = spawnSync('tar', ['-xzf', file, '-C', dest]);
    assert.equal(r.status, 0, r.stderr.toString());
    for (const f of files) {
      assert.ok(fs.readFileSync(Buffer.from(`${dest}/${f.path}`, 'latin1')).equals(f.data));
    }
  });

  test('a block by the native addon (libdeflate): one gzip member per run of cells, text compressed, random data stored, every level', { skip: !nativeAddon('gzipBlock') && 'the addon was built without libdeflate' }, async () => {
    // 16 KiB-aligned text, random data, text: three runs, three members.
    const input = Buffer.concat([text(5 * 16384, 3), crypto.randomBytes(6 * 16384), text(4 * 16384 + 999, 4)]);
    const out = await compressBlock(input, 6);
    verify(out, input);
    assert.ok(out.length <= gzipBlockBound(input.length));
    let members = 0;
    for (let at = 0; at < out.length; members++) {
      assert.deepEqual([...out.subarray(at, at + 4)], [0x1f, 0x8b, 8, 0], `a member header at ${at}`);
      // The stored member of the random run holds its bytes as they are.
      if (members === 1) assert.ok(out.subarray(at, at + 6 * 16384 + 100).includes(input.subarray(5 * 16384, 5 * 16384 + 4096)));
      const one = zlib.gunzipSync(out.subarray(at), { finishFlush: zlib.constants.Z_SYNC_FLUSH });
      at = nextMember(out, at);
      assert.ok(one.length > 0);
    }
    assert.equal(members, 3);
    const zlib6 = (await compressMemberAsync(input, 6)).length;
    assert.ok(out.length < zlib6 * 1.15, `${out.length} bytes vs zlib's ${zlib6}`);
    const random = crypto.randomBytes(1 << 20);
    const stored = await compressBlock(random, 6);
    verify(stored, random);
    assert.ok(stored.length < random.length * 1.001);
    for (const level of [0, 1, 9, 12]) verify(await compressBlock(input, level), input);
    verify(await compressBlock(Buffer.alloc(0), 6), Buffer.alloc(0));
    const repeated = Buffer.concat(Array.from({ length: 64 }, () => random.subarray(0, 8192)));
    assert.ok((await compressBlock(repeated, 6)).length < repeated.length / 10, 'repeated high-entropy data is compressed');
  });

  test('compressMember alone makes a valid member', () => {
    for (const data of [Buffer.alloc(0), text(70_000), crypto.randomBytes(70_000), Buffer.alloc(200_000)]) {
      const m = compressMember(data, 6);
      assert.ok(zlib.gunzipSync(m).equals(data));
      assert.equal(m.buffer.byteLength, m.length);
    }
  });
});

describe('member table and inflateFrom', () => {
  test('inflating from each member gives the input from its offset', async () => {
    const input = mixed(4 << 20);
    const blockSize = 128 * 1024;
    const { out, members } = await compress(slices(input, 50_000), { blockSize });
    const file = verify(out, input);
    for (const m of members) {
      const rest = await readAll(inflateFrom(fs.createReadStream(file, { start: m.cOffset })));
      assert.ok(rest.equals(input.subarray(m.uOffset)), `from member at ${m.uOffset}`);
    }
    // Seek to an arbitrary offset: the member that holds it, then skip.
    for (const offset of [0, 1, blockSize - 1, blockSize, 3 * blockSize + 12_345, input.length - 1]) {
      const m = findMember(members, offset);
      assert.ok(m.uOffset <= offset && offset < m.uOffset + blockSize);
      const stream = inflateFrom(fs.createReadStream(file, { start: m.cOffset }), offset - m.uOffset);
      const got = await readAll(stream);
      assert.ok(got.equals(input.subarray(offset)), `from offset ${offset}`);
    }
    // Node's gunzip goes on across members: all of it in one createGunzip.
    assert.ok((await readAll(fs.createReadStream(file).pipe(zlib.createGunzip()))).equals(input));
  });

  test('stopping early closes the source; damage is reported', async () => {
    const input = mixed(2 << 20);
    const { out, members } = await compress([input], { blockSize: 64 * 1024 });
    const file = path.join(tmp, 'early.gz');
    fs.writeFileSync(file, out);
    const src = fs.createReadStream(file, { start: members[3]!.cOffset });
    for await (const chunk of inflateFrom(src, 10)) {
      assert.ok(chunk.equals(input.subarray(members[3]!.uOffset + 10, members[3]!.uOffset + 10 + chunk.length)));
      break;
    }
    await new Promise((r) => setImmediate(r));
    assert.ok(src.destroyed);
    const damaged = Buffer.from(out);
    damaged.fill(0x55, members[5]!.cOffset + 20, members[5]!.cOffset + 40);
    await assert.rejects(readAll(inflateFrom((async function* () { yield damaged; })())), /check|invalid|incorrect|unexpected/i);
  });
});

describe('resources', () => {
  function child(script: string, timeout = 120_000): { status: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string } {
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { timeout, encoding: 'utf8' });
    return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
  }

  test('workers are shut down: the process exits after finishing and after destroy', () => {
    const r = child(`
      import { createParallelGzip } from ${JSON.stringify(MODULE)};
      import crypto from 'node:crypto';
      const gz = createParallelGzip({ blockSize: 256 * 1024 });
      let n = 0;
      gz.on('data', (c) => { n += c.length; });
      gz.on('end', () => console.log('compressed', n));
      for (let i = 0; i < 20; i++) gz.write(crypto.randomBytes(256 * 1024));
      gz.end();
      const gz2 = createParallelGzip({ blockSize: 64 * 1024 });
      gz2.resume();
      for (let i = 0; i < 10; i++) gz2.write(Buffer.alloc(64 * 1024, 'a'));
      setTimeout(() => gz2.destroy(), 50);
    `, 30_000);
    assert.equal(r.signal, null, 'the child had to be killed: something kept it alive');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /compressed \d+/);
  });

  test('compressing 300 MiB from a generator keeps memory bounded', () => {
    const r = child(`
      import { createParallelGzip } from ${JSON.stringify(MODULE)};
      import crypto from 'node:crypto';
      const random = Array.from({ length: 4 }, () => crypto.randomBytes(1 << 20));
      const words = Buffer.from('tidemark backup restore account public_html index.php 200 GET /wp-login.php\\n'.repeat(14000)).subarray(0, 1 << 20);
      async function* source() {
        for (let i = 0; i < 300; i++) yield Buffer.from(i % 6 === 5 ? words : random[i % 4]);
      }
      global.gc?.();
      const base = process.memoryUsage().rss;
      let peak = base;
      const timer = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss); }, 20);
      const gz = createParallelGzip();
      let out = 0;
      gz.on('data', (c) => { out += c.length; });
      const done = new Promise((resolve, reject) => { gz.on('end', resolve); gz.on('error', reject); });
      for await (const chunk of source()) {
        if (!gz.write(chunk)) await new Promise((r) => gz.once('drain', r));
      }
      gz.end();
      await done;
      clearInterval(timer);
      peak = Math.max(peak, process.memoryUsage().rss);
      console.log(JSON.stringify({ growth: peak - base, out, members: gz.members().length }));
    `);
    assert.equal(r.status, 0, r.stderr);
    const { growth, out, members } = JSON.parse(r.stdout) as { growth: number; out: number; members: number };
    assert.equal(members, 300);
    assert.ok(out < 300 * (1 << 20), `output ${out}`);
    console.log(`rss growth ${(growth / 1048576).toFixed(1)} MiB`);
    assert.ok(growth < 120 * (1 << 20), `rss grew by ${(growth / 1048576).toFixed(1)} MiB`);
  });
});
