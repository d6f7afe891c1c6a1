import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { SshDestination } from '../server/destinations/ssh.js';
import { startTestSshServer, type TestSshServer } from './support/sshd.js';
import { watchSyncs } from './support/fake-tar.js';

/**
 * SFTP gives no way to flush a folder, but OpenSSH's fsync@openssh.com flushes an open file:
 * every file the SSH driver writes is flushed on the server after its last write was
 * answered and before its handle is closed. The requests are watched on the driver's own
 * SFTP session (a real OpenSSH server answers them).
 */
let server: TestSshServer;

before(async () => {
  server = await startTestSshServer({ allowCommands: false });
});

let shellServer: TestSshServer | undefined;

after(async () => {
  await server?.stop();
  await shellServer?.stop();
});

type Call = { op: 'write' | 'fsync' | 'close'; handle: string };

/** Records, in order, the writes, fsyncs and closes the driver sends over its SFTP session. */
function watchRequests(dest: SshDestination): Call[] {
  const calls: Call[] = [];
  const sftp = (dest as unknown as { sftp: Record<string, (...a: unknown[]) => unknown> }).sftp;
  for (const op of ['write', 'close'] as const) {
    const real = sftp[op]!.bind(sftp);
    sftp[op] = (handle: unknown, ...rest: unknown[]) => { calls.push({ op, handle: (handle as Buffer).toString('hex') }); return real(handle, ...rest); };
  }
  const realFsync = sftp.ext_openssh_fsync!.bind(sftp);
  sftp.ext_openssh_fsync = (handle: unknown, cb: unknown) => { calls.push({ op: 'fsync', handle: (handle as Buffer).toString('hex') }); return realFsync(handle, cb); };
  return calls;
}

test('regression: an SSH destination closed the files it wrote without flushing them on the server', async () => {
  const remote = path.join(server.remoteRoot, `durable-${crypto.randomBytes(3).toString('hex')}`);
  fs.mkdirSync(remote);
  const st = fs.statSync(server.remoteRoot);
  fs.chownSync(remote, st.uid, st.gid);
  const dest = new SshDestination({ host: server.host, port: server.port, username: server.user, privateKey: server.privateKey, path: remote, timeoutMs: 10000 });
  try {
    await dest.open();
    const offered = (dest as unknown as { sftp: { _extensions: Record<string, string> } }).sftp._extensions['fsync@openssh.com'];
    assert.equal(offered, '1', 'the test server (OpenSSH) offers fsync@openssh.com');
    const calls = watchRequests(dest);
    const big = crypto.randomBytes(3 << 20);
    await pipeline(Readable.from([big.subarray(0, 1 << 20), big.subarray(1 << 20)]), dest.createWriteStream('snap/files.tar'));
    await dest.writeFile('snap/manifest.json', '{}\n');
    await pipeline(Readable.from([]), dest.createWriteStream('snap/empty'));
    await dest.writeSmallFile('snap/small', [Buffer.from('small '), Buffer.from('file')]);
    await dest.flush(['snap']);

    // The server reuses a handle's number once it is closed: a close ends one file's requests.
    const files: string[][] = [];
    const open = new Map<string, string[]>();
    for (const c of calls) {
      const ops = open.get(c.handle) ?? [];
      ops.push(c.op);
      open.set(c.handle, ops);
      if (c.op === 'close') { files.push(ops); open.delete(c.handle); }
    }
    assert.equal(files.length, 4, `four files were written and closed: ${JSON.stringify(calls)}`);
    for (const ops of files) {
      assert.equal(ops.filter((op) => op === 'fsync').length, 1, `each file is flushed once: ${ops.join(' ')}`);
      assert.equal(ops.at(-2), 'fsync', `the flush comes after the last write and before the close: ${ops.join(' ')}`);
    }
    assert.deepEqual(fs.readFileSync(path.join(remote, 'snap/files.tar')), big);
    assert.equal(fs.readFileSync(path.join(remote, 'snap/manifest.json'), 'utf8'), '{}\n');
    assert.equal(fs.readFileSync(path.join(remote, 'snap/small'), 'utf8'), 'small file');
  } finally {
    await dest.close();
    fs.rmSync(remote, { recursive: true, force: true });
  }
});

/** Records the commands the driver runs on the server (a command each, not its sync shell's requests: watchSyncs). */
function watchCommands(dest: SshDestination): string[] {
  const commands: string[] = [];
  const d = dest as unknown as { run: (c: string) => Promise<unknown> };
  const real = d.run.bind(dest);
  d.run = (c: string) => { commands.push(c); return real(c); };
  return commands;
}

test('regression: an SSH destination that may run commands flushed every file one by one (a journal commit per file on the server: 3.6x rsync -e ssh for 20,000 files)', async () => {
  shellServer = await startTestSshServer({ allowCommands: true });
  const remote = path.join(shellServer.remoteRoot, `bycommand-${crypto.randomBytes(3).toString('hex')}`);
  fs.mkdirSync(remote);
  const st = fs.statSync(shellServer.remoteRoot);
  fs.chownSync(remote, st.uid, st.gid);
  const dest = new SshDestination({ host: shellServer.host, port: shellServer.port, username: shellServer.user, privateKey: shellServer.privateKey, path: remote, timeoutMs: 10000 });
  const commands = watchCommands(dest);
  const requests = watchSyncs(dest);
  try {
    await dest.open();
    const calls = watchRequests(dest);
    const big = crypto.randomBytes(3 << 20);
    await pipeline(Readable.from([big]), dest.createWriteStream('acct/snap/files.tar'));
    await dest.writeSmallFile('acct/snap/files/1', [Buffer.from('one')]);
    await dest.writeSmallFile('other/meta.json', [Buffer.from('{}')]);
    assert.equal(calls.filter((c) => c.op === 'fsync').length, 0, 'no file is flushed one by one');
    // acct/snap/files/1 is in a snapshot's folder: it goes into the remote tar (ssh-tar.test.ts).
    assert.equal(calls.filter((c) => c.op === 'close').length, 2);
    assert.equal(commands.filter((c) => c.includes('sync -f -- /dev/null')).length, 1, `sync -f is asked for once, on nothing to flush: ${JSON.stringify(commands)}`);
    const before = requests.length;
    await dest.flush(['acct/snap', 'acct/snap/files']);
    assert.equal(requests.length, before + 1, 'one request flushes');
    // Written outside the folders named: its account folder's filesystem is flushed too (it may be a mount of its own);
    // the account folder holding the named folder is not flushed twice (the root: open() wrote tidemark.json).
    assert.deepEqual(requests.at(-1), [{ path: `${remote}/acct/snap`, mustExist: true }, { path: remote, mustExist: false }, { path: `${remote}/other`, mustExist: false }]);
    // Nothing written since: the next flush names only its folder.
    await dest.flush(['acct/snap']);
    assert.deepEqual(requests.at(-1), [{ path: `${remote}/acct/snap`, mustExist: true }]);
    // Both through the connection's one sync shell: no command of their own.
    assert.equal(commands.filter((c) => c.includes('sync -f') && !c.includes('/dev/null')).length, 0, JSON.stringify(commands));
    // A folder that is not there is an error, never a silent success.
    await assert.rejects(dest.flush(['acct/missing']), /reported an error while flushing acct\/missing/);
    assert.deepEqual(fs.readFileSync(path.join(remote, 'acct/snap/files.tar')), big);
    assert.equal(fs.readFileSync(path.join(remote, 'other/meta.json'), 'utf8'), '{}');
    assert.equal(fs.readFileSync(path.join(remote, 'acct/snap/files/1'), 'utf8'), 'one');
  } finally {
    await dest.close();
    fs.rmSync(remote, { recursive: true, force: true });
  }
});
