/**
 * The first page of a folder of 100,000 entries, as an account holder's browser asks for it.
 *   node dist/bench/browse-scale.js [--files N] [--runs N]
 * Builds a real account whose home holds one folder of N small files, backs it up
 * (incremental, to a local destination), starts the daemon and signs in as the account
 * holder, then times whole HTTP answers (request sent → last byte read):
 *   cold  the folder not yet read by the daemon (its index streamed and the folder sorted);
 *         the index file is in the OS page cache, as after a backup
 *   warm  the same page again (the folder's listing is held in memory)
 * Not a timed test: it prints figures for docs/notes/browse.md.
 */
import fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import { startWebFixture, WebClient, pathParam } from '../test/support/web-daemon.js';

const args = process.argv.slice(2);
const opt = (name: string, def: number): number => { const i = args.indexOf(`--${name}`); return i < 0 ? def : Number(args[i + 1]); };
const FILES = opt('files', 100_000);
const RUNS = opt('runs', 5);

const ms = (n: number): string => `${n.toFixed(0)} ms`;
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const t0 = performance.now();
  const fx = await startWebFixture({
    beforeBackup: async (a) => {
      const dir = `${a.home}/big-folder`;
      fs.mkdirSync(dir);
      for (let i = 0; i < FILES; i++) fs.writeFileSync(`${dir}/mail-${String(i).padStart(6, '0')}.eml`, `message ${i}\n`);
      fs.chownSync(dir, a.uid, a.gid);
      for (const f of fs.readdirSync(dir)) fs.chownSync(`${dir}/${f}`, a.uid, a.gid);
    },
  });
  console.log(`set-up (${FILES} files, backup, daemon): ${ms(performance.now() - t0)}`);
  try {
    const web = new WebClient(fx.base);
    await web.get(fx.loginUrl(fx.alice.username, 'user'));
    const base = `/snapshots/${fx.destinationIds.shown}/${fx.alice.username}/${fx.visible.alice}`;
    const folder = `${base}?p=${pathParam('big-folder')}`;
    const time = async (url: string, accept = 'text/html'): Promise<{ ms: number; bytes: number; status: number }> => {
      const started = performance.now();
      const r = await web.get(url, { accept });
      return { ms: performance.now() - started, bytes: Buffer.byteLength(r.body), status: r.status };
    };
    const rows: [string, string][] = [];
    const cold = await time(folder);
    if (cold.status !== 200) throw new Error(`the folder page answered ${cold.status}`);
    rows.push(['first page, cold (folder not yet read)', `${ms(cold.ms)}, ${(cold.bytes / 1024).toFixed(0)} KiB of HTML`]);
    const warm: number[] = [];
    for (let i = 0; i < RUNS; i++) warm.push((await time(folder)).ms);
    rows.push([`first page, warm (median of ${RUNS})`, ms(median(warm))]);
    const mid: number[] = [];
    for (let i = 0; i < RUNS; i++) mid.push((await time(`${folder}&page=${Math.ceil(FILES / 200)}`)).ms);
    rows.push([`a page in the middle, warm (median of ${RUNS})`, ms(median(mid))]);
    const filtered: number[] = [];
    for (let i = 0; i < RUNS; i++) filtered.push((await time(`${folder}&q=mail-0999${i}`)).ms);
    rows.push([`filter over all ${FILES}, warm (median of ${RUNS}; the first builds the lower-case names)`, `${ms(median(filtered))} (first ${ms(filtered[0]!)})`]);
    const all = await time(`${folder}&format=json&all=1`, 'application/json');
    rows.push(['"select all" list (JSON of every entry)', `${ms(all.ms)}, ${(all.bytes / 1048576).toFixed(1)} MiB`]);
    const home = await time(base);
    rows.push(['home folder, cold (totals of the whole tree)', ms(home.ms)]);
    const width = Math.max(...rows.map((r) => r[0].length));
    console.log(`\nBrowse of a folder of ${FILES.toLocaleString('en')} entries (${new Date().toISOString()}):`);
    for (const [k, v] of rows) console.log(`  ${k.padEnd(width)}  ${v}`);
  } finally {
    await fx.stop();
  }
}

main().catch((err) => { console.error(err); process.exitCode = 1; });
