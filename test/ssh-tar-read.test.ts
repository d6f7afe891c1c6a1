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

const settled = async (ps: Promise<Buffer>[]): Promise<(Buffer | Error)[]> =>
  (await Promise.allSettled(ps)).map((r) => (r.status === 'fulfilled' ? r.value : r.reason as Error));

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

test('a restore over SSH through remote tar -c: exact tree; a damaged blob is refused; a blob replaced by a link is not followed', { timeout: 180_000 }, async () => {
  const homeRoot = makeHomeRoot();
  const account: TestAccount = createAccount(homeRoot);
  const dataDir = makeDataDir({ panel: 'standalone', homeRoots: [homeRoot] });
  const keyFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'tm-key-')), 'key');
  fs.writeFileSync(keyFile, servers.server.privateKey, { mode: 0o600 });
  const remote = path.join(servers.server.remoteRoot, `restore-${crypto.randomBytes(3).toString('hex')}`);
  fs.mkdirSync(remote);
  const st = fs.statSync(servers.server.remoteRoot);
  fs.chownSync(remote, st.uid, st.gid);
  try {
    buildTrickyTree(account);
    // Enough small files for several batches, each with content of its own.
    const many = path.join(account.home, 'many');
    fs.mkdirSync(many);
    for (let i = 0; i < 1500; i++) fs.writeFileSync(path.join(many, `f${i}`), crypto.randomBytes(1 + (i * 37) % 9000));
    fs.writeFileSync(path.join(many, 'victim'), `victim ${crypto.randomBytes(8).toString('hex')}\n`);
    execFileSync('chown', ['-R', `${account.uid}:${account.gid}`, many]);
    ok(cli(dataDir, ['destination', 'add', '--name', 'ssh', '--type', 'ssh', '--host', '127.0.0.1', '--port', String(servers.server.port), '--user', servers.server.user, '--key-file', keyFile, '--path', remote]));
    ok(cli(dataDir, ['job', 'add', '--name', 'ssh', '--destination', 'ssh', '--structure', 'incremental', '--accounts', account.username, '--items', 'files']));
    const before = snapshotTree(account.home);
    const r = ok(cli(dataDir, ['backup', '--job', 'ssh', '--wait']));
    assert.equal(r.results[0].status, 'completed', JSON.stringify(r.results));
    const id = r.snapshots[0] as string;
    const restoreOnce = (): ReturnType<typeof cli> => cli(dataDir, ['restore', id, '--destination', 'ssh', '--into-folder', '--wait']);
    const commandsRun = (): number => (fs.readFileSync(servers.server.logFile, 'utf8').match(/Starting session: command/g) ?? []).length;
    const commandsBefore = commandsRun();
    const restored = ok(restoreOnce());
    // The probe, then the batches of small files (1,500 files: several).
    assert.ok(commandsRun() - commandsBefore >= 3, `remote commands during the restore: ${commandsRun() - commandsBefore}`);
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
    removeAccount(account);
    for (const d of [homeRoot, dataDir, path.dirname(keyFile), remote]) fs.rmSync(d, { recursive: true, force: true });
  }
});
