import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { spawn, spawnSync } from 'node:child_process';

/**
 * DirectAdmin's API as far as the bridge uses it (DirectAdmin itself cannot run here): an
 * HTTPS server on 127.0.0.1 with a self-signed certificate that answers
 * `GET /CMD_API_SHOW_USER_CONFIG` for a session cookie (`session=ID; key=KEY`) with the
 * session's record, url-encoded, and anything else with DirectAdmin's login page.
 */
export interface FakeDirectAdmin {
  port: number;
  /** The certificate it serves (PEM), to put where DirectAdmin's configuration says. */
  certPem: string;
  /** A new live session of `username` as `usertype`. */
  login(username: string, usertype: 'user' | 'reseller' | 'admin'): { SESSION_ID: string; SESSION_KEY: string };
  /** Ends a session (DirectAdmin's logout). */
  logout(id: string): void;
  /** How many times the API was asked. */
  calls(): number;
  close(): Promise<void>;
}

export function makeCertificate(): { key: string; cert: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-da-cert-'));
  try {
    const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem'),
      '-days', '2', '-subj', '/CN=server.example'], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`openssl: ${r.stderr}`);
    return { key: fs.readFileSync(path.join(dir, 'key.pem'), 'utf8'), cert: fs.readFileSync(path.join(dir, 'cert.pem'), 'utf8') };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** The server, in a process of its own: the tests run the panel pages synchronously. */
const SERVER = `
const https = require('https');
const fs = require('fs');
const [keyFile, certFile, sessionsFile, callsFile] = process.argv.slice(1);
const server = https.createServer({ key: fs.readFileSync(keyFile), cert: fs.readFileSync(certFile) }, (req, res) => {
  fs.appendFileSync(callsFile, 'x');
  const sessions = JSON.parse(fs.readFileSync(sessionsFile, 'utf8'));
  const cookies = new Map((req.headers.cookie || '').split(';').map((c) => c.trim().split('=')));
  const s = sessions[cookies.get('session') || ''];
  if (req.method === 'GET' && req.url === '/CMD_API_SHOW_USER_CONFIG' && s && s.key === cookies.get('key')) {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(new URLSearchParams({ account: 'ON', creator: 'admin', domain: s.username + '.test', username: s.username, usertype: s.usertype }).toString());
    return;
  }
  res.writeHead(200, { 'content-type': 'text/html' });
  res.end('<html><body><form action="/CMD_LOGIN" method="post">Please log in</form></body></html>');
});
server.listen(0, '127.0.0.1', () => process.stdout.write(String(server.address().port) + '\\n'));
`;

export async function startFakeDirectAdmin(tls: { key: string; cert: string } = makeCertificate()): Promise<FakeDirectAdmin> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-fake-da-'));
  const file = (n: string): string => path.join(dir, n);
  fs.writeFileSync(file('key.pem'), tls.key, { mode: 0o600 });
  fs.writeFileSync(file('cert.pem'), tls.cert);
  fs.writeFileSync(file('sessions.json'), '{}');
  fs.writeFileSync(file('calls'), '');
  const sessions: Record<string, { key: string; username: string; usertype: string }> = {};
  const save = (): void => { fs.writeFileSync(file('sessions.json'), JSON.stringify(sessions)); };
  const child = spawn(process.execPath, ['-e', SERVER, file('key.pem'), file('cert.pem'), file('sessions.json'), file('calls')], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d) => { out += d; if (out.includes('\n')) resolve(Number(out.trim())); });
    child.once('exit', (code) => reject(new Error(`the fake DirectAdmin exited ${code}`)));
  });
  return {
    port,
    certPem: tls.cert,
    login(username, usertype) {
      const id = crypto.randomBytes(16).toString('hex');
      const key = crypto.randomBytes(24).toString('hex');
      sessions[id] = { key, username, usertype };
      save();
      return { SESSION_ID: id, SESSION_KEY: key };
    },
    logout(id) { delete sessions[id]; save(); },
    calls: () => fs.readFileSync(file('calls'), 'utf8').length,
    close: async () => {
      if (child.exitCode === null) { child.kill(); await new Promise((r) => child.once('exit', r)); }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Puts the fake's certificate where DirectAdmin keeps its own, under a panel tree. */
export function installDirectAdminCert(root: string, certPem: string): void {
  const conf = path.join(root, 'usr/local/directadmin/conf');
  fs.mkdirSync(conf, { recursive: true });
  fs.writeFileSync(path.join(conf, 'cacert.pem'), certPem, { mode: 0o600 });
}
