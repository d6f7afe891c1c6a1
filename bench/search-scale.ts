/**
 * node dist/bench/search-scale.js [--files 200000] [--snapshots 30] [--change 1] [--keep]
 *
 * The search figure of issue 15: one account of --files files with --snapshots snapshots
 * on a local destination, each changing --change percent of the files and adding 100.
 * The snapshots' indexes are written in the real format (entry records, gzip) and read back
 * through the real destination driver and index validator; only the file contents are left
 * out (search never reads them). Prints: the catalog built from scratch (what a first search
 * after a reindex or an upgrade pays), one more snapshot appended (what each backup pays),
 * the catalog's size, and the time of each question through the service (scope included),
 * best of 5 after a first run.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { encodeEntry, makeEntry, type Entry } from '../server/engine/format/entry.js';
import { openContext } from '../server/services/context.js';
import { addDestination } from '../server/services/destinations.js';
import { syncAccountCatalog } from '../server/services/path-catalogs.js';
import { pathHistory, searchPaths, snapshotChanges, changeCountsOf } from '../server/services/path-history.js';
import { catalogFile } from '../server/engine/catalog/path-catalog.js';

const args = process.argv.slice(2);
const opt = (name: string, def: number): number => { const i = args.indexOf(`--${name}`); return i < 0 ? def : Number(args[i + 1]); };
const FILES = opt('files', 200_000);
const SNAPSHOTS = opt('snapshots', 30);
const CHANGE = opt('change', 1) / 100;
const ACCOUNT = 'benchuser';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-search-bench-'));
const dataDir = path.join(work, 'state');
const destDir = path.join(work, 'dest');
fs.mkdirSync(dataDir, { mode: 0o700 });
fs.mkdirSync(destDir, { mode: 0o700 });
fs.writeFileSync(path.join(dataDir, 'config.json'), JSON.stringify({ panel: 'standalone', homeRoots: [path.join(work, 'homes')], logLevel: 'silent' }));

// 200 folders of 10 subfolders: mail-like folders of files.
const PER_SUB = Math.max(1, Math.round(FILES / 2000));
const fileName = (d: number, s: number, f: number): string => `mail/box${d}/folder${s}/msg-${d}-${s}-${f}.eml`;

function writeIndex(id: string, snapshot: number, finishedAt: Date): number {
  const dir = path.join(destDir, ACCOUNT, id);
  fs.mkdirSync(dir, { recursive: true });
  const records: Buffer[] = [];
  const dirEntry = (p: string): Entry => makeEntry({ kind: 'd', path: p, mode: 0o755, mtimeSec: 1_700_000_000 });
  records.push(encodeEntry(dirEntry('')), encodeEntry(dirEntry('mail')));
  let files = 0;
  let dataRef = 0;
  const t0 = 1_700_000_000;
  for (let d = 0; d < 200; d++) {
    records.push(encodeEntry(dirEntry(`mail/box${d}`)));
    for (let s = 0; s < 10; s++) {
      records.push(encodeEntry(dirEntry(`mail/box${d}/folder${s}`)));
      const file = (p: string, version: number): void => {
        // A stand-in for the content hash (32 bytes as in a real index), cheap to make.
        const hash = Buffer.alloc(32);
        hash.writeUInt32LE(d * 100_000 + s * 10_000 + version, 0);
        hash.writeUInt32LE(p.length * 7919 + version, 28);
        records.push(encodeEntry(makeEntry({ kind: 'f', path: p, mode: 0o644, size: 1000 + (hash[0]! << 4) + version, mtimeSec: t0 + version * 3600, dataRef: dataRef++, hash })));
        files++;
      };
      for (let f = 0; f < PER_SUB; f++) {
        // A file changes in a snapshot with probability CHANGE: its version is the last snapshot that changed it.
        let version = 0;
        for (let k = 1; k <= snapshot; k++) if (((d * 7919 + s * 104729 + f * 1299709 + k * 15485863) % 10007) / 10007 < CHANGE) version = k;
        file(fileName(d, s, f), version);
      }
      // 100 new files per snapshot over the whole account, kept afterwards.
      if ((d * 10 + s) % 20 === 0) for (let k = 1; k <= snapshot; k++) file(`mail/box${d}/folder${s}/new-s${k}.eml`, 0);
    }
  }
  fs.writeFileSync(path.join(dir, 'index.bin.gz'), zlib.gzipSync(Buffer.concat(records), { level: 1 }));
  fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify({ id, finishedAt: finishedAt.toISOString() }));
  return files;
}

/** Wall time and this process's CPU time (user + system): on a busy machine the CPU time says what the work costs. */
const since = (t: { wall: bigint; cpu: NodeJS.CpuUsage }): string => {
  const cpu = process.cpuUsage(t.cpu);
  return `${(Number(process.hrtime.bigint() - t.wall) / 1e9).toFixed(3)} s (CPU ${((cpu.user + cpu.system) / 1e6).toFixed(3)} s)`;
};
const now = (): { wall: bigint; cpu: NodeJS.CpuUsage } => ({ wall: process.hrtime.bigint(), cpu: process.cpuUsage() });

async function main(): Promise<void> {
  const ctx = await openContext(dataDir);
  const d = await addDestination(ctx, { name: 'bench', type: 'local', path: destDir });
  const base = Date.parse('2026-11-01T00:00:00Z');
  const ids: string[] = [];
  let files = 0;
  process.stdout.write(`writing ${SNAPSHOTS + 1} indexes of about ${FILES} files...\n`);
  for (let i = 0; i <= SNAPSHOTS; i++) {
    const at = new Date(base + i * 86_400_000);
    const id = `${at.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}-${(0x1000 + i).toString(16)}`;
    files = writeIndex(id, i, at);
    ids.push(id);
  }
  const insert = (i: number): void => ctx.store.snapshots.insert({
    id: ids[i]!, destinationId: d.id, account: ACCOUNT, jobId: null, structure: 'incremental', status: 'completed',
    startedAt: new Date(base + i * 86_400_000 - 60_000).toISOString(), finishedAt: new Date(base + i * 86_400_000).toISOString(),
    items: ['files'], files, bytes: 0, storedBytes: 0, databases: [], locked: false, note: '', accountId: null,
  });
  for (let i = 0; i < SNAPSHOTS; i++) insert(i);

  let t = now();
  await syncAccountCatalog(ctx, d, ACCOUNT);
  const lazy = since(t);
  insert(SNAPSHOTS);
  t = now();
  await syncAccountCatalog(ctx, d, ACCOUNT);
  const eager = since(t);
  // Back to 30 visible snapshots for the questions: the 31st is deleted from the list (and the catalog follows).
  ctx.store.snapshots.remove(d.id, ACCOUNT, ids[0]!);
  await syncAccountCatalog(ctx, d, ACCOUNT);
  const file = catalogFile(ctx.dataDir, d.id, ACCOUNT);
  const size = fs.statSync(file).size + (fs.existsSync(`${file}-wal`) ? fs.statSync(`${file}-wal`).size : 0);

  const rows: [string, string][] = [
    [`catalog built from scratch, ${SNAPSHOTS} snapshots (lazy: first search after a reindex)`, lazy],
    ['one snapshot appended (eager: paid by each backup)', eager],
    ['catalog file', `${(size / 1048576).toFixed(1)} MiB`],
  ];
  const time = async (label: string, fn: () => Promise<unknown>): Promise<void> => {
    await fn();
    let best = Infinity;
    let bestCpu = Infinity;
    let out: unknown;
    for (let i = 0; i < 5; i++) {
      const t1 = now();
      out = await fn();
      const cpu = process.cpuUsage(t1.cpu);
      best = Math.min(best, Number(process.hrtime.bigint() - t1.wall) / 1e9);
      bestCpu = Math.min(bestCpu, (cpu.user + cpu.system) / 1e6);
    }
    const total = (out as { total?: number }).total;
    rows.push([label + (total !== undefined ? ` (${total} paths)` : ''), `${best.toFixed(3)} s (CPU ${bestCpu.toFixed(3)} s)`]);
  };
  await time('search name substring, rare: "msg-17-3-4"', () => searchPaths(ctx, { account: ACCOUNT, query: 'msg-17-3-4' }));
  await time('search name glob: "new-s2?.eml"', () => searchPaths(ctx, { account: ACCOUNT, query: 'new-s2?.eml' }));
  await time('search path substring: "box42/folder7/"', () => searchPaths(ctx, { account: ACCOUNT, query: 'box42/folder7/' }));
  await time('search in a folder: "*.eml" in mail/box3', () => searchPaths(ctx, { account: ACCOUNT, query: '*.eml', folder: 'mail/box3' }));
  await time('search matching every file: ".eml" (first 100 shown)', () => searchPaths(ctx, { account: ACCOUNT, query: '.eml' }));
  await time('versions of one file', () => pathHistory(ctx, { account: ACCOUNT, path: fileName(5, 5, 5) }));
  await time('versions of a folder of 1,000 files', () => pathHistory(ctx, { account: ACCOUNT, path: 'mail/box5' }));
  // The first snapshot is gone from the list by now: the 1st visible is ids[1].
  if (SNAPSHOTS >= 2) await time('changes between two snapshots', () => snapshotChanges(ctx, { account: ACCOUNT, id: ids[Math.min(20, SNAPSHOTS)]!, against: ids[Math.max(1, Math.min(10, SNAPSHOTS - 1))]! }));
  await time(`change counts of the ${SNAPSHOTS} snapshots (the list)`, () => changeCountsOf(ctx, ACCOUNT));
  process.stdout.write(`\n${files} files per snapshot, ${SNAPSHOTS} snapshots visible, ${os.cpus().length} cores\n`);
  for (const [k, v] of rows) process.stdout.write(`${k.padEnd(80)} ${v}\n`);
  ctx.close();
  if (!args.includes('--keep')) fs.rmSync(work, { recursive: true, force: true });
  else process.stdout.write(`kept: ${work}\n`);
}

main().catch((err) => { console.error(err); fs.rmSync(work, { recursive: true, force: true }); process.exit(1); });
