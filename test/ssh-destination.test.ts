import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { SshDestination, type SshSettings } from '../server/destinations/ssh.js';
import { destinationConformance } from './support/destination-conformance.js';
import { startTestSshServer, type TestSshServer } from './support/sshd.js';

let server: TestSshServer;
let shellServer: TestSshServer;

/** A fresh, empty remote directory owned by the SSH user (made locally: the server is this machine). */
function freshRemoteDir(on: TestSshServer = server): string {
  const dir = path.join(on.remoteRoot, `d-${crypto.randomBytes(4).toString('hex')}`);
  const st = fs.statSync(on.remoteRoot);
  fs.mkdirSync(dir);
  fs.chownSync(dir, st.uid, st.gid);
  return dir;
}

const settings = (extra: Partial<SshSettings> = {}): SshSettings => ({
  host: server.host, port: server.port, username: server.user, privateKey: server.privateKey,
  path: freshRemoteDir(), timeoutMs: 10000, ...extra,
});

before(async () => {
  server = await startTestSshServer({ allowCommands: false });
});

after(async () => {
  await server?.stop();
  await shellServer?.stop();
});

describe('ssh destination, SFTP only', () => {
  destinationConformance('ssh', async () => new SshDestination(settings()), { serverSideClone: false });
});

describe('ssh destination, commands allowed', () => {
  before(async () => { shellServer = await startTestSshServer({ allowCommands: true }); });
  destinationConformance('ssh+commands', async () => new SshDestination({
    host: shellServer.host, port: shellServer.port, username: shellServer.user, privateKey: shellServer.privateKey,
    path: freshRemoteDir(shellServer), timeoutMs: 10000,
  }), { serverSideClone: true });
});

test('password login, and a passphrase-protected key', async () => {
  for (const extra of [{ privateKey: undefined, password: server.password }, { privateKey: server.encryptedPrivateKey, passphrase: server.passphrase }]) {
    const s = settings(extra);
    delete (s as Partial<SshSettings>).privateKey;
    if (extra.privateKey) s.privateKey = extra.privateKey;
    const d = new SshDestination(s);
    await d.open();
    assert.ok((await d.space()).freeBytes > 0);
    await d.close();
  }
});

test('the host key fingerprint is reported, and a different pinned key is refused with a clear message', async () => {
  const d = new SshDestination(settings());
  await d.open();
  assert.equal(d.seenFingerprint, server.hostKeyFingerprint);
  await d.close();
  const pinned = new SshDestination(settings({ hostKeyFingerprint: server.hostKeyFingerprint }));
  await pinned.open();
  await pinned.close();
  const wrong = new SshDestination(settings({ hostKeyFingerprint: 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' }));
  await assert.rejects(wrong.open(), /host key of 127\.0\.0\.1:\d+ has changed/);
});

test('wrong password, closed port and missing remote path give clear errors without secrets', async () => {
  const bad = new SshDestination({ ...settings(), privateKey: undefined, password: 'not-the-password-42' } as SshSettings);
  await assert.rejects(bad.open(), (err: Error) => /authentication failed for tmssh\w+@127\.0\.0\.1/.test(err.message) && !err.message.includes('not-the-password-42'));
  const closed = new SshDestination(settings({ port: 1 }));
  await assert.rejects(closed.open(), /cannot reach .*ECONNREFUSED/);
  const missing = new SshDestination(settings({ path: '/nonexistent/tidemark' }));
  await assert.rejects(missing.open(), /remote path \/nonexistent\/tidemark does not exist/);
});

test('against OpenSSH the connection uses AES-GCM with the pooled padding, and a file written and read back is exact', async () => {
  const d = new SshDestination(settings());
  await d.open();
  const data = crypto.randomBytes(300_000);
  await d.writeFile('pooled/padding.bin', data);
  assert.ok((await d.readFile('pooled/padding.bin')).equals(data));
  const client = (d as unknown as { client: { _protocol: { _cipher: object } } }).client;
  const cipherClass = Object.getPrototypeOf(client._protocol._cipher) as { constructor: { name: string } };
  assert.equal(cipherClass.constructor.name, 'AESGCMCipherBinding');
  assert.equal((await import('../server/destinations/ssh-padding.js')).poolClientPadding(client), true);
  await d.close();
});

describe('ssh createReadStream: several reads in flight, handed on in order', () => {
  const size = (5 << 20) + 123;
  const data = crypto.randomBytes(size);
  let biggestChunk = 0;
  const read = async (s: NodeJS.ReadableStream): Promise<Buffer> => {
    const parts: Buffer[] = [];
    for await (const c of s) { parts.push(c as Buffer); biggestChunk = Math.max(biggestChunk, (c as Buffer).length); }
    return Buffer.concat(parts);
  };
  type Sftp = { read: (h: Buffer, buf: Buffer, off: number, len: number, pos: number, cb: (err: Error | undefined, n: number) => void) => void };

  test('whole, by ranges, and past the end: exact bytes; at most 16 reads in flight, more than one', async () => {
    const d = new SshDestination(settings());
    await d.open();
    await d.writeFile('big/file.bin', data);
    const sftp = (d as unknown as { sftp: Sftp }).sftp;
    const original = sftp.read.bind(sftp);
    let inFlight = 0;
    let most = 0;
    sftp.read = (h, buf, off, len, pos, cb) => { inFlight++; most = Math.max(most, inFlight); original(h, buf, off, len, pos, (err, n) => { inFlight--; cb(err, n); }); };
    assert.ok((await read(d.createReadStream('big/file.bin'))).equals(data));
    assert.ok(most > 2 && most <= 16, `reads in flight at most: ${most}`);
    // Answers are handed on one by one as they came (at most one SFTP read each), never joined into a copy.
    assert.ok(biggestChunk > 0 && biggestChunk <= 256 << 10, `largest piece handed on: ${biggestChunk}`);
    // A small file: two reads at most (the window grows only with full answers).
    await d.writeFile('big/small.bin', data.subarray(0, 1000));
    most = 0;
    assert.ok((await read(d.createReadStream('big/small.bin'))).equals(data.subarray(0, 1000)));
    assert.ok(most <= 2, `reads in flight for a small file: ${most}`);
    assert.ok((await read(d.createReadStream('big/file.bin', { start: 1000, end: (3 << 20) + 7 }))).equals(data.subarray(1000, (3 << 20) + 7)));
    assert.ok((await read(d.createReadStream('big/file.bin', { start: size - 10, end: size + 100_000 }))).equals(data.subarray(size - 10)));
    assert.equal((await read(d.createReadStream('big/file.bin', { start: size + 5 }))).length, 0);
    assert.equal((await read(d.createReadStream('big/file.bin', { start: 7, end: 7 }))).length, 0);
    await d.close();
  });

  test('a server that answers reads short: the rest is asked again, the bytes stay exact; a missing file fails as not found', async () => {
    const d = new SshDestination(settings());
    await d.open();
    await d.writeFile('big/short.bin', data);
    const sftp = (d as unknown as { sftp: Sftp }).sftp;
    const original = sftp.read.bind(sftp);
    let k = 0;
    sftp.read = (h, buf, off, len, pos, cb) => original(h, buf, off, k++ % 3 === 0 ? Math.max(1, len >> 3) : len, pos, cb);
    assert.ok((await read(d.createReadStream('big/short.bin'))).equals(data));
    await assert.rejects(read(d.createReadStream('big/none.bin')), (err: Error & { code?: string }) => err.code === 'not-found');
    await d.close();
  });

  test('a reader that stops early and a slow reader: what it took is exact, nothing hangs', async () => {
    const d = new SshDestination(settings());
    await d.open();
    await d.writeFile('big/slow.bin', data);
    const s = d.createReadStream('big/slow.bin');
    let got = 0;
    for await (const c of s) { got += (c as Buffer).length; if (got > (1 << 20)) break; }
    assert.ok(s.destroyed);
    const slow = d.createReadStream('big/slow.bin');
    const parts: Buffer[] = [];
    for await (const c of slow) { parts.push(c as Buffer); await new Promise((r) => setTimeout(r, 2)); }
    assert.ok(Buffer.concat(parts).equals(data));
    await d.close();
  });
});
