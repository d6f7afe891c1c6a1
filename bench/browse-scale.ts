/**
 * The first page of a folder of 100,000 entries, as an account holder's browser asks for it.
 *   node dist/bench/browse-scale.js [--files N] [--runs N]
 * Builds a real account whose home holds one folder of N small files, backs it up
 * (incremental, to a local destination), starts the daemon and signs in as the account
 * holder, then times whole HTTP answers (request sent → last byte read):
 *   cold  the snapshot not yet read by the daemon: its index streamed once, every folder
 *         and its totals built; the index file is in the OS page cache, as after a backup
 *   warm  the same page again, or any folder of the same snapshot (held in memory)
 * Beside each wall time, the daemon's CPU time for the answer (/proc), which depends less on
 * what else the machine runs; the load average is printed with the figures.
 * Not a timed test: it prints the figures of the file browser row of docs/benchmarks.md.
 */
import fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import { startWebFixture, WebClient, pathParam } from '../test/support/web-daemon.js';

const args = process.argv.slice(2);
const opt = (name: string, def: number): number => { const i = args.indexOf(`--${name}`); return i < 0 ? def : Number(args[i + 1]); };
const FILES = opt('files', 100_000);
const RUNS = opt('runs', 5);

const ms = (n: number): string => `${n.toFixed(0)} ms`;

/** The daemon of this state directory (its command line names it). */
function daemonPid(dataDir: string): number {
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const argv = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
      if (argv.includes(dataDir) && argv.includes('serve')) return Number(d);
    } catch { /* gone */ }
  }
  throw new Error('the daemon is not running');
}

/** CPU time (user + system) a process has used, in ms (the kernel counts in 10 ms ticks). */
function cpuMs(pid: number): number {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}
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
    const pid = daemonPid(fx.dataDir);
    // Wall time depends on what else the machine runs; the daemon's CPU time for the answer does less.
    const time = async (url: string, accept = 'text/html'): Promise<{ ms: number; cpu: number; bytes: number; status: number }> => {
      const cpu0 = cpuMs(pid);
      const started = performance.now();
      const r = await web.get(url, { accept });
      return { ms: performance.now() - started, cpu: cpuMs(pid) - cpu0, bytes: Buffer.byteLength(r.body), status: r.status };
    };
    const both = (xs: { ms: number; cpu: number }[]): string => `${ms(median(xs.map((x) => x.ms)))} (daemon CPU ${ms(median(xs.map((x) => x.cpu)))})`;
    const rows: [string, string][] = [];
    const runs = async (url: string, accept?: string) => { const out = []; for (let i = 0; i < RUNS; i++) out.push(await time(url, accept)); return out; };
    const cold = await time(folder);
    if (cold.status !== 200) throw new Error(`the folder page answered ${cold.status}`);
    rows.push(['first page, cold (folder not yet read)', `${both([cold])}, ${(cold.bytes / 1024).toFixed(0)} KiB of HTML`]);
    rows.push([`first page, warm (median of ${RUNS})`, both(await runs(folder))]);
    rows.push([`a page in the middle, warm (median of ${RUNS})`, both(await runs(`${folder}&page=${Math.ceil(FILES / 200)}`))]);
    const filtered = [];
    for (let i = 0; i < RUNS; i++) filtered.push(await time(`${folder}&q=mail-0999${i}`));
    rows.push([`filter over all ${FILES}, warm (median of ${RUNS}; the first builds the lower-case names)`, `${both(filtered)}; first ${both([filtered[0]!])}`]);
    const all = await time(`${folder}&format=json&all=1`, 'application/json');
    rows.push(['"select all" list (JSON of every entry)', `${both([all])}, ${(all.bytes / 1048576).toFixed(1)} MiB`]);
    rows.push(['home folder afterwards (read in the same pass)', both([await time(base)])]);
    const load = fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
    rows.push(['load average of the machine (1, 5, 15 min)', load]);
    const width = Math.max(...rows.map((r) => r[0].length));
    console.log(`\nBrowse of a folder of ${FILES.toLocaleString('en')} entries (${new Date().toISOString()}):`);
    for (const [k, v] of rows) console.log(`  ${k.padEnd(width)}  ${v}`);
  } finally {
    await fx.stop();
  }
}

main().catch((err) => { console.error(err); process.exitCode = 1; });
