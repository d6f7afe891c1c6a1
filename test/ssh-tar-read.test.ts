import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { createAccount, makeHomeRoot, removeAccount, type TestAccount } from './support/accounts.js';
import { buildTrickyTree } from './support/tricky-tree.js';
import { diffTrees, snapshotTree } from './support/tree.js';
import { cli, makeDataDir, ok } from './support/cli.js';
import type { TestSshServer } from './support/sshd.js';
import { fakeTarServers, withDestination } from './support/fake-tar.js';

/**
 * Where the SSH user may run commands and tar is GNU tar, a restore's small files come in
 * batches from one remote `tar -c` (ssh-tar-read.ts) instead of three SFTP requests each. The
 * output is untrusted: the remote tar is replaced by scripts here to play a hostile one.
 */
const servers = fakeTarServers('tm-fake-tar-read-');
const { fakeTar } = servers;

const realTar = (): string => execFileSync('sh', ['-c', 'command -v tar'], { encoding: 'utf8' }).trim();

const tarReads = (commands: string[]): string[] => commands.filter((c) => / -c -f - /.test(c));

/** Files written on the server as the SSH user's (the test runs as root). */
function plant(on: TestSshServer, remote: string, files: Record<string, Buffer>): void {
  const st = fs.statSync(on.remoteRoot);
  for (const [rel, data] of Object.entries(files)) {
    const p = path.join(remote, rel);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, data);
    for (let d = p; d !== remote; d = path.dirname(d)) fs.lchownSync(d, st.uid, st.gid);
  }
}

/** Each file's content joined (a driver may give its pieces), or its error. */
const settled = async (ps: Promise<Buffer | Buffer[]>[]): Promise<(Buffer | Error)[]> =>
  (await Promise.allSettled(ps)).map((r) => (r.status === 'fulfilled' ? (Array.isArray(r.value) ? Buffer.concat(r.value) : r.value) : r.reason as Error));

test('readSmallFiles: one remote tar -c per folder; exact bytes, shorter files whole, the start of longer ones, a missing file fails alone', async () => {
  await withDestination(servers.server, null, async (dest, remote, commands) => {
    const big = crypto.randomBytes((1 << 20) + 5);
    const files: Record<string, Buffer> = {
      'acct/snap/files/0000/00000000': Buffer.alloc(0),
      'acct/snap/files/0000/00000001': Buffer.from('one'),
      'acct/snap/files/0000/00000002': crypto.randomBytes(70000),
      'acct/snap/files/0001/00000400': big,
      'acct/snap/files/0001/00000401': crypto.randomBytes(512),
      'acct/objects/ab/abcd': crypto.randomBytes(3000),
    };
    plant(servers.server, remote, files);
    const asked = [
      ...Object.entries(files).map(([rel, data]) => ({ rel, size: data.length, want: data })),
      // Longer than asked: its first bytes (as readSmallFile), and the rest of the batch still right.
      { rel: 'acct/snap/files/0001/00000400', size: 1000, want: big.subarray(0, 1000) },
      { rel: 'acct/snap/files/0000/00000002', size: 1 << 20, want: files['acct/snap/files/0000/00000002']! },
      { rel: 'acct/snap/files/0000/00000001', size: 3, want: Buffer.from('one') },
    ];
    const got = await settled(dest.readSmallFiles(asked.map(({ rel, size }) => ({ rel, size }))));
    for (const [i, a] of asked.entries()) assert.deepEqual(got[i], a.want, `${a.rel}, first ${a.size}`);
    assert.equal(tarReads(commands).length, 2, `one tar -c per folder: ${JSON.stringify(commands)}`);
    assert.ok(tarReads(commands).some((c) => c.includes(`cd -- '${remote}/acct/snap' && exec tar -c`)), JSON.stringify(commands));
    const [missing, there] = await settled(dest.readSmallFiles([{ rel: 'acct/snap/files/0000/nothere', size: 10 }, { rel: 'acct/snap/files/0000/00000001', size: 10 }]));
    assert.match(String(missing), /not found/);
    assert.deepEqual(there, Buffer.from('one'), 'a missing file fails only its own read');
  });
});

test('readSmallFiles: a link, a fifo or a huge file on the destination is never followed, opened or read whole', { timeout: 60_000 }, async () => {
  await withDestination(servers.server, null, async (dest, remote) => {
    const good = crypto.randomBytes(4000);
    plant(servers.server, remote, { 'acct/snap/files/0000/00000001': good });
    const dir = path.join(remote, 'acct/snap/files/0000');
    fs.symlinkSync('/etc/hostname', path.join(dir, '00000002'));
    execFileSync('mkfifo', [path.join(dir, '00000003')]);
    // 64 GiB that take no room: a whole read would never end in a test's time.
    fs.writeFileSync(path.join(dir, '00000004'), 'start');
    fs.truncateSync(path.join(dir, '00000004'), 64 * 1024 ** 3);
    const st = fs.statSync(servers.server.remoteRoot);
    for (const n of ['00000002', '00000003', '00000004']) fs.lchownSync(path.join(dir, n), st.uid, st.gid);
    const names = ['00000002', '00000001', '00000003', '00000004', '00000001'];
    const got = await settled(dest.readSmallFiles(names.map((n) => ({ rel: `acct/snap/files/0000/${n}`, size: 4000 }))));
    assert.match(String(got[0]), /not a regular file on the destination \(a symbolic link\): refused/);
    assert.deepEqual(got[1], good);
    assert.match(String(got[2]), /not a regular file on the destination \(a fifo\): refused/);
    assert.deepEqual((got[3] as Buffer).subarray(0, 5), Buffer.from('start'), 'the start of the huge file, read over SFTP');
    assert.equal((got[3] as Buffer).length, 4000);
    assert.deepEqual(got[4], good);
  });
});

test('readSmallFiles: a hostile remote tar (another file, garbage, a cut stream, endless output) is refused, never hangs', { timeout: 120_000 }, async () => {
  const real = realTar();
  const cases: [string, string, RegExp][] = [
    ['other-tar', `cd /etc && exec ${real} -c -f - --format=gnu passwd`, /an entry that was not asked for/],
    ['garbage-tar', 'echo "this is not a tar archive"; head -c 2000 /dev/urandom', /not a tar archive/],
    ['cut-tar', `${real} "$@" | head -c 1500`, /not a tar archive .*truncated/],
    ['endless-tar', 'exec cat /dev/urandom', /not a tar archive/],
    ['zero-tar', 'exec cat /dev/zero', /^$/],
  ];
  for (const [name, body, why] of cases) {
    await withDestination(servers.server, fakeTar(name, body), async (dest, remote) => {
      const data = crypto.randomBytes(5000);
      plant(servers.server, remote, { 'acct/snap/files/0000/00000001': data, 'acct/snap/files/0000/00000002': data });
      const got = await settled(dest.readSmallFiles([{ rel: 'acct/snap/files/0000/00000001', size: 5000 }, { rel: 'acct/snap/files/0000/00000002', size: 5000 }]));
      // Zero blocks end an archive that held nothing: the files are read over SFTP instead.
      if (name === 'zero-tar') { assert.deepEqual(got, [data, data]); return; }
      for (const g of got) assert.match(String(g), why, name);
      for (const g of got) assert.match(String(g), /refused/, name);
    });
  }
});

test('readSmallFiles: a remote tar that sends nothing is given up after six connection timeouts; its files come over SFTP', { timeout: 60_000 }, async () => {
  await withDestination(servers.server, fakeTar('silent-tar', 'exec sleep 600'), async (dest, remote) => {
    const data = crypto.randomBytes(5000);
    plant(servers.server, remote, { 'acct/snap/files/0000/00000001': data, 'acct/snap/files/0000/00000002': data });
    const got = await settled(dest.readSmallFiles([{ rel: 'acct/snap/files/0000/00000001', size: 5000 }, { rel: 'acct/snap/files/0000/00000002', size: 5000 }]));
    assert.deepEqual(got, [data, data]);
  }, 2000);
});

test('readSmallFiles: thousands of files in one remote tar (names on its standard input, more than a command line holds); a held flow holds the stream, and releasing it lets the rest come', { timeout: 120_000 }, async () => {
  await withDestination(servers.server, null, async (dest, remote, commands) => {
    const files: Record<string, Buffer> = {};
    // 2,500 names of about 90 bytes: 225 KB of names, over the 128 KiB of one command-line argument.
    for (let i = 0; i < 2500; i++) files[`acct/snap/files/${String(i % 7).padStart(4, '0')}/${'n'.repeat(60)}-${crypto.randomBytes(4).toString('hex')}-${i}`] = crypto.randomBytes(1 + (i * 131) % 3000);
    plant(servers.server, remote, files);
    const names = Object.keys(files);
    let held = true;
    let release!: () => void;
    const released = new Promise<void>((r) => { release = r; });
    let asked = 0;
    const flow = { room: (): Promise<void> | null => { asked++; return held ? released : null; } };
    let came = 0;
    const got = dest.readSmallFiles(names.map((rel) => ({ rel, size: files[rel]!.length })), flow);
    for (const p of got) void p.then(() => { came++; }, () => undefined);
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(came, 0, 'nothing is delivered while the flow holds the stream');
    assert.ok(asked >= 1, 'the flow was asked');
    held = false;
    release();
    const all = await settled(got);
    for (const [i, rel] of names.entries()) assert.deepEqual(all[i], files[rel], rel);
    assert.equal(tarReads(commands).length, 1, 'one remote tar for all of them');
    assert.ok(!tarReads(commands)[0]!.includes('nnnnnnnn'), 'the names are not on the command line');
  });
});

test('readSmallFiles: a stopped flow ends the remote tar at once: every file not come fails, nothing hangs', { timeout: 60_000 }, async () => {
  await withDestination(servers.server, null, async (dest, remote) => {
    const files: Record<string, Buffer> = {};
    for (let i = 0; i < 50; i++) files[`acct/snap/files/0000/${String(i).padStart(8, '0')}`] = crypto.randomBytes(2000);
    plant(servers.server, remote, files);
    let n = 0;
    // Room for three files, then the reader stops (a restore that failed midway).
    const flow = { room: (): Promise<void> | null => (n++ < 3 ? null : Promise.reject(new Error('the restore stopped reading'))) };
    const got = await settled(dest.readSmallFiles(Object.entries(files).map(([rel, d]) => ({ rel, size: d.length })), flow));
    assert.deepEqual(got.slice(0, 3), Object.values(files).slice(0, 3));
    for (const g of got.slice(3)) assert.ok(g instanceof Error, String(g));
  });
});

test('readSmallFiles: a hostile remote tar that reads the names it is given and sends them out of order, or names of its own, is refused', { timeout: 60_000 }, async () => {
  const real = realTar();
  // Reverse the NUL-separated list it is given; or add a name that was not asked for.
  const cases: [string, string][] = [
    ['reverse-tar', `cd "$PWD" && tr '\\0' '\\n' | tac | tr '\\n' '\\0' | ${real} -c -f - --format=gnu --no-recursion --null -T -`],
    ['extra-tar', `cd "$PWD" && { cat; printf 'files/0000/planted\\0'; } | ${real} -c -f - --format=gnu --no-recursion --null -T -`],
  ];
  for (const [name, body] of cases) {
    await withDestination(servers.server, fakeTar(name, body), async (dest, remote) => {
      const a = crypto.randomBytes(3000);
      const b = crypto.randomBytes(3000);
      plant(servers.server, remote, { 'acct/snap/files/0000/00000001': a, 'acct/snap/files/0000/00000002': b, 'acct/snap/files/0000/planted': crypto.randomBytes(3000) });
      const got = await settled(dest.readSmallFiles([{ rel: 'acct/snap/files/0000/00000001', size: 3000 }, { rel: 'acct/snap/files/0000/00000002', size: 3000 }]));
      if (name === 'reverse-tar') {
        // The second file came first: taken as itself (it was asked for); the first, behind it, is refused.
        assert.deepEqual(got[1], b);
        assert.match(String(got[0]), /an entry that was not asked for .*refused/);
      } else {
        assert.deepEqual(got, [a, b]);
      }
      for (const g of got) if (Buffer.isBuffer(g)) assert.ok(g.equals(a) || g.equals(b), 'no file holds another one\'s content');
    });
  }
});

test('readSmallFiles on an SFTP-only server, or where tar is missing, reads every file over SFTP', async () => {
  for (const [on, tar] of [[servers.sftpOnly, null], [servers.server, '/nonexistent/tar']] as const) {
    await withDestination(on, tar, async (dest, remote, commands) => {
      const files: Record<string, Buffer> = { 'acct/snap/files/0000/00000001': crypto.randomBytes(100), 'acct/snap/files/0000/00000002': crypto.randomBytes(200000) };
      plant(on, remote, files);
      const got = await settled(dest.readSmallFiles(Object.entries(files).map(([rel, d]) => ({ rel, size: d.length }))));
      assert.deepEqual(got, Object.values(files));
      assert.equal(tarReads(commands).length, 0, JSON.stringify(commands));
    });
  }
});

/** An account in a home root of its own, a data dir, the test server's key in a file and a remote folder `tag-…` the server's user owns. */
function restoreSetup(tag: string): { homeRoot: string; account: TestAccount; dataDir: string; keyFile: string; remote: string; st: fs.Stats } {
  const homeRoot = makeHomeRoot();
  const account: TestAccount = createAccount(homeRoot);
  const dataDir = makeDataDir({ panel: 'standalone', homeRoots: [homeRoot] });
  const keyFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'tm-key-')), 'key');
  fs.writeFileSync(keyFile, servers.server.privateKey, { mode: 0o600 });
  const remote = path.join(servers.server.remoteRoot, `${tag}-${crypto.randomBytes(3).toString('hex')}`);
  fs.mkdirSync(remote);
  const st = fs.statSync(servers.server.remoteRoot);
  fs.chownSync(remote, st.uid, st.gid);
  return { homeRoot, account, dataDir, keyFile, remote, st };
}

function restoreCleanup(s: { homeRoot: string; account: TestAccount; dataDir: string; keyFile: string; remote: string }): void {
  removeAccount(s.account);
  for (const d of [s.homeRoot, s.dataDir, path.dirname(s.keyFile), s.remote]) fs.rmSync(d, { recursive: true, force: true });
}

/** `many` given to the account, then the home backed up (incremental) to `remote` on the test server: the tree before and the snapshot's id. */
function backUpToTestServer(s: { account: TestAccount; dataDir: string; keyFile: string; remote: string }, many: string): { before: ReturnType<typeof snapshotTree>; id: string } {
  execFileSync('chown', ['-R', `${s.account.uid}:${s.account.gid}`, many]);
  ok(cli(s.dataDir, ['destination', 'add', '--name', 'ssh', '--type', 'ssh', '--host', '127.0.0.1', '--port', String(servers.server.port), '--user', servers.server.user, '--key-file', s.keyFile, '--path', s.remote]));
  ok(cli(s.dataDir, ['job', 'add', '--name', 'ssh', '--destination', 'ssh', '--structure', 'incremental', '--accounts', s.account.username, '--items', 'files']));
  const before = snapshotTree(s.account.home);
  const r = ok(cli(s.dataDir, ['backup', '--job', 'ssh', '--wait']));
  assert.equal(r.results[0].status, 'completed', JSON.stringify(r.results));
  return { before, id: r.snapshots[0] as string };
}

test('a restore over SSH through remote tar -c: exact tree; a damaged blob is refused; a blob replaced by a link is not followed', { timeout: 180_000 }, async () => {
  const { homeRoot, account, dataDir, keyFile, remote, st } = restoreSetup('restore');
  try {
    buildTrickyTree(account);
    // Enough small files for several batches, each with content of its own.
    const many = path.join(account.home, 'many');
    fs.mkdirSync(many);
    for (let i = 0; i < 1500; i++) fs.writeFileSync(path.join(many, `f${i}`), crypto.randomBytes(1 + (i * 37) % 9000));
    // Pieces around the restore's 64 KiB gathering and the read-ahead's 1 MiB, between small ones.
    for (const n of [65535, 65536, 70000, 300000, 1 << 20, (1 << 20) + 1, 3 << 20]) fs.writeFileSync(path.join(many, `f${n}-big`), crypto.randomBytes(n));
    fs.writeFileSync(path.join(many, 'victim'), `victim ${crypto.randomBytes(8).toString('hex')}\n`);
    const { before, id } = backUpToTestServer({ account, dataDir, keyFile, remote }, many);
    const restoreOnce = (): ReturnType<typeof cli> => cli(dataDir, ['restore', id, '--destination', 'ssh', '--into-folder', '--wait']);
    const commandsRun = (): number => (fs.readFileSync(servers.server.logFile, 'utf8').match(/Starting session: command/g) ?? []).length;
    const commandsBefore = commandsRun();
    const restored = ok(restoreOnce());
    // The probe, then one remote tar for all the small files (1,500 files: one stream, their
    // names on its standard input).
    assert.equal(commandsRun() - commandsBefore, 2, `remote commands during the restore: ${commandsRun() - commandsBefore}`);
    assert.deepEqual(diffTrees(before, snapshotTree(path.join(account.home, restored.folder))), []);
    fs.rmSync(path.join(account.home, restored.folder), { recursive: true, force: true });

    // The blob that holds `victim`, found by its content.
    const victim = fs.readFileSync(path.join(many, 'victim'));
    const blobs = execFileSync('grep', ['-rlF', victim.toString().trim(), path.join(remote, account.username, id, 'files')], { encoding: 'utf8' }).trim().split('\n');
    assert.equal(blobs.length, 1, JSON.stringify(blobs));
    const blob = blobs[0]!;
    const damaged = Buffer.from(victim);
    damaged[0] = damaged[0]! ^ 1;
    fs.writeFileSync(blob, damaged);
    const bad = restoreOnce();
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr + bad.stdout, /does not match its hash: the destination copy is damaged/);

    // A link in its place, to a file of the same content: not followed, refused.
    const elsewhere = path.join(servers.server.remoteRoot, 'same-content');
    fs.writeFileSync(elsewhere, victim);
    fs.rmSync(blob);
    fs.symlinkSync(elsewhere, blob);
    fs.lchownSync(blob, st.uid, st.gid);
    const linked = restoreOnce();
    assert.notEqual(linked.code, 0);
    assert.match(linked.stderr + linked.stdout, /not a regular file on the destination/);
    fs.rmSync(elsewhere);
  } finally {
    restoreCleanup({ homeRoot, account, dataDir, keyFile, remote });
  }
});

test('readRemoteArchive: every file is its exact bytes across packet boundaries, and a small file is a copy that keeps no packet alive', async () => {
  const { EventEmitter } = await import('node:events');
  const { readRemoteArchive } = await import('../server/destinations/ssh-tar-read.js');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tm-tar-pieces-'));
  try {
    const sizes: Record<string, number> = { tiny: 100, small: 5000, mid: 20_000, large: 200_000, last: 3 };
    const content = Object.fromEntries(Object.entries(sizes).map(([n, size]) => [n, crypto.randomBytes(size)]));
    for (const [n, data] of Object.entries(content)) fs.writeFileSync(path.join(dir, n), data);
    const stream = execFileSync(realTar(), ['-c', '-f', '-', '--format=gnu', '-C', dir, ...Object.keys(sizes)], { maxBuffer: 64 << 20 });
    // Packets as ssh2 hands them on: each in memory of its own, cut anywhere in a member.
    const packets: Buffer[] = [];
    for (let at = 0; at < stream.length; at += 32_000) {
      const piece = stream.subarray(at, at + 32_000);
      const own = Buffer.allocUnsafeSlow(piece.length);
      piece.copy(own);
      packets.push(own);
    }
    const channel = Object.assign(new EventEmitter(), {
      stderr: new EventEmitter(),
      pause: () => undefined,
      resume: () => undefined,
      close: () => { setImmediate(() => channel.emit('close')); },
    });
    setImmediate(() => {
      for (const p of packets) channel.emit('data', p);
      channel.emit('end');
    });
    const got = new Map<number, Buffer[] | Error>();
    const names = Object.keys(sizes);
    const left = await readRemoteArchive(channel as never, 'test', names.map((name) => ({ name, size: sizes[name]! })), (i, r) => got.set(i, r), 10_000);
    assert.deepEqual(left, []);
    for (const [i, name] of names.entries()) {
      const parts = got.get(i);
      assert.ok(Array.isArray(parts), `${name}: delivered`);
      assert.ok(Buffer.concat(parts).equals(content[name]!), `${name}: exact bytes`);
      if (sizes[name]! < 8192) {
        assert.equal(parts.length, 1, `${name}: one piece`);
        assert.ok(!packets.some((p) => p.buffer === parts[0]!.buffer), `${name}: a copy, not a view of a packet`);
      }
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a restore over SSH: the writer checks the content; a damaged file, small or large, is not left at its name, in a new folder or in place, and the restore stops there', { timeout: 240_000 }, async () => {
  const { homeRoot, account, dataDir, keyFile, remote } = restoreSetup('check');
  try {
    const many = path.join(account.home, 'many');
    fs.mkdirSync(many);
    for (let i = 0; i < 300; i++) fs.writeFileSync(path.join(many, `f${i}`), crypto.randomBytes(1 + (i * 37) % 9000));
    // A small file (remote tar -c, checked in the writer's pool job) and one larger than what
    // the writer gathers whole (read over SFTP, hashed as it is written at its name).
    const small = Buffer.from(`small victim ${crypto.randomBytes(8).toString('hex')}\n`);
    const large = Buffer.concat([Buffer.from(`large victim ${crypto.randomBytes(8).toString('hex')}\n`), crypto.randomBytes(5 << 20)]);
    fs.writeFileSync(path.join(many, 'small-victim'), small);
    fs.writeFileSync(path.join(many, 'large-victim'), large);
    const { before, id } = backUpToTestServer({ account, dataDir, keyFile, remote }, many);
    const intoFolder = (): ReturnType<typeof cli> => cli(dataDir, ['restore', id, '--destination', 'ssh', '--into-folder', '--wait']);
    const restoreFolders = (): string[] => fs.readdirSync(account.home).filter((n) => n.startsWith('tidemark-restore-'));
    const dropFolders = (): void => { for (const n of restoreFolders()) fs.rmSync(path.join(account.home, n), { recursive: true, force: true }); };
    const restored = ok(intoFolder());
    assert.deepEqual(diffTrees(before, snapshotTree(path.join(account.home, restored.folder))), []);
    dropFolders();

    const blobOf = (content: Buffer): string => {
      const found = execFileSync('grep', ['-rlF', content.subarray(0, content.indexOf(0x0a)).toString(), path.join(remote, account.username, id, 'files')], { encoding: 'utf8' }).trim().split('\n');
      assert.equal(found.length, 1, JSON.stringify(found));
      return found[0]!;
    };
    /** Flips a byte of the stored copy (same size), returns a function that puts it back. */
    const damage = (content: Buffer, at: number): (() => void) => {
      const blob = blobOf(content);
      const bad = Buffer.from(content);
      bad[at] = bad[at]! ^ 1;
      fs.writeFileSync(blob, bad);
      return () => fs.writeFileSync(blob, content);
    };
    const refusedByWriter = (res: ReturnType<typeof cli>, name: string): void => {
      assert.notEqual(res.code, 0);
      const said = res.stderr + res.stdout;
      assert.match(said, new RegExp(`many/${name}\\\\?" in the snapshot does not match its hash: the destination copy is damaged; that file was not restored and the restore stopped there`), said);
    };

    for (const [name, content] of [['small-victim', small], ['large-victim', large]] as const) {
      const repair = damage(content, content.length >> 1);
      // Into a new folder: nothing at the damaged file's name.
      refusedByWriter(intoFolder(), name);
      const [folder] = restoreFolders();
      assert.ok(folder, 'the files restored so far stay in their folder');
      assert.equal(fs.existsSync(path.join(account.home, folder!, 'many', name)), false, `${name} left at its name`);
      dropFolders();
      // In place, over a live file that differs: the live file stays as it was, no temporary name is left.
      const live = path.join(many, name);
      fs.writeFileSync(live, 'changed since the backup\n');
      refusedByWriter(cli(dataDir, ['restore', id, '--destination', 'ssh', '--path', `many/${name}`, '--wait']), name);
      assert.equal(fs.readFileSync(live, 'utf8'), 'changed since the backup\n');
      assert.deepEqual(fs.readdirSync(many).filter((n) => n.startsWith('.tidemark-')), []);
      repair();
      ok(cli(dataDir, ['restore', id, '--destination', 'ssh', '--path', `many/${name}`, '--wait']));
      assert.ok(fs.readFileSync(live).equals(content), `${name} restored in place once repaired`);
    }
  } finally {
    restoreCleanup({ homeRoot, account, dataDir, keyFile, remote });
  }
});

test('widenWindow: a 6 MiB window topped up per 4 MiB taken in, only while ssh2 holds nothing back, never on a closed channel', async () => {
  const { widenWindow } = await import('../server/destinations/ssh-window.js');
  const sent: [number, number][] = [];
  const channel = {
    incoming: { window: 2 << 20 },
    outgoing: { id: 7, state: 'open' },
    readableLength: 0,
    _client: { _protocol: { channelWindowAdjust: (id: number, n: number) => { sent.push([id, n]); } } },
  };
  const w = widenWindow(channel as never, 6 << 20, 4 << 20);
  assert.deepEqual(sent, [[7, 4 << 20]], 'widened at once');
  assert.equal(channel.incoming.window, 6 << 20);
  const take = (n: number): void => { channel.incoming.window -= n; w.topUp(); };
  take(3 << 20);
  assert.equal(sent.length, 1, 'not before 4 MiB came in');
  take(1 << 20);
  assert.deepEqual(sent.at(-1), [7, 4 << 20]);
  assert.equal(channel.incoming.window, 6 << 20);
  channel.readableLength = 32 << 10;
  take(5 << 20);
  assert.equal(sent.length, 2, 'nothing granted while ssh2 holds data back');
  channel.readableLength = 0;
  w.topUp();
  assert.deepEqual(sent.at(-1), [7, 5 << 20]);
  channel.outgoing.state = 'closed';
  take(5 << 20);
  assert.equal(sent.length, 3, 'nothing on a closed channel');
});

test('readSmallFiles: the remote tar writes 128 KiB records (full SSH packets) and its window is topped up per 4 MiB taken in, not per MiB; every byte exact', { timeout: 120_000 }, async () => {
  await withDestination(servers.server, null, async (dest, remote) => {
    const files: Record<string, Buffer> = {};
    for (let i = 0; i < 40; i++) files[`acct/snap/files/0000/${String(i).padStart(8, '0')}`] = crypto.randomBytes((1 << 20) - 1000 * i);
    plant(servers.server, remote, files);
    const d = dest as unknown as { client: { _protocol: { channelWindowAdjust: (id: number, n: number) => unknown } }; exec: (c: string) => Promise<{ outgoing: { id: number } }> };
    const tarChannels = new Set<number>();
    const exec = d.exec.bind(dest);
    let packets = 0;
    let bytes = 0;
    d.exec = async (c: string) => {
      const ch = await exec(c);
      tarChannels.add(ch.outgoing.id);
      (ch as unknown as NodeJS.EventEmitter).on('data', (b: Buffer) => { packets++; bytes += b.length; });
      return ch;
    };
    const proto = d.client._protocol;
    const adjust = proto.channelWindowAdjust.bind(proto);
    let adjusts = 0;
    proto.channelWindowAdjust = (id: number, n: number) => { if (tarChannels.has(id)) adjusts++; return adjust(id, n); };
    const got = await settled(dest.readSmallFiles(Object.entries(files).map(([rel, data]) => ({ rel, size: data.length }))));
    assert.deepEqual(got, Object.values(files));
    assert.equal(tarChannels.size, 1);
    // About 39 MiB: ssh2's own top-up per MiB made about 38 adjusts.
    assert.ok(adjusts >= 1 && adjusts <= 12, `window adjusts of the tar's channel: ${adjusts}`);
    // Many small files (tar opens and reads each between its writes): packets of at most
    // 32 KiB, nearly all full; with tar's own 10 KiB records sshd sent about twice as many.
    const small: Record<string, Buffer> = {};
    for (let i = 0; i < 1500; i++) small[`acct/snap/files/0001/${String(i).padStart(8, '0')}`] = crypto.randomBytes(2000 + (i * 37) % 7000);
    plant(servers.server, remote, small);
    packets = 0;
    bytes = 0;
    const gotSmall = await settled(dest.readSmallFiles(Object.entries(small).map(([rel, data]) => ({ rel, size: data.length }))));
    assert.deepEqual(gotSmall, Object.values(small));
    assert.ok(packets <= 1.2 * Math.ceil(bytes / (32 << 10)), `${packets} packets for ${bytes} bytes`);
  });
});
