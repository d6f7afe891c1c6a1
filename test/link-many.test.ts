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
import { canLinkOffLoop, linkManyOffLoop } from '../server/native/link-many.js';

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
