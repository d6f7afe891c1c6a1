import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { SshDestination } from '../server/destinations/ssh.js';
import { DestinationError } from '../server/destinations/types.js';
import { EventEmitter } from 'node:events';
import type { ClientChannel } from 'ssh2';
import { RemoteExtraction, ustarHeader } from '../server/destinations/ssh-tar.js';
import { SYNC_SHELL_COMMAND } from '../server/destinations/ssh-sync-shell.js';
import { fakeTarServers, withDestination } from './support/fake-tar.js';

/**
 * Where the SSH user may run commands, `sync -f` works and tar is GNU tar, the small files of
 * a snapshot go into one remote `tar -x` per snapshot folder instead of three SFTP requests
 * each. The remote tar is replaced by scripts here to play a missing, foreign or failing tar.
 */
const servers = fakeTarServers('tm-fake-tar-');
const { fakeTar } = servers;

const tarRuns = (commands: string[]): string[] => commands.filter((c) => / -x -f - /.test(c));
/** A flush by command: the connection's sync shell (started at the first), or a command of its own. */
const syncsByCommand = (c: string): boolean => c === SYNC_SHELL_COMMAND || c.startsWith('sync -f');

/** Writes `files` as a backup does (folder first, then writeSmallFile), checks each hash. */
async function writeAll(dest: SshDestination, files: Map<string, Buffer>): Promise<void> {
  await Promise.all([...files].map(async ([rel, data]) => {
    const half = Math.floor(data.length / 2);
    const hash = await dest.writeSmallFile(rel, [data.subarray(0, half), data.subarray(half)]);
    assert.deepEqual(hash, crypto.createHash('sha256').update(data).digest());
  }));
}

const someFiles = (dir: string): Map<string, Buffer> => new Map([
  [`${dir}/files/00/0`, Buffer.alloc(0)],
  [`${dir}/files/00/1`, Buffer.from('one')],
  [`${dir}/files/00/2`, crypto.randomBytes(512)],
  [`${dir}/files/01/3`, crypto.randomBytes(70000)],
  [`${dir}/files/01/4`, crypto.randomBytes(1 << 20)],
]);

test('ustarHeader: a checksummed ustar header; long names split into prefix and name; null where none fits', () => {
  const h = ustarHeader('files/00/12', 70000)!;
  assert.equal(h.length, 512);
  assert.equal(h.toString('latin1', 0, 11), 'files/00/12');
  assert.equal(h.toString('latin1', 124, 135), (70000).toString(8).padStart(11, '0'));
  assert.equal(String.fromCharCode(h[156]!), '0');
  assert.equal(h.toString('latin1', 257, 263), 'ustar\0');
  const stored = parseInt(h.toString('latin1', 148, 154), 8);
  const copy = Buffer.from(h);
  copy.fill(0x20, 148, 156);
  assert.equal(stored, copy.reduce((a, b) => a + b, 0));
  const long = `${'a'.repeat(120)}/b`;
  const l = ustarHeader(long, 1)!;
  assert.equal(l.toString('latin1', 345, 465), 'a'.repeat(120));
  assert.equal(l.toString('latin1', 0, 1), 'b');
  assert.equal(ustarHeader('x'.repeat(101), 1), null);
  assert.equal(ustarHeader('', 1), null);
});

test('small files of a snapshot folder go into one remote tar -x; after flush they hold the exact bytes, with the mode SFTP gives', async () => {
  await withDestination(servers.server, null, async (dest, remote, commands) => {
    const files = someFiles('acct/.partial-1');
    for (const rel of files.keys()) await dest.mkdir(rel.slice(0, rel.lastIndexOf('/')));
    await writeAll(dest, files);
    // Outside a snapshot folder (fewer than three components): SFTP, as before.
    await dest.writeSmallFile('acct/alone', [Buffer.from('sftp')]);
    await dest.flush(['acct/.partial-1']);
    assert.equal(tarRuns(commands).length, 1, `one tar for the folder: ${JSON.stringify(commands)}`);
    assert.ok(tarRuns(commands)[0]!.includes(`cd -- '${remote}/acct/.partial-1' && exec tar -x`), tarRuns(commands)[0]);
    const sftpMode = fs.statSync(path.join(remote, 'acct/alone')).mode;
    for (const [rel, data] of files) {
      const p = path.join(remote, rel);
      assert.deepEqual(fs.readFileSync(p), data, rel);
      assert.equal(fs.statSync(p).mode, sftpMode, `${rel}: the mode of a file written over SFTP`);
      assert.equal(fs.statSync(p).uid, fs.statSync(path.join(remote, 'acct/alone')).uid);
      // The time of writing, not the header's 1970.
      assert.ok(fs.statSync(p).mtimeMs > Date.now() - 3600_000, `${rel}: mtime is the time of writing`);
    }
    const sync = commands.findIndex(syncsByCommand);
    assert.ok(sync > commands.indexOf(tarRuns(commands)[0]!), 'the flush syncs after tar has written everything');
    // A second snapshot folder gets a tar of its own; its rename finishes it first.
    const more = someFiles('acct/.partial-2');
    for (const rel of more.keys()) await dest.mkdir(rel.slice(0, rel.lastIndexOf('/')));
    await writeAll(dest, more);
    await dest.rename('acct/.partial-2', 'acct/2');
    for (const [rel, data] of more) assert.deepEqual(fs.readFileSync(path.join(remote, rel.replace('.partial-2', '2'))), data);
  });
});

test('a server whose tar is missing or is not GNU tar gets the small files over SFTP', async () => {
  for (const tar of ['/nonexistent/tar', fakeTar('busybox-tar', 'exit 1', 'tar (busybox) 1.36.1')]) {
    await withDestination(servers.server, tar, async (dest, remote, commands) => {
      const files = someFiles('acct/.partial-1');
      for (const rel of files.keys()) await dest.mkdir(rel.slice(0, rel.lastIndexOf('/')));
      await writeAll(dest, files);
      await dest.flush(['acct/.partial-1']);
      assert.equal(tarRuns(commands).length, 0, `${tar}: no remote tar: ${JSON.stringify(commands)}`);
      assert.ok(commands.some(syncsByCommand), 'still flushed by command');
      for (const [rel, data] of files) assert.deepEqual(fs.readFileSync(path.join(remote, rel)), data);
    });
  }
});

test('an SFTP-only server gets the small files over SFTP', async () => {
  await withDestination(servers.sftpOnly, null, async (dest, remote, commands) => {
    const files = someFiles('acct/.partial-1');
    for (const rel of files.keys()) await dest.mkdir(rel.slice(0, rel.lastIndexOf('/')));
    await writeAll(dest, files);
    await dest.flush(['acct/.partial-1']);
    assert.equal(tarRuns(commands).length, 0);
    for (const [rel, data] of files) assert.deepEqual(fs.readFileSync(path.join(remote, rel)), data);
  });
});

test('a remote tar that runs out of space fails the flush with no-space', async () => {
  const tar = fakeTar('full-tar', 'cat >/dev/null; echo "tar: files/00/1: Cannot write: No space left on device" >&2; echo "tar: Exiting with failure status due to previous errors" >&2; exit 2');
  await withDestination(servers.server, tar, async (dest) => {
    const files = someFiles('acct/.partial-1');
    for (const rel of files.keys()) await dest.mkdir(rel.slice(0, rel.lastIndexOf('/')));
    await writeAll(dest, files);
    await assert.rejects(dest.flush(['acct/.partial-1']), (err: unknown) => err instanceof DestinationError && err.code === 'no-space' && /No space left/.test(err.message));
  });
});

test('a remote tar that is killed fails the writes or the flush', async () => {
  const killed = fakeTar('killed-tar', 'head -c 100 >/dev/null; kill -9 $$');
  await withDestination(servers.server, killed, async (dest) => {
    const files = someFiles('acct/.partial-1');
    for (const rel of files.keys()) await dest.mkdir(rel.slice(0, rel.lastIndexOf('/')));
    // Later writes or the flush see it: nothing is taken as written.
    await assert.rejects(async () => { await writeAll(dest, files); await dest.flush(['acct/.partial-1']); }, /killed \(SIGKILL\)|exited/);
  });
});

test('a remote tar that prints unexpected output and fails names what it said; removing the folder stops it', async () => {
  const noisy = fakeTar('noisy-tar', 'echo "../../etc/passwd" ; echo "tar: ../../etc/passwd: Member name contains .." >&2; cat >/dev/null; exit 2');
  await withDestination(servers.server, noisy, async (dest, remote) => {
    await dest.mkdir('acct/.partial-1/files/00');
    await dest.writeSmallFile('acct/.partial-1/files/00/1', [Buffer.from('one')]);
    await assert.rejects(dest.flush(['acct/.partial-1']), /exited 2: .*Member name contains/);
  });
  const slow = fakeTar('slow-tar', 'exec sleep 600');
  await withDestination(servers.server, slow, async (dest, remote) => {
    await dest.mkdir('acct/.partial-1/files/00');
    await dest.writeSmallFile('acct/.partial-1/files/00/1', [Buffer.from('one')]);
    await dest.remove('acct/.partial-1');
    assert.equal(fs.existsSync(path.join(remote, 'acct/.partial-1')), false);
  });
});

/** A channel that takes every write at once and keeps what it was given, as given. */
function recordingChannel(): { channel: ClientChannel; writes: Buffer[] } {
  const writes: Buffer[] = [];
  const ch = new EventEmitter() as EventEmitter & Record<string, unknown>;
  ch.stderr = new EventEmitter();
  ch.write = (b: Buffer): boolean => { writes.push(b); return true; };
  ch.end = (b?: Buffer): void => {
    if (b) writes.push(b);
    setImmediate(() => { ch.emit('exit', 0); ch.emit('close'); });
  };
  return { channel: ch as unknown as ClientChannel, writes };
}

/** The ustar stream of `files` built independently: header, content, padding to 512; two zero blocks. */
function expectedStream(files: [string, Buffer][]): Buffer {
  const out: Buffer[] = [];
  for (const [name, data] of files) {
    out.push(ustarHeader(name, data.length)!, data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  out.push(Buffer.alloc(1024));
  return Buffer.concat(out);
}

test('regression: the remote tar\'s content was copied into a new 256 KiB buffer before ssh2 copied it into its packets; the stream stays byte for byte a ustar archive', async () => {
  const { channel, writes } = recordingChannel();
  const tar = new RemoteExtraction(channel, 'test');
  // Pieces on both sides of the size passed as it is, empty ones, files of one and of many pieces.
  const sizes = [[0], [1], [3, 0, 5], [16383], [16384], [100, 16384, 7], [40000, 1, 70000], [300000], [511, 513]];
  const files: [string, Buffer][] = [];
  const given: Buffer[] = [];
  for (const [i, pieces] of sizes.entries()) {
    const parts = pieces.map((n) => crypto.randomBytes(n));
    given.push(...parts.filter((p) => p.length >= 16384));
    files.push([`files/00/${i}`, Buffer.concat(parts)]);
    assert.equal(await tar.append(`files/00/${i}`, parts), true);
  }
  // Many small files after the large ones: gathered, in order.
  for (let i = 0; i < 600; i++) {
    const data = crypto.randomBytes(i % 700);
    files.push([`files/01/${i}`, data]);
    await tar.append(`files/01/${i}`, [data]);
  }
  await tar.finish();
  assert.deepEqual(Buffer.concat(writes), expectedStream(files));
  // Each large piece went to the channel as the buffer it was given (no copy of its bytes).
  for (const p of given) assert.ok(writes.includes(p), `a piece of ${p.length} bytes was passed on as it is`);
  // The small ones were gathered: far fewer writes than pieces.
  assert.ok(writes.length < 100, `${writes.length} writes to the channel`);
});

test('files given in many pieces (short, long, empty) reach the server through the remote tar with their exact bytes', async () => {
  await withDestination(servers.server, null, async (dest, remote, commands) => {
    await dest.mkdir('acct/.partial-1/files/00');
    const files = new Map<string, Buffer[]>();
    for (let i = 0; i < 40; i++) {
      const parts = [crypto.randomBytes(i * 97 % 300), Buffer.alloc(0), crypto.randomBytes(i % 3 === 0 ? 16384 + i : i * 1000), crypto.randomBytes(i % 7)];
      files.set(`acct/.partial-1/files/00/${i}`, parts);
    }
    await Promise.all([...files].map(async ([rel, parts]) => {
      const hash = await dest.writeSmallFile(rel, parts);
      assert.deepEqual(hash, crypto.createHash('sha256').update(Buffer.concat(parts)).digest());
    }));
    await dest.flush(['acct/.partial-1']);
    assert.equal(tarRuns(commands).length, 1);
    assert.match(tarRuns(commands)[0]!, / -b 256 /, 'the remote tar reads in records of 128 KiB, not 10 KiB');
    for (const [rel, parts] of files) assert.deepEqual(fs.readFileSync(path.join(remote, rel)), Buffer.concat(parts), rel);
  });
});
