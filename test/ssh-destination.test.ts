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
