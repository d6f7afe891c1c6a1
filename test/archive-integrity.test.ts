import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { createAccount, makeHomeRoot, removeAccount, type TestAccount } from './support/accounts.js';
import { cli, makeDataDir, makeDestinationDir, ok } from './support/cli.js';
import type { Entry } from '../server/engine/format/entry.js';
import { flipByte, readIndexFile } from './support/stored-files.js';
import { tarHeaders } from '../server/engine/format/tar.js';
import { layout } from '../server/engine/snapshot-layout.js';

let homeRoot: string;
let account: TestAccount;
let dataDir: string;
let n = 0;

/**
 * Integrity version 2 of an archive (docs/snapshot-format.md): the manifest keeps the tar digest
 * (headers, padding and end blocks as they are, each file's content by its SHA-256) instead of
 * a second SHA-256 of the whole files.tar. Whatever is changed on the destination is found as
 * before: verify names files.tar with the same problem, a restore fails or succeeds as it did.
 */

before(() => {
  homeRoot = makeHomeRoot();
  account = createAccount(homeRoot);
  fs.writeFileSync(path.join(account.home, 'small.txt'), 'small');
  fs.writeFileSync(path.join(account.home, 'random.bin'), crypto.randomBytes(300_000));
  fs.mkdirSync(path.join(account.home, 'site'));
  fs.writeFileSync(path.join(account.home, 'site', 'index.html'), '<h1>hello</h1>\n'.repeat(100));
  fs.writeFileSync(path.join(account.home, 'empty'), '');
  execFileSync('chown', ['-R', `${account.uid}:${account.gid}`, account.home]);
  dataDir = makeDataDir({ panel: 'standalone', homeRoots: [homeRoot] });
});

after(() => {
  removeAccount(account);
  fs.rmSync(homeRoot, { recursive: true, force: true });
});

async function archived(): Promise<{ id: string; tar: string; index: Entry[] }> {
  const name = `a${n++}`;
  const dir = makeDestinationDir();
  ok(cli(dataDir, ['destination', 'add', '--name', name, '--type', 'local', '--path', dir]));
  ok(cli(dataDir, ['job', 'add', '--name', name, '--destination', name, '--structure', 'archive', '--accounts', account.username, '--items', 'files']));
  const r = ok(cli(dataDir, ['backup', '--job', name, '--wait']));
  const id = r.snapshots[0] as string;
  const snap = path.join(dir, account.username, id);
  return { id, tar: path.join(snap, 'files.tar'), index: await readIndexFile(path.join(snap, layout.index)) };
}

const HASH_PROBLEM = 'does not match its hash (changed or truncated on the destination)';
const verify = (id: string): { code: number; damaged: { file: string; path?: string; problem: string }[] } => {
  const v = cli(dataDir, ['snapshot', 'verify', id]);
  return { code: v.code, damaged: v.json?.damaged ?? [{ file: '?', problem: v.stderr }] };
};

/** Restores into a new folder of the home; the folder is removed after (the next backups must not hold it). */
function restoreIntoFolder(id: string): { code: number; error?: string; same?: boolean } {
  const r = cli(dataDir, ['restore', id, '--into-folder']);
  const folders = fs.readdirSync(account.home).filter((n) => n.startsWith('tidemark-restore-'));
  let same: boolean | undefined;
  if (r.code === 0) {
    const into = path.join(account.home, r.json.folder as string);
    same = ['small.txt', 'random.bin', 'site/index.html', 'empty'].every((f) => fs.readFileSync(path.join(into, f)).equals(fs.readFileSync(path.join(account.home, f))));
  }
  for (const f of folders) fs.rmSync(path.join(account.home, f), { recursive: true, force: true });
  return { code: r.code, ...(r.code !== 0 ? { error: String(r.json?.error ?? r.stderr) } : {}), ...(same !== undefined ? { same } : {}) };
}

const at = (s: Awaited<ReturnType<typeof archived>>, file: string): Entry => s.index.find((x) => x.path === file)!;

test('an archive\'s manifest carries integrity version 2: the tar digest, no whole-file SHA-256, and verify finds it whole', async () => {
  const s = await archived();
  const m = JSON.parse(fs.readFileSync(path.join(path.dirname(s.tar), layout.manifest), 'utf8'));
  assert.equal(m.integrity.version, 2);
  assert.equal(m.integrity.data, null);
  assert.match(m.integrity.tar, /^[0-9a-f]{64}$/);
  assert.notEqual(m.integrity.tar, crypto.createHash('sha256').update(fs.readFileSync(s.tar)).digest('hex'));
  assert.deepEqual(verify(s.id), { code: 0, damaged: [] });
  assert.deepEqual(restoreIntoFolder(s.id), { code: 0, same: true });
});

test('regression: a flipped byte in a file\'s content of a version 2 files.tar is found by verify and stops the restore, as with version 1', async () => {
  const s = await archived();
  const e = at(s, 'site/index.html');
  flipByte(s.tar, e.dataRef + tarHeaders(e).length + 20);
  assert.deepEqual(verify(s.id), { code: 1, damaged: [
    { file: 'files.tar', problem: HASH_PROBLEM },
    { file: 'files.tar', path: 'site/index.html', problem: 'content does not match its hash' },
  ] });
  const r = restoreIntoFolder(s.id);
  assert.equal(r.code, 1);
  assert.match(r.error!, /site\/index\.html.*does not match its hash/);
});

// A restore takes names, modes and times from the index, not from the tar's headers, and
// skips the padding: these spoil nothing it writes (as with version 1), and verify names files.tar.
for (const [what, offset] of [
  ['a header\'s name', (s: Awaited<ReturnType<typeof archived>>) => at(s, 'site/index.html').dataRef + 2],
  ['a header\'s mtime', (s: Awaited<ReturnType<typeof archived>>) => at(s, 'site/index.html').dataRef + 137 + 5],
  ['a header\'s mode', (s: Awaited<ReturnType<typeof archived>>) => at(s, 'small.txt').dataRef + 100 + 4],
  ['a header\'s checksum', (s: Awaited<ReturnType<typeof archived>>) => at(s, 'random.bin').dataRef + 150],
  ['the padding after a file', (s: Awaited<ReturnType<typeof archived>>) => at(s, 'small.txt').dataRef + tarHeaders(at(s, 'small.txt')).length + 100],
  ['the end-of-archive blocks', (s: Awaited<ReturnType<typeof archived>>) => fs.statSync(s.tar).size - 1000],
  ['the last byte', (s: Awaited<ReturnType<typeof archived>>) => fs.statSync(s.tar).size - 1],
] as const) {
  test(`regression: a flipped byte in ${what} of a version 2 files.tar is found by verify, naming files.tar`, async () => {
    const s = await archived();
    flipByte(s.tar, offset(s));
    assert.deepEqual(verify(s.id), { code: 1, damaged: [{ file: 'files.tar', problem: HASH_PROBLEM }] });
    assert.equal(ok(cli(dataDir, ['snapshot', 'show', s.id])).status, 'damaged');
    assert.deepEqual(restoreIntoFolder(s.id), { code: 0, same: true });
  });
}

test('regression: a version 2 files.tar cut in half is found by verify and refused by restore', async () => {
  const s = await archived();
  // random.bin (300,000 bytes) spans the middle.
  fs.truncateSync(s.tar, at(s, 'random.bin').dataRef + 512 + 1000);
  const v = verify(s.id);
  assert.equal(v.code, 1);
  assert.deepEqual(v.damaged[0], { file: 'files.tar', problem: HASH_PROBLEM });
  assert.ok(v.damaged.every((d) => d.file === 'files.tar'), JSON.stringify(v.damaged));
  const r = restoreIntoFolder(s.id);
  assert.equal(r.code, 1);
  assert.match(r.error!, /short for .*random\.bin.*damaged/);
});

for (const [what, spoil] of [
  ['without its end-of-archive blocks', (f: string) => fs.truncateSync(f, fs.statSync(f).size - 1024)],
  ['one byte short', (f: string) => fs.truncateSync(f, fs.statSync(f).size - 1)],
  ['with zeros appended', (f: string) => fs.appendFileSync(f, Buffer.alloc(512))],
  ['cut at its first file\'s header', (f: string) => fs.truncateSync(f, 700)],
] as const) {
  test(`regression: a version 2 files.tar ${what} is found by verify, naming files.tar`, async () => {
    const s = await archived();
    spoil(s.tar);
    const v = verify(s.id);
    assert.equal(v.code, 1);
    assert.deepEqual(v.damaged[0], { file: 'files.tar', problem: HASH_PROBLEM });
  });
}

test('an archive with a version 1 manifest (the SHA-256 of the whole files.tar) still verifies, and a changed byte in it is still found', async () => {
  const s = await archived();
  const manifestFile = path.join(path.dirname(s.tar), layout.manifest);
  // The manifest this version wrote before integrity version 2.
  const m = JSON.parse(fs.readFileSync(manifestFile, 'utf8'));
  delete m.integrity.version;
  delete m.integrity.tar;
  m.integrity.data = crypto.createHash('sha256').update(fs.readFileSync(s.tar)).digest('hex');
  fs.writeFileSync(manifestFile, JSON.stringify(m, null, 2));
  assert.deepEqual(verify(s.id), { code: 0, damaged: [] });
  assert.deepEqual(restoreIntoFolder(s.id), { code: 0, same: true });
  flipByte(s.tar, at(s, 'small.txt').dataRef + tarHeaders(at(s, 'small.txt')).length + 100);
  assert.deepEqual(verify(s.id), { code: 1, damaged: [{ file: 'files.tar', problem: HASH_PROBLEM }] });
  const e = at(s, 'site/index.html');
  flipByte(s.tar, e.dataRef + tarHeaders(e).length + 20);
  const r = restoreIntoFolder(s.id);
  assert.equal(r.code, 1);
  assert.match(r.error!, /site\/index\.html.*does not match its hash/);
});

test('a manifest of an integrity version this reader does not know is refused, not checked the wrong way', async () => {
  const s = await archived();
  const manifestFile = path.join(path.dirname(s.tar), layout.manifest);
  const m = JSON.parse(fs.readFileSync(manifestFile, 'utf8'));
  m.integrity.version = 3;
  fs.writeFileSync(manifestFile, JSON.stringify(m, null, 2));
  const v = verify(s.id);
  assert.equal(v.code, 1);
  assert.equal(v.damaged.length, 1);
  assert.equal(v.damaged[0]!.file, layout.manifest);
  assert.match(v.damaged[0]!.problem, /integrity version must be 1 or 2/);
});
