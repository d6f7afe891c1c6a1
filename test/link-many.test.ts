/**
 * linkManyOffLoop passes its pairs to the addon as one NUL-joined string (one conversion on
 * the event loop instead of four per pair): each pair must still be linked or report its own
 * errno, in order, and a path that is empty or holds a NUL must still be refused.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { canLinkOffLoop, linkBlobsOffLoop, linkManyOffLoop } from '../server/native/link-many.js';
import { LocalDestination } from '../server/destinations/local.js';
import { layout } from '../server/engine/snapshot-layout.js';

test('the joined pairs are linked in order, each with its own result, a symlink linked itself', { skip: !canLinkOffLoop() }, async () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-links-'));
  try {
    fs.writeFileSync(path.join(d, 'a'), 'a');
    fs.writeFileSync(path.join(d, 'b'), 'b');
    fs.writeFileSync(path.join(d, 'é ü'), 'c');
    fs.symlinkSync('/etc/passwd', path.join(d, 's'));
    const from = ['a', 'b', 'missing', 's', 'é ü'].map((n) => path.join(d, n));
    const to = ['a2', 'a', 'm2', 's2', 'é ü 2'].map((n) => path.join(d, n));
    const errs = await linkManyOffLoop(from, to)!;
    assert.deepEqual([...errs], [0, os.constants.errno.EEXIST, os.constants.errno.ENOENT, 0, 0]);
    assert.equal(fs.statSync(path.join(d, 'a2')).ino, fs.statSync(path.join(d, 'a')).ino);
    assert.equal(fs.readFileSync(path.join(d, 'a'), 'utf8'), 'a', 'an existing target is never replaced');
    assert.ok(fs.lstatSync(path.join(d, 's2')).isSymbolicLink());
    assert.equal(fs.readFileSync(path.join(d, 'é ü 2'), 'utf8'), 'c');
    assert.deepEqual([...await linkManyOffLoop([], [])!], []);
  } finally {
    fs.rmSync(d, { recursive: true, force: true });
  }
});

test('an empty path or one holding a NUL is refused before any link is made', { skip: !canLinkOffLoop() }, () => {
  for (const [from, to] of [[['x\0y'], ['z']], [[''], ['z']], [['/tmp/a'], ['']], [['/tmp/a', '/tmp/b'], ['/tmp/c']]]) {
    assert.throws(() => linkManyOffLoop(from!, to!), TypeError);
  }
});

test('blobs linked by number land at the names of the incremental layout, each with its own result', { skip: !canLinkOffLoop() }, async () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-link-blobs-'));
  try {
    const numbers = [0, 5, 1023, 1024, 0x12345, 0xffffffff];
    for (const n of numbers.slice(0, -1)) {
      fs.mkdirSync(path.join(d, 'a', path.dirname(layout.blob(n))), { recursive: true });
      fs.mkdirSync(path.join(d, 'b', path.dirname(layout.blob(n))), { recursive: true });
      fs.writeFileSync(path.join(d, 'a', layout.blob(n)), String(n));
    }
    const errs = await linkBlobsOffLoop(path.join(d, 'a/files'), path.join(d, 'b/files'), Uint32Array.from(numbers))!;
    assert.deepEqual([...errs], [0, 0, 0, 0, 0, os.constants.errno.ENOENT]);
    for (const n of numbers.slice(0, -1)) {
      assert.equal(fs.statSync(path.join(d, 'b', layout.blob(n))).ino, fs.statSync(path.join(d, 'a', layout.blob(n))).ino, layout.blob(n));
    }
    const again = await linkBlobsOffLoop(path.join(d, 'a/files'), path.join(d, 'b/files'), Uint32Array.from([5]))!;
    assert.deepEqual([...again], [os.constants.errno.EEXIST], 'an existing blob is never replaced');
    assert.throws(() => linkBlobsOffLoop('', path.join(d, 'b'), Uint32Array.from([1])), TypeError);
    assert.throws(() => linkBlobsOffLoop(path.join(d, 'a\0x'), path.join(d, 'b'), Uint32Array.from([1])), TypeError);
    assert.throws(() => linkBlobsOffLoop(path.join(d, 'a'), path.join(d, 'b'), [1] as unknown as Uint32Array), TypeError);
  } finally {
    fs.rmSync(d, { recursive: true, force: true });
  }
});

test('a Local destination links blobs in batches only through checked folders: a planted symlink is refused', { skip: !canLinkOffLoop() }, async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-link-blobs-dest-'));
  const elsewhere = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-link-blobs-other-'));
  try {
    fs.chmodSync(root, 0o700);
    const dest = new LocalDestination(root);
    await dest.open();
    await dest.writeFile(`acct/s1/${layout.blob(3)}`, 'three');
    await dest.writeFile(`acct/s1/${layout.blob(2000)}`, 'two thousand');
    await dest.linkBlobs!('acct/s1/files', 'acct/s2/files', Uint32Array.from([3, 2000]));
    assert.equal(await dest.linkCount(`acct/s2/${layout.blob(2000)}`), 2);
    assert.equal(fs.readFileSync(path.join(root, 'acct/s2', layout.blob(3)), 'utf8'), 'three');
    await assert.rejects(dest.linkBlobs!('acct/s1/files', 'acct/s2/files', Uint32Array.from([3])), /EEXIST|exists/);
    // A blob folder replaced by a symlink on the previous side: refused before any link.
    fs.writeFileSync(path.join(elsewhere, '00001004'), 'not the destination\'s');
    fs.symlinkSync(elsewhere, path.join(root, 'acct/s1/files/0004'));
    await assert.rejects(dest.linkBlobs!('acct/s1/files', 'acct/s3/files', Uint32Array.from([4100])), /symlink|symbolic|link/i);
    assert.equal(fs.existsSync(path.join(root, 'acct/s3/files/0004/00001004')), false);
    await dest.close();
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
    fs.rmSync(elsewhere, { recursive: true, force: true });
  }
});
