/**
 * Timing for the benchmark: one command as a child process, its wall time up to a flush of
 * every filesystem the run writes to, and the peak memory of its process tree; and several
 * commands timed in turns (interleaved) with the best of each kept.
 */
import fs from 'node:fs';
import { execFileSync, spawn } from 'node:child_process';

export interface Measure {
  /** Best wall time, seconds, flush included. */
  seconds: number;
  /** Peak resident memory of the process tree, KiB (see treePeakNow). */
  peakKiB: number;
  /** Every run's seconds, in the order run. */
  all: number[];
  /**
   * Every run's CPU seconds (user + system) of the command's process tree, in the order run:
   * what it and the descendants it waited for used (a remote server's side is not in it).
   */
  cpu?: number[];
}

const TICKS = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

/** CPU seconds of this process's children that have been waited for (cutime + cstime of /proc/self/stat). */
function reapedChildrenCpu(): number {
  const stat = fs.readFileSync('/proc/self/stat', 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Fields 16 and 17 of proc(5); f[0] is field 3.
  return (Number(f[13]) + Number(f[14])) / TICKS;
}

/**
 * The sum of the peak resident memory (VmHWM) of the processes of a tree alive now, from
 * /proc. The peak of a run is the largest such sum over its samples: processes alive
 * together count together, processes one after another (a job's workers, a script's
 * commands) do not add up.
 */
function treePeakNow(rootPid: number): number {
  let sum = 0;
  const visit = (pid: number): void => {
    try {
      const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
      sum += Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
      for (const t of fs.readdirSync(`/proc/${pid}/task`)) {
        const kids = fs.readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').trim();
        for (const k of kids ? kids.split(/\s+/) : []) visit(Number(k));
      }
    } catch { /* exited */ }
  };
  visit(rootPid);
  return sum;
}

/** One directory per filesystem written to: each is flushed before and after every timing. */
const flushTargets = new Map<number, string>();

export function addFlushTarget(dir: string): void {
  const dev = fs.statSync(dir).dev;
  if (!flushTargets.has(dev)) flushTargets.set(dev, dir);
}

export function flushAll(): void {
  for (const dir of flushTargets.values()) execFileSync('sync', ['-f', dir]);
}

/**
 * Outputs a timing leaves behind are moved into a trash folder instead of being removed:
 * ext4 does not reuse an inode freed within the last 60 s (`recently_deleted` in its inode
 * allocator), and creating files right after tens of thousands were freed makes every create
 * walk past them (35 % of a backup's CPU in `perf`, 0.5-1.3 ms per create). Whichever command
 * ran right after a removal paid for it. The trash is emptied when space runs low or when it
 * holds more than its own budget (what `du` counted as each output went in), so that benchmarks
 * run side by side do not each keep theirs until the disk is full; the next timing then waits
 * until those inodes are no longer recent.
 */
let trash: { dir: string; n: number; bytes: number; budget: number; recentMs: number; keepFree: number; emptiedAt: number } | null = null;
const KEEP_FREE = 20 * 1024 ** 3;
/** The most the trash may hold before it is emptied. */
const TRASH_BUDGET = 24 * 1024 ** 3;
const RECENT_MS = 61_000;

/** Blocks' bytes under `target`, each hard-linked inode once (`du`); 0 when it cannot tell. */
function blockBytes(target: string): number {
  try {
    return Number(execFileSync('du', ['-s', '-x', '-B1', target], { encoding: 'utf8' }).split('\t')[0]) || 0;
  } catch {
    return 0;
  }
}

/**
 * `budget` and `recentMs` are the trash's limit and the wait after emptying it, `keepFree` the
 * free space below which it is emptied whatever it holds (tests set their own: what the disk of
 * the machine running them has free is not theirs to depend on).
 */
export function setTrash(dir: string, { budget = TRASH_BUDGET, recentMs = RECENT_MS, keepFree = KEEP_FREE } = {}): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  trash = { dir, n: 0, bytes: 0, budget, recentMs, keepFree, emptiedAt: 0 };
}

/** Removes `target` for the benchmark's purposes: moved into the trash (see setTrash). */
export function discard(target: string): void {
  if (!fs.existsSync(target)) return;
  if (trash) {
    try {
      const bytes = blockBytes(target);
      fs.renameSync(target, `${trash.dir}/${trash.n++}`);
      trash.bytes += bytes;
      return;
    } catch { /* another filesystem: removed below */ }
  }
  fs.rmSync(target, { recursive: true, force: true });
}

/**
 * Empties the trash when space runs low or it holds more than its budget, then waits out
 * ext4's recently-freed window (see above). Exported for its test; `timed` calls it.
 */
export function emptyTrashIfDue(): void {
  if (!trash) return;
  const st = fs.statfsSync(trash.dir);
  const due = st.bavail * st.bsize < trash.keepFree || trash.bytes > trash.budget;
  if (due && fs.readdirSync(trash.dir).length > 0) {
    for (const n of fs.readdirSync(trash.dir)) fs.rmSync(`${trash.dir}/${n}`, { recursive: true, force: true });
    execFileSync('sync', ['-f', trash.dir]);
    trash.bytes = 0;
    trash.emptiedAt = Date.now();
  }
  const wait = trash.emptiedAt + trash.recentMs - Date.now();
  if (wait > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, wait);
}

export interface RunOptions { shell?: boolean; cwd?: string; env?: NodeJS.ProcessEnv; uid?: number; gid?: number }

/** Runs one command and measures it; a failure throws with the command's stderr. */
export async function timed(cmd: string, argv: string[], opts: RunOptions = {}): Promise<Measure> {
  emptyTrashIfDue();
  // What the preparation left (removals, copies) is not the timed command's to flush.
  flushAll();
  const cpuBefore = reapedChildrenCpu();
  const started = process.hrtime.bigint();
  const child = opts.shell
    ? spawn('bash', ['-c', cmd], { stdio: ['ignore', 'ignore', 'pipe'], cwd: opts.cwd, env: opts.env, uid: opts.uid, gid: opts.gid })
    : spawn(cmd, argv, { stdio: ['ignore', 'ignore', 'pipe'], cwd: opts.cwd, env: opts.env, uid: opts.uid, gid: opts.gid });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => { if (stderr.length < 20000) stderr += d.toString(); });
  let peakKiB = 0;
  const timer = setInterval(() => { peakKiB = Math.max(peakKiB, treePeakNow(child.pid!)); }, 20);
  const code = await new Promise<number>((resolve) => child.on('close', (c) => resolve(c ?? 1)));
  clearInterval(timer);
  // Before the flush's own child (sync) is reaped.
  const cpu = reapedChildrenCpu() - cpuBefore;
  flushAll();
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (code !== 0) throw new Error(`${opts.shell ? cmd : [cmd, ...argv].join(' ')} failed with ${code}: ${stderr.trim().slice(-2000)}`);
  return { seconds, peakKiB, all: [seconds], cpu: [cpu] };
}

/** One of several commands compared in turns. */
export interface Contender {
  name: string;
  /** Untimed: brings the state back to where the run starts (removes the previous output). */
  prepare?: () => void;
  run: () => Promise<Measure>;
  /** Untimed, after each run (a check, a removal that must not wait for the next prepare). */
  after?: () => void;
}

/**
 * Runs each contender `runs` times, in turns: round i starts with contender i (mod n), so
 * that no command always runs first (cold) or right after the same neighbour. Keeps each
 * one's best time and highest peak: the machine's writeback and other load vary a lot
 * between runs, and the best run is the one least disturbed.
 */
export async function interleaved(runs: number, contenders: Contender[]): Promise<Map<string, Measure>> {
  const out = new Map<string, Measure>();
  for (let round = 0; round < runs; round++) {
    for (let k = 0; k < contenders.length; k++) {
      const c = contenders[(round + k) % contenders.length]!;
      c.prepare?.();
      const m = await c.run();
      c.after?.();
      const prev = out.get(c.name);
      out.set(c.name, prev
        ? { seconds: Math.min(prev.seconds, m.seconds), peakKiB: Math.max(prev.peakKiB, m.peakKiB), all: [...prev.all, m.seconds], cpu: [...prev.cpu ?? [], ...m.cpu ?? []] }
        : m);
    }
  }
  return out;
}

export const sh = (script: string, opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): string =>
  execFileSync('bash', ['-c', script], { encoding: 'utf8', maxBuffer: 256 << 20, ...opts });

/** Bytes a directory takes on disk (hard-linked files counted once), as `du -sb`. */
export const diskBytes = (dir: string): number => Number(sh(`du -sb ${JSON.stringify(dir)}`).split('\t')[0]);

/** Bytes of the files under a directory that have no other hard link: the data a run added. */
export const newDataIn = (dir: string): number =>
  Number(sh(`find ${JSON.stringify(dir)} -type f -links 1 -printf '%s\\n' | awk '{s+=$1} END {print s+0}'`).trim());

export const emptyDir = (dir: string, keep: string[] = []): void => {
  if (!fs.existsSync(dir)) return;
  for (const n of fs.readdirSync(dir)) if (!keep.includes(n)) discard(`${dir}/${n}`);
};

export const mib = (n: number): string => (n / 1048576).toFixed(2);
