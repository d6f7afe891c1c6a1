import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import http from 'node:http';
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
