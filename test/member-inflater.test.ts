// The writer's reading of a compressed snapshot by gzip member (member-inflater.ts): members
// made only of stored blocks are taken as they are (storedPieces), every other member is
// inflated by zlib. The archive is the destination's: a member that is not laid out exactly as
// a backup writes it must never be taken as stored, and what read() gives must be the bytes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import zlib from 'node:zlib';
import { compressBlock, compressMember } from '../server/engine/format/parallel-gzip.js';
import { ArchiveDamage, MemberInflater, storedPieces } from '../server/engine/worker/member-inflater.js';
import { inflateMemberOffLoop, inflateMemberSupported } from '../server/native/inflate-member.js';
import { memberArchive, memberArchiveOf, type MemberArchive } from './support/gzip-members.js';

const text = (n: number): Buffer => Buffer.from('tidemark restores every byte of every file\n'.repeat(Math.ceil(n / 43))).subarray(0, n);

test('storedPieces: a member of stored blocks gives its bytes as views; any other layout gives null', () => {
  const data = crypto.randomBytes(300_000);
  const member = compressMember(data);
  const pieces = storedPieces(member);
  assert.ok(pieces, 'random data is stored');
  assert.ok(pieces.length > 1, 'in several blocks of at most 65535 bytes');
  assert.ok(Buffer.concat(pieces).equals(data));
  assert.equal(pieces[0]!.buffer, member.buffer, 'views, not copies');

  assert.equal(storedPieces(compressMember(text(300_000))), null, 'deflated blocks go to zlib');
  // zlib's own stored gzip has the same layout.
  const small = crypto.randomBytes(1000);
  assert.ok(Buffer.concat(storedPieces(zlib.gzipSync(small, { level: 0 }))!).equals(small));

  const bad = (change: (b: Buffer) => Buffer): Buffer[] | null => storedPieces(change(Buffer.from(member)));
  // The first block's NLEN is not LEN's complement.
  assert.equal(bad((b) => { b[13] = b[13]! ^ 1; return b; }), null);
  // A length that reaches past the trailer.
  assert.equal(bad((b) => { b.writeUInt16LE(0xffff, 11); b.writeUInt16LE(0, 13); return b.subarray(0, 40_000); }), null);
  // The trailer's length disagrees.
  assert.equal(bad((b) => { b.writeUInt32LE(12345, b.length - 4); return b; }), null);
  // Bytes after the final block.
  assert.equal(bad((b) => Buffer.concat([b.subarray(0, b.length - 8), Buffer.alloc(5), b.subarray(b.length - 8)])), null);
  // No final block before the trailer.
  assert.equal(bad((b) => b.subarray(0, 10 + 5 + 65535 + 8)), null);
  // Flags in the header (a name, a comment: fields this parser does not skip).
  assert.equal(bad((b) => { b[3] = 8; return b; }), null);
  // Cut short, or nothing but a header.
  assert.equal(storedPieces(member.subarray(0, 20)), null);
  assert.equal(storedPieces(Buffer.alloc(0)), null);
  // An empty stored member is valid and empty.
  assert.deepEqual(storedPieces(compressMember(Buffer.alloc(0))), []);
});

const archive = (blocks: Buffer[]): MemberArchive => memberArchive(blocks);

const readAll = async (inflater: MemberInflater, offset: number, size: number): Promise<Buffer> => {
  const parts: Buffer[] = [];
  for await (const p of inflater.read(offset, size)) parts.push(Buffer.from(p));
  return Buffer.concat(parts);
};

test('MemberInflater: stored and deflated members read back exactly, from any offset, across members and blocks', async () => {
  const blocks = [crypto.randomBytes(1 << 20), text(1 << 20), crypto.randomBytes(200_000), text(5000), crypto.randomBytes(70_000)];
  const a = archive(blocks);
  const fd = fs.openSync(a.file, 'r');
  try {
    const inflater = new MemberInflater(fd, a.members, fs.fstatSync(fd).size);
    for (const [offset, size] of [[0, 10], [65_530, 20], [1_000_000, 200_000], [(1 << 20) - 3, 100], [0, a.data.length], [a.data.length - 70_001, 70_001], [2_100_000, 200_000]] as const) {
      assert.ok((await readAll(inflater, offset, size)).equals(a.data.subarray(offset, offset + size)), `${offset}+${size}`);
    }
    await inflater.settle();
  } finally {
    fs.closeSync(fd);
    fs.rmSync(a.dir, { recursive: true, force: true });
  }
});

test('MemberInflater: blocks of several members (a run of text and one of random data each, as the native addon makes them) read back exactly', async () => {
  const blocks = [Buffer.concat([text(40_000), crypto.randomBytes(300_000), text(100_000)]), Buffer.concat([crypto.randomBytes(200_000), text(300_000)]), crypto.randomBytes(100_000)];
  const { file, members, data, dir } = memberArchiveOf(blocks, await Promise.all(blocks.map((b) => compressBlock(b))));
  const fd = fs.openSync(file, 'r');
  try {
    // With the members' CRC-32 and without it (the header, deflate data and trailer of each member parsed by the addon).
    for (const crc of [true, false]) {
      const inflater = new MemberInflater(fd, members, fs.fstatSync(fd).size, crc);
      for (const [offset, size] of [[0, data.length], [39_990, 20], [400_000, 300_000], [data.length - 150_000, 150_000]] as const) {
        assert.ok((await readAll(inflater, offset, size)).equals(data.subarray(offset, offset + size)), `${offset}+${size}, crc ${crc}`);
      }
      await inflater.settle();
    }
  } finally {
    fs.closeSync(fd);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('MemberInflater: a stored member whose list gives another length, or whose block lengths are damaged, is damage or zlib\'s error', async () => {
  const blocks = [crypto.randomBytes(1 << 20), crypto.randomBytes(1 << 20)];
  const a = archive(blocks);
  const bytes = fs.readFileSync(a.file);
  const fd = fs.openSync(a.file, 'r');
  try {
    // The list says the first member holds 512 bytes more than its blocks do.
    const lying = [a.members[0]!, { uOffset: a.members[1]!.uOffset + 512, cOffset: a.members[1]!.cOffset }];
    await assert.rejects(readAll(new MemberInflater(fd, lying, bytes.length), 0, 100), (e: Error) => e instanceof ArchiveDamage && /inflates to 1048576 bytes, not the 1049088/.test(e.message));
  } finally {
    fs.closeSync(fd);
  }
  // A block's NLEN damaged: not taken as stored; zlib refuses it.
  const damaged = Buffer.from(bytes);
  damaged[13] = damaged[13]! ^ 0xff;
  fs.writeFileSync(a.file, damaged);
  const fd2 = fs.openSync(a.file, 'r');
  try {
    await assert.rejects(readAll(new MemberInflater(fd2, a.members, damaged.length), 0, 100), (e: Error) => e instanceof ArchiveDamage);
  } finally {
    fs.closeSync(fd2);
    fs.rmSync(a.dir, { recursive: true, force: true });
  }
});

test('regression: the memory of members read past is reused for the members ahead; every read, file after file, still gives exactly its bytes', async () => {
  // 24 members, stored and deflated, read in file-sized pieces from start to end, as a restore does.
  const blocks = Array.from({ length: 24 }, (_, i) => (i % 3 === 0 ? text(1 << 20) : crypto.randomBytes(1 << 20)));
  const a = archive(blocks);
  const fd = fs.openSync(a.file, 'r');
  try {
    const inflater = new MemberInflater(fd, a.members, fs.fstatSync(fd).size);
    const seen = new Map<ArrayBufferLike, number>();
    for (let offset = 0, i = 0; offset < a.data.length; i++) {
      const size = Math.min(a.data.length - offset, 1 + ((i * 104_729) % 900_000));
      const parts: Buffer[] = [];
      for await (const p of inflater.read(offset, size)) {
        seen.set(p.buffer, (seen.get(p.buffer) ?? 0) + 1);
        parts.push(Buffer.from(p));
      }
      assert.ok(Buffer.concat(parts).equals(a.data.subarray(offset, offset + size)), `${offset}+${size}`);
      offset += size;
    }
    await inflater.settle();
    if (inflateMemberSupported()) assert.ok(seen.size < blocks.length, `${seen.size} buffers for ${blocks.length} members: reused`);
  } finally {
    fs.closeSync(fd);
    fs.rmSync(a.dir, { recursive: true, force: true });
  }
});

test('inflateMember: a member that the file ends inside, that is not gzip, or that inflates to more than the room given is damage, named', { skip: !inflateMemberSupported() }, async () => {
  const data = text(300_000);
  const a = archive([data, crypto.randomBytes(5000)]);
  const fd = fs.openSync(a.file, 'r');
  const length = a.members[1]!.cOffset;
  const fail = (p: Promise<number>): Promise<NodeJS.ErrnoException & { stage?: string; damage?: string }> => p.then(() => { throw new Error('resolved'); }, (e) => e);
  try {
    const out = Buffer.alloc(400_000);
    assert.equal(await inflateMemberOffLoop(fd, 0, length, out), data.length);
    assert.ok(out.subarray(0, data.length).equals(data));
    let e = await fail(inflateMemberOffLoop(fd, fs.fstatSync(fd).size - 10, 100, out)!);
    assert.deepEqual([e.stage, e.damage], ['damaged', 'short']);
    e = await fail(inflateMemberOffLoop(fd, 1, length - 1, out)!);
    assert.deepEqual([e.stage, e.damage], ['damaged', 'data']);
    e = await fail(inflateMemberOffLoop(fd, 0, length, Buffer.alloc(data.length - 1))!);
    assert.deepEqual([e.stage, e.damage], ['damaged', 'long']);
    // Two members in one entry of the list (a block of several runs) inflate one after the other.
    const both = Buffer.alloc(400_000);
    assert.equal(await inflateMemberOffLoop(fd, 0, fs.fstatSync(fd).size, both), data.length + 5000);
  } finally {
    fs.closeSync(fd);
    fs.rmSync(a.dir, { recursive: true, force: true });
  }
});

test('MemberInflater.readNow: never waits and never guesses: null until the member is inflated or when the range leaves it, else the same bytes as read()', async () => {
  const blocks = [crypto.randomBytes(300_000), text(200_000), crypto.randomBytes(100_000)];
  const a = archive(blocks);
  const fd = fs.openSync(a.file, 'r');
  try {
    const inflater = new MemberInflater(fd, a.members, fs.fstatSync(fd).size);
    assert.equal(inflater.readNow(10, 100), null, 'nothing inflated yet');
    // read() of the first file starts the members ahead; once they are done, readNow has them.
    assert.ok((await readAll(inflater, 0, 10)).equals(a.data.subarray(0, 10)));
    await inflater.settle();
    for (const [offset, size] of [[10, 100], [299_000, 1000], [300_000, 200_000], [350_000, 5], [500_000, 100_000]] as const) {
      const now = inflater.readNow(offset, size);
      assert.ok(now, `${offset}+${size} lies in one inflated member`);
      assert.ok(Buffer.concat(now).equals(a.data.subarray(offset, offset + size)), `${offset}+${size}`);
    }
    // A range that runs into the next member (or past the end) is read()'s, which names the damage.
    assert.equal(inflater.readNow(299_990, 20), null);
    assert.equal(inflater.readNow(590_000, 20_000), null);
    await assert.rejects(readAll(inflater, 590_000, 20_000), (e: Error) => e instanceof ArchiveDamage);
    await inflater.settle();
  } finally {
    fs.closeSync(fd);
    fs.rmSync(a.dir, { recursive: true, force: true });
  }
});

test('MemberInflater without the CRC (crc false): a member whose CRC-32 is wrong still gives its bytes, a wrong length does not; requireCrc() checks it again, members read before included', { skip: !inflateMemberSupported() && 'the native addon was built without libdeflate' }, async () => {
  const blocks = [text(300_000), crypto.randomBytes(200_000), text(50_000)];
  const a = archive(blocks);
  const bytes = fs.readFileSync(a.file);
  // The first member's CRC-32 (the trailer's first four bytes), and a copy with its length wrong instead.
  const trailer = a.members[1]!.cOffset - 8;
  const badCrc = Buffer.from(bytes);
  badCrc.writeUInt32LE((badCrc.readUInt32LE(trailer) ^ 1) >>> 0, trailer);
  const badLength = Buffer.from(bytes);
  badLength.writeUInt32LE(badLength.readUInt32LE(trailer + 4) + 1, trailer + 4);
  const open = (b: Buffer): number => { fs.writeFileSync(a.file, b); return fs.openSync(a.file, 'r'); };
  const fds: number[] = [];
  try {
    const fd = open(badCrc);
    fds.push(fd);
    const fast = new MemberInflater(fd, a.members, badCrc.length, false);
    assert.ok((await readAll(fast, 1000, 400_000)).equals(a.data.subarray(1000, 401_000)), 'the bytes, their CRC not computed');
    // The member read (and kept) without the check is inflated again with it.
    fast.requireCrc();
    await assert.rejects(readAll(fast, 1000, 10), (e: Error) => e instanceof ArchiveDamage && /CRC/.test(e.message));
    await fast.settle();
    await assert.rejects(readAll(new MemberInflater(fd, a.members, badCrc.length), 0, 10), (e: Error) => e instanceof ArchiveDamage, 'checked by default');

    const fd2 = open(badLength);
    fds.push(fd2);
    await assert.rejects(readAll(new MemberInflater(fd2, a.members, badLength.length, false), 0, 10), (e: Error) => e instanceof ArchiveDamage, 'the length is checked without the CRC too');
  } finally {
    for (const fd of fds) fs.closeSync(fd);
    fs.rmSync(a.dir, { recursive: true, force: true });
  }
});
