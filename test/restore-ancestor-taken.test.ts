// Regression: in a path-limited restore (`restore ID --path a/b`), a file or a symlink at the
// name of an ancestor folder of the path (`a`) was replaced by a real folder left at mode 0700:
// the writer judged "the folder existed" with fs.existsSync, which follows symlinks and does not
// ask for a folder, so the ancestor's recorded mode, owner and times were not applied and it
// was not counted. A symlink there is replaced by a real folder, never followed (the way of
// every folder of a restore): nothing is written through it, its target stays as it was.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { asAccount, createAccount, makeHomeRoot, removeAccount, type TestAccount } from './support/accounts.js';
import { backupEachStructure, cli, makeDataDir, makeDestinationDir, ok } from './support/cli.js';
import { tidemarkLeftovers } from './support/tree.js';
import { runWriterOnStream } from './support/writer-stream.js';
import { encodeEntry, makeEntry } from '../server/engine/format/entry.js';

let homeRoot: string;
let account: TestAccount;
let dataDir: string;
let destDir: string;
const snapshots: Record<string, string> = {};
const STRUCTURES = ['incremental', 'archive'];
/** The recorded folders: mode and mtime in ns. */
const recorded: Record<string, { mode: number; mtimeNs: bigint }> = {};

const home = (rel: string): string => path.join(account.home, rel);

before(() => {
  homeRoot = makeHomeRoot();
  account = createAccount(homeRoot);
  asAccount(account, [
    'mkdir -p a/b',
    'printf one > a/b/f1',
    'printf two > a/b/f2',
    'chmod 0751 a && chmod 0705 a/b',
    'touch -d "2019-05-06 07:08:09.987654321 UTC" a',
    'touch -d "2018-01-02 03:04:05.123456789 UTC" a/b',
  ].join(' && '));
  for (const rel of ['a', 'a/b']) {
    const st = fs.lstatSync(home(rel), { bigint: true });
    recorded[rel] = { mode: Number(st.mode & 0o7777n), mtimeNs: st.mtimeNs };
  }
  assert.equal(recorded.a!.mode, 0o751);
  dataDir = makeDataDir({ panel: 'standalone', homeRoots: [homeRoot] });
  destDir = makeDestinationDir();
  Object.assign(snapshots, backupEachStructure(dataDir, destDir, account.username, STRUCTURES));
});

after(() => {
  if (account) removeAccount(account);
  for (const d of [homeRoot, dataDir, destDir]) if (d) fs.rmSync(d, { recursive: true, force: true });
});

/** Every entry below `root` (not followed): type, mode, mtime in ns, content or link target. */
function describe(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (rel: string): void => {
    const p = path.join(root, rel);
    const st = fs.lstatSync(p, { bigint: true });
    const what = st.isSymbolicLink() ? `link ${fs.readlinkSync(p)}` : st.isFile() ? `file ${fs.readFileSync(p, 'hex')}` : st.isDirectory() ? 'dir' : 'other';
    out.set(rel, `${what} mode ${(st.mode & 0o7777n).toString(8)} mtime ${st.isSymbolicLink() ? '-' : st.mtimeNs}`);
    if (st.isDirectory()) for (const n of fs.readdirSync(p).sort()) walk(rel === '' ? n : `${rel}/${n}`);
  };
  walk('');
  return out;
}

/** What the account has at `a` when the restore runs. */
const TAKEN: Record<string, string> = {
  'a file': 'printf live > a',
  // A folder outside what is restored, with a file at the name the restore writes.
  'a symlink to a folder outside': 'mkdir -p elsewhere/b && printf keep > elsewhere/b/f1 && touch -d "2017-01-01 00:00:00.5 UTC" elsewhere/b elsewhere && ln -s elsewhere a',
  'a dangling symlink': 'ln -s nowhere a',
};

/** The folders `a` and `a/b` below `root` are real folders with their recorded modes and times, and hold the snapshot's files. */
function assertRestored(root: string): void {
  for (const rel of ['a', 'a/b']) {
    const st = fs.lstatSync(path.join(root, rel), { bigint: true });
    assert.ok(st.isDirectory() && !st.isSymbolicLink(), `${rel} is a real folder`);
    assert.equal(Number(st.mode & 0o7777n).toString(8), recorded[rel]!.mode.toString(8), `${rel}: recorded mode`);
    assert.equal(st.mtimeNs, recorded[rel]!.mtimeNs, `${rel}: recorded mtime`);
    assert.equal(Number(st.uid), account.uid, `${rel}: owner`);
  }
  assert.equal(fs.readFileSync(path.join(root, 'a/b/f1'), 'utf8'), 'one');
  assert.equal(fs.readFileSync(path.join(root, 'a/b/f2'), 'utf8'), 'two');
}

const leftovers = (): string[] => tidemarkLeftovers(account.home);

for (const st of STRUCTURES) {
  for (const [what, script] of Object.entries(TAKEN)) {
    test(`regression: restore --path a/b in place (${st}) with ${what} at the ancestor folder's name a: a real folder with its recorded mode and mtime, counted, nothing followed`, () => {
      asAccount(account, `rm -rf a && ${script}`);
      const outside = fs.existsSync(home('elsewhere')) ? describe(home('elsewhere')) : null;
      try {
        const r = ok(cli(dataDir, ['restore', snapshots[st]!, '--destination', st, '--path', 'a/b', '--wait']));
        assert.equal(r.files.warningCount, 0, JSON.stringify(r.files.warnings));
        assertRestored(account.home);
        assert.equal(r.files.files, 2);
        // a and a/b were made by the restore (the home itself existed).
        assert.equal(r.files.directories, 2);
        if (outside) assert.deepEqual(describe(home('elsewhere')), outside, 'the link\'s target untouched');
        assert.deepEqual(leftovers(), []);
      } finally {
        asAccount(account, 'rm -rf elsewhere');
      }
    });

    test(`regression: restore --path a/b into a new folder (${st}) with ${what} at a in the home: the folder's a has its recorded mode and mtime, counted; the home's a untouched`, () => {
      asAccount(account, `rm -rf a && ${script}`);
      // The home's own mtime changes with the new folder: what is in it is compared.
      const inHome = (): Map<string, string> => { const d = describe(account.home); d.delete(''); return d; };
      const before = inHome();
      try {
        const r = ok(cli(dataDir, ['restore', snapshots[st]!, '--destination', st, '--path', 'a/b', '--into-folder', '--wait']));
        assert.equal(r.files.warningCount, 0, JSON.stringify(r.files.warnings));
        assertRestored(home(r.folder));
        assert.equal(r.files.files, 2);
        assert.equal(r.files.directories, 2);
        fs.rmSync(home(r.folder), { recursive: true });
        assert.deepEqual(inHome(), before, 'nothing in the home changed');
      } finally {
        asAccount(account, 'rm -rf elsewhere a');
      }
    });
  }
}

test('regression: the writer into a new folder, an ancestor record whose name is taken by a file, a symlink to a folder outside or a dangling symlink: a real folder with its recorded mode and times, counted, nothing followed', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-writer-ancestors-'));
  try {
    const outside = path.join(dir, 'outside');
    fs.mkdirSync(path.join(outside, 'b'), { recursive: true });
    fs.writeFileSync(path.join(outside, 'b/f'), 'keep');
    const outsideBefore = describe(outside);
    const records: Buffer[] = [];
    const file = (p: string, content: string): void => {
      records.push(encodeEntry(makeEntry({ kind: 'f', path: p, mode: 0o640, size: content.length, mtimeSec: 1600000000, mtimeNsec: 5 }), true), Buffer.from(content));
    };
    const folder = (p: string, mode: number, sec: number, ancestor: boolean): void => {
      records.push(encodeEntry(makeEntry({ kind: 'd', path: p, mode, mtimeSec: sec, mtimeNsec: 123456789 }), false, ancestor));
    };
    // What takes the names first (the account may plant anything in the new folder while the restore runs).
    file('f-at', 'a file');
    records.push(encodeEntry(makeEntry({ kind: 'l', path: 'l-at', link: outside, mtimeSec: 1600000000 })));
    records.push(encodeEntry(makeEntry({ kind: 'l', path: 'd-at', link: path.join(dir, 'nowhere'), mtimeSec: 1600000000 })));
    folder('', 0o711, 1500000000, true);
    const want: [string, number, number][] = [];
    for (const [i, name] of ['f-at', 'l-at', 'd-at'].entries()) {
      folder(name, 0o751, 1500000001 + i, true);
      folder(`${name}/b`, 0o705, 1500000011 + i, false);
      file(`${name}/b/f`, `inside ${name}`);
      want.push([name, 0o751, 1500000001 + i], [`${name}/b`, 0o705, 1500000011 + i]);
    }
    const { home, result } = runWriterOnStream(dir, Buffer.concat(records), 'new');
    assert.equal(result.warningCount, 0, JSON.stringify(result.warnings));
    const base = path.join(home, 'new');
    assert.deepEqual(describe(outside), outsideBefore, 'nothing written through the symlink, its target untouched');
    assert.equal(fs.existsSync(path.join(dir, 'nowhere')), false, 'nothing made through the dangling symlink');
    for (const name of ['f-at', 'l-at', 'd-at']) assert.equal(fs.readFileSync(path.join(base, name, 'b/f'), 'utf8'), `inside ${name}`);
    for (const [rel, mode, sec] of want) {
      const st = fs.lstatSync(path.join(base, rel), { bigint: true });
      assert.ok(st.isDirectory(), rel);
      assert.equal(Number(st.mode & 0o7777n).toString(8), mode.toString(8), `${rel}: recorded mode`);
      assert.equal(st.mtimeNs, BigInt(sec) * 1_000_000_000n + 123456789n, `${rel}: recorded mtime`);
    }
    // The top existed (the new folder, made before the stream): its ancestor record leaves it as made.
    assert.equal(Number(fs.lstatSync(base).mode & 0o7777), 0o700);
    // Every folder at a taken name was made by the restore: counted, as their b folders.
    assert.equal(result.directories, 6);
    assert.equal(result.files, 4);
    assert.equal(result.links, 2);
  } finally {
    spawnSync('chmod', ['-R', 'u+rwx', dir]);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
