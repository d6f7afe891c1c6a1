/**
 * The private OpenSSH server of test/support/sshd.ts, checked with the system ssh, sftp,
 * ssh-keyscan and ssh-keygen clients only.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { startTestSshServer, type TestSshServer } from './support/sshd.js';

interface Result { code: number; stdout: string; stderr: string }

function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number } = {}): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...opts.env } });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 15_000);
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
    child.on('close', (code, signal) => { clearTimeout(timer); resolve({ code: code ?? (signal ? 128 : -1), stdout, stderr }); });
    child.stdin.on('error', () => { /* not read */ });
    child.stdin.end(opts.input ?? '');
  });
}

let work = '';
let askpass = '';

before(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-sshd-test-'));
  askpass = path.join(work, 'askpass.sh');
  // ssh asks this program for passwords and passphrases (SSH_ASKPASS_REQUIRE=force): no sshpass needed.
  fs.writeFileSync(askpass, '#!/bin/sh\nprintf \'%s\\n\' "$TIDEMARK_ASKPASS_SECRET"\n', { mode: 0o700 });
});

after(() => {
  fs.rmSync(work, { recursive: true, force: true });
});

function keyFiles(s: TestSshServer): { key: string; encKey: string } {
  const key = path.join(work, `${s.user}-id`);
  const encKey = path.join(work, `${s.user}-id2`);
  fs.writeFileSync(key, s.privateKey, { mode: 0o600 });
  fs.writeFileSync(encKey, s.encryptedPrivateKey, { mode: 0o600 });
  return { key, encKey };
}

/** Options common to every client: no user config, no agent, no known_hosts unless given. */
function common(s: TestSshServer, knownHosts?: string): string[] {
  return [
    '-F', '/dev/null',
    '-o', 'IdentityAgent=none',
    '-o', 'IdentitiesOnly=yes',
    '-o', 'ConnectTimeout=5',
    '-o', 'LogLevel=ERROR',
    ...(knownHosts
      ? ['-o', 'StrictHostKeyChecking=yes', '-o', `UserKnownHostsFile=${knownHosts}`]
      : ['-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null']),
    '-o', `Port=${s.port}`,
  ];
}

function sshKey(s: TestSshServer, key: string, command: string, knownHosts?: string): Promise<Result> {
  return run('ssh', [...common(s, knownHosts), '-n', '-o', 'BatchMode=yes', '-i', key, `${s.user}@${s.host}`, command]);
}

/** Logs in with a secret given by the askpass program: a password, or a key's passphrase. */
function sshAskpass(s: TestSshServer, secret: string, method: 'password' | 'publickey', command: string, key?: string): Promise<Result> {
  const auth = method === 'password'
    ? ['-o', 'PreferredAuthentications=password', '-o', 'PubkeyAuthentication=no', '-o', 'NumberOfPasswordPrompts=1']
    : ['-o', 'PreferredAuthentications=publickey', '-o', 'PasswordAuthentication=no', '-o', 'NumberOfPasswordPrompts=1', '-i', key ?? ''];
  return run('ssh', [...common(s), '-n', '-o', 'BatchMode=no', ...auth, `${s.user}@${s.host}`, command], {
    env: { SSH_ASKPASS: askpass, SSH_ASKPASS_REQUIRE: 'force', DISPLAY: ':0', TIDEMARK_ASKPASS_SECRET: secret },
  });
}

async function sftpRoundTrip(s: TestSshServer, key: string): Promise<void> {
  const name = `file-${s.user}.bin`;
  const local = path.join(work, name);
  const back = path.join(work, `${name}.back`);
  const data = Buffer.from(Array.from({ length: 70_000 }, (_, i) => (i * 7) & 0xff));
  fs.writeFileSync(local, data);
  const batch = path.join(work, `${s.user}.batch`);
  fs.writeFileSync(batch, [
    `cd ${s.remoteRoot}`,
    'mkdir sub',
    `put ${local} sub/${name}`,
    `get sub/${name} ${back}`,
    'ls -l sub',
    '',
  ].join('\n'));
  const r = await run('sftp', [...common(s), '-o', 'BatchMode=yes', '-i', key, '-b', batch, `${s.user}@${s.host}`]);
  assert.equal(r.code, 0, `sftp failed: ${r.stderr}\n${s.logTail()}`);
  assert.deepEqual(fs.readFileSync(back), data);
  const onServer = path.join(s.remoteRoot, 'sub', name);
  assert.deepEqual(fs.readFileSync(onServer), data);
  const owner = Number(spawnSync('id', ['-u', s.user], { encoding: 'utf8' }).stdout.trim());
  assert.equal(fs.statSync(onServer).uid, owner, 'files written over SFTP belong to the test user');
}

async function keyscanFingerprint(s: TestSshServer): Promise<string> {
  const scan = await run('ssh-keyscan', ['-p', String(s.port), s.host]);
  assert.equal(scan.code, 0, scan.stderr);
  const lf = await run('ssh-keygen', ['-lf', '-'], { input: scan.stdout });
  assert.equal(lf.code, 0, lf.stderr);
  const fps = [...lf.stdout.matchAll(/SHA256:([A-Za-z0-9+/]+)/g)].map((m) => m[1]);
  assert.equal(fps.length, 1, `one host key expected: ${lf.stdout}`);
  return fps[0] ?? '';
}

function userProcesses(user: string): number[] {
  const uid = spawnSync('id', ['-u', user], { encoding: 'utf8' });
  if (uid.status !== 0) return [];
  const out: number[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const status = fs.readFileSync(`/proc/${name}/status`, 'utf8');
      const m = /^Uid:\s+(\d+)/m.exec(status);
      // Zombies are dead already (they wait for init to reap them).
      if (m?.[1] === uid.stdout.trim() && !/^State:\s+[ZX]/m.test(status)) out.push(Number(name));
    } catch { /* gone */ }
  }
  return out;
}

const userExists = (user: string): boolean => spawnSync('id', [user], { stdio: 'ignore' }).status === 0;

test('allowCommands: true, a shell and SFTP, password and both keys, faults', async (t) => {
  const s = await startTestSshServer({ allowCommands: true });
  try {
    const { key, encKey } = keyFiles(s);
    assert.equal(s.host, '127.0.0.1');
    assert.ok(s.port > 0 && s.port !== 22);
    assert.match(s.user, /^tmssh[0-9a-f]{6}$/);
    assert.match(s.privateKey, /^-----BEGIN OPENSSH PRIVATE KEY-----/);
    assert.match(s.encryptedPrivateKey, /^-----BEGIN OPENSSH PRIVATE KEY-----/);
    const home = fs.statSync(s.remoteRoot);
    assert.ok(home.isDirectory());
    assert.ok(s.remoteRoot.startsWith(`${s.home}/`));

    await t.test('key login runs commands with a normal shell (cp -al works)', async () => {
      const r = await sshKey(s, key, 'id -un; pwd; cd backups && mkdir a && echo x > a/f && cp -al a b && stat -c %h b/f');
      assert.equal(r.code, 0, `${r.stderr}\n${s.logTail()}`);
      assert.deepEqual(r.stdout.trim().split('\n'), [s.user, s.home, '2']);
    });

    await t.test('the passphrase-protected key works with its passphrase only', async () => {
      const ok = await sshAskpass(s, s.passphrase, 'publickey', 'echo enc-ok', encKey);
      assert.equal(ok.code, 0, `${ok.stderr}\n${s.logTail()}`);
      assert.equal(ok.stdout.trim(), 'enc-ok');
      const bad = await sshAskpass(s, 'wrong-passphrase', 'publickey', 'echo enc-ok', encKey);
      assert.notEqual(bad.code, 0);
    });

    await t.test('password authentication is offered, the password is accepted, a wrong one refused', async () => {
      const v = await run('ssh', [...common(s), '-v', '-n', '-o', 'BatchMode=yes', '-o', 'PubkeyAuthentication=no', `${s.user}@${s.host}`, 'true']);
      assert.notEqual(v.code, 0);
      assert.match(v.stderr, /Authentications that can continue: publickey,password\b/);
      const ok = await sshAskpass(s, s.password, 'password', 'echo pw-ok');
      assert.equal(ok.code, 0, `${ok.stderr}\n${s.logTail()}`);
      assert.equal(ok.stdout.trim(), 'pw-ok');
      const bad = await sshAskpass(s, `${s.password}x`, 'password', 'echo pw-ok');
      assert.equal(bad.code, 255);
      assert.doesNotMatch(bad.stdout, /pw-ok/);
    });

    await t.test('SFTP batch put and get in remoteRoot', async () => {
      await sftpRoundTrip(s, key);
    });

    await t.test('the fingerprint and public key are those the server presents', async () => {
      assert.match(s.hostKeyFingerprint, /^[A-Za-z0-9+/]{43}$/);
      assert.equal(await keyscanFingerprint(s), s.hostKeyFingerprint);
      const kh = path.join(work, 'known_hosts');
      fs.writeFileSync(kh, `[${s.host}]:${s.port} ${s.hostPublicKey}\n`);
      const r = await sshKey(s, key, 'true', kh);
      assert.equal(r.code, 0, r.stderr);
    });

    await t.test('kill() drops sessions and refuses connections, restart() brings it back', async () => {
      const session = spawn('ssh', [...common(s), '-n', '-o', 'BatchMode=yes', '-i', key, `${s.user}@${s.host}`, 'echo started; exec sleep 60'], { stdio: ['ignore', 'pipe', 'pipe'] });
      const sessionEnded = new Promise<number | null>((resolve) => session.on('close', (code) => resolve(code)));
      await new Promise<void>((resolve, reject) => {
        session.stdout.on('data', (d: Buffer) => { if (d.toString().includes('started')) resolve(); });
        session.on('close', () => reject(new Error('the session ended too early')));
      });
      assert.ok(userProcesses(s.user).length > 0, 'the session runs as the user');

      await s.kill();
      const code = await Promise.race([sessionEnded, new Promise<string>((r) => setTimeout(() => r('timeout'), 5000))]);
      assert.equal(code, 255, 'the open session was cut');
      assert.deepEqual(userProcesses(s.user), [], 'no session process survives kill()');
      const refused = await sshKey(s, key, 'true');
      assert.equal(refused.code, 255);
      assert.match(refused.stderr, /Connection refused/);

      await s.restart();
      const back = await sshKey(s, key, 'echo back');
      assert.equal(back.code, 0, `${back.stderr}\n${s.logTail()}`);
      assert.equal(back.stdout.trim(), 'back');

      // Restart of a running daemon, same port, same host key.
      const fp = s.hostKeyFingerprint;
      await s.restart();
      assert.equal((await sshKey(s, key, 'true')).code, 0);
      assert.equal(await keyscanFingerprint(s), fp);
    });

    await t.test('rotateHostKey() changes the fingerprint', async () => {
      const old = s.hostKeyFingerprint;
      const kh = path.join(work, 'known_hosts');
      fs.writeFileSync(kh, `[${s.host}]:${s.port} ${s.hostPublicKey}\n`);
      const fresh = await s.rotateHostKey();
      assert.notEqual(fresh, old);
      assert.equal(s.hostKeyFingerprint, fresh);
      assert.equal(await keyscanFingerprint(s), fresh);
      const changed = await sshKey(s, key, 'true', kh);
      assert.equal(changed.code, 255, 'the old known_hosts entry no longer matches');
      assert.match(changed.stderr, /HOST IDENTIFICATION HAS CHANGED/);
      assert.equal((await sshKey(s, key, 'true')).code, 0);
    });
  } finally {
    await s.stop();
  }

  await t.test('stop() removes the user, its home and the directory, and closes the port', async () => {
    assert.equal(userExists(s.user), false);
    assert.equal(fs.existsSync(s.dir), false);
    assert.equal(fs.existsSync(s.home), false);
    const { key } = keyFiles(s);
    const r = await sshKey(s, key, 'true');
    assert.equal(r.code, 255);
    await s.stop(); // idempotent
  });
});

test('allowCommands: false, SFTP only (ForceCommand internal-sftp)', async (t) => {
  const s = await startTestSshServer();
  try {
    const { key } = keyFiles(s);

    await t.test('SFTP batch put and get in remoteRoot', async () => {
      await sftpRoundTrip(s, key);
    });

    await t.test('a shell command is not run', async () => {
      const marker = path.join(s.home, 'marker');
      const r = await sshKey(s, key, `touch ${marker}; echo shell-ran`);
      assert.doesNotMatch(r.stdout, /shell-ran/);
      assert.equal(fs.existsSync(marker), false);
      assert.match(fs.readFileSync(s.logFile, 'utf8'), /internal-sftp|subsystem|session opened/i);
    });

    await t.test('password login is accepted for SFTP too', async () => {
      const batch = path.join(work, 'pw.batch');
      fs.writeFileSync(batch, `ls ${s.remoteRoot}\n`);
      const r = await run('sftp', [...common(s), '-o', 'BatchMode=no', '-o', 'PreferredAuthentications=password', '-o', 'PubkeyAuthentication=no', '-b', batch, `${s.user}@${s.host}`], {
        env: { SSH_ASKPASS: askpass, SSH_ASKPASS_REQUIRE: 'force', DISPLAY: ':0', TIDEMARK_ASKPASS_SECRET: s.password },
      });
      assert.equal(r.code, 0, `${r.stderr}\n${s.logTail()}`);
    });
  } finally {
    await s.stop();
  }
  assert.equal(userExists(s.user), false);
  assert.equal(fs.existsSync(s.dir), false);
});
