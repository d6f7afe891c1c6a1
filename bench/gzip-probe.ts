/**
 * Throughput probe for ParallelGzip against gzip -6 and pigz -6 on mixed data:
 * random-byte "images" (already-compressed content) interleaved with generated text.
 *
 *   node dist/bench/gzip-probe.js [--mib 200] [--random 0.78] [--block 1024] [--level 6] [--workers N]
 *
 * --block is in KiB. Prints MB/s (MiB of input per second, wall clock) and output sizes.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { spawn, spawnSync } from 'node:child_process';
import { pipeline } from 'node:stream/promises';
import { createParallelGzip } from '../server/engine/format/parallel-gzip.js';

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

/** Log/HTML/code-like text: Zipf-distributed words from a made-up vocabulary, numbers, markup. */
function makeTextGenerator(seed: number): (bytes: number) => Buffer {
  const rnd = prng(seed);
  const letters = 'etaoinshrdlcumwfgypbvkjxqz';
  const vocab: string[] = [];
  for (let i = 0; i < 8000; i++) {
    const len = 2 + Math.floor(rnd() * rnd() * 12);
    let w = '';
    for (let k = 0; k < len; k++) w += letters[Math.floor(rnd() * rnd() * letters.length)];
    vocab.push(w);
  }
  const word = (): string => vocab[Math.floor(vocab.length * Math.pow(rnd(), 3))]!;
  const line = (): string => {
    const r = rnd();
    const words = Array.from({ length: 3 + Math.floor(rnd() * 14) }, word).join(' ');
    if (r < 0.3) return `2024-0${1 + Math.floor(rnd() * 9)}-1${Math.floor(rnd() * 10)} 1${Math.floor(rnd() * 10)}:${String(Math.floor(rnd() * 60)).padStart(2, '0')}:${String(Math.floor(rnd() * 60)).padStart(2, '0')} [${rnd() < 0.8 ? 'info' : 'warn'}] pid=${Math.floor(rnd() * 40000)} ${words}\n`;
    if (r < 0.6) return `  <div class="${word()}-${word()}"><a href="/${word()}/${word()}.php?id=${Math.floor(rnd() * 100000)}">${words}</a></div>\n`;
    if (r < 0.8) return `    $${word()} = ${word()}_${word()}($${word()}, ${Math.floor(rnd() * 1000)}); // ${words}\n`;
    return `${words}.\n`;
  };
  return (bytes: number): Buffer => {
    const parts: string[] = [];
    let n = 0;
    while (n < bytes) { const l = line(); parts.push(l); n += l.length; }
    return Buffer.from(parts.join('')).subarray(0, bytes);
  };
}

async function makeInput(file: string, total: number, randomShare: number): Promise<void> {
  const rnd = prng(42);
  const text = makeTextGenerator(7);
  const out = fs.createWriteStream(file);
  let written = 0;
  const write = (b: Buffer): Promise<void> | void => {
    written += b.length;
    if (!out.write(b)) return new Promise((r) => out.once('drain', () => r()));
  };
  // Pick images with the probability that gives `randomShare` of the bytes (mean sizes below).
  const meanImage = 64 * 1024 + 2 * 1024 * 1024;
  const meanText = 1024 + 256 * 1024;
  const pImage = (randomShare * meanText) / ((1 - randomShare) * meanImage + randomShare * meanText);
  while (written < total) {
    if (rnd() < pImage) {
      // an "image": 64 KiB - 4 MiB of random bytes (mean ~2 MiB)
      let left = Math.floor(64 * 1024 + rnd() * 4 * 1024 * 1024);
      while (left > 0) { const n = Math.min(left, 1 << 20); await write(crypto.randomBytes(n)); left -= n; }
    } else {
      // a text file: 1 KiB - 1 MiB (mean ~256 KiB)
      await write(text(Math.floor(1024 + Math.pow(rnd(), 2) * 768 * 1024)));
    }
    await write(Buffer.alloc(512 - (written % 512))); // tar-like padding
  }
  out.end();
  await new Promise<void>((r) => out.on('finish', () => r()));
}

async function timeOurs(input: string, output: string, opts: { level: number; blockSize: number; workers?: number }): Promise<{ ms: number; bytes: number; members: number }> {
  const t0 = process.hrtime.bigint();
  const gz = createParallelGzip(opts);
  await pipeline(fs.createReadStream(input, { highWaterMark: 1 << 20 }), gz, fs.createWriteStream(output));
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  return { ms, bytes: fs.statSync(output).size, members: gz.members().length };
}

async function timeTool(cmd: string, args: string[], input: string, output: string): Promise<{ ms: number; bytes: number } | null> {
  if (spawnSync('sh', ['-c', `command -v ${cmd}`]).status !== 0) return null;
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
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

await main();
