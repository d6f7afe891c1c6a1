/**
 * Catalog rows: how fast the daemon answers with a full state store. 1,000 accounts × 30
 * snapshots are inserted straight through the store module (this times queries, not
 * backups); one of the accounts is real, with one real snapshot holding a folder of
 * 100,000 entries. Then, with `tidemark serve` running:
 *   - GET /api/v1/snapshots?account=X over the root socket (the daemon's JSON API), 100 times;
 *   - `tidemark snapshot list --account X --json` (a whole CLI process each), 100 times;
 *   - the account holder's snapshot page (/snapshots, signed in through a login URL), 100 times;
 *   - the folder of 100,000 entries: the web file browser's page of it (the first page four
 *     times, the first of them the first read of that snapshot since the daemon started, then
 *     page 500), then the whole folder through GET /api/v1/snapshots/:id/files.
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import crypto from 'node:crypto';
import { spawn } from 'node:child_process';
import { openStore } from '../server/store/index.js';
import type { SnapshotRecord } from '../server/store/snapshots.js';
import { freePort } from '../test/support/free-port.js';
import { WebClient } from '../test/support/web-daemon.js';
import { sh } from './measure.js';
import type { Results } from './report.js';
import { CLI, type World } from './setup.js';

export const CATALOG = { accounts: 1000, snapshotsEach: 30, folderEntries: 100_000, requests: 100, folderRequests: 5, cliRequests: 100 };

interface Latency { n: number; p50: number; p99: number; max: number }

/** Milliseconds: p99 of n samples is the ceil(0.99 n)-th smallest. */
function latency(samples: number[]): Latency {
  const s = [...samples].sort((a, b) => a - b);
  const at = (q: number): number => s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)]!;
  return { n: s.length, p50: at(0.5), p99: at(0.99), max: s[s.length - 1]! };
}

async function sample(n: number, one: (i: number) => Promise<void>): Promise<Latency> {
  const ms: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = process.hrtime.bigint();
    await one(i);
    ms.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  return latency(ms);
}

/** One GET over the daemon's root socket; resolves with the body, rejects on a status other than 200. */
function socketGet(socketPath: string, url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, path: url, method: 'GET', agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString();
        if (res.statusCode === 200) resolve(body); else reject(new Error(`GET ${url}: ${res.statusCode} ${body.slice(0, 300)}`));
      });
    });
    req.on('error', reject);
    req.end();
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function runCatalog(world: World, results: Results, log: (s: string) => void): Promise<void> {
  const state = path.join(world.work, 'catalog-state');
  fs.mkdirSync(state);
  const socketPath = path.join(state, 'run', 'tidemark.sock');
  const port = await freePort();
  fs.writeFileSync(path.join(state, 'config.json'), JSON.stringify({ panel: 'standalone', homeRoots: [world.homes], socketPath, httpPort: port, logLevel: 'silent' }));
  const tm = (...a: string[]): string => sh([process.execPath, CLI, '--data-dir', state, ...a].map((x) => `'${x.replace(/'/g, `'\\''`)}'`).join(' '));

  // The real account and its folder of 100,000 entries (empty files: it is the listing that is timed).
  const a = world.addAccount(`tmbc${process.pid % 100000}`);
  sh(`mkdir ${a.home}/big && cd ${a.home}/big && seq -f 'entry-%06g.txt' 1 ${CATALOG.folderEntries} | xargs touch && chown -R ${a.user}:${a.user} ${a.home}`);
  const destDir = path.join(world.work, 'catalog-dest');
  fs.mkdirSync(destDir);
  tm('destination', 'add', '--name', 'catalog', '--type', 'local', '--path', destDir);
  tm('job', 'add', '--name', 'catalog', '--destination', 'catalog', '--structure', 'incremental', '--accounts', a.user, '--items', 'files');
  log(`catalog: backing up a folder of ${CATALOG.folderEntries} entries`);
  tm('backup', '--job', 'catalog', '--wait');

  const store = await openStore(state);
  let realId: string;
  let destId: number;
  try {
    const real = store.snapshots.list({ account: a.user })[0]!;
    realId = real.id;
    destId = real.destinationId;
    const t0 = Date.parse(real.finishedAt);
    const insertAll = store.db.transaction(() => {
      for (let i = 0; i < CATALOG.accounts; i++) {
        const account = i === 0 ? a.user : `cat${String(i).padStart(4, '0')}`;
        for (let k = i === 0 ? 1 : 0; k < CATALOG.snapshotsEach; k++) {
          const finished = new Date(t0 - (k * 86_400_000) - i * 1000);
          const rec: SnapshotRecord = {
            ...real, account, accountId: i === 0 ? real.accountId ?? null : null,
            id: `${finished.toISOString().replace(/[-:]/g, '').replace(/\.\d+/, '')}-${crypto.randomBytes(2).toString('hex')}`,
            startedAt: new Date(finished.getTime() - 60_000).toISOString(), finishedAt: finished.toISOString(), schedule: 'daily',
          };
          store.snapshots.insert(rec);
        }
      }
    });
    const t = process.hrtime.bigint();
    insertAll();
    log(`catalog: inserted ${CATALOG.accounts * CATALOG.snapshotsEach - 1} snapshot rows in ${(Number(process.hrtime.bigint() - t) / 1e9).toFixed(2)} s`);
  } finally {
    store.close();
  }
  // Backups catalog each snapshot as it is made; rows inserted straight into the store are
  // not, so the real account's catalog is brought up to date once (29 of its snapshots have
  // no index: they are catalogued as unreadable), else the first page would time its rebuild.
  tm('--json', 'snapshot', 'search', '--account', a.user, 'entry-000001.txt');

  const daemon = spawn(process.execPath, [CLI, '--data-dir', state, 'serve'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  daemon.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
  try {
    const base = `http://127.0.0.1:${port}`;
    for (const deadline = Date.now() + 30_000; ;) {
      try { if ((await fetch(`${base}/api/v1/health`)).ok && fs.existsSync(socketPath)) break; } catch { /* not up yet */ }
      if (daemon.exitCode !== null || Date.now() > deadline) throw new Error(`the daemon did not start: ${stderr}`);
      await sleep(100);
    }
    const someAccount = (i: number): string => (i % 10 === 0 ? a.user : `cat${String(1 + ((i * 7919) % (CATALOG.accounts - 1))).padStart(4, '0')}`);
    const check30 = (body: string): void => { const n = (JSON.parse(body) as unknown[]).length; if (n !== CATALOG.snapshotsEach) throw new Error(`snapshot list: ${n} snapshots, expected ${CATALOG.snapshotsEach}`); };

    const api = await sample(CATALOG.requests, async (i) => check30(await socketGet(socketPath, `/api/v1/snapshots?account=${someAccount(i)}`)));
    log(`catalog: API snapshot list p99 ${api.p99.toFixed(1)} ms`);
    const cli = await sample(CATALOG.cliRequests, async (i) => check30(tm('--json', 'snapshot', 'list', '--account', someAccount(i))));
    log(`catalog: CLI snapshot list p99 ${cli.p99.toFixed(1)} ms`);

    const web = new WebClient(base);
    const login = JSON.parse(tm('--json', 'login-url', '--user', a.user, '--role', 'user')) as { url: string };
    const signedIn = await web.get(new URL(login.url).pathname);
    if (signedIn.status !== 200) throw new Error(`login URL: ${signedIn.status}`);
    const page = await sample(CATALOG.requests, async () => {
      const r = await web.get('/snapshots');
      if (r.status !== 200 || !r.body.includes(realId)) throw new Error(`/snapshots: ${r.status}`);
    });
    log(`catalog: account holder's snapshot page p99 ${page.p99.toFixed(1)} ms`);

    // The file browser first: its first request is the first read of that snapshot since the daemon started (cold).
    const browseUrl = `/snapshots/${destId}/${encodeURIComponent(a.user)}/${encodeURIComponent(realId)}?p=${Buffer.from('big').toString('base64url')}`;
    let pageBytes = 0;
    const folderPageMs: number[] = [];
    const folderPage = await sample(CATALOG.folderRequests, async (i) => {
      const t = process.hrtime.bigint();
      const r = await web.get(i === CATALOG.folderRequests - 1 ? `${browseUrl}&page=500` : browseUrl);
      folderPageMs.push(Number(process.hrtime.bigint() - t) / 1e6);
      if (r.status !== 200 || !r.body.includes(i === CATALOG.folderRequests - 1 ? 'entry-050000.txt' : 'entry-000001.txt')) throw new Error(`${browseUrl}: ${r.status}`);
      pageBytes = r.body.length;
    });
    const folderApi = await sample(CATALOG.folderRequests, async () => {
      const body = await socketGet(socketPath, `/api/v1/snapshots/${encodeURIComponent(realId)}/files?destination=catalog&path=big`);
      if (body.length < CATALOG.folderEntries * 20) throw new Error('folder listing: too short');
    });
    log(`catalog: folder of ${CATALOG.folderEntries}: web page p99 ${folderPage.p99.toFixed(0)} ms (first ${folderPageMs[0]!.toFixed(0)} ms, ${(pageBytes / 1024).toFixed(0)} KiB of HTML), whole folder through the API p99 ${folderApi.p99.toFixed(0)} ms`);

    results.sections.catalog = { ...CATALOG, apiSnapshotListMs: api, cliSnapshotListMs: cli, accountSnapshotPageMs: page, folderApiMs: folderApi, folderPageMs: folderPage, folderPageFirstMs: folderPageMs[0], folderPageBytes: pageBytes };
    results.check('snapshot list --account X through the daemon JSON API, p99 of 100', api.p99, 100, 'ms');
    results.check('the account holder\'s snapshot page, p99 of 100', page.p99, 100, 'ms');
    results.check(`a folder of ${CATALOG.folderEntries} entries in the web file browser, p99 of ${CATALOG.folderRequests}`, folderPage.p99, 300, 'ms');
  } finally {
    if (daemon.exitCode === null) {
      daemon.kill('SIGTERM');
      await new Promise((r) => daemon.once('exit', r));
    }
  }
}
