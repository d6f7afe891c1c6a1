import crypto from 'node:crypto';
import fs from 'node:fs';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { text } from 'node:stream/consumers';
import type { Destination, HardLinks } from '../../server/destinations/types.js';
import { StreamWriter } from '../../server/util/stream-writer.js';

/**
 * What every destination driver must do, run against a fresh, empty destination.
 * Drivers for new types (SSH next) call this with their own factory.
 */
export function destinationConformance(name: string, make: () => Promise<Destination>, opts: { serverSideClone: boolean } | { hardLinks: false }): void {
  test(`${name}: open writes tidemark.json`, async () => {
    const d = await make();
    await d.open();
    const meta = JSON.parse((await d.readFile('tidemark.json')).toString('utf8'));
    assert.equal(meta.format, 'tidemark');
    assert.equal(meta.version, 1);
    await d.close();
  });

  test(`${name}: write, read back, ranges, atomic whole-file writes`, async () => {
    const d = await make();
    await d.open();
    await d.mkdir('acct/snap');
    await d.writeFile('acct/snap/small.json', '{"a":1}');
    assert.equal((await d.readFile('acct/snap/small.json')).toString(), '{"a":1}');
    const w = new StreamWriter(d.createWriteStream('acct/snap/data.bin'));
    const payload = Buffer.alloc(3 << 20, 7);
    payload.write('HEAD', 0);
    payload.write('TAIL', payload.length - 4);
    await w.write(payload);
    await w.end();
    assert.equal(await text(d.createReadStream('acct/snap/data.bin', { start: 0, end: 4 })), 'HEAD');
    assert.equal(await text(d.createReadStream('acct/snap/data.bin', { start: payload.length - 4 })), 'TAIL');
    const names = (await d.list('acct/snap')).map((e) => e.name);
    assert.deepEqual(names, ['data.bin', 'small.json'], 'no temporary files are left behind');
    const entry = (await d.list('acct/snap')).find((e) => e.name === 'data.bin')!;
    assert.equal(entry.size, payload.length);
    assert.equal(entry.type, 'file');
    await d.close();
  });

  test(`${name}: writeSmallFile, where offered, writes the bytes exactly, replaces, and returns their SHA-256`, async (t) => {
    const d = await make();
    if (!d.writeSmallFile) { t.skip('not offered'); return; }
    await d.open();
    // Sizes around the SFTP write limit (255 KiB on OpenSSH) and the 1 MiB small-file bound.
    const sizes = [0, 1, 4095, 261120, 261121, (1 << 20) - 1, 1 << 20];
    const contents = sizes.map((n, i) => crypto.randomBytes(n + i).subarray(0, n));
    // Many at once into one new folder: they share its creation.
    const hashes = await Promise.all(contents.map((c, i) => d.writeSmallFile!(`acct/small/f${i}`, i % 2 ? [c] : [c.subarray(0, c.length >> 1), c.subarray(c.length >> 1)])));
    // A driver may batch small files (SSH with GNU tar): they are all there once flush resolved.
    await d.flush(['acct/small']);
    for (const [i, c] of contents.entries()) {
      assert.deepEqual(await d.readFile(`acct/small/f${i}`), c, `size ${c.length}`);
      assert.equal(hashes[i]!.toString('hex'), crypto.createHash('sha256').update(c).digest('hex'), `hash of size ${c.length}`);
    }
    await d.writeSmallFile('acct/small/f3', [Buffer.from('short')]);
    await d.flush(['acct/small']);
    assert.equal((await d.readFile('acct/small/f3')).toString(), 'short', 'an existing file is truncated, not written over in part');
    await d.flush(['acct/small']);
    await d.close();
  });

  test(`${name}: readSmallFile, where offered, reads the first bytes asked for, or the whole of a shorter file`, async (t) => {
    const d = await make();
    if (!d.readSmallFile) { t.skip('not offered'); return; }
    await d.open();
    // Around the SFTP read limit (255 KiB on OpenSSH) and the 1 MiB read-ahead bound.
    const content = crypto.randomBytes((1 << 20) + 5);
    await d.writeFile('acct/r/blob', content);
    for (const size of [1, 4096, 261120, 261121, 1 << 20]) {
      assert.deepEqual(await d.readSmallFile('acct/r/blob', size), content.subarray(0, size), `first ${size} bytes`);
    }
    await d.writeFile('acct/r/short', content.subarray(0, 300000));
    assert.deepEqual(await d.readSmallFile('acct/r/short', 1 << 20), content.subarray(0, 300000), 'a shorter file, whole');
    await d.writeFile('acct/r/empty', Buffer.alloc(0));
    assert.equal((await d.readSmallFile('acct/r/empty', 100)).length, 0);
    await assert.rejects(d.readSmallFile('acct/r/missing', 10), /not found/);
    await d.close();
  });

  test(`${name}: readSmallFiles, where offered, reads each file as readSmallFile does, in the order asked; a missing one fails alone`, async (t) => {
    const d = await make();
    if (!d.readSmallFiles) { t.skip('not offered'); return; }
    await d.open();
    const content = crypto.randomBytes((1 << 20) + 5);
    await d.writeFile('acct/r/files/0000/blob', content);
    await d.writeFile('acct/r/files/0000/short', content.subarray(0, 300000));
    await d.writeFile('acct/r/files/0001/empty', Buffer.alloc(0));
    await d.writeFile('acct/other', content.subarray(0, 10));
    const asked: [string, number, Buffer | RegExp][] = [
      ['acct/r/files/0000/short', 1 << 20, content.subarray(0, 300000)],
      ['acct/r/files/0000/blob', 1, content.subarray(0, 1)],
      ['acct/r/files/0000/missing', 10, /not found/],
      ['acct/r/files/0001/empty', 100, Buffer.alloc(0)],
      ['acct/r/files/0000/blob', 261121, content.subarray(0, 261121)],
      ['acct/other', 10, content.subarray(0, 10)],
      ['acct/r/files/0000/blob', (1 << 20) + 5, content],
    ];
    const got = await Promise.allSettled(d.readSmallFiles(asked.map(([rel, size]) => ({ rel, size }))));
    for (const [i, [rel, size, want]] of asked.entries()) {
      const g = got[i]!;
      if (want instanceof RegExp) assert.match(String(g.status === 'rejected' ? g.reason : 'read'), want, rel);
      // A file may come as its pieces, in order (the contract): what counts is their bytes joined.
      else assert.deepEqual(g.status === 'fulfilled' ? (Buffer.isBuffer(g.value) ? g.value : Buffer.concat(g.value)) : g.reason, want, `${rel}, first ${size}`);
    }
    await d.close();
  });

  test(`${name}: openManyForReads, where offered, opens each regular file of a folder as openForReads does, in the order asked`, async (t) => {
    const d = await make();
    if (!d.openManyForReads || !d.openForReads) { t.skip('not offered'); return; }
    await d.open();
    const content = crypto.randomBytes(70000);
    await d.writeFile('acct/m/files/0000/00000001', content);
    await d.writeFile('acct/m/files/0000/00000002', Buffer.alloc(0));
    await d.mkdir('acct/m/files/0000/00000003');
    const names = ['00000002', 'missing', '00000001', '00000003'];
    const many = await d.openManyForReads('acct/m/files/0000', names);
    if (many === null) { t.skip('not here'); await d.close(); return; }
    assert.deepEqual(many.map((m) => m.type), names.map((n) => d.openForReads!(`acct/m/files/0000/${n}`)).map((o) => { if (o.type === 'file') o.reader.close(); return o.type; }));
    const blob = many[2]!;
    assert.ok(blob.type === 'file' && blob.size === content.length);
    const back = Buffer.alloc(content.length);
    assert.equal(fs.readSync(blob.fd, back, 0, back.length, 0), content.length);
    assert.deepEqual(back, content);
    for (const m of many) if (m.type === 'file') fs.closeSync(m.fd);
    assert.deepEqual((await d.openManyForReads('acct/m/files/0009', ['00000001']))!.map((m) => m.type), ['missing'], 'a missing folder: each name missing');
    await d.close();
  });

  test(`${name}: rename commits, remove is recursive, exists tells`, async () => {
    const d = await make();
    await d.open();
    await d.writeFile('acct/.partial-x/manifest.json', '{}');
    await d.rename('acct/.partial-x', 'acct/x');
    assert.equal(await d.exists('acct/x/manifest.json'), true);
    assert.equal(await d.exists('acct/.partial-x'), false);
    await d.remove('acct');
    assert.equal(await d.exists('acct'), false);
    await d.remove('never-was');
    await assert.rejects(d.readFile('missing'), /not found/);
    await assert.rejects(d.remove(''), /refusing/);
    await assert.rejects(d.readFile('../etc/passwd'), /invalid path/);
    await d.close();
  });

  test(`${name}: has the hard-link capability exactly when it says so`, async () => {
    const d = await make();
    assert.equal(d.hardLinks !== undefined, !('hardLinks' in opts));
  });

  // Drivers with the hard-link capability (object stores have none: docs/snapshot-format.md).
  const linked = async (): Promise<Destination & { hardLinks: HardLinks }> => {
    const d = await make();
    if (!d.hardLinks) throw new Error(`${name} has no hard links`);
    return d as Destination & { hardLinks: HardLinks };
  };
  if (!('hardLinks' in opts)) {
    test(`${name}: hard links share content and count`, async () => {
      const d = await linked();
      await d.open();
      await d.writeFile('a/one', 'shared');
      await d.mkdir('b');
      await d.hardLinks.link('a/one', 'b/two');
      assert.equal((await d.readFile('b/two')).toString(), 'shared');
      assert.equal(await d.hardLinks.linkCount('a/one'), 2);
      await d.remove('a');
      assert.equal(await d.hardLinks.linkCount('b/two'), 1);
      assert.equal((await d.readFile('b/two')).toString(), 'shared', 'removing one name keeps the other');
      await d.close();
    });

    test(`${name}: clone makes a hard-linked copy of a tree, and the original stays as it was`, async () => {
      const d = await linked();
      await d.open();
      assert.equal(await d.hardLinks.cloneIsServerSide(), (opts as { serverSideClone: boolean }).serverSideClone);
      await d.writeFile('acct/one/files/0000/00000000', 'first');
      await d.writeFile('acct/one/files/0000/00000001', 'second');
      await d.writeFile('acct/one/files/0001/00000400', 'third');
      await d.mkdir('acct/one/files/0002');
      await d.mkdir('acct/.partial-two');
      await d.hardLinks.cloneTree('acct/one/files', 'acct/.partial-two/files');
      assert.deepEqual((await d.list('acct/.partial-two/files')).map((e) => e.name), ['0000', '0001', '0002'], 'folders, empty ones too');
      assert.equal((await d.readFile('acct/.partial-two/files/0001/00000400')).toString(), 'third');
      assert.equal(await d.hardLinks.linkCount('acct/one/files/0000/00000000'), 2, 'the copy is a hard link');
      await d.remove('acct/.partial-two/files/0000/00000001');
      const w = new StreamWriter(d.createWriteStream('acct/.partial-two/files/0000/00000002'));
      await w.write(Buffer.from('new'));
      await w.end();
      assert.equal((await d.readFile('acct/one/files/0000/00000001')).toString(), 'second', 'removing from the clone keeps the original');
      assert.equal(await d.exists('acct/one/files/0000/00000002'), false);
      await assert.rejects(d.hardLinks.cloneTree('acct/one/files', 'acct/.partial-two/files'), /exists|EEXIST/, 'never clones into an existing tree');
      await d.remove('acct');
      await d.close();
    });
  }

  test(`${name}: reports free space`, async () => {
    const d = await make();
    await d.open();
    const s = await d.space();
    assert.ok(s.totalBytes > 0);
    assert.ok(s.freeBytes > 0 && s.freeBytes <= s.totalBytes);
    await d.close();
  });
}
