/**
 * `npm run bench` takes minutes and creates users: a mistyped option must stop it with the
 * usage before anything is made, never start a full run with the option ignored.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const RUN = fileURLToPath(new URL('../bench/run.js', import.meta.url));
const bench = (...args: string[]): ReturnType<typeof spawnSync> =>
  spawnSync(process.execPath, [RUN, ...args], { encoding: 'utf8', timeout: 20_000, env: { ...process.env, TIDEMARK_BENCH_GENERATOR: '/nonexistent' } });
const benchDirs = (): string[] => fs.readdirSync(os.tmpdir()).filter((n) => n.startsWith('tidemark-bench-'));

test('bench --help prints every option and exits 0 without making anything', () => {
  const before = benchDirs();
  const r = bench('--help');
  assert.equal(r.status, 0, String(r.stderr));
  for (const o of ['--files N', '--runs N', '--no-ssh', '--no-peers', '--restores-only', '--scale', '--catalog', '--json FILE', '--keep']) assert.match(String(r.stdout), new RegExp(o));
  assert.deepEqual(benchDirs(), before);
});

test('bench refuses an unknown option, a missing value and a bad number, with exit 2 and the usage', () => {
  const before = benchDirs();
  for (const args of [['--bogus'], ['--restores-only=yes'], ['--runs'], ['--runs', 'three'], ['--files', '0'], ['--scale-files', '2000,x'], ['extra']]) {
    const r = bench(...args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${String(r.stderr)}`);
    assert.match(String(r.stderr), /^bench: /);
    assert.match(String(r.stderr), /usage: npm run bench/);
  }
  assert.deepEqual(benchDirs(), before);
});

test('bench accepts --no-ssh-archives (the SSH rows with a goal only): it goes on to its checks instead of the usage', () => {
  const before = benchDirs();
  const r = bench('--no-local', '--no-peers', '--no-ssh-archives');
  assert.notEqual(r.status, 2, String(r.stderr));
  assert.doesNotMatch(String(r.stderr), /usage: npm run bench/);
  assert.match(String(r.stderr), /dataset generator|run it as root/);
  assert.deepEqual(benchDirs(), before);
  assert.match(String(bench('--help').stdout), /--no-ssh-archives/);
});

test('bench trash is emptied once it holds more than its own budget, not only when the disk is nearly full', async () => {
  const { setTrash, discard, emptyTrashIfDue } = await import('../bench/measure.js');
  const work = fs.mkdtempSync(`${os.tmpdir()}/tidemark-trash-`);
  try {
    const trash = `${work}/trash`;
    // keepFree 0: only the budget empties it here, however full the machine's disk is (it once held under 20 GiB free, and the trash went at the first check).
    setTrash(trash, { budget: 3 * 1024 * 1024, recentMs: 0, keepFree: 0 });
    const output = (n: number): string => {
      const dir = `${work}/out${n}`;
      fs.mkdirSync(dir);
      fs.writeFileSync(`${dir}/data`, Buffer.alloc(2 * 1024 * 1024, 1));
      return dir;
    };
    discard(output(1));
    assert.equal(fs.existsSync(`${work}/out1`), false, 'a discarded output leaves its place');
    assert.deepEqual(fs.readdirSync(trash), ['0'], 'and goes into the trash');
    emptyTrashIfDue();
    assert.deepEqual(fs.readdirSync(trash), ['0'], '2 MiB is under the 3 MiB budget: kept');
    discard(output(2));
    assert.equal(fs.readdirSync(trash).length, 2);
    emptyTrashIfDue();
    assert.deepEqual(fs.readdirSync(trash), [], '4 MiB is over the 3 MiB budget: emptied');
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
});

test('bench trash is emptied whatever it holds once free space is under its floor', async () => {
  const { setTrash, discard, emptyTrashIfDue } = await import('../bench/measure.js');
  const work = fs.mkdtempSync(`${os.tmpdir()}/tidemark-trash-`);
  try {
    const trash = `${work}/trash`;
    // A floor above any disk's free space: the first check empties it, though 1 KiB is far under the budget.
    setTrash(trash, { budget: 1024 ** 4, recentMs: 0, keepFree: Number.MAX_SAFE_INTEGER });
    fs.mkdirSync(`${work}/out`);
    fs.writeFileSync(`${work}/out/data`, Buffer.alloc(1024, 1));
    discard(`${work}/out`);
    assert.deepEqual(fs.readdirSync(trash), ['0']);
    emptyTrashIfDue();
    assert.deepEqual(fs.readdirSync(trash), []);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
});

test('bench machine probe measures a fresh page and a Node start, and says both in its line', async () => {
  const { probeMachine, describeProbe } = await import('../bench/machine-probe.js');
  const p = probeMachine();
  assert.ok(Number.isFinite(p.firstTouchMicrosPerPage), `first touch ${p.firstTouchMicrosPerPage}`);
  assert.ok(p.nodeStartSeconds > 0 && p.nodeStartSeconds < 20, `node start ${p.nodeStartSeconds}`);
  const line = describeProbe(p);
  assert.match(line, new RegExp(`first touch ${p.firstTouchMicrosPerPage.toFixed(2).replace('.', '\\.')} µs`));
  assert.match(line, new RegExp(`node -e 0 ${p.nodeStartSeconds.toFixed(3).replace('.', '\\.')} s`));
});
