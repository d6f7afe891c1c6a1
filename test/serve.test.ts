import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import http from 'node:http';
import net from 'node:net';
import { spawn, type ChildProcess } from 'node:child_process';
import { CLI, makeDataDir } from './support/cli.js';

let dataDir: string;
let daemon: ChildProcess;
const port = 17000 + (process.pid % 1000);
let socketPath: string;

function get(opts: http.RequestOptions): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ method: 'GET', ...opts }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

before(async () => {
  dataDir = makeDataDir({ panel: 'standalone', homeRoots: ['/nonexistent-homes'] });
  socketPath = path.join(dataDir, 'run', 'tidemark.sock');
  fs.writeFileSync(path.join(dataDir, 'config.json'), JSON.stringify({ panel: 'standalone', homeRoots: ['/nonexistent-homes'], socketPath, httpPort: port, logLevel: 'silent' }));
  daemon = spawn(process.execPath, [CLI, '--data-dir', dataDir, 'serve'], { stdio: 'ignore' });
  const deadline = Date.now() + 15000;
  for (;;) {
    try {
      if ((await get({ host: '127.0.0.1', port, path: '/api/v1/health' })).status === 200 && fs.existsSync(socketPath)) break;
    } catch { /* not up yet */ }
    if (Date.now() > deadline) throw new Error('the daemon did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
});

after(() => {
  daemon?.kill('SIGTERM');
  fs.rmSync(dataDir, { recursive: true, force: true });
});

test('on its embedded defaults the daemon has a Local destination, served on the root-only socket', async () => {
  assert.equal(fs.statSync(socketPath).mode & 0o777, 0o600);
  const r = await get({ socketPath, path: '/api/v1/destinations' });
  assert.equal(r.status, 200);
  const list = JSON.parse(r.body);
  assert.equal(list.length, 1);
  assert.equal(list[0].name, 'local');
  assert.equal(list[0].settings.path, path.join(dataDir, 'backups'));
  assert.equal(list[0].reachable, true);
  const page = await get({ socketPath, path: '/' });
  assert.match(page.body, /<td>local<\/td>/);
});

test('the HTTP port, open to every local user, shows no data without sessions', async () => {
  for (const p of ['/api/v1/destinations', '/api/v1/snapshots', '/api/v1/jobs', '/']) {
    const r = await get({ host: '127.0.0.1', port, path: p });
    assert.equal(r.status, 401, p);
    assert.doesNotMatch(r.body, /local|backups/);
  }
});

/** A daemon of its own (no HTTP port), its root socket and bridge socket bound; `stop` ends it with SIGTERM. */
/**
 * A daemon of its own. `link`: its socket folders are reached through a link to a folder
 * elsewhere in its data dir (as Debian's /var/run is a link to /run), owned by root or by `linkOwner`.
 */
async function ownDaemon(opts: { link?: boolean; linkOwner?: number } = {}): Promise<{ dir: string; rootSocket: string; bridgeSocket: string; stop(): Promise<number | null> }> {
  const dir = makeDataDir({});
  let runDir = dir;
  if (opts.link) {
    fs.mkdirSync(path.join(dir, 'real-run'), { mode: 0o755 });
    fs.symlinkSync(path.join(dir, 'real-run'), path.join(dir, 'var-run'));
    if (opts.linkOwner !== undefined) fs.lchownSync(path.join(dir, 'var-run'), opts.linkOwner, opts.linkOwner);
    runDir = path.join(dir, 'var-run');
  }
  const rootSocket = path.join(runDir, 'run', 'tidemark.sock');
  const bridgeSocket = path.join(runDir, 'bridge', 'bridge.sock');
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({
    panel: 'standalone', homeRoots: ['/nonexistent-homes'], socketPath: rootSocket, bridgeDir: path.join(runDir, 'bridge'), httpPort: 0, logLevel: 'silent',
  }));
  const child = spawn(process.execPath, [CLI, '--data-dir', dir, 'serve'], { stdio: 'ignore' });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const deadline = Date.now() + 15000;
  for (;;) {
    let up = false;
    // Listening on both (the bridge's socket is made 0666 once it listens).
    try { up = (await get({ socketPath: rootSocket, path: '/api/v1/health' })).status === 200 && (fs.lstatSync(bridgeSocket).mode & 0o777) === 0o666; } catch { /* not up yet */ }
    if (up) break;
    if (child.exitCode !== null || Date.now() > deadline) throw new Error('the daemon did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
  return { dir, rootSocket, bridgeSocket, stop: async () => { child.kill('SIGTERM'); return exited; } };
}

test('regression: the daemon left its sockets (bridge.sock, tidemark.sock) behind when it exited', async () => {
  const d = await ownDaemon();
  try {
    // Exit status 0: the daemon's own SIGTERM handler ended it (it is set before the sockets are bound).
    assert.equal(await d.stop(), 0);
    assert.equal(fs.existsSync(d.bridgeSocket), false, 'bridge.sock is removed at a clean exit');
    assert.equal(fs.existsSync(d.rootSocket), false, 'tidemark.sock too');
  } finally {
    fs.rmSync(d.dir, { recursive: true, force: true });
  }
});

test('at exit the daemon removes a socket only if it is still the one it bound, in a folder nobody else can change', async () => {
  const d = await ownDaemon();
  const held: net.Server[] = [];
  try {
    // Another process bound the bridge's name since (a second daemon): its socket stays.
    fs.rmSync(d.bridgeSocket);
    const other = net.createServer();
    held.push(other);
    await new Promise<void>((resolve) => other.listen(d.bridgeSocket, resolve));
    const otherIno = fs.lstatSync(d.bridgeSocket).ino;
    // The root socket's folder became writable by others: what is in it may be anyone's, so root removes nothing there.
    fs.chmodSync(path.dirname(d.rootSocket), 0o777);
    assert.equal(await d.stop(), 0);
    assert.equal(fs.lstatSync(d.bridgeSocket).ino, otherIno, "the other process's socket is left");
    assert.ok(fs.lstatSync(d.rootSocket).isSocket(), 'nothing is removed from a folder others can write to');
  } finally {
    for (const s of held) s.close();
    fs.chmodSync(path.dirname(d.rootSocket), 0o700);
    fs.rmSync(d.dir, { recursive: true, force: true });
  }
});

test('regression: the daemon never removed its sockets where their folder is reached through a link (Debian\'s /var/run -> /run)', async () => {
  const d = await ownDaemon({ link: true });
  try {
    assert.ok(fs.lstatSync(path.join(d.dir, 'var-run')).isSymbolicLink());
    assert.equal(await d.stop(), 0);
    assert.equal(fs.existsSync(d.bridgeSocket), false, 'bridge.sock is removed through the link');
    assert.equal(fs.existsSync(d.rootSocket), false, 'tidemark.sock too');
  } finally {
    fs.rmSync(d.dir, { recursive: true, force: true });
  }
});

test('at exit the daemon removes nothing through a link another user owns', async () => {
  const d = await ownDaemon({ link: true, linkOwner: 65534 });
  try {
    assert.equal(await d.stop(), 0);
    assert.ok(fs.lstatSync(d.bridgeSocket).isSocket(), 'a link that is not root\'s may lead anywhere: nothing is removed through it');
    assert.ok(fs.lstatSync(d.rootSocket).isSocket());
  } finally {
    fs.rmSync(d.dir, { recursive: true, force: true });
  }
});
