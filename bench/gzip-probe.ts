/**
 * Throughput probe for ParallelGzip against gzip -6 and pigz -6 on a tar stream of
 * mixed data: random-byte "images" (already-compressed content) interleaved with
 * generated text files, shaped like the shared benchmark account.
 *
 *   node dist/bench/gzip-probe.js [--mib 200] [--random 0.78] [--block 1024] [--level 6] [--workers N] [--keep]
 *
 * --block is in KiB; --keep keeps the input and outputs (the path is printed). Prints MB/s (MiB of input per second, wall clock) and output sizes.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { spawn, spawnSync } from 'node:child_process';
import { pipeline } from 'node:stream/promises';
import { createParallelGzip } from '../server/engine/format/parallel-gzip.js';
import { makeEntry } from '../server/engine/format/entry.js';
import { tarHeaders, tarPadding, TAR_END } from '../server/engine/format/tar.js';

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? Number(process.argv[i + 1]) : dflt;
}

/** Small deterministic PRNG (mulberry32). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WORDS = 'function return array string the wp post meta query include require echo class public static private value option user admin content theme plugin widget filter action hook database table select insert update where order limit'.split(' ');

/** PHP-ish text like the shared benchmark account's (its word list), from a seeded PRNG. */
function makeText(rnd: () => number, n: number): Buffer {
  const parts: string[] = [];
  let len = 0;
  while (len < n) {
    const w = WORDS[Math.floor(rnd() * WORDS.length)]! + (rnd() < 0.1 ? ';\n' : ' ');
    parts.push(w);
    len += w.length;
  }
  return Buffer.from(parts.join('').slice(0, n));
}

/**
 * A tar stream shaped like a hosting account (the shared benchmark generator's file
 * sizes): text files of 500 B - 40 KiB and random-byte "images" of 20 - 620 KiB, each
 * with its tar header and padding, `randomShare` of the bytes being random.
 */
async function makeInput(file: string, total: number, randomShare: number): Promise<void> {
  const rnd = prng(42);
  const out = fs.createWriteStream(file);
  let written = 0;
  let randomBytes = 0;
  let i = 0;
  const write = async (b: Buffer): Promise<void> => {
    written += b.length;
    if (!out.write(b)) await new Promise<void>((r) => out.once('drain', () => r()));
  };
  while (written < total) {
    const image = randomBytes < randomShare * (written + 1);
    const size = image ? 20000 + Math.floor(rnd() ** 3 * 600000) : 500 + Math.floor(rnd() ** 2 * 40000);
    const data = image ? crypto.randomBytes(size) : makeText(rnd, size);
    if (image) randomBytes += size;
    await write(tarHeaders(makeEntry({ kind: 'f', path: `public_html/wp-content/${image ? 'uploads' : 'plugins'}/file-${i++}.${image ? 'jpg' : 'php'}`, mode: 0o644, uid: 1000, gid: 1000, size, mtimeSec: 1700000000 + i })));
    await write(data);
    await write(Buffer.alloc(tarPadding(size)));
  }
  await write(TAR_END);
  out.end();
  await new Promise<void>((r) => out.on('finish', () => r()));
}

/** Flushes dirty pages so that one run's write-back does not slow the next one. */
const settle = (): void => { spawnSync('sync'); };

async function timeOurs(input: string, output: string, opts: { level: number; blockSize: number; workers?: number }): Promise<{ ms: number; bytes: number; members: number }> {
  settle();
  const t0 = process.hrtime.bigint();
  const gz = createParallelGzip(opts);
  await pipeline(fs.createReadStream(input, { highWaterMark: 1 << 20 }), gz, fs.createWriteStream(output));
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  return { ms, bytes: fs.statSync(output).size, members: gz.members().length };
}

async function timeTool(cmd: string, args: string[], input: string, output: string): Promise<{ ms: number; bytes: number } | null> {
  if (spawnSync('sh', ['-c', `command -v ${cmd}`]).status !== 0) return null;
  settle();
  const t0 = process.hrtime.bigint();
  const fd = fs.openSync(output, 'w');
  const inFd = fs.openSync(input, 'r');
  await new Promise<void>((resolve, reject) => {
    const c = spawn(cmd, args, { stdio: [inFd, fd, 'inherit'] });
    c.on('error', reject);
    c.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} exited with ${code}`))));
  });
  fs.closeSync(fd);
  fs.closeSync(inFd);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  return { ms, bytes: fs.statSync(output).size };
}

async function main(): Promise<void> {
  const mib = arg('mib', 200);
  const randomShare = arg('random', 0.78);
  const level = arg('level', 6);
  const blockSize = arg('block', 1024) * 1024;
  const workersArg = arg('workers', 0);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-gzip-probe-'));
  try {
    const input = path.join(dir, 'input.bin');
    await makeInput(input, mib * 1024 * 1024, randomShare);
    const size = fs.statSync(input).size;
    const rate = (ms: number): string => (size / 1048576 / (ms / 1000)).toFixed(1);
    console.log(`input: ${(size / 1048576).toFixed(1)} MiB, ~${Math.round(randomShare * 100)} % random bytes; cores: ${os.availableParallelism()}`);
    const gzip = await timeTool('gzip', [`-${level}`, '-c'], input, path.join(dir, 'gzip.gz'));
    const pigz = await timeTool('pigz', [`-${level}`, '-c'], input, path.join(dir, 'pigz.gz'));
    const ours = await timeOurs(input, path.join(dir, 'ours.gz'), { level, blockSize, ...(workersArg > 0 ? { workers: workersArg } : {}) });
    const rows: [string, { ms: number; bytes: number } | null][] = [[`gzip -${level}`, gzip], [`pigz -${level}`, pigz], ['ParallelGzip', ours]];
    for (const [name, r] of rows) {
      if (!r) { console.log(`${name.padEnd(14)} not installed`); continue; }
      const vsGzip = gzip ? `  size vs gzip ${((r.bytes / gzip.bytes - 1) * 100).toFixed(2)} %  speed vs gzip ${(gzip.ms / r.ms).toFixed(2)}x` : '';
      console.log(`${name.padEnd(14)} ${rate(r.ms).padStart(7)} MB/s  ${(r.ms / 1000).toFixed(2)} s  ${r.bytes} bytes (${(r.bytes / size * 100).toFixed(1)} %)${vsGzip}`);
    }
    console.log(`ParallelGzip: ${ours.members} members of ${blockSize / 1024} KiB, level ${level}`);
    const t = spawnSync('gzip', ['-t', path.join(dir, 'ours.gz')]);
    console.log(`gzip -t on our output: ${t.status === 0 ? 'ok' : `FAILED ${t.stderr}`}`);
  } finally {
    if (process.argv.includes('--keep')) console.log(`kept ${dir}`);
    else fs.rmSync(dir, { recursive: true, force: true });
  }
}

await main();
